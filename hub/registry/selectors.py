"""Reads on the registry, each filtered by who asks.

Who sees what is decided in one place, :mod:`hub.access` (``release_visible_to``,
``model_visible_to`` and a ``Viewer``'s methods); every read here takes the ``Viewer`` and
applies it. Reads that answer no one in particular (the catalogue's rows before they are cut to
a viewer's scope) say so in their names.
"""

from __future__ import annotations

import bisect
import copy
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from hub.access import (
    CatalogScope,
    Viewer,
    catalog_scope_q,
    model_visible_or_pending_q,
    release_visible_to,
)
from hub.registry.models import Artifact, CatalogChange, CatalogSerial, GenerativeModel, Release
from medigan_catalog.access import Visibility
from medigan_catalog.lifecycle import (
    CATALOGUE_STATES,
    NOTICE_STATES,
    VISIBLE_STATES,
    ReleaseState,
)
from medigan_catalog.schema import Card, card_from_json
from medigan_catalog.search import parse_filter_terms, split_query
from medigan_catalog.search_index import SearchIndex
from medigan_catalog.snapshot import (
    ReleaseNotice,
    ReleaseOrigin,
    artifact_path,
    newest_per_model,
    sample_grid_path,
    version_key,
)

_VISIBLE = sorted(state.value for state in VISIBLE_STATES)
# The change log's stand-in for the history of a hub from before the log began.
BASELINE_KIND = "baseline"
_CATALOGUE = sorted(state.value for state in CATALOGUE_STATES)
_NOTICE_STATES = frozenset(state.value for state in NOTICE_STATES)


@dataclass(frozen=True)
class SerialState:
    """The catalogue serial and when it last changed, read in one query."""

    serial: int
    changed_at: datetime | None


@cache
def _serial_query() -> tuple[str, tuple[Any, ...]]:
    # Built by the ORM once, so table and column names stay the model's.
    query = CatalogSerial.objects.filter(pk=1).values_list("serial", "changed_at").query
    sql, params = query.sql_with_params()
    return sql, tuple(params)


def catalog_serial_state() -> SerialState:
    """The serial and its change time (0 and None before anything was published).

    Every catalogue request reads this, and compiling the ORM query costs several times what
    running it does, so the SQL is compiled once and run on a plain cursor.
    """
    sql, params = _serial_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return SerialState(0, None)
    changed_at = row[1]
    if isinstance(changed_at, datetime) and timezone.is_naive(changed_at):
        # SQLite hands back the stored UTC time without its zone.
        changed_at = timezone.make_aware(changed_at, UTC)
    return SerialState(int(row[0]), changed_at)


def catalog_serial_get() -> int:
    """The current catalogue serial (0 before anything was published)."""
    return catalog_serial_state().serial


def catalog_scope_state(scope: CatalogScope) -> SerialState:
    """A viewer scope's serial: the newest catalogue change it may see, and when it happened.

    A change to a private model moves only its members' serials, so an outsider polling the
    catalogue learns nothing of it (0 and None before any change the scope sees).
    """
    row = (
        CatalogChange.objects.filter(scope.changes_q())
        .order_by("-serial")
        .values_list("serial", "created_at")
        .first()
    )
    if row is None:
        return SerialState(0, None)
    return SerialState(int(row[0]), row[1])


def catalog_changes_after(scope: CatalogScope, since: int, limit: int) -> list[CatalogChange]:
    """The changes a scope may see after serial ``since``, oldest first, at most ``limit``."""
    return list(
        CatalogChange.objects.filter(scope.changes_q(), serial__gt=since)
        .exclude(kind=BASELINE_KIND)
        .select_related("generative_model")
        .order_by("serial")[:limit]
    )


def catalog_feed_oldest_serial() -> int:
    """The oldest serial the feed can be read from: the last baseline, where a migrated hub's
    history before the change log began (0 when the log holds everything)."""
    baseline = (
        CatalogChange.objects.filter(kind=BASELINE_KIND)
        .order_by("-serial")
        .values_list("serial", flat=True)
        .first()
    )
    return int(baseline or 0)


