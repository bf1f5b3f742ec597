"""Top-level routes: the API, its OpenAPI schema, the admin and the web pages.

Nothing under ``media/`` is served publicly: sample grids of releases still in review or rejected
are not for everyone, so they are streamed by an access-checked API view
(``.../releases/<version>/sample-grid``), and artifacts by theirs.
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("api/v1/", include("hub.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="openapi-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="openapi-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("", include("hub.web.urls")),
]

# Errors raised before a view runs answer in the API's error shape under /api/.
handler400 = "hub.api.error_views.bad_request"
handler403 = "hub.api.error_views.permission_denied"
handler404 = "hub.api.error_views.page_not_found"
handler500 = "hub.api.error_views.server_error"
