"""HTTP API of the registry: one thin view per operation; services write, selectors read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.api.errors import ApiError
from hub.api.permissions import IsReviewer
from hub.registry import selectors, services
from hub.registry.models import Artifact, Release
from medigan_catalog.errors import ErrorCode

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_STREAM_CHUNK = 256 * 1024
_MAX_CARD_BYTES = 1024 * 1024


class CheckOutputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    status = serializers.CharField()
    message = serializers.CharField()
    duration_seconds = serializers.FloatField()


class EventOutputSerializer(serializers.Serializer[Any]):
    actor = serializers.CharField(source="actor.username", default=None)
    from_state = serializers.CharField()
    to_state = serializers.CharField()
    note = serializers.CharField()
    created_at = serializers.DateTimeField()


class ReleaseStatusSerializer(serializers.Serializer[Any]):
    model_id = serializers.CharField()
    version = serializers.CharField()
    state = serializers.CharField()
    created_at = serializers.DateTimeField()
    published_at = serializers.DateTimeField(allow_null=True)
    doi = serializers.CharField()
    pinned = serializers.BooleanField()
    checks = CheckOutputSerializer(many=True, source="checks.all")
    events = EventOutputSerializer(many=True, source="events.all")
    card = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    sample_grid_url = serializers.SerializerMethodField()

    def _base_url(self) -> str:
        request: HttpRequest = self.context["request"]
        return request.build_absolute_uri("/")

    def get_card(self, release: Release) -> dict[str, Any]:
        return selectors.release_card_for_clients(release, base_url=self._base_url())

    def get_url(self, release: Release) -> str:
        model = release.generative_model
        return (
            self._base_url().rstrip("/")
            + f"/api/v1/models/{model.namespace}/{model.name}/releases/{release.version}"
        )

    def get_sample_grid_url(self, release: Release) -> str | None:
        return release.sample_grid.url if release.sample_grid else None


def _release_status(request: Request, release: Release) -> dict[str, Any]:
    release = (
        Release.objects.select_related("generative_model")
        .prefetch_related("checks", "events__actor", "artifacts")
        .get(pk=release.pk)
    )
    return dict(ReleaseStatusSerializer(release, context={"request": request}).data)


def _signed_in_user(request: Request) -> User:
    # The views that call this require IsAuthenticated, so the user is a real account.
    assert isinstance(request.user, User)
    return request.user


def _visible_release_or_404(request: Request, namespace: str, name: str, version: str) -> Release:
    release = selectors.release_get_visible(
        namespace=namespace, name=name, version=version, user=request.user
    )
    if release is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no release {namespace}/{name}@{version}")
    return release


class CatalogSnapshotApi(APIView):
    """The catalogue snapshot that clients sync; revalidate with ``If-None-Match``."""

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, 304: None},
        parameters=[OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER)],
    )
    def get(self, request: Request) -> Response:
        serial = selectors.catalog_serial_get()
        etag = f'"catalog-{serial}"'
        if etag in request.headers.get("If-None-Match", ""):
            response = Response(status=status.HTTP_304_NOT_MODIFIED)
        else:
            snapshot = selectors.catalog_snapshot(base_url=request.build_absolute_uri("/"))
            response = Response(snapshot)
            etag = f'"catalog-{snapshot["serial"]}"'
        response["ETag"] = etag
        response["Cache-Control"] = "no-cache"
        return response


class ModelSummarySerializer(serializers.Serializer[Any]):
    model_id = serializers.CharField()
    title = serializers.SerializerMethodField()
    latest_version = serializers.CharField(source="version")
    modality = serializers.SerializerMethodField()
    type = serializers.SerializerMethodField()

    def get_title(self, release: Release) -> str:
        return str((release.card.get("description") or {}).get("title") or release.model_id)

    def get_modality(self, release: Release) -> list[str]:
        return list((release.card.get("selection") or {}).get("modality") or [])

    def get_type(self, release: Release) -> str | None:
        value = (release.card.get("selection") or {}).get("type")
        return None if value is None else str(value)


class ModelListApi(APIView):
    """Published generative models, optionally searched with ``q``."""

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="search terms"),
            OpenApiParameter("operator", str, enum=["AND", "OR", "XOR"]),
            OpenApiParameter("semantics", str, enum=["hub", "medigan"]),
        ],
        responses=ModelSummarySerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        operator = request.query_params.get("operator", "AND").upper()
        if operator not in {"AND", "OR", "XOR"}:
            raise ApiError(ErrorCode.BAD_REQUEST, "operator must be AND, OR or XOR")
        medigan = request.query_params.get("semantics", "hub") == "medigan"
        if operator == "XOR" and not medigan:
            raise ApiError(ErrorCode.BAD_REQUEST, "XOR exists only with semantics=medigan")
        releases = selectors.model_search(
            query=request.query_params.get("q", ""), operator=operator, medigan_semantics=medigan
        )
        return Response({"results": ModelSummarySerializer(releases, many=True).data})


class ModelDetailApi(APIView):
    """One generative model with the releases the caller may see."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, namespace: str, name: str) -> Response:
        found = selectors.model_get_visible(namespace=namespace, name=name, user=request.user)
        if found is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"no generative model {namespace}/{name}")
        generative_model, releases = found
        return Response(
            {
                "model_id": generative_model.model_id,
                "releases": [
                    {
                        "version": release.version,
                        "state": release.state,
                        "published_at": release.published_at,
                        "title": (release.card.get("description") or {}).get("title"),
                    }
                    for release in releases
                ],
            }
        )


