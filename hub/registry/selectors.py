"""Reads on the registry and the rules of who sees what.

Published and deprecated releases are public. A release on its way (submitted to in review) or
turned down is seen by its submitter, the model's owner and reviewers only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from hub.accounts.selectors import user_is_reviewer
from hub.registry.models import Artifact, CatalogSerial, GenerativeModel, Release
from medigan_catalog.lifecycle import CATALOGUE_STATES, VISIBLE_STATES
from medigan_catalog.schema import Card, card_from_json
from medigan_catalog.search_index import SearchIndex
from medigan_catalog.snapshot import artifact_path, newest_per_model, sample_grid_path

_VISIBLE = sorted(state.value for state in VISIBLE_STATES)
_CATALOGUE = sorted(state.value for state in CATALOGUE_STATES)


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


def release_list_catalogue() -> QuerySet[Release]:
    """Every release the catalogue lists (published), in catalogue order: model id, publication."""
    return (
        Release.objects.filter(state__in=_CATALOGUE)
        .select_related("generative_model")
        .order_by("generative_model__namespace", "generative_model__name", "published_at", "pk")
    )


def artifacts_stored_in_catalogue() -> set[tuple[int, str]]:
    """(release id, filename) of every artifact this hub stores for a catalogue release.

    One query joined on the release's state, not an ``IN`` list of every release id, so it stays
    one statement at any catalogue size.
    """
    rows = (
        Artifact.objects.filter(release__state__in=_CATALOGUE)
        .exclude(file="")
        .values_list("release_id", "filename")
    )
    return {(int(release_id), str(filename)) for release_id, filename in rows}


def release_visible_q(user: AbstractBaseUser | AnonymousUser) -> Q:
    """The filter that limits releases to what ``user`` may see."""
    if user_is_reviewer(user) or getattr(user, "is_staff", False):
        return Q()
    visible = Q(state__in=_VISIBLE)
    if user.is_authenticated:
        visible |= Q(submitted_by=user) | Q(generative_model__owner=user)
    return visible


def release_get_visible(
    *, namespace: str, name: str, version: str, user: AbstractBaseUser | AnonymousUser
) -> Release | None:
    """The release ``namespace/name@version`` if ``user`` may see it."""
    return (
        Release.objects.filter(release_visible_q(user))
        .select_related("generative_model")
        .filter(generative_model__namespace=namespace, generative_model__name=name, version=version)
        .first()
    )


def model_get_visible(
    *, namespace: str, name: str, user: AbstractBaseUser | AnonymousUser
) -> tuple[GenerativeModel, list[Release]] | None:
    """A generative model with the releases ``user`` may see, or None if none is visible."""
    generative_model = GenerativeModel.objects.filter(namespace=namespace, name=name).first()
    if generative_model is None:
        return None
    releases = list(
        generative_model.releases.filter(release_visible_q(user)).order_by("created_at")
    )
    if not releases:
        return None
    return generative_model, releases


def artifact_get_downloadable(
    *,
    namespace: str,
    name: str,
    version: str,
    filename: str,
    user: AbstractBaseUser | AnonymousUser,
) -> Artifact | None:
    """The artifact of a visible release, or None."""
    release = release_get_visible(namespace=namespace, name=name, version=version, user=user)
    if release is None:
        return None
    return release.artifacts.filter(filename=filename).first()


def artifact_download_path(release: Release, artifact_filename: str) -> str:
    """The hub-relative path at which an artifact is served."""
    return artifact_path(release.model_id, release.version, artifact_filename)


def release_sample_grid_get(
    *, namespace: str, name: str, version: str, user: AbstractBaseUser | AnonymousUser
) -> Release | None:
    """The release ``namespace/name@version`` if ``user`` may see its sample grid and it has one.

    The grid shows what the package generates, so it is exactly as visible as the release: anyone
    for a published one; for one in review or rejected, its submitter, the model's owner,
    reviewers and staff.
    """
    release = release_get_visible(namespace=namespace, name=name, version=version, user=user)
    if release is None or not release.sample_grid:
        return None
    return release


def release_is_public(release: Release) -> bool:
    """Whether anyone, signed in or not, may see ``release``."""
    return release.state in _VISIBLE


def release_sample_grid_path(release: Release) -> str | None:
    """The hub-relative path of the access-checked view of the release's grid, or None."""
    if not release.sample_grid:
        return None
    return sample_grid_path(release.model_id, release.version)


def release_card(release: Release) -> Card:
    """The release's card, read through the catalog's schema."""
    return card_from_json(release.card)


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


def catalog_newest_entries() -> list[CatalogEntry]:
    """The newest catalogue release of each model (by semantic version), with its card."""
    newest = newest_per_model(
        release_list_catalogue(),
        model_id=lambda release: release.model_id,
        version=lambda release: release.version,
    )
    return [CatalogEntry(release, release_card(release)) for release in newest]


@dataclass(frozen=True)
class CatalogSearch:
    """The newest catalogue entries at one serial, and their search index (same order)."""

    serial: int
    changed_at: datetime | None
    entries: tuple[CatalogEntry, ...]
    index: SearchIndex


_search_kept: CatalogSearch | None = None
_search_lock = threading.Lock()


def catalog_search() -> CatalogSearch:
    """The catalogue's entries and search index, built once per serial in this process.

    Like the rendered snapshot (``hub.snapshot``) it is keyed by the serial and the time it last
    changed, read in one query per call; the threads of a worker that all see a new serial build
    it once, under a lock. Before anything was published there is no change time to tell two
    databases at serial 0 apart, so nothing is kept.
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
        # Kept under the serial read before building: a change that lands meanwhile is in these
        # entries already, and its new serial builds again on the next call.
        _search_kept = _catalog_search_build(state)
        return _search_kept


def _catalog_search_build(state: SerialState) -> CatalogSearch:
    entries = tuple(catalog_newest_entries())
    index = SearchIndex.build(entry.card for entry in entries)
    return CatalogSearch(state.serial, state.changed_at, entries, index)


def catalog_search_clear() -> None:
    """Forget the search index this process keeps (tests; an operator's shell)."""
    global _search_kept
    with _search_lock:
        _search_kept = None


def model_search(*, query: str, operator: str, medigan_semantics: bool) -> list[CatalogEntry]:
    """Newest published release of each model that matches ``query``.

    ``operator`` is one of ``medigan_catalog.search.OPERATORS`` (AND, OR, XOR) under either
    semantics. ``medigan_semantics`` reproduces medigan's value matching (whole values,
    catalogue order); otherwise the hub's token and prefix search ranks the results. Both are
    answered by the catalogue's search index (:func:`catalog_search`).
    """
    found = catalog_search()
    entries = found.entries
    if not query.strip():
        return list(entries)
    if medigan_semantics:
        positions = found.index.medigan_find_matching(query.split(), operator)
        return [entries[position] for position in positions]
    return [entries[hit.position] for hit in found.index.search(query, operator=operator)]
