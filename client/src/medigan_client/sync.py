"""Keep a local copy of a hub's catalogue and answer "which release is X" from it, offline.

:func:`sync` brings the cached copy up to date through the hub's change feed
(``GET /api/v1/changes?since=<serial>``: one small request when nothing changed, the changed
entries otherwise), or fetches ``GET /api/v1/catalog`` whole, with ``If-None-Match`` (304 keeps
the copy), when there is no copy, when the hub has no feed or no longer reaches back that far
(410), or when the feed is of another viewer's catalogue (a new token). The document is stored
atomically in the cache; when the hub cannot be reached it falls back to the cached copy with a
warning. :func:`load_snapshot` parses the cached copy, :func:`latest_cards`
picks the newest release of each model and :func:`find_release` resolves ``ns/name[@version]``.

Beside the snapshot the cache keeps its search index (``search-index.json``, see
:mod:`medigan_catalog.search_index`), built when a sync stores a new snapshot and tagged with the
sha256 of the snapshot's bytes. :func:`load_indexed_catalog` uses it only for those same bytes:
a missing, damaged or stale index (another snapshot, another index format) is rebuilt from the
snapshot and stored again, without a word. A search then parses only the cards of its hits.

A token that sees private models gets a snapshot with their cards, so the snapshot (like every
file :func:`medigan_client.cache.write_atomic` writes) is 0600 from the moment it exists, whatever
its entries. The hub's serial and ETag are per viewer: after a token change the hub may answer a
lower serial under a new ETag, which is a new document like any other and replaces the cached
one. :func:`release_visibility` tells the download code which releases to keep private.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medigan_catalog.search_index import IndexEntry, SearchIndex, SearchIndexInvalidError
from medigan_client.cache import Cache, write_atomic
from medigan_client.errors import (
    BadRequestError,
    HubUnreachableError,
    NotFoundError,
    OfflineError,
    ServerError,
)
from medigan_client.settings import ClientSettings

# A search answered from the index needs neither the wire models (pydantic) nor HTTP (httpx):
# those are imported by the functions that parse a snapshot or talk to the hub, which keeps
# ``medigan-client search`` and ``from medigan_client import Client`` fast to start.
if TYPE_CHECKING:
    from medigan_catalog.schema import Card
    from medigan_catalog.snapshot import CatalogSnapshot, SnapshotRelease
    from medigan_client.http import HubSession


@dataclass(frozen=True)
class Snapshot:
    """A hub's catalogue as this client version reads it, and which hub it came from.

    ``skipped`` names each release the hub listed that this version cannot read, and why.
    """

    document: CatalogSnapshot
    hub_url: str
    skipped: tuple[str, ...] = ()

    @property
    def serial(self) -> int:
        """The hub's catalogue serial this snapshot shows."""
        return self.document.serial

    @property
    def generated_at(self) -> str | None:
        """When the hub rendered the snapshot (ISO 8601), if it said."""
        stamp = self.document.generated_at
        return stamp.isoformat() if stamp is not None else None

    @property
    def releases(self) -> tuple[SnapshotRelease, ...]:
        """Every published release, in catalogue order."""
        return self.document.releases


@dataclass(frozen=True)
class SyncResult:
    """What :func:`sync` did: the serial held now, whether it changed, whether it is the cache's."""

    serial: int
    release_count: int
    changed: bool
    from_cache: bool
    warning: str | None = None
    # The name of the hub synced (ClientSettings.hub_name).
    hub: str = ""
    # One line per release that this sync found newly deprecated or yanked, with the reason
    # and the replacement (the CLI prints them as warnings).
    notices: tuple[str, ...] = ()


def parse_snapshot(data: object, *, hub_url: str) -> Snapshot:
    """Parse a catalogue document; releases this version cannot read are listed in ``skipped``."""
    from medigan_catalog.snapshot import SnapshotInvalidError
    from medigan_catalog.snapshot import parse_snapshot as read_snapshot

    try:
        parsed = read_snapshot(data)
    except SnapshotInvalidError as error:
        raise ServerError(f"the catalogue of {hub_url} is {error.message}") from None
    return Snapshot(document=parsed.snapshot, hub_url=hub_url, skipped=parsed.skipped)


