"""HTTP API of the registry: one thin view per operation; services write, selectors read."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import IO, Any, Final

from django.conf import settings
from django.contrib.auth.models import User
from django.http import FileResponse, HttpRequest, HttpResponseBase, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.access import request_viewer
from hub.api import parameters
from hub.api.errors import ApiError, error_response
from hub.api.openapi import error_responses
from hub.api.parsers import (
    LimitedFormParser,
    LimitedJSONParser,
    LimitedMultiPartParser,
    MultipartLimits,
    strict_json_loads,
)
from hub.registry import selectors, services
from hub.registry.models import Artifact, GenerativeModel, Release
from hub.storage import stored_open
from medigan_catalog.access import Visibility, VisibilityRequest, VisibilityReview, VisibilityState
from medigan_catalog.errors import CardInvalidError, ErrorCode
from medigan_catalog.search import OPERATORS
from medigan_catalog.snapshot import release_path

logger = logging.getLogger(__name__)

_STREAM_CHUNK = 256 * 1024
# The card travels as a text field (the client) or a file part (curl); either way at most this.
CARD_MAX_BYTES: Final = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
# A single byte range needs a few dozen characters; a longer header is refused, never parsed.
RANGE_HEADER_MAX_LENGTH: Final = 256
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# A position with more digits than this lies beyond any file; int() is never asked to read it.
_RANGE_MAX_DIGITS = 18
_BEYOND_ANY_FILE = 10**18


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
    pin_broken = serializers.BooleanField(
        help_text="a re-check found the pinned DOI's record changed or gone (pin_note says how)"
    )
    pin_note = serializers.CharField()
    notice = serializers.SerializerMethodField(
        help_text="why a deprecated or yanked release is so, and its replacement (else null)"
    )
    checks = CheckOutputSerializer(many=True, source="checks.all")
    events = EventOutputSerializer(many=True, source="events.all")
    card = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    sample_grid_url = serializers.SerializerMethodField()

    def _base_url(self) -> str:
        request: HttpRequest = self.context["request"]
        return request.build_absolute_uri("/")

    def get_card(self, release: Release) -> dict[str, Any]:
        try:
            card = selectors.release_card_for_clients(release, base_url=self._base_url())
        except CardInvalidError:
            # A release whose stored card fails the schema (validation's ``card_schema`` check
            # says so) still shows its status, with the card as it was stored.
            return dict(release.card)
        return card.to_json()

    def get_notice(self, release: Release) -> dict[str, Any] | None:
        notice = selectors.release_notice(release)
        return None if notice is None else notice.model_dump(mode="json")

    def get_url(self, release: Release) -> str:
        return self._base_url().rstrip("/") + release_path(release.model_id, release.version)

    def get_sample_grid_url(self, release: Release) -> str | None:
        # The access-checked view, never the storage URL: grids of unpublished releases are not
        # public.
        path = selectors.release_sample_grid_path(release)
        return None if path is None else self._base_url().rstrip("/") + path


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
    parameters.path_ids_check(namespace=namespace, name=name, version=version)
    release = selectors.release_get_visible(
        namespace=namespace, name=name, version=version, viewer=request_viewer(request)
    )
    if release is None:
        _raise_if_withdrawn(request, namespace, name, version)
        raise ApiError(ErrorCode.NOT_FOUND, f"no release {namespace}/{name}@{version}")
    return release


def _raise_if_withdrawn(request: Request, namespace: str, name: str, version: str) -> None:
    """410 ``release_withdrawn`` for a release withdrawn after publication, where the caller
    sees its model: a client pinned to it learns that it is gone, and why."""
    withdrawn = selectors.release_get_withdrawn(
        namespace=namespace, name=name, version=version, viewer=request_viewer(request)
    )
    if withdrawn is not None:
        reason = selectors.release_withdrawal_reason(withdrawn)
        raise ApiError(
            ErrorCode.RELEASE_WITHDRAWN,
            f"{withdrawn.release_id} was withdrawn by the hub: {reason}",
            {"release": withdrawn.release_id, "reason": reason},
        )


class ModelSummarySerializer(serializers.Serializer[Any]):
    """A search result: a model and the release its id resolves to (its newest published one,
    else its newest deprecated one; never a yanked one)."""

    model_id = serializers.CharField(source="card.model_id")
    title = serializers.CharField(source="card.title")
    latest_version = serializers.CharField(source="card.version")
    modality = serializers.SerializerMethodField()
    type = serializers.CharField(source="card.selection.type", allow_null=True)

    def get_modality(self, entry: selectors.CatalogEntry) -> list[str]:
        return list(entry.card.selection.modality or [])


class ModelListApi(APIView):
    """Published generative models, optionally searched with ``q``."""

    @extend_schema(
        operation_id="v1_models_list",  # not "…_retrieve": that is one model's (ModelDetailApi)
        parameters=[
            parameters.query_parameter("q", description="search terms"),
            parameters.query_parameter("operator", enum=list(OPERATORS)),
            parameters.query_parameter("semantics", enum=["hub", "medigan"]),
        ],
        responses={
            200: inline_serializer("ModelList", {"results": ModelSummarySerializer(many=True)}),
            **error_responses(400),
        },
    )
    def get(self, request: Request) -> Response:
        query = parameters.query_text(request, "q")
        # Lower case is accepted as it always was; the schema names the canonical spelling.
        operator = request.query_params.get("operator", "AND").upper()
        if operator not in OPERATORS:
            raise ApiError(ErrorCode.BAD_REQUEST, f"operator must be one of {', '.join(OPERATORS)}")
        medigan = parameters.query_choice(request, "semantics", ["hub", "medigan"], "hub")
        entries = selectors.model_search(
            query=query,
            operator=operator,
            medigan_semantics=medigan == "medigan",
            viewer=request_viewer(request),
        )
        return Response({"results": ModelSummarySerializer(entries, many=True).data})


def _card_title(release: Release) -> str | None:
    try:
        return selectors.release_card(release).description.title
    except CardInvalidError:
        # A listing must not fail over one release whose stored card fails the schema.
        return None


class ModelDetailApi(APIView):
    """One generative model with the releases the caller may see."""

    @extend_schema(
        parameters=parameters.MODEL_PATH,
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 404)},
    )
    def get(self, request: Request, namespace: str, name: str) -> Response:
        parameters.path_ids_check(namespace=namespace, name=name)
        found = selectors.model_get_visible(
            namespace=namespace, name=name, viewer=request_viewer(request)
        )
        if found is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"no generative model {namespace}/{name}")
        generative_model, releases = found
        return Response(
            {
                "model_id": generative_model.model_id,
                "visibility": generative_model.visibility,
                "releases": [
                    {
                        "version": release.version,
                        "state": release.state,
                        "published_at": release.published_at,
                        "title": _card_title(release),
                    }
                    for release in releases
                ],
            }
        )


class ReleaseDetailApi(APIView):
    """A release's status: state, checks, audit events and card."""

    @extend_schema(
        parameters=parameters.RELEASE_PATH,
        responses={200: ReleaseStatusSerializer, **error_responses(400, 404)},
    )
    def get(self, request: Request, namespace: str, name: str, version: str) -> Response:
        release = _visible_release_or_404(request, namespace, name, version)
        return Response(_release_status(request, release))