def releases_of_models_once_published(model_ids: Iterable[int]) -> list[Release]:
    """Every release of these models that was ever published, whatever its state now."""
    return list(
        Release.objects.filter(generative_model_id__in=list(model_ids), published_at__isnull=False)
        .select_related("generative_model")
        .order_by("generative_model__namespace", "generative_model__name", "published_at", "pk")
    )


def release_list_catalogue(scope: CatalogScope) -> QuerySet[Release]:
    """The releases a scope's catalogue lists (published, deprecated, yanked), in catalogue order:
    model id, then publication."""
    return (
        Release.objects.filter(state__in=_CATALOGUE)
        .filter(catalog_scope_q(scope, via="generative_model__"))
        .select_related("generative_model")
        .order_by("generative_model__namespace", "generative_model__name", "published_at", "pk")
    )


def artifacts_stored_in_catalogue(scope: CatalogScope) -> set[tuple[int, str]]:
    """(release id, filename) of every artifact this hub serves for a release of a scope's
    catalogue: those it stores, and those of mirrored releases, which it fetches from the
    upstream on first download.

    One query joined on the release's state, not an ``IN`` list of every release id, so it stays
    one statement at any catalogue size.
    """
    rows = (
        Artifact.objects.filter(release__state__in=_CATALOGUE)
        .filter(catalog_scope_q(scope, via="release__generative_model__"))
        .filter(~Q(file="") | ~Q(release__origin_hub=""))
        .values_list("release_id", "filename")
    )
    return {(int(release_id), str(filename)) for release_id, filename in rows}


def release_get_visible(
    *, namespace: str, name: str, version: str, viewer: Viewer
) -> Release | None:
    """The release ``namespace/name@version`` if ``viewer`` may see it."""
    return (
        Release.objects.filter(release_visible_to(viewer))
        .select_related("generative_model")
        .filter(generative_model__namespace=namespace, generative_model__name=name, version=version)
        .first()
    )


def release_get_withdrawn(
    *, namespace: str, name: str, version: str, viewer: Viewer
) -> Release | None:
    """The release ``namespace/name@version`` if it was withdrawn after publication and
    ``viewer`` sees its model: they may learn that it is gone, and why."""
    release = (
        Release.objects.select_related("generative_model")
        .filter(
            generative_model__namespace=namespace,
            generative_model__name=name,
            version=version,
            state=ReleaseState.WITHDRAWN,
            published_at__isnull=False,
        )
        .first()
    )
    if release is None or not viewer.sees_model(namespace, release.generative_model.visibility):
        return None
    return release


def release_withdrawal_reason(release: Release) -> str:
    """The administrator's note of a release's withdrawal."""
    event = release.events.filter(to_state=ReleaseState.WITHDRAWN).order_by("-pk").first()
    return event.note if event is not None and event.note else "no reason given"


def model_get_visible(
    *, namespace: str, name: str, viewer: Viewer
) -> tuple[GenerativeModel, list[Release]] | None:
    """A generative model with the releases ``viewer`` may see, or None if none is visible."""
    generative_model = (
        GenerativeModel.objects.filter(model_visible_or_pending_q(viewer))
        .filter(namespace=namespace, name=name)
        .first()
    )
    if generative_model is None:
        return None
    releases = list(
        generative_model.releases.filter(release_visible_to(viewer)).order_by("created_at")
    )
    if not releases:
        return None
    return generative_model, releases


def releases_submitted_by(user: User) -> QuerySet[Release]:
    """Every release ``user`` pushed, newest first, whatever its state."""
    return (
        Release.objects.filter(submitted_by=user)
        .select_related("generative_model")
        .order_by("-created_at", "-pk")
    )


def release_submitted_by(*, user: User, namespace: str, name: str, version: str) -> Release | None:
    """The release ``namespace/name@version`` if ``user`` pushed it."""
    return (
        releases_submitted_by(user)
        .filter(generative_model__namespace=namespace, generative_model__name=name, version=version)
        .first()
    )


def model_get_for_settings(*, namespace: str, name: str, viewer: Viewer) -> GenerativeModel | None:
    """A model ``viewer`` sees at all (any visible release), for reading or changing settings."""
    found = model_get_visible(namespace=namespace, name=name, viewer=viewer)
    return None if found is None else found[0]