def _read_cached_document(settings: ClientSettings) -> dict[str, object] | None:
    path = Cache(settings.cache_dir).snapshot_path(settings.hub_url)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(document: dict[str, object], path: Path) -> str:
    generated = document.get("generated_at")
    if not generated:
        generated = (
            datetime.fromtimestamp(path.stat().st_mtime).astimezone().isoformat(timespec="seconds")
        )
    return f"the snapshot from {generated}, serial {document.get('serial', 0)}"


def sync(settings: ClientSettings, *, session: HubSession | None = None) -> SyncResult:
    """Bring the cached catalogue of ``settings.hub_url`` up to date.

    Sends ``If-None-Match`` with the cached ETag; 304 keeps the cached document, 200 replaces it
    atomically. When the hub is unreachable (or the client is offline) and a cached document
    exists, returns it with ``from_cache=True`` and a warning; otherwise raises
    :class:`HubUnreachableError` / :class:`OfflineError`.

    Every snapshot and feed page is checked against the keys pinned for the hub before it is
    parsed (:mod:`medigan_client.trust`); a bad, missing or unknown signature raises
    ``SignatureInvalidError``, ``SignatureMissingError`` or ``KeyChangedError`` and leaves the
    cached copy as it was. A hub with ``verify = false`` is synced unchecked, with a warning.
    """
    result = replace(_sync(settings, session=session), hub=settings.hub_name)
    if settings.verify or settings.offline:
        return result
    from medigan_client.trust import unverified_warning

    warnings = [w for w in (result.warning, unverified_warning(settings)) if w]
    return replace(result, warning="; ".join(warnings))


def _lifecycle_states(document: dict[str, object] | None) -> dict[str, str]:
    """``ns/name@version`` -> state of each release of a stored catalogue document, read from
    the raw JSON (an entry without ``state`` is published)."""
    releases = document.get("releases") if document is not None else None
    states: dict[str, str] = {}
    for entry in releases if isinstance(releases, list) else []:
        if isinstance(entry, dict):
            key = f"{entry.get('model_id')}@{entry.get('version')}"
            states[key] = str(entry.get("state") or "published")
    return states


def _lifecycle_notices(
    cached: dict[str, object] | None, releases: Iterable[SnapshotRelease]
) -> tuple[str, ...]:
    """What a user should hear after a sync: each release that became deprecated or yanked
    since the cached copy."""
    before = _lifecycle_states(cached)
    return tuple(
        entry.warning
        for entry in releases
        if entry.warning is not None
        and before.get(f"{entry.model_id}@{entry.version}", "published") != entry.state.value
    )