def _unstorable_text(document: Any) -> str | None:
    """The first string of a parsed JSON document that no database column can hold, or None.

    JSON may escape a NUL (``\\u0000``) or half a surrogate pair (``\\ud800``); PostgreSQL refuses
    the first and no UTF-8 encoder writes the second.
    """
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return f"{item[:40]!r} contains a NUL character"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return f"{item[:40]!r} contains an unpaired surrogate"
    return None


def _form_flag(value: object, name: str) -> bool:
    """A yes/no form field: ``true``/``1``/``yes`` or ``false``/``0``/``no``/absent."""
    text = str(value or "").strip().lower()
    if text in {"", "false", "0", "no"}:
        return False
    if text in {"true", "1", "yes"}:
        return True
    raise ApiError(
        ErrorCode.BAD_REQUEST,
        f"{name} must be true or false",
        [{"loc": name, "msg": "true or false"}],
    )


def _card_from_push(request: Request) -> dict[str, Any]:
    # The card comes as a text field (the client) or as a file part (`curl -F card=@...`); the
    # parser has held either to CARD_MAX_BYTES already.
    form: Any = request.data
    card_file = request.FILES.get("card")
    card_text: str | bytes | None = card_file.read() if card_file is not None else form.get("card")
    if not card_text:
        raise ApiError(ErrorCode.BAD_REQUEST, "a push needs the fields 'card' and 'package'")
    try:
        card_data = strict_json_loads(card_text)
    except (ValueError, RecursionError) as error:
        raise ApiError(ErrorCode.CARD_INVALID, f"the card is not JSON: {error}") from error
    if not isinstance(card_data, dict):
        raise ApiError(ErrorCode.CARD_INVALID, "the card must be a JSON object")
    problem = _unstorable_text(card_data)
    if problem is not None:
        raise ApiError(ErrorCode.CARD_INVALID, f"the card holds text no hub can store: {problem}")
    return card_data


