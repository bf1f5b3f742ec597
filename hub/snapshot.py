"""The catalogue as clients see it: the snapshot, its cache, and a release's evaluations.

This module sits above the registry and evaluations apps, which never import each other: it
joins the registry's catalogue (releases, cards, stored artifacts, the serial) with the
evaluations' summaries into the wire format of ``medigan_catalog.snapshot``, and serves it.

``GET /api/v1/catalog`` is rendered once per serial, not once per request. A worker process keeps
the rendered bytes, and a gzip copy, for each viewer scope and hub URL, keyed by the serial and
the time it last changed; a request reads the serial (one small query) and either answers 304 to
a matching ``If-None-Match`` or sends the kept bytes. A bump of the serial (publishing,
deprecating, a finished evaluation) makes the next request render again. Each gunicorn worker
renders its own copy, once per serial.

The evaluations of one release are answered here too: who may see a release is the registry's
rule, what was measured is the evaluations'.
"""

from __future__ import annotations

import gzip
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation.features import EXTRACTOR_IDS
from evaluation.options import PreprocessOptions
from hub import signing
from hub.access import PUBLIC_SCOPE, CatalogScope, request_viewer
from hub.api import parameters
from hub.api.errors import ApiError
from hub.api.openapi import error_responses
from hub.api.parsers import LimitedFormParser, LimitedJSONParser
from hub.evaluations import selectors as evaluation_selectors
from hub.evaluations import services as evaluation_services
from hub.evaluations.models import Evaluation
from hub.pinning import selectors as pinning_selectors
from hub.registry import selectors as registry_selectors
from hub.registry.models import Release
from hub.registry.selectors import SerialState
from medigan_catalog.access import Visibility
from medigan_catalog.errors import ErrorCode
from medigan_catalog.lifecycle import CATALOGUE_STATES, ReleaseState
from medigan_catalog.signing import SIGNATURE_HEADER, Attestation
from medigan_catalog.snapshot import (
    CATALOG_PATH,
    SERIAL_HEADER,
    CatalogSnapshot,
    ChangePage,
    HubInfo,
    ReleasePin,
    SnapshotRelease,
    release_key,
)
from medigan_catalog.snapshot import CatalogChange as CatalogChangeEntry

# Worker processes keep this many rendered snapshots (scope and hub URL pairs), newest used last,
# and the serial states of this many viewer scopes.
CACHE_ENTRIES: Final = 8
SCOPE_STATES_KEPT: Final = 256
_CATALOGUE_STATES = frozenset(state.value for state in CATALOGUE_STATES)
# A document this small is sent as it is: compressing it saves nothing worth the header.
GZIP_MIN_BYTES: Final = 1024
_GZIP_LEVEL = 6
# Evaluation seeds are stored in a signed 64-bit column and fed to numpy's SeedSequence, which
# takes no negative number.
SEED_MAX: Final = 2**63 - 1


# --- the snapshot ---------------------------------------------------------------------------


def release_attestation(release: Release) -> Attestation | None:
    """The attestation of a catalogue release: the one recorded when it was published (or the
    origin's, for a mirrored release), else, for a release published here before attestations
    were recorded, one signed now with this hub's newest key."""
    if release.attestation:
        return Attestation.model_validate(release.attestation)
    if release.origin_hub:
        return None
    return signing.release_attest(
        model_id=release.model_id,
        version=release.version,
        card=registry_selectors.release_card(release),
    )


def _snapshot_entry(
    release: Release,
    *,
    base_url: str,
    stored: set[str],
    evaluations: list[Any],
    pin: ReleasePin | None = None,
) -> SnapshotRelease:
    return SnapshotRelease(
        model_id=release.model_id,
        version=release.version,
        published_at=release.published_at,
        state=ReleaseState(release.state),
        notice=registry_selectors.release_notice(release),
        visibility=Visibility(release.generative_model.visibility),
        card=registry_selectors.release_card_for_clients(release, base_url=base_url, stored=stored),
        evaluations=tuple(evaluations),
        attestation=release_attestation(release),
        origin=registry_selectors.release_origin(release),
        pin=pin,
    )


