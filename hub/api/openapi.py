"""What the OpenAPI schema says beyond what drf-spectacular infers: error bodies and token auth.

Every operation lists the error statuses it can answer with the one error body the API uses,
``{code, message, detail}`` (see ``hub.api.errors``), so clients and the fuzz test know what an
error looks like; the ``Authorization: Token <key>`` scheme is described for the operations that
accept it.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from medigan_catalog.errors import ErrorCode


class ApiErrorSerializer(serializers.Serializer[Any]):
    """The body of every error answer."""

    code = serializers.ChoiceField(choices=[code.value for code in ErrorCode])
    message = serializers.CharField()
    detail = serializers.JSONField(allow_null=True)


_WHEN = {
    400: "the request is malformed: a bad id, parameter, body or card (bad_request, card_invalid)",
    401: "the token is missing, malformed or revoked (authentication_required), or expired "
    "(token_expired)",
    403: "the caller may not do this (permission_denied), or the token lacks the scope "
    "(scope_missing)",
    404: "nothing the caller may see is there (not_found, artifact_unreachable, "
    "namespace_not_found)",
    409: "the release or namespace exists already, or its state does not allow this "
    "(release_exists, namespace_taken, transition_not_allowed)",
    410: "the change feed no longer reaches back to that serial; sync the whole snapshot "
    "(feed_gone; detail.oldest_serial)",
    413: "the body, a field or the package is over its limit (payload_too_large)",
    415: "the body is not of a media type this operation reads (bad_request)",
    416: "the Range lies outside the artifact (bad_request); Content-Range gives its size",
    429: "too many failed sign-ins from this address; retry after Retry-After seconds (throttled)",
    503: "the database is momentarily locked; retry after Retry-After seconds (hub_busy)",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """``extend_schema(responses=...)`` entries for the error statuses an operation answers."""
    return {
        status: OpenApiResponse(response=ApiErrorSerializer, description=_WHEN[status])
        for status in statuses
    }


# drf-spectacular registers extensions in an untyped __init_subclass__.
class ApiTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """``Authorization: Token <key>`` (or ``Bearer``), the keys users create on the hub."""

    target_class = "hub.accounts.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "an API token as `Token <key>`",
        }
