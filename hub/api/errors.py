"""Every API error is answered as ``{code, message, detail}`` with a code from ErrorCode.

Domain errors (``CatalogError`` and its subclasses, raised by services) and DRF's own exceptions
are both mapped here, so views never build error bodies themselves.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from medigan_catalog.errors import CatalogError, ErrorBody, ErrorCode

logger = logging.getLogger(__name__)

STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.CARD_INVALID: status.HTTP_400_BAD_REQUEST,
    ErrorCode.BAD_REQUEST: status.HTTP_400_BAD_REQUEST,
    ErrorCode.ARCHIVE_UNSAFE: status.HTTP_400_BAD_REQUEST,
    ErrorCode.CHECKSUM_MISMATCH: status.HTTP_400_BAD_REQUEST,
    ErrorCode.AUTHENTICATION_REQUIRED: status.HTTP_401_UNAUTHORIZED,
    ErrorCode.PERMISSION_DENIED: status.HTTP_403_FORBIDDEN,
    ErrorCode.NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.ARTIFACT_UNREACHABLE: status.HTTP_404_NOT_FOUND,
    ErrorCode.RELEASE_EXISTS: status.HTTP_409_CONFLICT,
    ErrorCode.TRANSITION_NOT_ALLOWED: status.HTTP_409_CONFLICT,
    ErrorCode.VALIDATION_FAILED: status.HTTP_422_UNPROCESSABLE_ENTITY,
    ErrorCode.GENERATION_FAILED: status.HTTP_422_UNPROCESSABLE_ENTITY,
    ErrorCode.PAYLOAD_TOO_LARGE: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    ErrorCode.HUB_BUSY: status.HTTP_503_SERVICE_UNAVAILABLE,
    ErrorCode.SANDBOX_UNAVAILABLE: status.HTTP_503_SERVICE_UNAVAILABLE,
    ErrorCode.SCOPE_MISSING: status.HTTP_403_FORBIDDEN,
    ErrorCode.TOKEN_EXPIRED: status.HTTP_401_UNAUTHORIZED,
    ErrorCode.THROTTLED: status.HTTP_429_TOO_MANY_REQUESTS,
    ErrorCode.NAMESPACE_NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.NAMESPACE_TAKEN: status.HTTP_409_CONFLICT,
    ErrorCode.FEED_GONE: status.HTTP_410_GONE,
    ErrorCode.SIGNATURE_INVALID: status.HTTP_400_BAD_REQUEST,
    ErrorCode.SIGNATURE_MISSING: status.HTTP_400_BAD_REQUEST,
    ErrorCode.KEY_CHANGED: status.HTTP_400_BAD_REQUEST,
    ErrorCode.NAMESPACE_SHADOWED: status.HTTP_409_CONFLICT,
    ErrorCode.MIRROR_CLASH: status.HTTP_409_CONFLICT,
    ErrorCode.BUNDLE_INVALID: status.HTTP_400_BAD_REQUEST,
    ErrorCode.UPSTREAM_FAILED: status.HTTP_502_BAD_GATEWAY,
    ErrorCode.HUB_CONFLICT: status.HTTP_409_CONFLICT,
    ErrorCode.RELEASE_WITHDRAWN: status.HTTP_410_GONE,
    ErrorCode.GITHUB_SIGNATURE_INVALID: status.HTTP_401_UNAUTHORIZED,
    ErrorCode.GITHUB_DELIVERY_REPLAYED: status.HTTP_409_CONFLICT,
    ErrorCode.GITHUB_TAG_NOT_SEMVER: status.HTTP_422_UNPROCESSABLE_ENTITY,
    ErrorCode.GITHUB_ASSET_MISSING: status.HTTP_404_NOT_FOUND,
    ErrorCode.GITHUB_RATE_LIMITED: status.HTTP_503_SERVICE_UNAVAILABLE,
    ErrorCode.GITHUB_FAILED: status.HTTP_502_BAD_GATEWAY,
    ErrorCode.ZENODO_UNAVAILABLE: status.HTTP_503_SERVICE_UNAVAILABLE,
    ErrorCode.ZENODO_FAILED: status.HTTP_502_BAD_GATEWAY,
    ErrorCode.DOI_UNRESOLVABLE: status.HTTP_400_BAD_REQUEST,
    ErrorCode.DOI_MINT_UNAVAILABLE: status.HTTP_400_BAD_REQUEST,
}


class ApiError(exceptions.APIException):
    """An error a view raises directly with its code, message and detail."""

    def __init__(self, code: ErrorCode, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.error_code = code
        self.message = message
        self.extra_detail = detail
        self.status_code = STATUS_BY_CODE.get(code, status.HTTP_400_BAD_REQUEST)


def error_response(code: ErrorCode, message: str, detail: Any = None) -> Response:
    """A response carrying the error body with the status that belongs to ``code``."""
    # The plain string: renderers other than JSON (the schema view's YAML) know no enums.
    body: ErrorBody = {"code": code.value, "message": message, "detail": detail}
    return Response(body, status=STATUS_BY_CODE.get(code, status.HTTP_400_BAD_REQUEST))


def _drf_error(exc: exceptions.APIException) -> tuple[ErrorCode, str, Any]:
    if isinstance(exc, ApiError):
        return exc.error_code, exc.message, exc.extra_detail
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return ErrorCode.AUTHENTICATION_REQUIRED, str(exc.detail), None
    if isinstance(exc, exceptions.PermissionDenied):
        return ErrorCode.PERMISSION_DENIED, str(exc.detail), None
    if isinstance(exc, exceptions.NotFound):
        return ErrorCode.NOT_FOUND, str(exc.detail), None
    if isinstance(exc, exceptions.ValidationError):
        return ErrorCode.BAD_REQUEST, "the request is not valid", exc.detail
    return ErrorCode.BAD_REQUEST, str(exc.detail), None


# SQLSTATEs of PostgreSQL contention: lock_not_available, serialization_failure,
# deadlock_detected. Each means "try again", never "the request was wrong".
_CONTENTION_SQLSTATES = frozenset({"55P03", "40001", "40P01"})
_SQLITE_CONTENTION = ("database is locked", "database table is locked", "database is busy")


def database_is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is momentarily contended (locked, busy, a deadlock)."""
    if not isinstance(exc, OperationalError | sqlite3.OperationalError):
        return False
    text = str(exc).lower()
    if any(phrase in text for phrase in _SQLITE_CONTENTION):
        return True
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) in _CONTENTION_SQLSTATES


