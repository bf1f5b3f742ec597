"""Every route of the hub: the API under ``/api/v1/``, its OpenAPI schema, the admin, the pages.

The API's paths are the wire format's (``medigan_catalog.snapshot``: ``CATALOG_PATH``,
``model_path``, ``release_path`` ...). Id segments match any text without a slash; the views
check them against the catalogue's rules and answer 400 for a malformed one
(``hub.api.parameters``), which a narrower converter would have turned into a bare 404.

Nothing under ``media/`` is served publicly: sample grids of releases still in review or rejected
are not for everyone, so they are streamed by an access-checked API view
(``.../releases/<version>/sample-grid``), and artifacts by theirs.
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from hub import snapshot, status
from hub.accounts import apis as accounts
from hub.evaluations import apis as evaluations
from hub.github import apis as github
from hub.registry import apis as registry
from medigan_catalog.snapshot import API_ROOT, LIFECYCLE_ACTIONS

_MODEL = "models/<str:namespace>/<str:name>"
_RELEASE = f"{_MODEL}/releases/<str:version>"

api_v1 = [
    path("status", status.HubStatusApi.as_view(), name="hub-status"),
    path("me", accounts.AccountMeApi.as_view(), name="account-me"),
    path("tokens", accounts.TokenListApi.as_view(), name="tokens"),
    path("tokens/<int:token_id>", accounts.TokenDetailApi.as_view(), name="token"),
    path("organisations", accounts.OrganisationListApi.as_view(), name="organisations"),
    path(
        "organisations/<str:name>",
        accounts.OrganisationDetailApi.as_view(),
        name="organisation",
    ),
    path(
        "organisations/<str:name>/members",
        accounts.OrganisationMembersApi.as_view(),
        name="organisation-members",
    ),
    path(
        "organisations/<str:name>/members/<str:username>",
        accounts.OrganisationMemberApi.as_view(),
        name="organisation-member",
    ),
    path("namespaces", accounts.NamespaceListApi.as_view(), name="namespaces"),
    path("catalog", snapshot.CatalogSnapshotApi.as_view(), name="catalog-snapshot"),
    path("changes", snapshot.CatalogChangesApi.as_view(), name="catalog-changes"),
    path("keys", snapshot.SigningKeysApi.as_view(), name="signing-keys"),
    path("models", registry.ModelListApi.as_view(), name="model-list"),
    path(_MODEL, registry.ModelDetailApi.as_view(), name="model"),
    path(f"{_MODEL}/visibility", registry.ModelVisibilityApi.as_view(), name="model-visibility"),
    path(
        f"{_MODEL}/visibility/review",
        registry.ModelVisibilityReviewApi.as_view(),
        name="model-visibility-review",
    ),
    path(f"{_MODEL}/github", github.ModelGithubLinkApi.as_view(), name="model-github-link"),
    path(
        "github/links/<int:link_id>/webhook",
        github.GithubWebhookApi.as_view(),
        name="github-webhook",
    ),
    path(
        "github/submissions", github.GithubSubmissionCreateApi.as_view(), name="github-submissions"
    ),
    path(
        "github/submissions/<int:submission_id>",
        github.GithubSubmissionDetailApi.as_view(),
        name="github-submission",
    ),
    path("releases", registry.ReleaseCreateApi.as_view(), name="release-create"),
    path(_RELEASE, registry.ReleaseDetailApi.as_view(), name="release"),
    path(f"{_RELEASE}/review", registry.ReleaseReviewApi.as_view(), name="release-review"),
    *(
        path(
            f"{_RELEASE}/{action}",
            registry.ReleaseLifecycleApi.as_view(action=action),
            name=f"release-{action}",
        )
        for action in LIFECYCLE_ACTIONS
    ),
    path(
        f"{_RELEASE}/sample-grid",
        registry.ReleaseSampleGridApi.as_view(),
        name="release-sample-grid",
    ),
    path(
        f"{_RELEASE}/evaluations",
        snapshot.ReleaseEvaluationsApi.as_view(),
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

urlpatterns = [
    path(f"{API_ROOT.strip('/')}/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="openapi-schema"),
    # The split view serves Swagger UI's init script as a file: no inline script (CSP).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="openapi-schema", template_name="web/api_docs.html"
        ),
        name="api-docs",
    ),
    path("admin/", admin.site.urls),
    path("", include("hub.web.urls")),
]

# Errors raised before a view runs answer in the API's error shape under /api/.
handler400 = "hub.api.error_views.bad_request"
handler403 = "hub.api.error_views.permission_denied"
handler404 = "hub.api.error_views.page_not_found"
handler500 = "hub.api.error_views.server_error"