def signed_json(document: Any) -> tuple[bytes, str]:
    """A wire document as the JSON bytes the hub sends, and the signature header over them.

    The bytes are compact JSON in the document's own key order (the wire models' field order,
    and a card's free-form blocks in the order they were written: medigan's configuration is
    given back to users key for key). They are signed exactly as sent, so a client verifies
    what it received before it parses anything.
    """
    body = document.model_dump_json(by_alias=True).encode()
    return body, signing.sign(body)


def catalog_snapshot(
    *, base_url: str, scope: CatalogScope = PUBLIC_SCOPE, serial: int | None = None
) -> CatalogSnapshot:
    """The catalogue snapshot of a viewer scope: every published release it may see, with its
    card, its model's visibility and the hub's evaluations.

    Five queries at any size: the scope's serial (unless given), the releases, the stored
    artifacts, the evaluations and the DOI pins.
    """
    if serial is None:
        serial = registry_selectors.catalog_scope_state(scope).serial
    stored: dict[int, set[str]] = {}
    for release_id, filename in registry_selectors.artifacts_stored_in_catalogue(scope):
        stored.setdefault(release_id, set()).add(filename)
    summaries = evaluation_selectors.evaluation_summaries_of_catalogue()
    listed = list(registry_selectors.release_list_catalogue(scope))
    pins = pinning_selectors.release_pins_wire(listed)
    releases = [
        _snapshot_entry(
            release,
            base_url=base_url,
            stored=stored.get(release.pk, set()),
            evaluations=summaries.get(release.pk, []),
            pin=pins.get(release.pk),
        )
        for release in listed
    ]
    return CatalogSnapshot(
        serial=serial,
        generated_at=timezone.now(),
        hub=HubInfo(url=base_url.rstrip("/")),
        scope=scope.tag,
        releases=tuple(releases),
    )


def snapshot_etag(serial: int, scope: CatalogScope = PUBLIC_SCOPE, *, gzipped: bool = False) -> str:
    """The ETag of a scope's snapshot at its ``serial``, plain or gzip-encoded.

    Derived from the serial and the scope alone, so a revalidation needs nothing but those; two
    viewers of different scopes never share a tag, even at the same serial.
    """
    scope_part = "" if scope == PUBLIC_SCOPE else f"-{scope.tag}"
    return f'"catalog-{serial}{scope_part}{"-gzip" if gzipped else ""}"'


@dataclass(frozen=True)
class RenderedSnapshot:
    """A snapshot rendered to canonical JSON bytes, with its gzip copy (None for a small
    document), its signature header and the signing keys it was signed with."""

    serial: int
    changed_at: datetime | None
    body: bytes
    gzipped: bytes | None
    signature: str
    keys: tuple[str, ...]

    def current(self, state: SerialState, keys: tuple[str, ...]) -> bool:
        return (self.serial, self.changed_at, self.keys) == (state.serial, state.changed_at, keys)


_rendered: OrderedDict[tuple[str, str], RenderedSnapshot] = OrderedDict()
# Scope key -> (the hub's serial state, the scope's serial state) when last read.
_scope_states: OrderedDict[str, tuple[SerialState, SerialState]] = OrderedDict()
_render_lock = threading.Lock()


def scope_serial_state(scope: CatalogScope) -> SerialState:
    """A scope's serial and its change time; read again only when the hub's serial moved.

    The hub's serial is one precompiled query; the scope's (the newest change it may see) is
    read only when that moved since this worker last asked, so polling costs the same for every
    scope.
    """
    hub_state = registry_selectors.catalog_serial_state()
    kept = _scope_states.get(scope.key)
    if kept is not None and kept[0] == hub_state:
        return kept[1]
    state = registry_selectors.catalog_scope_state(scope)
    with _render_lock:
        _scope_states[scope.key] = (hub_state, state)
        _scope_states.move_to_end(scope.key)
        while len(_scope_states) > SCOPE_STATES_KEPT:
            _scope_states.popitem(last=False)
    return state