class ReleaseCreateApi(APIView):
    """Push: a card and its package zip become a ``submitted`` release (202).

    Limits hold before anything is buffered: the declared ``Content-Length`` first, then the
    package is streamed to disk with a running count that stops the upload at
    ``MEDIGAN_MAX_PACKAGE_BYTES``, and the card (text field or file part) stops at
    ``CARD_MAX_BYTES``; every answer past a limit is 413 ``payload_too_large``.
    """

    permission_classes = [IsAuthenticated]
    parser_classes = [LimitedMultiPartParser]

    def multipart_limits(self) -> MultipartLimits:
        """The fields a push reads, each with its byte limit."""
        return MultipartLimits(
            files={"card": CARD_MAX_BYTES, "package": settings.MEDIGAN_MAX_PACKAGE_BYTES},
            texts={"card": CARD_MAX_BYTES},
            other_text_bytes=1024,
            max_parts=8,
        )

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "card": {
                        "type": "string",
                        "description": f"the card, JSON text of at most {CARD_MAX_BYTES} bytes "
                        "(a text field or a file part)",
                    },
                    "package": {
                        "type": "string",
                        "format": "binary",
                        "description": "the package zip, at most MEDIGAN_MAX_PACKAGE_BYTES "
                        "(512 MiB unless the operator set another limit)",
                    },
                    "sha256": {
                        "type": "string",
                        "pattern": "^[0-9a-fA-F]{64}$",
                        "description": "the package's sha256 as the client computed it",
                    },
                    "visibility": {
                        "type": "string",
                        "enum": [visibility.value for visibility in Visibility],
                        "description": "who sees the model, when the push creates it "
                        "(default public; private only in an organisation's namespace)",
                    },
                    "doi": {
                        "type": "string",
                        "maxLength": 255,
                        "description": "the Zenodo DOI (10.NNNN/zenodo.N) of a record that "
                        "already holds this package: on approval the hub checks its files "
                        "against the package's sha256 and pins it",
                    },
                    "mint_doi": {
                        "type": "boolean",
                        "description": "ask the hub to deposit the package on Zenodo on "
                        "approval and pin the DOI it gets (a new version of the model's "
                        "previous deposit); refused where the hub deposits nothing",
                    },
                },
                "required": ["card", "package"],
            }
        },
        responses={
            202: ReleaseStatusSerializer,
            **error_responses(400, 401, 403, 404, 409, 413, 415, 429, 503),
        },
    )
    def post(self, request: Request) -> Response:
        form: Any = request.data
        visibility = parameters.visibility_choice(form.get("visibility"))
        declared_sha256 = form.get("sha256") or None
        if declared_sha256 is not None and not _SHA256.fullmatch(declared_sha256):
            raise ApiError(
                ErrorCode.BAD_REQUEST,
                "sha256 must be 64 hexadecimal digits",
                [{"loc": "sha256", "msg": "64 hexadecimal digits"}],
            )
        doi = str(form.get("doi") or "").strip()
        mint_doi = _form_flag(form.get("mint_doi"), "mint_doi")
        if doi and mint_doi:
            raise ApiError(
                ErrorCode.BAD_REQUEST,
                "a push either names the DOI that holds its package or asks the hub to mint "
                "one, not both",
            )
        card_data = _card_from_push(request)
        package = request.FILES.get("package")
        if package is None:
            raise ApiError(ErrorCode.BAD_REQUEST, "a push needs the fields 'card' and 'package'")
        release = services.release_submit(
            user=_signed_in_user(request),
            card_data=card_data,
            package=package,
            declared_sha256=declared_sha256,
            viewer=request_viewer(request),
            visibility=visibility,
            doi=doi,
            mint_doi=mint_doi,
        )
        return Response(_release_status(request, release), status=status.HTTP_202_ACCEPTED)