def _sync(settings: ClientSettings, *, session: HubSession | None) -> SyncResult:
    from medigan_catalog.snapshot import CATALOG_PATH
    from medigan_client.http import HubSession
    from medigan_client.trust import verified_body

    cache = Cache(settings.cache_dir)
    snapshot_path = cache.snapshot_path(settings.hub_url)
    etag_path = cache.etag_path(settings.hub_url)
    cached = _read_cached_document(settings)

    if settings.offline:
        if cached is None:
            raise OfflineError(
                f"offline mode and no catalogue of {settings.hub_url} in {cache.root}; "
                "run `medigan-client sync` once while online"
            )
        return SyncResult(
            serial=_serial(cached),
            release_count=_count(cached),
            changed=False,
            from_cache=True,
            warning=f"offline mode; using {_describe(cached, snapshot_path)}",
        )

    headers: dict[str, str] = {"Accept": "application/json"}
    if cached is not None and etag_path.is_file():
        headers["If-None-Match"] = etag_path.read_text(encoding="utf-8").strip()

    own_session = session is None
    hub = session or HubSession(settings)
    try:
        followed = _follow_feed(settings, hub, cached) if cached is not None else None
        response = None if followed is not None else hub.send("GET", CATALOG_PATH, headers=headers)
        verified = None
        if response is not None and not (response.status_code == 304 and cached is not None):
            # Checked before a byte of it is parsed; a refusal leaves the cached copy alone.
            verified = verified_body(settings, hub, response, what="the catalogue")
    except HubUnreachableError as exc:
        if cached is None:
            raise HubUnreachableError(
                f"hub unreachable at {settings.hub_url} and no cached catalogue: {exc.message}",
                detail=exc.detail,
            ) from exc
        return SyncResult(
            serial=_serial(cached),
            release_count=_count(cached),
            changed=False,
            from_cache=True,
            warning=(
                f"hub unreachable at {settings.hub_url}; using {_describe(cached, snapshot_path)}"
            ),
        )
    finally:
        if own_session:
            hub.close()

    if followed is not None:
        if isinstance(followed, _Unchanged):
            assert cached is not None
            return SyncResult(
                serial=_serial(cached),
                release_count=_count(cached),
                changed=False,
                from_cache=False,
            )
        # Applied in memory already: stored without parsing it again.
        snapshot = Snapshot(document=followed, hub_url=settings.hub_url, skipped=())
        body = followed.model_dump_json(by_alias=True).encode()
        _store_snapshot(settings, snapshot, body, etag=None)
        return SyncResult(
            serial=followed.serial,
            release_count=len(followed.releases),
            changed=True,
            from_cache=False,
            notices=_lifecycle_notices(cached, followed.releases),
        )
    assert response is not None
    if response.status_code == 304 and cached is not None:
        return SyncResult(
            serial=_serial(cached),
            release_count=_count(cached),
            changed=False,
            from_cache=False,
        )
    assert verified is not None
    body, etag = verified, response.headers.get("ETag")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ServerError(f"the catalogue of {settings.hub_url} is not valid JSON") from exc
    # A document that is not a snapshot never replaces a good cached one; single releases this
    # version cannot read are skipped when the snapshot is loaded.
    snapshot = parse_snapshot(document, hub_url=settings.hub_url)
    _store_snapshot(settings, snapshot, body, etag=etag)
    changed = cached is None or _serial(cached) != _serial(document) or cached != document
    return SyncResult(
        serial=_serial(document),
        release_count=_count(document),
        changed=changed,
        from_cache=False,
        notices=_lifecycle_notices(cached, snapshot.releases) if changed else (),
    )


def _store_snapshot(
    settings: ClientSettings, snapshot: Snapshot, body: bytes, *, etag: str | None
) -> None:
    """Store a catalogue document, its ETag (or none) and its search index, atomically."""
    cache = Cache(settings.cache_dir)
    snapshot_path = cache.snapshot_path(settings.hub_url)
    etag_path = cache.etag_path(settings.hub_url)
    with cache.lock(f"catalog:{snapshot_path}"):
        write_atomic(snapshot_path, body)
        if etag:
            write_atomic(etag_path, etag.encode("utf-8"))
        else:
            etag_path.unlink(missing_ok=True)
        # The snapshot is stored; should the index not be, the first search builds it again.
        # Under the lock no other sync replaces the snapshot: the file stat-ed is this one.
        with contextlib.suppress(OSError):
            state = _file_state(snapshot_path.stat())
            _store_search_index(settings, SearchIndex.build(latest_cards(snapshot)), body, state)


class _Unchanged:
    """What _follow_feed answers when the feed holds nothing new: the cached copy is current."""


_UNCHANGED = _Unchanged()
# Changes asked for per feed page; a catalogue far behind takes a few pages, or a full snapshot
# when the hub no longer keeps its changes (410).
FEED_PAGE_SIZE = 500