def snapshot_rendered(*, base_url: str, scope: CatalogScope = PUBLIC_SCOPE) -> RenderedSnapshot:
    """The snapshot's bytes for ``scope`` and ``base_url``, rendered only when its serial moved.

    Renders under a lock, so the threads of one worker that all see a new serial render it once.
    """
    state = scope_serial_state(scope)
    if state.changed_at is None:
        # Nothing this scope sees ever changed: the document is empty and cheap, and without a
        # change time two databases at serial 0 could not be told apart.
        return _render(state, base_url=base_url, scope=scope)
    key = (scope.key, base_url)
    # A key rotation re-signs the kept document: clients that pinned the new key need its
    # signature as soon as the operator made it.
    keys = signing.key_generation()
    kept = _rendered.get(key)
    if kept is not None and kept.current(state, keys):
        return kept
    with _render_lock:
        kept = _rendered.get(key)
        if kept is not None and kept.current(state, keys):
            return kept
        rendered = _render(state, base_url=base_url, scope=scope)
        _rendered[key] = rendered
        _rendered.move_to_end(key)
        while len(_rendered) > CACHE_ENTRIES:
            _rendered.popitem(last=False)
        return rendered


def _render(state: SerialState, *, base_url: str, scope: CatalogScope) -> RenderedSnapshot:
    snapshot = catalog_snapshot(base_url=base_url, scope=scope, serial=state.serial)
    keys = signing.key_generation()
    body, signature = signed_json(snapshot)
    zipped = gzip.compress(body, _GZIP_LEVEL, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
    # Kept under the serial read before rendering: a change that lands while rendering is in
    # this document already, and its new serial renders again on the next request.
    return RenderedSnapshot(state.serial, state.changed_at, body, zipped, signature, keys)


def snapshot_cache_clear() -> None:
    """Forget every rendered snapshot and scope serial of this process (tests; a shell)."""
    with _render_lock:
        _rendered.clear()
        _scope_states.clear()


_GZIP_ACCEPTED = re.compile(r"(?:^|,)\s*(?:gzip|\*)\s*(?:;\s*q\s*=\s*(?P<q>[0-9.]+))?\s*(?=,|$)")


def _accepts_gzip(header: str) -> bool:
    for match in _GZIP_ACCEPTED.finditer(header.lower()):
        weight = match["q"]
        try:
            if weight is None or float(weight) > 0:
                return True
        except ValueError:
            continue
    return False


def _etag_matches(header: str, serial: int, scope: CatalogScope) -> bool:
    if header.strip() == "*":
        return True
    current = {snapshot_etag(serial, scope), snapshot_etag(serial, scope, gzipped=True)}
    # Weak comparison (RFC 9110 8.8.3.2): a proxy that re-encoded the body marks the tag weak.
    offered = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return not current.isdisjoint(offered)


def catalog_response(request: HttpRequest, scope: CatalogScope) -> HttpResponse:
    """The snapshot answer for ``scope``: 304 to a current ``If-None-Match``, else the bytes.

    A revalidation reads the serial and nothing else; a download renders only when the scope's
    serial moved since this worker last rendered.
    """
    if_none_match = request.headers.get("If-None-Match", "")
    accepts_gzip = _accepts_gzip(request.headers.get("Accept-Encoding", ""))
    if if_none_match:
        serial = scope_serial_state(scope).serial
        if _etag_matches(if_none_match, serial, scope):
            response = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
            return _cache_headers(
                response, snapshot_etag(serial, scope, gzipped=accepts_gzip), serial, scope
            )
    rendered = snapshot_rendered(base_url=request.build_absolute_uri("/"), scope=scope)
    gzipped = rendered.gzipped is not None and accepts_gzip
    response = HttpResponse(
        rendered.gzipped if gzipped and rendered.gzipped is not None else rendered.body,
        content_type="application/json",
    )
    if gzipped:
        response["Content-Encoding"] = "gzip"
    response["Content-Length"] = str(len(response.content))
    response[SIGNATURE_HEADER] = rendered.signature
    return _cache_headers(
        response, snapshot_etag(rendered.serial, scope, gzipped=gzipped), rendered.serial, scope
    )


class CatalogSnapshotApi(APIView):
    """The catalogue snapshot that clients sync; revalidate with ``If-None-Match``.

    The body is gzip-encoded for a client that accepts gzip; each encoding has its own ETag, and
    either of them for the current serial answers 304. Anonymous requests are usually answered
    earlier, by :class:`AnonymousCatalogMiddleware`, with the same bytes.
    """

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, 304: None},
        parameters=[OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER)],
    )
    def get(self, request: Request) -> HttpResponse:
        return catalog_response(request, request_viewer(request).catalog_scope())