class ReviewInputSerializer(serializers.Serializer[Any]):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    note = serializers.CharField(allow_blank=True, default="", max_length=10_000)


class ReleaseReviewApi(APIView):
    """A reviewer approves (and so publishes) or rejects a release in review.

    Who may is :meth:`hub.access.Viewer.may_review`: hub reviewers for public models, the
    organisation's owners and reviewers for its private ones, either for internal ones.
    """

    permission_classes = [IsAuthenticated]
    parser_classes = [LimitedJSONParser, LimitedFormParser]

    @extend_schema(
        parameters=parameters.RELEASE_PATH,
        request=ReviewInputSerializer,
        responses={
            200: ReleaseStatusSerializer,
            **error_responses(400, 401, 403, 404, 409, 413, 415, 503),
        },
    )
    def post(self, request: Request, namespace: str, name: str, version: str) -> Response:
        release = _visible_release_or_404(request, namespace, name, version)
        payload = ReviewInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        release = services.release_review(
            release_id=release.pk,
            reviewer=_signed_in_user(request),
            decision=payload.validated_data["decision"],
            note=payload.validated_data["note"],
            viewer=request_viewer(request),
        )
        return Response(_release_status(request, release))


class LifecycleInputSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=10_000)
    replacement = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=300,
        help_text="deprecate only: the model (namespace/name) to use instead",
    )


class ReleaseLifecycleApi(APIView):
    """Deprecate, yank or withdraw a release, with the reason that goes with it.

    - ``deprecate`` (a maintainer of the namespace): the release stays downloadable, marked;
      clients warn and name ``replacement``.
    - ``yank`` (a maintainer, PEP 592): downloadable by exact version, never chosen as newest.
    - ``withdraw``: its contributor before publication; an administrator (admin-scope token)
      after it, when the release leaves the catalogue and its artifacts are kept for audit.
    """

    permission_classes = [IsAuthenticated]
    parser_classes = [LimitedJSONParser, LimitedFormParser]
    # Which of LIFECYCLE_ACTIONS this route does (set in hub/urls.py).
    action = ""

    @extend_schema(
        parameters=parameters.RELEASE_PATH,
        request=LifecycleInputSerializer,
        responses={
            200: ReleaseStatusSerializer,
            **error_responses(400, 401, 403, 404, 409, 413, 415, 503),
        },
    )
    def post(self, request: Request, namespace: str, name: str, version: str) -> Response:
        release = _visible_release_or_404(request, namespace, name, version)
        payload = LifecycleInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        release = services.release_lifecycle_act(
            action=self.action,
            release_id=release.pk,
            viewer=request_viewer(request),
            actor=_signed_in_user(request),
            reason=payload.validated_data["reason"],
            replacement_model_id=payload.validated_data["replacement"],
        )
        return Response(_release_status(request, release))