def artifact_get_downloadable(
    *,
    namespace: str,
    name: str,
    version: str,
    filename: str,
    viewer: Viewer,
) -> Artifact | None:
    """The artifact of a release ``viewer`` sees, or None."""
    release = release_get_visible(namespace=namespace, name=name, version=version, viewer=viewer)
    if release is None:
        return None
    return release.artifacts.filter(filename=filename).first()


def artifact_download_path(release: Release, artifact_filename: str) -> str:
    """The hub-relative path at which an artifact is served."""
    return artifact_path(release.model_id, release.version, artifact_filename)


def release_sample_grid_get(
    *, namespace: str, name: str, version: str, viewer: Viewer
) -> Release | None:
    """The release ``namespace/name@version`` if ``viewer`` may see its sample grid and it has one.

    The grid shows what the package generates, so it is exactly as visible as the release.
    """
    release = release_get_visible(namespace=namespace, name=name, version=version, viewer=viewer)
    if release is None or not release.sample_grid:
        return None
    return release


def viewer_reviews_anything(viewer: Viewer) -> bool:
    """Whether ``viewer`` may review some release: a hub reviewer, or a member of an
    organisation (its roles decide which releases). The admin's review actions and the review
    queue open to the same people; ``Viewer.may_review`` decides each release."""
    return viewer.hub_reviewer or bool(viewer.org_roles)


def releases_awaiting_review(viewer: Viewer) -> list[Release]:
    """The releases in review that ``viewer`` may approve or reject, oldest first.

    The database narrows them to what the viewer sees (never their own); ``Viewer.may_review``,
    the rule ``services.release_review`` applies, then decides each, so the queue offers exactly
    the releases whose review would be accepted.
    """
    if not viewer.signed_in:
        return []
    candidates = (
        Release.objects.filter(release_visible_to(viewer), state=ReleaseState.IN_REVIEW)
        .exclude(submitted_by_id=viewer.user_id)
        .select_related("generative_model", "submitted_by")
        .order_by("created_at", "pk")
    )
    return [
        release
        for release in candidates
        if viewer.may_review(
            namespace=release.generative_model.namespace,
            visibility=release.generative_model.visibility,
            submitted_by_id=release.submitted_by_id,
        )
    ]


def release_previous_version(release: Release, viewer: Viewer) -> Release | None:
    """The newest release of the same model before ``release`` by semantic version, of those
    ``viewer`` sees, whatever its state; None for a model's first version."""
    current = version_key(release.version)
    earlier = [
        other
        for other in Release.objects.filter(
            release_visible_to(viewer), generative_model_id=release.generative_model_id
        ).exclude(pk=release.pk)
        if version_key(other.version) < current
    ]
    return max(earlier, key=lambda other: version_key(other.version), default=None)


def release_is_public(release: Release) -> bool:
    """Whether anyone, signed in or not, may see ``release`` (a cache may share it)."""
    return release.state in _VISIBLE and release.generative_model.visibility == Visibility.PUBLIC


def release_sample_grid_path(release: Release) -> str | None:
    """The hub-relative path of the access-checked view of the release's grid, or None."""
    if not release.sample_grid:
        return None
    return sample_grid_path(release.model_id, release.version)


def release_card(release: Release) -> Card:
    """The release's card, read through the catalog's schema."""
    return card_from_json(release.card)


def release_origin(release: Release) -> ReleaseOrigin | None:
    """Where a mirrored release came from, or None for a release published here."""
    if not release.origin_hub:
        return None
    return ReleaseOrigin(
        hub=release.origin_hub,
        url=release.origin_url,
        release_id=release.origin_release_id,
        serial=release.origin_serial or 0,
        sha256=release.origin_sha256 or None,
    )


def release_notice(release: Release) -> ReleaseNotice | None:
    """Why a deprecated or yanked release is so, and its replacement; None for other states."""
    if release.state not in _NOTICE_STATES:
        return None
    return ReleaseNotice(
        reason=release.lifecycle_reason or "no reason given",
        replacement=release.replacement_model_id or None,
        at=release.lifecycle_at,
    )