def hub_busy_body() -> tuple[ErrorBody, int]:
    """The error body of a contended database, and the seconds a client should wait."""
    retry_after = int(settings.MEDIGAN_BUSY_RETRY_AFTER_SECONDS)
    body: ErrorBody = {
        "code": ErrorCode.HUB_BUSY.value,
        "message": f"the hub is busy (its database is locked); retry in {retry_after} s",
        "detail": {"retry_after_seconds": retry_after},
    }
    return body, retry_after


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler for the whole API."""
    if database_is_busy(exc):
        # Contention is the hub's momentary state, not a bug: 503 with Retry-After, never 500.
        logger.warning("database busy in %s: %s", context.get("view"), exc)
        body, retry_after = hub_busy_body()
        response = Response(body, status=STATUS_BY_CODE[ErrorCode.HUB_BUSY])
        response["Retry-After"] = str(retry_after)
        return response
    if isinstance(exc, CatalogError):
        return error_response(exc.code, exc.message, exc.detail)
    if isinstance(exc, Http404):
        return error_response(ErrorCode.NOT_FOUND, "not found")
    if isinstance(exc, DjangoPermissionDenied):
        return error_response(ErrorCode.PERMISSION_DENIED, "permission denied")
    if isinstance(exc, RequestDataTooBig):
        return error_response(ErrorCode.PAYLOAD_TOO_LARGE, "the request body is too large")
    if isinstance(exc, SuspiciousOperation):
        # Django refusing the request itself (too many query parameters, a disallowed host...).
        return error_response(ErrorCode.BAD_REQUEST, "the hub refused this request as malformed")
    if isinstance(exc, exceptions.Throttled):
        wait = max(1, int(getattr(exc, "wait", None) or 1))
        response = error_response(
            ErrorCode.THROTTLED, str(exc.detail), {"retry_after_seconds": wait}
        )
        response["Retry-After"] = str(wait)
        return response
    if isinstance(exc, exceptions.APIException):
        code, message, detail = _drf_error(exc)
        response = Response({"code": code.value, "message": message, "detail": detail})
        response.status_code = (
            status.HTTP_401_UNAUTHORIZED
            if code is ErrorCode.AUTHENTICATION_REQUIRED
            else exc.status_code
        )
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            response["WWW-Authenticate"] = "Token"
        return response
    # A bug: log it with its traceback, and still answer in the API's error shape.
    logger.exception("unhandled error in %s", context.get("view"), exc_info=exc)
    response = error_response(ErrorCode.SERVER_ERROR, "internal error; the hub logged it")
    response.status_code = 500
    return response
