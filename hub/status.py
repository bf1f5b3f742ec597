"""``GET /api/v1/status``: how this hub runs, joined from the apps that know each part.

The caller's catalogue serial (the registry), how contributed code is isolated right now (the
sandbox), and how far behind each upstream this hub mirrors is (federation). Anyone sees each
upstream's name, lag and the times of its last success and last error; staff also see its URL and
the error's message, which may name hosts inside the hub's network.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub import sandbox
from hub.access import request_viewer
from hub.api.openapi import error_responses
from hub.federation import selectors as federation_selectors
from hub.federation.models import Upstream
from hub.registry import selectors


def _upstream_status(upstream: Upstream, *, staff: bool) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": upstream.name,
        "mode": upstream.mode,
        "serial": upstream.serial,
        "latest_serial": upstream.latest_serial,
        "lag": upstream.lag,
        "last_success_at": upstream.last_success_at,
        "last_error_at": upstream.last_error_at,
        "failures": upstream.failures,
    }
    if staff:
        status |= {"url": upstream.url, "last_error": upstream.last_error}
    return status


class HubStatusApi(APIView):
    """How this hub runs: its catalogue serial, how contributed code is isolated right now, and
    the lag of each upstream it mirrors."""

    @extend_schema(
        responses={
            200: inline_serializer(
                "HubStatus",
                {
                    "serial": serializers.IntegerField(),
                    "sandbox": inline_serializer(
                        "SandboxStatus",
                        {
                            "isolation": serializers.CharField(),
                            "isolated": serializers.BooleanField(),
                            "available": serializers.BooleanField(),
                            "detail": serializers.CharField(),
                        },
                    ),
                    "upstreams": inline_serializer(
                        "UpstreamStatus",
                        {
                            "name": serializers.CharField(),
                            "mode": serializers.CharField(),
                            "serial": serializers.IntegerField(),
                            "latest_serial": serializers.IntegerField(),
                            "lag": serializers.IntegerField(),
                            "last_success_at": serializers.DateTimeField(allow_null=True),
                            "last_error_at": serializers.DateTimeField(allow_null=True),
                            "failures": serializers.IntegerField(),
                            "url": serializers.CharField(required=False),
                            "last_error": serializers.CharField(required=False),
                        },
                        many=True,
                    ),
                },
            ),
            **error_responses(503),
        }
    )
    def get(self, request: Request) -> Response:
        sandbox_state = sandbox.sandbox_status()
        staff = bool(request.user.is_authenticated and request.user.is_staff)
        return Response(
            {
                # The caller's catalogue serial: the hub's own count would tell an outsider
                # how often private models change.
                "serial": selectors.catalog_scope_state(
                    request_viewer(request).catalog_scope()
                ).serial,
                "sandbox": {
                    "isolation": sandbox_state.isolation.value,
                    "isolated": sandbox.sandbox_isolated(),
                    "available": sandbox_state.available,
                    "detail": sandbox_state.detail,
                },
                "upstreams": [
                    _upstream_status(upstream, staff=staff)
                    for upstream in federation_selectors.upstream_list()
                ],
            }
        )
