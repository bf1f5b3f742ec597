"""Middleware of the hub's pages: a locked database answers 503 with ``Retry-After``, not 500.

The API's views answer through DRF's exception handler (``hub/api/errors.py``); this covers the
other views (admin, web pages) with the same decision, in the API's error shape under ``/api/``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from hub.api.errors import STATUS_BY_CODE, database_is_busy, hub_busy_body
from medigan_catalog.errors import ErrorCode

logger = logging.getLogger(__name__)


class DatabaseBusyMiddleware:
    """Turn a contended database (``database is locked``) in a view into a 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_is_busy(exception):
            return None
        logger.warning("database busy at %s: %s", request.path, exception)
        body, retry_after = hub_busy_body()
        status = STATUS_BY_CODE[ErrorCode.HUB_BUSY]
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse(dict(body), status=status)
        else:
            response = HttpResponse(
                f"{body['message']}\n", status=status, content_type="text/plain; charset=utf-8"
            )
        response["Retry-After"] = str(retry_after)
        return response
