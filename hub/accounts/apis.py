"""HTTP API of accounts: who the calling token belongs to (one thin view)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.accounts.selectors import user_push_namespace
from hub.api.openapi import error_responses
from hub.registry.services import RESERVED_NAMESPACES
from medigan_catalog.snapshot import AccountInfo


class AccountMeApi(APIView):
    """``GET /api/v1/me``: the token's user and the namespace they publish into by default.

    Clients push a contributor's model there unless told otherwise (``Generators.contribute``,
    ``medigan-client import-medigan``); the answer is :class:`medigan_catalog.snapshot.AccountInfo`.
    """

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={
            200: inline_serializer(
                "AccountInfo",
                {
                    "username": serializers.CharField(),
                    "namespace": serializers.CharField(allow_null=True),
                    "reserved_namespaces": serializers.ListField(child=serializers.CharField()),
                },
            ),
            **error_responses(401),
        }
    )
    def get(self, request: Request) -> Response:
        info = AccountInfo(
            username=request.user.get_username(),
            namespace=user_push_namespace(user=request.user, reserved=RESERVED_NAMESPACES),
            reserved_namespaces=tuple(sorted(RESERVED_NAMESPACES)),
        )
        return Response(info.model_dump(mode="json"))
