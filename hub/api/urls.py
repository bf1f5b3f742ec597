"""Routes of the API under ``/api/v1/``.

Id segments match any text without a slash; the views check them against the catalogue's rules
and answer 400 for a malformed one (``hub.api.parameters``), which a narrower converter would
have turned into a bare 404.
"""

from django.urls import path

from hub.evaluations import apis as evaluations
from hub.registry import apis as registry

_MODEL = "models/<str:namespace>/<str:name>"
_RELEASE = f"{_MODEL}/releases/<str:version>"

urlpatterns = [
    path("status", registry.HubStatusApi.as_view(), name="hub-status"),
    path("catalog", registry.CatalogSnapshotApi.as_view(), name="catalog-snapshot"),
    path("models", registry.ModelListApi.as_view(), name="model-list"),
    path(_MODEL, registry.ModelDetailApi.as_view(), name="model"),
    path("releases", registry.ReleaseCreateApi.as_view(), name="release-create"),
    path(_RELEASE, registry.ReleaseDetailApi.as_view(), name="release"),
    path(f"{_RELEASE}/review", registry.ReleaseReviewApi.as_view(), name="release-review"),
    path(
        f"{_RELEASE}/sample-grid",
        registry.ReleaseSampleGridApi.as_view(),
        name="release-sample-grid",
    ),
    path(
        f"{_RELEASE}/evaluations",
        evaluations.ReleaseEvaluationsApi.as_view(),
        name="release-evaluations",
    ),
    path("leaderboards", evaluations.LeaderboardApi.as_view(), name="leaderboards"),
    path(
        "leaderboards/<str:reference>",
        evaluations.LeaderboardReferenceApi.as_view(),
        name="leaderboard",
    ),
    path("reference-sets", evaluations.ReferenceSetListApi.as_view(), name="reference-sets"),
    path(
        f"{_RELEASE}/artifacts/<str:filename>",
        registry.ReleaseArtifactDownloadApi.as_view(),
        name="release-artifact",
    ),
]