class ReleaseDetailApi(APIView):
    """A release's status: state, checks, audit events and card."""

    @extend_schema(responses=ReleaseStatusSerializer)
    def get(self, request: Request, namespace: str, name: str, version: str) -> Response:
        release = _visible_release_or_404(request, namespace, name, version)
        return Response(_release_status(request, release))


class ReleaseCreateApi(APIView):
    """Push: a card and its package zip become a ``submitted`` release (202)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "card": {"type": "string", "description": "the card, JSON text"},
                    "package": {"type": "string", "format": "binary"},
                    "sha256": {"type": "string"},
                },
                "required": ["card", "package"],
            }
        },
        responses={202: ReleaseStatusSerializer},
    )
    def post(self, request: Request) -> Response:
        data = request.data
        if not hasattr(data, "get"):
            raise ApiError(ErrorCode.BAD_REQUEST, "a push is a multipart form")
        # The card comes as a text field (the client) or as a file part (`curl -F card=@...`).
        card_text = data.get("card")
        card_file = request.FILES.get("card")
        if card_file is not None:
            if card_file.size is not None and card_file.size > _MAX_CARD_BYTES:
                raise ApiError(ErrorCode.CARD_INVALID, f"the card exceeds {_MAX_CARD_BYTES} bytes")
            card_text = card_file.read()
        package = request.FILES.get("package")
        if not card_text or package is None:
            raise ApiError(ErrorCode.BAD_REQUEST, "a push needs the fields 'card' and 'package'")
        try:
            card_data = json.loads(card_text)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ApiError(ErrorCode.CARD_INVALID, f"the card is not JSON: {error}") from error
        if not isinstance(card_data, dict):
            raise ApiError(ErrorCode.CARD_INVALID, "the card must be a JSON object")
        release = services.release_submit(
            user=_signed_in_user(request),
            card_data=card_data,
            package=package,
            declared_sha256=data.get("sha256") or None,
        )
        return Response(_release_status(request, release), status=status.HTTP_202_ACCEPTED)


class ReviewInputSerializer(serializers.Serializer[Any]):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    note = serializers.CharField(allow_blank=True, default="", max_length=10_000)


class ReleaseReviewApi(APIView):
    """A reviewer approves (and so publishes) or rejects a release in review."""

    permission_classes = [IsAuthenticated, IsReviewer]
    parser_classes = [JSONParser, FormParser]

    @extend_schema(request=ReviewInputSerializer, responses=ReleaseStatusSerializer)
    def post(self, request: Request, namespace: str, name: str, version: str) -> Response:
        release = _visible_release_or_404(request, namespace, name, version)
        payload = ReviewInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        release = services.release_review(
            release_id=release.pk,
            reviewer=_signed_in_user(request),
            decision=payload.validated_data["decision"],
            note=payload.validated_data["note"],
        )
        return Response(_release_status(request, release))


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Parse a single ``bytes=`` range into inclusive bounds; None means serve everything."""
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = int(last)
        return (max(size - length, 0), size - 1) if length else (size, size - 1)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    return start, end


def _stream(artifact: Artifact, start: int, length: int) -> Iterator[bytes]:
    with artifact.file.open("rb") as handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(_STREAM_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


class ReleaseArtifactDownloadApi(APIView):
    """The bytes of a stored artifact, streamed, with single ``Range`` requests (206)."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(
        self, request: Request, namespace: str, name: str, version: str, filename: str
    ) -> HttpResponseBase:
        artifact = selectors.artifact_get_downloadable(
            namespace=namespace, name=name, version=version, filename=filename, user=request.user
        )
        if artifact is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"no artifact {filename} in this release")
        if not artifact.file:
            raise ApiError(
                ErrorCode.ARTIFACT_UNREACHABLE,
                f"{filename} is hosted outside this hub",
                {"urls": artifact.external_urls},
            )
        size = int(artifact.size or artifact.file.size)
        byte_range = _parse_range(request.headers.get("Range", ""), size)
        start, end = (0, size - 1) if byte_range is None else byte_range
        if byte_range is not None and (start >= size or start > end):
            response = HttpResponse(status=status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE)
            response["Content-Range"] = f"bytes */{size}"
            return response
        length = end - start + 1
        streaming = StreamingHttpResponse(
            _stream(artifact, start, length),
            status=status.HTTP_206_PARTIAL_CONTENT if byte_range else status.HTTP_200_OK,
            content_type="application/zip",
        )
        streaming["Content-Length"] = str(length)
        streaming["Accept-Ranges"] = "bytes"
        streaming["X-Checksum-Sha256"] = artifact.sha256
        streaming["ETag"] = f'"{artifact.sha256}"'
        streaming["Content-Disposition"] = f'attachment; filename="{artifact.filename}"'
        if byte_range:
            streaming["Content-Range"] = f"bytes {start}-{end}/{size}"
        return streaming
