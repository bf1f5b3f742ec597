"""Django's error views, answering in the API's error shape for paths under ``/api/``.

Errors that happen before a DRF view runs (a URL that matches no route, a malformed id segment, a
disallowed host, a request Django itself refuses) are answered by these views. Under ``/api/`` the
client gets ``{code, message, detail}`` like from any API view; elsewhere Django's own pages.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from medigan_catalog.errors import ErrorBody, ErrorCode


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _error(code: ErrorCode, message: str, status: int) -> JsonResponse:
    body: ErrorBody = {"code": code.value, "message": message, "detail": None}
    return JsonResponse(body, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """400: Django refused the request (a disallowed host, too many fields, a malformed body)."""
    if _is_api(request):
        return _error(ErrorCode.BAD_REQUEST, "the hub refused this request as malformed", 400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """403 raised outside an API view."""
    if _is_api(request):
        return _error(ErrorCode.PERMISSION_DENIED, "permission denied", 403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404: no route matches (an unknown path, or an id segment no route accepts)."""
    if _is_api(request):
        return _error(ErrorCode.NOT_FOUND, "no such API endpoint", 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """500 outside DRF's exception handler: still the API's shape, and nothing of the error."""
    if _is_api(request):
        return _error(ErrorCode.SERVER_ERROR, "internal error; the hub logged it", 500)
    return defaults.server_error(request)
