"""Top-level routes: the API, its OpenAPI schema, the admin and the web pages."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("api/v1/", include("hub.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="openapi-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="openapi-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("", include("hub.web.urls")),
]

if settings.STORAGES["default"]["BACKEND"].endswith("FileSystemStorage"):
    # Sample grids are small public images; with filesystem storage the hub serves them itself.
    urlpatterns.append(
        re_path(r"^media/(?P<path>grids/.*)$", serve, {"document_root": settings.MEDIA_ROOT})
    )