class ReleaseSampleGridApi(APIView):
    """The PNG grid of a release's smoke samples, for whoever may see the release.

    The grid is exactly as visible as its release (:mod:`hub.access`), and a 404 to anyone else;
    only a published release of a public model may sit in a shared cache.
    """

    @extend_schema(
        parameters=parameters.RELEASE_PATH,
        responses={(200, "image/png"): OpenApiTypes.BINARY, **error_responses(400, 404)},
    )
    def get(self, request: Request, namespace: str, name: str, version: str) -> HttpResponseBase:
        parameters.path_ids_check(namespace=namespace, name=name, version=version)
        release = selectors.release_sample_grid_get(
            namespace=namespace, name=name, version=version, viewer=request_viewer(request)
        )
        if release is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"no sample grid for {namespace}/{name}@{version}")
        try:
            handle = release.sample_grid.open("rb")
        except OSError as error:
            logger.error("sample grid of %s is missing from storage: %s", release, error)
            raise ApiError(ErrorCode.NOT_FOUND, "the sample grid is missing") from error
        response = FileResponse(handle, content_type="image/png")
        # A grid of an unpublished release must not sit in a shared cache.
        response["Cache-Control"] = (
            "public, max-age=300" if selectors.release_is_public(release) else "private, no-store"
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response


class _Unsatisfiable:
    """A range that lies wholly outside the file (answered 416)."""


UNSATISFIABLE: Final = _Unsatisfiable()


def _position(digits: str) -> int:
    significant = digits.lstrip("0") or "0"
    # Anything longer is past the end of every file; the exact value does not matter.
    return int(significant) if len(significant) <= _RANGE_MAX_DIGITS else _BEYOND_ANY_FILE


def _parse_range(header: str, size: int) -> tuple[int, int] | _Unsatisfiable | None:
    """A single ``bytes=`` range as inclusive bounds, ``UNSATISFIABLE``, or None (send it all).

    RFC 9110 section 14.2 lets a server ignore a Range it cannot or will not honour: a malformed
    header, another unit, several ranges, or last < first are ignored and the whole file is sent.
    """
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        # A suffix: the last N bytes; zero of them is nothing at all.
        length = _position(last)
        if length == 0 or size == 0:
            return UNSATISFIABLE
        return max(size - length, 0), size - 1
    start = _position(first)
    if last and _position(last) < start:
        return None
    if start >= size:
        return UNSATISFIABLE
    end = min(_position(last), size - 1) if last else size - 1
    return start, end


def _stream(handle: IO[bytes], length: int) -> Iterator[bytes]:
    # ``handle`` is already at the range's first byte (hub.storage asks S3 for the range alone).
    with handle:
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(_STREAM_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


class ReleaseArtifactDownloadApi(APIView):
    """The bytes of a stored artifact, streamed, with single ``Range`` requests (206)."""

    @extend_schema(
        parameters=[
            *parameters.RELEASE_PATH,
            parameters.FILENAME,
            OpenApiParameter(
                "Range",
                {"type": "string", "maxLength": RANGE_HEADER_MAX_LENGTH},
                OpenApiParameter.HEADER,
                description="one byte range, e.g. bytes=100- or bytes=-500; a malformed or "
                "multiple range is ignored and the whole file sent",
            ),
        ],
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            (206, "application/zip"): OpenApiTypes.BINARY,
            **error_responses(400, 404, 416),
        },
    )
    def get(
        self, request: Request, namespace: str, name: str, version: str, filename: str
    ) -> HttpResponseBase:
        parameters.path_ids_check(
            namespace=namespace, name=name, version=version, filename=filename
        )
        range_header = request.headers.get("Range", "")
        if len(range_header) > RANGE_HEADER_MAX_LENGTH:
            raise ApiError(
                ErrorCode.BAD_REQUEST,
                f"the Range header is longer than {RANGE_HEADER_MAX_LENGTH} characters",
            )
        artifact = selectors.artifact_get_downloadable(
            namespace=namespace,
            name=name,
            version=version,
            filename=filename,
            viewer=request_viewer(request),
        )
        if artifact is None:
            _raise_if_withdrawn(request, namespace, name, version)
            raise ApiError(ErrorCode.NOT_FOUND, f"no artifact {filename} in this release")
        if not artifact.file:
            # An artifact the hub serves before it holds it (a mirrored release's, from its
            # upstream; a pinned import's, from its Zenodo record): fetched on first download,
            # verified by its recorded sha256 and stored, then served like any other. One that
            # no fetcher provides answers artifact_unreachable with where it lives.
            artifact = services.artifact_materialise(artifact_id=artifact.pk)
        size = _artifact_size(artifact)
        byte_range = _parse_range(range_header, size)
        if isinstance(byte_range, _Unsatisfiable):
            response = error_response(
                ErrorCode.BAD_REQUEST, f"the range lies outside the {size} bytes of {filename}"
            )
            response.status_code = status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE
            response["Content-Range"] = f"bytes */{size}"
            return response
        start, end = (0, size - 1) if byte_range is None else byte_range
        length = end - start + 1
        handle = _artifact_open(artifact, start=start, length=length)
        streaming = StreamingHttpResponse(
            _stream(handle, length),
            status=status.HTTP_206_PARTIAL_CONTENT if byte_range else status.HTTP_200_OK,
            content_type="application/zip",
        )
        streaming["Content-Length"] = str(length)
        streaming["Accept-Ranges"] = "bytes"
        streaming["X-Checksum-Sha256"] = artifact.sha256
        streaming["ETag"] = f'"{artifact.sha256}"'
        streaming["Content-Disposition"] = f'attachment; filename="{artifact.filename}"'
        if not selectors.release_is_public(artifact.release):
            # Bytes only some may read must not be kept by a cache shared with others.
            streaming["Cache-Control"] = "private, no-store"
        streaming["Vary"] = "Authorization, Cookie"
        if byte_range:
            streaming["Content-Range"] = f"bytes {start}-{end}/{size}"
        return streaming


def _artifact_missing(artifact: Artifact, error: OSError) -> ApiError:
    logger.error("artifact %s is missing from storage: %s", artifact, error)
    return ApiError(
        ErrorCode.ARTIFACT_UNREACHABLE,
        f"{artifact.filename} is missing from this hub's storage",
        {"urls": artifact.external_urls},
    )


def _artifact_size(artifact: Artifact) -> int:
    if artifact.size is not None:
        return int(artifact.size)
    try:
        return int(artifact.file.size)
    except OSError as error:
        raise _artifact_missing(artifact, error) from error


def _artifact_open(artifact: Artifact, *, start: int, length: int) -> IO[bytes]:
    # Opened before the response starts, so that a file missing from storage is a clear 404
    # rather than a stream that breaks after its headers were sent. Only the range is read:
    # on S3 a ranged GET whose body streams through, never the whole object first.
    try:
        return stored_open(
            artifact.file.storage, str(artifact.file.name), start=start, length=length
        )
    except OSError as error:
        raise _artifact_missing(artifact, error) from error


def _visibility_state(model: GenerativeModel) -> dict[str, Any]:
    requested_by = model.requested_by.get_username() if model.requested_by is not None else None
    state = VisibilityState(
        model_id=model.model_id,
        visibility=Visibility(model.visibility),
        requested=Visibility(model.requested_visibility) if model.requested_visibility else None,
        requested_by=requested_by,
    )
    return state.model_dump(mode="json")


def _model_or_404(request: Request, namespace: str, name: str) -> GenerativeModel:
    parameters.path_ids_check(namespace=namespace, name=name)
    model = selectors.model_get_for_settings(
        namespace=namespace, name=name, viewer=request_viewer(request)
    )
    if model is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no generative model {namespace}/{name}")
    return model


class ModelVisibilityApi(APIView):
    """Who sees a model: ``GET`` it; ``POST`` a change (the namespace's owner, ``admin`` scope).

    A change to ``public`` waits for a hub reviewer and answers 202 with the request; any
    other change applies at once (200). Every step is audited.
    """

    parser_classes = [LimitedJSONParser]

    def get_permissions(self) -> list[Any]:
        return [IsAuthenticated()] if self.request.method == "POST" else []

    @extend_schema(
        parameters=parameters.MODEL_PATH,
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 404)},
    )
    def get(self, request: Request, namespace: str, name: str) -> Response:
        return Response(_visibility_state(_model_or_404(request, namespace, name)))

    @extend_schema(
        parameters=parameters.MODEL_PATH,
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiTypes.OBJECT,
            202: OpenApiTypes.OBJECT,
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    def post(self, request: Request, namespace: str, name: str) -> Response:
        model = _model_or_404(request, namespace, name)
        wanted = parameters.body_document(VisibilityRequest, request.data)
        model = services.model_visibility_request(
            model_id=model.pk,
            viewer=request_viewer(request),
            actor=_signed_in_user(request),
            target=wanted.visibility,
            note=wanted.note,
        )
        pending = bool(model.requested_visibility)
        return Response(
            _visibility_state(model),
            status=status.HTTP_202_ACCEPTED if pending else status.HTTP_200_OK,
        )


class ModelVisibilityReviewApi(APIView):
    """A hub reviewer approves or rejects a request to make a model public."""

    permission_classes = [IsAuthenticated]
    parser_classes = [LimitedJSONParser]

    @extend_schema(
        parameters=parameters.MODEL_PATH,
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 404, 409, 429)},
    )
    def post(self, request: Request, namespace: str, name: str) -> Response:
        model = _model_or_404(request, namespace, name)
        decision = parameters.body_document(VisibilityReview, request.data)
        model = services.model_visibility_review(
            model_id=model.pk,
            viewer=request_viewer(request),
            reviewer=_signed_in_user(request),
            decision=decision.decision,
            note=decision.note,
        )
        return Response(_visibility_state(model))