def release_card_for_clients(
    release: Release, *, base_url: str, stored: Iterable[str] | None = None
) -> Card:
    """The release's card with every hub-stored artifact's absolute download URL put first.

    ``stored`` names the artifacts this hub stores for the release; without it they are read.
    """
    card = release_card(release)
    if stored is None:
        stored = (artifact.filename for artifact in release.artifacts.all() if artifact.file)
    hosted = set(stored)
    if not hosted:
        return card
    root = base_url.rstrip("/")
    artifacts = []
    for artifact in card.artifacts:
        if artifact.filename in hosted:
            url = root + artifact_download_path(release, artifact.filename)
            artifact = artifact.model_copy(
                update={"urls": (url, *(u for u in artifact.urls if u != url))}
            )
        artifacts.append(artifact)
    return card.model_copy(update={"artifacts": tuple(artifacts)})


@dataclass(frozen=True)
class CatalogEntry:
    """A catalogue release with its parsed card."""

    release: Release
    card: Card


def catalog_newest_entries(scope: CatalogScope) -> list[CatalogEntry]:
    """The newest catalogue release of each model of a scope (by semantic version), with its
    card."""
    return _newest_entries(release_list_catalogue(scope))


def _newest_entries(releases: Iterable[Release]) -> list[CatalogEntry]:
    newest = newest_per_model(
        releases,
        model_id=lambda release: release.model_id,
        version=lambda release: release.version,
    )
    return [CatalogEntry(release, release_card(release)) for release in newest]


@dataclass(frozen=True)
class CatalogSearch:
    """The newest catalogue entry of every model at one serial, and their search index.

    ``by_model`` holds the entries by model id, the index's keys; ``change_id`` is the change
    log's row at ``serial`` (None before there is one), which tells a later update that the
    history it continues is this one.
    """

    serial: int
    changed_at: datetime | None
    change_id: int | None
    by_model: Mapping[str, CatalogEntry]
    index: SearchIndex

    @property
    def entries(self) -> list[CatalogEntry]:
        """Every entry, in catalogue order."""
        return [self.by_model[entry.key] for entry in self.index.entries]


_search_kept: CatalogSearch | None = None
_search_lock = threading.Lock()
# Past this many changed models a rebuild costs less than updating entry by entry.
SEARCH_UPDATE_MAX_MODELS = 500


def catalog_search() -> CatalogSearch:
    """The whole catalogue's entries and search index (every scope), kept in this process;
    :func:`model_search` cuts its results to a viewer.

    Like the rendered snapshot (``hub.snapshot``) it is keyed by the serial and the time it last
    changed, read in one query per call. When the serial moved, the kept index is updated from
    the change log: a copy of it gets the newest entry of each model that changed (added,
    replaced in place, or removed), so a new release costs what its own card costs, not the
    catalogue's. It is built whole the first time, when the log does not continue the kept
    history (a restored database, a gap, a baseline), and when many models changed. The threads
    of a worker that all see a new serial update it once, under a lock; readers keep using the
    copy they hold. Before anything was published there is no change time to tell two databases
    at serial 0 apart, so nothing is kept.
    """
    global _search_kept
    state = catalog_serial_state()
    if state.changed_at is None:
        return _catalog_search_build(state)
    kept = _search_kept
    if kept is not None and (kept.serial, kept.changed_at) == (state.serial, state.changed_at):
        return kept
    with _search_lock:
        kept = _search_kept
        if kept is not None and (kept.serial, kept.changed_at) == (
            state.serial,
            state.changed_at,
        ):
            return kept
        updated = _catalog_search_update(kept, state) if kept is not None else None
        # Kept under the serial read before building: a change that lands meanwhile is in these
        # entries already, and its new serial updates them again on the next call.
        _search_kept = updated if updated is not None else _catalog_search_build(state)
        return _search_kept


def _change_id_at(serial: int) -> int | None:
    return CatalogChange.objects.filter(serial=serial).values_list("pk", flat=True).first()