def _follow_feed(
    settings: ClientSettings, hub: HubSession, cached: dict[str, object]
) -> CatalogSnapshot | _Unchanged | None:
    """The cached catalogue brought up to date by the hub's change feed.

    ``_UNCHANGED`` when nothing changed (one small request); None when the feed cannot be used
    and the whole snapshot must be fetched: the cached copy names no scope (a hub without a
    feed wrote it), the feed is of another scope (a new token, new memberships), the hub has no
    feed (404) or no longer reaches back to the cached serial (410), or the cached copy holds
    releases this version cannot read (they could not be written back).
    """
    from medigan_catalog.snapshot import (
        ChangePage,
        SnapshotInvalidError,
        apply_change_page,
        changes_path,
    )
    from medigan_catalog.snapshot import parse_snapshot as read_snapshot
    from medigan_client.errors import FeedGoneError
    from medigan_client.trust import verified_body

    scope, serial = cached.get("scope"), _serial(cached)
    if not isinstance(scope, str):
        return None
    document = None
    while True:
        try:
            response = hub.send("GET", changes_path(serial, FEED_PAGE_SIZE))
        except (NotFoundError, FeedGoneError):
            return None
        # Each page is checked before it is parsed, let alone applied to the copy.
        content = verified_body(settings, hub, response, what="a change feed page")
        try:
            page = ChangePage.model_validate_json(content)
        except ValueError as exc:
            raise ServerError(f"a change feed page of {hub.settings.hub_url} is invalid") from exc
        if page.scope != scope:
            return None
        if document is None:
            if not page.changes and not page.more and page.serial == serial:
                return _UNCHANGED
            # Parsed only now: an unchanged catalogue costs one request and no parsing.
            try:
                parsed = read_snapshot(cached)
            except SnapshotInvalidError:
                return None
            if parsed.skipped:
                return None
            document = parsed.snapshot
        try:
            document = apply_change_page(document, page)
        except SnapshotInvalidError:
            return None
        serial = document.serial
        if not page.more:
            return document


def _serial(document: dict[str, object]) -> int:
    serial = document.get("serial")
    return serial if isinstance(serial, int) else 0


def _count(document: dict[str, object]) -> int:
    releases = document.get("releases")
    return len(releases) if isinstance(releases, list) else 0


def has_snapshot(settings: ClientSettings) -> bool:
    """Whether a catalogue of this hub is cached."""
    return Cache(settings.cache_dir).snapshot_path(settings.hub_url).is_file()


def load_snapshot(settings: ClientSettings) -> Snapshot:
    """Parse the cached catalogue of ``settings.hub_url`` (no network).

    Raises :class:`NotFoundError` when nothing was synced yet.
    """
    document = _read_cached_document(settings)
    if document is None:
        raise NotFoundError(
            f"no catalogue of {settings.hub_url} in the cache {settings.cache_dir}; "
            "run `medigan-client sync` first"
        )
    return parse_snapshot(document, hub_url=settings.hub_url)


# The visibility of every release of a cached snapshot, kept while the file is the same one.
_VISIBILITIES: dict[Path, tuple[FileState, dict[str, str]]] = {}


def release_visibility(settings: ClientSettings, release_id: str) -> str | None:
    """Who may see ``ns/name@version`` on its hub, as the cached catalogue says (no network).

    ``public``, ``internal`` or ``private``; an entry without the field is ``public`` (a hub
    from before access control), and ``None`` means the cached catalogue does not list the
    release at all (or there is none), which callers treat as not public.
    """
    path = Cache(settings.cache_dir).snapshot_path(settings.hub_url)
    try:
        with path.open("rb") as handle:
            state = _file_state(os.fstat(handle.fileno()))
            remembered = _VISIBILITIES.get(path)
            if remembered is not None and remembered[0] == state:
                return remembered[1].get(release_id)
            data = handle.read()
    except OSError:
        return None
    try:
        releases = _raw_releases(data)
    except (ValueError, AttributeError):
        return None
    visibilities = {
        key: str(entry.get("visibility") or "public")
        for key, entry in releases.items()
        if isinstance(entry, dict)
    }
    _VISIBILITIES[path] = (state, visibilities)
    return visibilities.get(release_id)


def latest_cards(snapshot: Snapshot) -> list[Card]:
    """The newest release of each model (highest semver), in catalogue order of first appearance."""
    return [release.card for release in latest_releases(snapshot)]


def split_model_ref(model: str) -> tuple[str, str | None]:
    """Split ``ns/name[@version]`` into ``(model_id, version or None)``."""
    text = model.strip()
    model_id, _, version = text.partition("@")
    if "/" not in model_id or not model_id.split("/", 1)[1]:
        raise BadRequestError(
            f"{model!r} is not a model reference; write namespace/name or namespace/name@version"
        )
    return model_id, (version or None)


def latest_releases(snapshot: Snapshot) -> list[SnapshotRelease]:
    """The newest release entry of each model, in catalogue order of first appearance."""
    from medigan_catalog.snapshot import newest_per_model

    return newest_per_model(snapshot.releases)


def find_release(snapshot: Snapshot, model: str) -> Card:
    """The card of ``ns/name@version``, or of the release ``ns/name`` resolves to (see
    :func:`find_entry`)."""
    return find_entry(snapshot, model).card