class AnonymousCatalogMiddleware:
    """Answers an anonymous ``GET /api/v1/catalog`` before sessions, CSRF and DRF run.

    Syncing clients poll the catalogue far more often than anything else, and an anonymous
    viewer's scope is known without authenticating anyone: the public one. Skipping the rest of
    the middleware chain and DRF's dispatch is what lets a revalidation cost about what a static
    file costs. A request with credentials (a token or a session cookie) goes the normal way, so
    the scope of a signed-in viewer is always decided by the view. A database error falls through
    too, so that the regular chain answers it (503 for a busy database).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method in ("GET", "HEAD")
            and request.path_info == CATALOG_PATH
            and "Authorization" not in request.headers
            and settings.SESSION_COOKIE_NAME not in request.COOKIES
        ):
            try:
                return catalog_response(request, PUBLIC_SCOPE)
            except DatabaseError:
                pass
        return self.get_response(request)


def _cache_headers(
    response: HttpResponse, etag: str, serial: int, scope: CatalogScope
) -> HttpResponse:
    response["ETag"] = etag
    response[SERIAL_HEADER] = str(serial)
    # Every use revalidates: the serial can move at any time, and a 304 is cheap. A catalogue
    # beyond the public one is its viewer's alone: no shared cache may keep it.
    response["Cache-Control"] = "no-cache" if scope == PUBLIC_SCOPE else "private, no-cache"
    # The body depends on the encoding and on who asks (a token, or a session's cookie).
    response["Vary"] = "Accept-Encoding, Authorization, Cookie"
    return response


# --- the change feed -----------------------------------------------------------------------

FEED_DEFAULT_LIMIT: Final = 500
FEED_MAX_LIMIT: Final = 2000


def catalog_change_page(
    *, scope: CatalogScope, since: int, limit: int, base_url: str
) -> ChangePage:
    """The changes of a scope's catalogue after ``since``, each with what it takes to apply it.

    A change names its model; the model's entries are its catalogue releases as they are now,
    or, when the scope no longer sees the model, the removal of every release of it that was
    ever published (which the scope saw, or the change would not be in its feed). A model that
    changes several times in one page carries its entries on its last change only. Applying the
    pages from any serial up to ``latest`` (``medigan_catalog.snapshot.apply_change_page``) gives
    the scope's current snapshot. Raises ``feed_gone`` (410) for a ``since`` before the log's
    oldest serial.
    """
    oldest = registry_selectors.catalog_feed_oldest_serial()
    if since < oldest:
        raise ApiError(
            ErrorCode.FEED_GONE,
            f"the change feed starts at serial {oldest}; sync the whole catalogue",
            {"oldest_serial": oldest},
        )
    latest = scope_serial_state(scope).serial
    rows = registry_selectors.catalog_changes_after(scope, since, limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    last_of_model = {row.generative_model_id: row.serial for row in rows}
    models = {row.generative_model_id: row.generative_model for row in rows}
    seen = {
        model_id
        for model_id, model in models.items()
        if model is not None and scope.sees(model.namespace, model.visibility)
    }
    releases = registry_selectors.releases_of_models_once_published(
        model_id for model_id in models if model_id is not None
    )
    in_catalogue = [release for release in releases if release.state in _CATALOGUE_STATES]
    stored: dict[int, set[str]] = {}
    for release_id, filename in registry_selectors.artifacts_stored_in_catalogue(scope):
        stored.setdefault(release_id, set()).add(filename)
    summaries = evaluation_selectors.evaluation_summaries_of_releases(
        release.pk for release in in_catalogue if release.generative_model_id in seen
    )
    pins = pinning_selectors.release_pins_wire(in_catalogue)
    changes = []
    for row in rows:
        entries: tuple[SnapshotRelease, ...] = ()
        removed: tuple[str, ...] = ()
        removed_states: dict[str, str] = {}
        if (
            row.generative_model is not None
            and last_of_model[row.generative_model_id] == row.serial
        ):
            own = [r for r in releases if r.generative_model_id == row.generative_model_id]
            if row.generative_model_id in seen:
                entries = tuple(
                    _snapshot_entry(
                        release,
                        base_url=base_url,
                        stored=stored.get(release.pk, set()),
                        evaluations=summaries.get(release.pk, []),
                        pin=pins.get(release.pk),
                    )
                    for release in own
                    if release.state in _CATALOGUE_STATES
                )
                removed = tuple(
                    release_key(r.model_id, r.version)
                    for r in own
                    if r.state not in _CATALOGUE_STATES
                )
                # Why each left: a mirror marks its copy withdrawn likewise.
                removed_states = {
                    release_key(r.model_id, r.version): r.state
                    for r in own
                    if r.state not in _CATALOGUE_STATES
                }
            else:
                removed = tuple(release_key(r.model_id, r.version) for r in own)
        changes.append(
            CatalogChangeEntry(
                serial=row.serial,
                kind=row.kind,
                model_id=f"{row.namespace}/{row.generative_model.name}"
                if row.generative_model is not None
                else row.namespace,
                releases=entries,
                removed=removed,
                removed_states=removed_states,
            )
        )
    return ChangePage(
        since=since,
        serial=rows[-1].serial if rows else since,
        latest=latest,
        scope=scope.tag,
        more=more,
        changes=tuple(changes),
    )


class CatalogChangesApi(APIView):
    """``GET /api/v1/changes?since=S&limit=N``: the caller's catalogue changes after ``S``.

    A client that holds the snapshot at serial ``S`` asks for the changes since and applies them;
    an empty page is one small answer. ``410 feed_gone`` says the feed does not reach back that
    far: sync the whole snapshot.
    """

    @extend_schema(
        parameters=[
            OpenApiParameter("since", int, OpenApiParameter.QUERY, required=True),
            OpenApiParameter("limit", int, OpenApiParameter.QUERY),
        ],
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 410)},
    )
    def get(self, request: Request) -> HttpResponse:
        since = parameters.query_int(request, "since", minimum=0, maximum=SEED_MAX)
        limit = parameters.query_int(
            request, "limit", minimum=1, maximum=FEED_MAX_LIMIT, default=FEED_DEFAULT_LIMIT
        )
        scope = request_viewer(request).catalog_scope()
        page = catalog_change_page(
            scope=scope,
            since=since,
            limit=limit,
            base_url=request.build_absolute_uri("/"),
        )
        body, signature = signed_json(page)
        gzipped = len(body) >= GZIP_MIN_BYTES and _accepts_gzip(
            request.headers.get("Accept-Encoding", "")
        )
        response = HttpResponse(
            gzip.compress(body, _GZIP_LEVEL, mtime=0) if gzipped else body,
            content_type="application/json",
        )
        if gzipped:
            response["Content-Encoding"] = "gzip"
        response[SERIAL_HEADER] = str(page.latest)
        response[SIGNATURE_HEADER] = signature
        response["Cache-Control"] = "no-cache" if scope == PUBLIC_SCOPE else "private, no-cache"
        response["Vary"] = "Accept-Encoding, Authorization, Cookie"
        return response


class SigningKeysApi(APIView):
    """``GET /api/v1/keys``: the public keys this hub signs its catalogue with, signed by each.

    A client or a mirror pins them on first use (or checks them against a configured key id);
    during a rotation's overlap both keys are listed and both sign.
    """

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **error_responses(401)})
    def get(self, request: Request) -> HttpResponse:
        body, signature = signed_json(signing.key_set())
        response = HttpResponse(body, content_type="application/json")
        response[SIGNATURE_HEADER] = signature
        response["Cache-Control"] = "no-cache"
        return response


# --- a release's evaluations ----------------------------------------------------------------


class EvaluationRequestSerializer(serializers.Serializer[Any]):
    reference = serializers.SlugField()
    extractor = serializers.ChoiceField(choices=list(EXTRACTOR_IDS), default="medical-cnn")
    num_samples = serializers.IntegerField(min_value=10, max_value=100_000, default=1000)
    seed = serializers.IntegerField(min_value=0, max_value=SEED_MAX, default=0)
    resize_filter = serializers.ChoiceField(
        choices=["bilinear", "bicubic", "lanczos", "nearest"], default="bilinear"
    )
    normalise = serializers.BooleanField(default=True)


def _evaluation_status(evaluation: Evaluation) -> dict[str, Any]:
    summary = evaluation_selectors.evaluation_summary(evaluation).model_dump(mode="json")
    return {
        "id": evaluation.pk,
        "status": evaluation.status,
        "error": evaluation.error,
        "created_at": evaluation.created_at,
        **summary,
    }


def _visible_release_or_404(request: Request, namespace: str, name: str, version: str) -> Release:
    parameters.path_ids_check(namespace=namespace, name=name, version=version)
    release = registry_selectors.release_get_visible(
        namespace=namespace, name=name, version=version, viewer=request_viewer(request)
    )
    if release is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no release {namespace}/{name}@{version}")
    return release


class ReleaseEvaluationsApi(APIView):
    """Evaluations of one release the caller may see; staff queue new ones (202)."""

    parser_classes = [LimitedJSONParser, LimitedFormParser]

    def get_permissions(self) -> list[Any]:
        return [IsAdminUser()] if self.request.method == "POST" else []

    @extend_schema(
        parameters=parameters.RELEASE_PATH,
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 404)},
    )
    def get(self, request: Request, namespace: str, name: str, version: str) -> Response:
        release = _visible_release_or_404(request, namespace, name, version)
        evaluations = evaluation_selectors.evaluation_list_of_release(release_id=release.pk)
        return Response({"results": [_evaluation_status(item) for item in evaluations]})

    @extend_schema(
        parameters=parameters.RELEASE_PATH,
        request=EvaluationRequestSerializer,
        responses={
            202: OpenApiTypes.OBJECT,
            **error_responses(400, 401, 403, 404, 409, 413, 415, 503),
        },
    )
    def post(self, request: Request, namespace: str, name: str, version: str) -> Response:
        release = _visible_release_or_404(request, namespace, name, version)
        payload = EvaluationRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        reference_set = evaluation_selectors.reference_set_get(slug=data["reference"])
        if reference_set is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"no reference set {data['reference']!r}")
        if data["extractor"] not in evaluation_selectors.extractors_available():
            raise ApiError(
                ErrorCode.BAD_REQUEST,
                f"extractor {data['extractor']} has no weights configured on this hub",
            )
        evaluation = evaluation_services.evaluation_request(
            release=release,
            reference_set=reference_set,
            extractor_id=data["extractor"],
            num_samples=data["num_samples"],
            seed=data["seed"],
            preprocess=PreprocessOptions(
                resize_filter=data["resize_filter"], normalise=data["normalise"]
            ),
            requested_by=request.user if request.user.is_authenticated else None,
        )
        return Response(_evaluation_status(evaluation), status=status.HTTP_202_ACCEPTED)