def _catalog_search_build(state: SerialState) -> CatalogSearch:
    # Each model's releases share its visibility, so the newest of the whole catalogue is the
    # newest of every scope that sees the model, and one index serves every viewer. Scores
    # depend on each card alone (no corpus statistics), so private cards move no public ranking.
    entries = catalog_newest_entries(CatalogScope(everything=True))
    index = SearchIndex.build(entry.card for entry in entries)
    by_model = {entry.release.model_id: entry for entry in entries}
    return CatalogSearch(
        state.serial, state.changed_at, _change_id_at(state.serial), by_model, index
    )


def _catalog_search_update(kept: CatalogSearch, state: SerialState) -> CatalogSearch | None:
    """``kept`` brought to ``state`` through the change log, or None when it must be rebuilt."""
    if state.serial <= kept.serial or _change_id_at(kept.serial) != kept.change_id:
        return None
    rows = list(
        CatalogChange.objects.filter(serial__gt=kept.serial, serial__lte=state.serial)
        .order_by("serial")
        .values_list("serial", "kind", "generative_model_id", "pk")
    )
    if len(rows) != state.serial - kept.serial or any(
        kind == BASELINE_KIND for _, kind, _, _ in rows
    ):
        return None
    model_ids = {model_id for _, _, model_id, _ in rows if model_id is not None}
    if len(model_ids) > SEARCH_UPDATE_MAX_MODELS:
        return None
    models = {
        model.pk: model.model_id for model in GenerativeModel.objects.filter(pk__in=model_ids)
    }
    newest = {
        entry.release.model_id: entry
        for entry in _newest_entries(
            release_list_catalogue(CatalogScope(everything=True)).filter(
                generative_model_id__in=model_ids
            )
        )
    }
    index = copy.deepcopy(kept.index)
    by_model = dict(kept.by_model)
    for model_id in sorted(set(models.values()), key=_catalogue_key):
        entry = newest.get(model_id)
        if entry is None:
            index.remove(model_id)
            by_model.pop(model_id, None)
            continue
        if model_id in by_model:
            index.add(entry.card, key=model_id)
        else:
            keys = [_catalogue_key(item.key) for item in index.entries]
            index.add(
                entry.card, key=model_id, position=bisect.bisect(keys, _catalogue_key(model_id))
            )
        by_model[model_id] = entry
    return CatalogSearch(state.serial, state.changed_at, rows[-1][3], by_model, index)


def _catalogue_key(model_id: str) -> tuple[str, str]:
    namespace, _, name = model_id.partition("/")
    return namespace, name


def catalog_search_clear() -> None:
    """Forget the search index this process keeps (tests; an operator's shell)."""
    global _search_kept
    with _search_lock:
        _search_kept = None


def model_search(
    *, query: str, operator: str, medigan_semantics: bool, viewer: Viewer
) -> list[CatalogEntry]:
    """Newest published release of each model ``viewer`` sees that matches ``query``.

    ``operator`` is one of ``medigan_catalog.search.OPERATORS`` (AND, OR, XOR) under either
    semantics. ``medigan_semantics`` reproduces medigan's value matching (whole values,
    catalogue order); otherwise the hub's token and prefix search ranks the results, and
    ``key=value`` words of the query (``modality=mri``, ``type=dcgan``, ``namespace=zoo``) are
    filters, as on the client's command line. Both are answered by the catalogue's search index
    (:func:`catalog_search`).
    """
    found = catalog_search()

    def at(position: int) -> CatalogEntry:
        return found.by_model[found.index.entry(position).key]

    if not query.strip():
        matches = found.entries
    elif medigan_semantics:
        positions = found.index.medigan_find_matching(query.split(), operator)
        matches = [at(position) for position in positions]
    else:
        # ``modality=mri type=dcgan`` filters as the CLI's words do; the rest are search terms.
        terms, filters = parse_filter_terms(split_query(query))
        hits = found.index.search(" ".join(terms), filters=filters or None, operator=operator)
        matches = [at(hit.position) for hit in hits]
    scope = viewer.catalog_scope()
    return [
        entry
        for entry in matches
        if scope.sees(
            entry.release.generative_model.namespace, entry.release.generative_model.visibility
        )
    ]