def find_entry(snapshot: Snapshot, model: str) -> SnapshotRelease:
    """The catalogue entry of ``ns/name@version``, or of the release ``ns/name`` resolves to:
    its newest published release, else its newest deprecated one, never a yanked one (PEP 592;
    a yanked release is found by its exact version only).

    A medigan-style id (``00102_NAME``, ``102``, maybe with ``@version``) names the model of any
    namespace it matches (:mod:`medigan_client.model_refs`). Raises :class:`NotFoundError`
    naming close matches when the model or version is unknown, and the versions to choose from
    when every release of the model is yanked.
    """
    from medigan_catalog.snapshot import newest_selectable, version_key
    from medigan_client.model_refs import resolve_model_ref

    model = resolve_model_ref(model, (release.model_id for release in snapshot.releases))
    model_id, version = split_model_ref(model)
    candidates = [r for r in snapshot.releases if r.model_id == model_id]
    if not candidates:
        known = sorted({r.model_id for r in snapshot.releases})
        close = difflib.get_close_matches(model_id, known, n=3, cutoff=0.6)
        prefixed = [k for k in known if k.startswith(model_id)][:3]
        hints = list(dict.fromkeys([*prefixed, *close]))
        hint = f"; did you mean {', '.join(hints)}?" if hints else ""
        raise NotFoundError(
            f"no model {model_id} in the catalogue of {snapshot.hub_url} "
            f"(serial {snapshot.serial}){hint}"
        )
    versions = ", ".join(sorted((c.version for c in candidates), key=version_key))
    if version is None:
        chosen = newest_selectable(candidates)
        if chosen is None:
            raise NotFoundError(
                f"every release of {model_id} is yanked, so none is chosen for it; name one "
                f"exactly ({model_id}@VERSION) to use it anyway: {versions}"
            )
        return chosen
    for entry in candidates:
        if entry.version == version:
            return entry
    raise NotFoundError(
        f"{model_id} has no release {version} in the catalogue; releases: {versions}"
    )


# --- the search index beside the snapshot ---------------------------------------------------

SEARCH_INDEX_FILENAME = "search-index.json"
# The header note naming the snapshot file an index was built from (see load_indexed_catalog).
_SNAPSHOT_FILE_NOTE = "snapshot_file"

FileState = tuple[int, int, int, int]


def search_index_path(settings: ClientSettings) -> Path:
    """Where the search index of the cached catalogue of ``settings.hub_url`` is kept."""
    return Cache(settings.cache_dir).catalog_dir(settings.hub_url) / SEARCH_INDEX_FILENAME


def snapshot_key(data: bytes) -> str:
    """What a stored index is tagged with: the sha256 of the snapshot bytes it was built from."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _file_state(stat: os.stat_result) -> FileState:
    """Which file this is, as far as the file system tells: device, inode, size, mtime.

    A snapshot is only ever replaced by a rename (:func:`write_atomic`): a new file, so these
    change whenever its bytes do.
    """
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _store_search_index(
    settings: ClientSettings, index: SearchIndex, data: bytes, state: FileState
) -> None:
    notes = {_SNAPSHOT_FILE_NOTE: list(state)}
    write_atomic(search_index_path(settings), index.dumps(snapshot_key(data), notes=notes))


def _read_snapshot(path: Path) -> tuple[FileState, bytes]:
    """The snapshot's bytes and the state of the very file they were read from."""
    with path.open("rb") as handle:
        return _file_state(os.fstat(handle.fileno())), handle.read()


def _recorded_key(stored: bytes | None, state: FileState) -> str | None:
    """The key a stored index records, when it records being built from the file ``state``.

    Hashing a large snapshot costs more than loading its index, so an index written for this
    very file (same device, inode, size and mtime) is keyed without reading it; any other file
    is hashed.
    """
    if stored is None:
        return None
    try:
        header = SearchIndex.stored_header(stored)
    except SearchIndexInvalidError:
        return None
    key = header.get("key")
    if header.get(_SNAPSHOT_FILE_NOTE) == list(state) and isinstance(key, str):
        return key
    return None


