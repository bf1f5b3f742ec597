"""HTTP API of GitHub-linked submissions: one thin view per operation.

- ``GET|POST|DELETE /api/v1/models/<ns>/<name>/github``: a model's link (its maintainers).
- ``POST /api/v1/github/links/<id>/webhook``: GitHub's deliveries, authenticated by their
  ``X-Hub-Signature-256`` alone (no token, no session).
- ``POST /api/v1/github/submissions`` and ``GET …/submissions/<id>``: fetch and submit a
  release on demand, and follow it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.access import request_viewer
from hub.api import parameters
from hub.api.errors import ApiError, error_response
from hub.api.openapi import ApiErrorSerializer, error_responses
from hub.api.parsers import LimitedJSONParser
from hub.github import selectors, services
from hub.github.models import GithubDelivery
from medigan_catalog.errors import ErrorCode
from medigan_catalog.github import GithubLinkRequest, GithubSubmissionRequest

_LINK_REQUEST = inline_serializer(
    "GithubLinkRequest",
    {
        "repository": serializers.CharField(help_text="owner/repo on GitHub", max_length=140),
        "asset_name": serializers.CharField(
            required=False,
            max_length=255,
            help_text="the release asset holding the package zip; may use {name}, {version}, "
            "{tag} (default {name}-{version}.zip)",
        ),
    },
)
_SUBMISSION_REQUEST = inline_serializer(
    "GithubSubmissionRequest",
    {
        "repository": serializers.CharField(help_text="owner/repo on GitHub", max_length=140),
        "tag": serializers.CharField(help_text="the release's tag: 1.2.3 or v1.2.3"),
        "model_id": serializers.CharField(
            required=False, help_text="ns/name, when several models are linked to the repository"
        ),
    },
)


def _base_url(request: Request) -> str:
    return request.build_absolute_uri("/")


def _signed_in_user(request: Request) -> User:
    # The views that call this require IsAuthenticated, so the user is a real account.
    assert isinstance(request.user, User)
    return request.user


_POSITIVE_ID = {"type": "integer", "minimum": 1}


class ModelGithubLinkApi(APIView):
    """A model's GitHub link: ``GET`` it, ``POST`` to link (or link again, with a new secret),
    ``DELETE`` to unlink. The model's maintainers only (those who may push to its namespace)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [LimitedJSONParser]

    @extend_schema(
        parameters=parameters.MODEL_PATH,
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request: Request, namespace: str, name: str) -> Response:
        parameters.path_ids_check(namespace=namespace, name=name)
        services.github_link_access_check(
            viewer=request_viewer(request), namespace=namespace, name=name
        )
        link = selectors.github_link_get(namespace=namespace, name=name)
        if link is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"{namespace}/{name} has no GitHub link")
        info = selectors.github_link_info(link, base_url=_base_url(request))
        return Response(info.model_dump(mode="json"))

    @extend_schema(
        parameters=parameters.MODEL_PATH,
        request=_LINK_REQUEST,
        responses={201: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 404, 413, 429)},
    )
    def post(self, request: Request, namespace: str, name: str) -> Response:
        parameters.path_ids_check(namespace=namespace, name=name)
        wanted = parameters.body_document(GithubLinkRequest, request.data)
        link, secret = services.github_link_create(
            viewer=request_viewer(request),
            user=_signed_in_user(request),
            namespace=namespace,
            name=name,
            repository=wanted.repository,
            asset_name=wanted.asset_name,
        )
        info = selectors.github_link_info(link, base_url=_base_url(request), secret=secret)
        return Response(info.model_dump(mode="json"), status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=parameters.MODEL_PATH,
        responses={204: None, **error_responses(400, 401, 403, 404, 429)},
    )
    def delete(self, request: Request, namespace: str, name: str) -> Response:
        parameters.path_ids_check(namespace=namespace, name=name)
        services.github_link_delete(viewer=request_viewer(request), namespace=namespace, name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)


_WEBHOOK_ERRORS = {
    400: "no X-GitHub-Delivery header, a body that is not a JSON object, or a release of "
    "another repository (bad_request)",
    401: "the X-Hub-Signature-256 header is missing or does not verify with the link's secret, "
    "or there is no such link (github_signature_invalid); nothing is recorded",
    404: "the link id in the path is not a positive whole number: no route of the hub (not_found)",
    409: "this delivery id was received before; nothing is done again (github_delivery_replayed)",
    413: "the body is over its limit (payload_too_large)",
    422: "the release's tag is not a semantic version (github_tag_not_semver); recorded",
}


class GithubWebhookApi(APIView):
    """GitHub's deliveries for one link: ``ping``, and ``release`` with the action
    ``published``, which queues the fetch and submission of the release's package asset."""

    # The signature is the credential: a token or session would say nothing about GitHub.
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(
        parameters=[OpenApiParameter("link_id", _POSITIVE_ID, OpenApiParameter.PATH)],
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiTypes.OBJECT,
            202: OpenApiTypes.OBJECT,
            **{
                code: OpenApiResponse(response=ApiErrorSerializer, description=text)
                for code, text in _WEBHOOK_ERRORS.items()
            },
        },
        auth=[],
    )
    def post(self, request: Request, link_id: int) -> Response:
        # The raw bytes, exactly as signed: nothing parses them before the signature verified.
        answer = services.github_webhook_receive(
            link_id=link_id, body=request.body, headers=request.headers
        )
        if answer.error_code is not None:
            return error_response(
                answer.error_code,
                answer.message,
                {"delivery": answer.delivery_id, **answer.detail},
            )
        queued = answer.outcome == GithubDelivery.Outcome.QUEUED
        return Response(
            {
                "delivery": answer.delivery_id,
                "event": answer.event,
                "outcome": answer.outcome,
                "message": answer.message,
                "submission": answer.submission_id,
            },
            status=status.HTTP_202_ACCEPTED if queued else status.HTTP_200_OK,
        )


class GithubSubmissionCreateApi(APIView):
    """Fetch a GitHub release's package asset and submit it now (``push --from-github``): the
    hub fetches with its own token, so no GitHub credential ever reaches a client."""

    permission_classes = [IsAuthenticated]
    parser_classes = [LimitedJSONParser]

    @extend_schema(
        request=_SUBMISSION_REQUEST,
        responses={
            202: OpenApiTypes.OBJECT,
            **error_responses(400, 401, 403, 404, 413, 429),
            422: OpenApiResponse(
                response=ApiErrorSerializer,
                description="the tag is not a semantic version (github_tag_not_semver)",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        wanted = parameters.body_document(GithubSubmissionRequest, request.data)
        submission = services.github_submission_request(
            viewer=request_viewer(request),
            user=_signed_in_user(request),
            repository=wanted.repository,
            tag=wanted.tag,
            model_id=wanted.model_id,
        )
        submission.refresh_from_db()
        info = selectors.github_submission_info(submission, base_url=_base_url(request))
        return Response(info.model_dump(mode="json"), status=status.HTTP_202_ACCEPTED)


class GithubSubmissionDetailApi(APIView):
    """One submission from GitHub: its state, the hub release it became, or why it failed."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("submission_id", _POSITIVE_ID, OpenApiParameter.PATH)],
        responses={200: OpenApiTypes.OBJECT, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, submission_id: int) -> Response:
        submission = selectors.github_submission_get_visible(
            submission_id=submission_id, viewer=request_viewer(request)
        )
        if submission is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"no GitHub submission {submission_id}")
        info = selectors.github_submission_info(submission, base_url=_base_url(request))
        return Response(info.model_dump(mode="json"))
