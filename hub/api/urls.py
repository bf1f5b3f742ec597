"""Routes of the API under ``/api/v1/``."""

from django.urls import path

from hub.evaluations import apis as evaluations
from hub.registry import apis as registry

_RELEASE = "models/<slug:namespace>/<str:name>/releases/<str:version>"

urlpatterns = [
    path("catalog", registry.CatalogSnapshotApi.as_view(), name="catalog-snapshot"),
    path("models", registry.ModelListApi.as_view(), name="model-list"),
    path("models/<slug:namespace>/<str:name>", registry.ModelDetailApi.as_view(), name="model"),
    path("releases", registry.ReleaseCreateApi.as_view(), name="release-create"),
    path(_RELEASE, registry.ReleaseDetailApi.as_view(), name="release"),
    path(f"{_RELEASE}/review", registry.ReleaseReviewApi.as_view(), name="release-review"),
    path(
        f"{_RELEASE}/evaluations",
        evaluations.ReleaseEvaluationsApi.as_view(),
        name="release-evaluations",
    ),
    path("leaderboards", evaluations.LeaderboardApi.as_view(), name="leaderboards"),
    path(
        "leaderboards/<slug:reference>",
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