@dataclass
class IndexedCatalog:
    """The cached catalogue seen through its search index.

    ``index`` answers searches; :meth:`card` parses the card of one entry (a hit) from the
    snapshot, once. Built by :func:`load_indexed_catalog`.
    """

    hub_url: str
    index: SearchIndex
    snapshot_path: Path
    file_state: FileState
    key: str
    _snapshot_bytes: bytes | None = field(default=None, repr=False)
    _releases: dict[str, Any] | None = field(default=None, repr=False)
    _cards: dict[str, Card] = field(default_factory=dict, repr=False)

    def card(self, entry: IndexEntry) -> Card:
        """The card of ``entry``'s release, parsed from the snapshot on first use."""
        found = self._cards.get(entry.release_id)
        if found is not None:
            return found
        from medigan_catalog.snapshot import SnapshotRelease

        if self._releases is None:
            self._releases = _raw_releases(self._snapshot())
        raw = self._releases.get(entry.release_id)
        if raw is None:
            # The index was built from these very bytes, so its entries are in them.
            raise ServerError(f"the cached catalogue of {self.hub_url} lost {entry.release_id}")
        card = SnapshotRelease.model_validate(raw).card
        self._cards[entry.release_id] = card
        return card

    def _snapshot(self) -> bytes:
        """The bytes the index was built from (read now, when they were not read to load it)."""
        if self._snapshot_bytes is None:
            state, data = _read_snapshot(self.snapshot_path)
            if state != self.file_state and snapshot_key(data) != self.key:
                raise ServerError(
                    f"the cached catalogue of {self.hub_url} changed during the search; "
                    "search again"
                )
            self._snapshot_bytes = data
        return self._snapshot_bytes


def _raw_releases(data: bytes) -> dict[str, Any]:
    """``release id -> release entry`` of a snapshot document, the first of any duplicates."""
    document = json.loads(data)
    releases: dict[str, Any] = {}
    for entry in document.get("releases", []):
        if isinstance(entry, dict):
            releases.setdefault(f"{entry.get('model_id')}@{entry.get('version')}", entry)
    return releases


def load_indexed_catalog(
    settings: ClientSettings, *, previous: IndexedCatalog | None = None
) -> IndexedCatalog:
    """The search index of the cached catalogue of ``settings.hub_url`` (no network).

    ``previous`` is returned as it is when the snapshot file has not changed since it was read.
    Otherwise the stored index is used if it was built from the snapshot's bytes (its sha256);
    when it is missing, damaged or stale it is rebuilt from the snapshot and stored again,
    atomically. Raises :class:`NotFoundError` when nothing was synced yet.
    """
    snapshot_path = Cache(settings.cache_dir).snapshot_path(settings.hub_url)
    index_path = search_index_path(settings)
    try:
        stored: bytes | None = index_path.read_bytes()
    except OSError:
        stored = None
    data: bytes | None = None
    try:
        with snapshot_path.open("rb") as handle:
            state = _file_state(os.fstat(handle.fileno()))
            if previous is not None and previous.file_state == state:
                return previous
            key = _recorded_key(stored, state)
            if key is None:
                data = handle.read()
                key = snapshot_key(data)
    except FileNotFoundError:
        raise NotFoundError(
            f"no catalogue of {settings.hub_url} in the cache {settings.cache_dir}; "
            "run `medigan-client sync` first"
        ) from None
    if stored is not None:
        try:
            index = SearchIndex.loads(stored, key)
        except SearchIndexInvalidError:
            pass
        else:
            return IndexedCatalog(settings.hub_url, index, snapshot_path, state, key, data)

    if data is None:
        state, data = _read_snapshot(snapshot_path)
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise ServerError(f"the cached catalogue of {settings.hub_url} is not JSON") from exc
    cards = latest_cards(parse_snapshot(document, hub_url=settings.hub_url))
    index = SearchIndex.build(cards)
    # A read-only cache still searches; the index is then simply built again next time.
    with contextlib.suppress(OSError):
        _store_search_index(settings, index, data, state)
    return IndexedCatalog(
        settings.hub_url,
        index,
        snapshot_path,
        state,
        snapshot_key(data),
        data,
        # The cards were parsed to build the index: kept for the hits.
        _cards={card.release_id: card for card in cards},
    )
