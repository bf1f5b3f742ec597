"""Keep a local copy of a hub's catalogue and answer "which release is X" from it, offline.

:func:`sync` fetches ``GET /api/v1/catalog`` with ``If-None-Match`` (304 keeps the copy) and
stores the document atomically in the cache; when the hub cannot be reached it falls back to
the cached copy with a warning. :func:`load_snapshot` parses the cached copy, :func:`latest_cards`
picks the newest release of each model and :func:`find_release` resolves ``ns/name[@version]``.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from medigan_catalog.schema import Card
from medigan_catalog.snapshot import (
    CATALOG_PATH,
    CatalogSnapshot,
    SnapshotInvalidError,
    SnapshotRelease,
    newest,
    newest_per_model,
    version_key,
)
from medigan_catalog.snapshot import parse_snapshot as read_snapshot
from medigan_client.cache import Cache, write_atomic
from medigan_client.errors import (
    BadRequestError,
    HubUnreachableError,
    NotFoundError,
    OfflineError,
    ServerError,
)
from medigan_client.http import HubSession
from medigan_client.settings import ClientSettings


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


def parse_snapshot(data: object, *, hub_url: str) -> Snapshot:
    """Parse a catalogue document; releases this version cannot read are listed in ``skipped``."""
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
    """
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
        response = hub.send("GET", CATALOG_PATH, headers=headers)
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

    if response.status_code == 304 and cached is not None:
        return SyncResult(
            serial=_serial(cached), release_count=_count(cached), changed=False, from_cache=False
        )
    body = response.content
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ServerError(f"the catalogue of {settings.hub_url} is not valid JSON") from exc
    # A document that is not a snapshot never replaces a good cached one; single releases this
    # version cannot read are skipped when the snapshot is loaded.
    parse_snapshot(document, hub_url=settings.hub_url)
    with cache.lock(f"catalog:{snapshot_path}"):
        write_atomic(snapshot_path, body)
        etag = response.headers.get("ETag")
        if etag:
            write_atomic(etag_path, etag.encode("utf-8"))
        else:
            etag_path.unlink(missing_ok=True)
    changed = cached is None or _serial(cached) != _serial(document) or cached != document
    return SyncResult(
        serial=_serial(document), release_count=_count(document), changed=changed, from_cache=False
    )


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
    return newest_per_model(snapshot.releases)


def find_release(snapshot: Snapshot, model: str) -> Card:
    """The card of ``ns/name@version``, or of the newest release of ``ns/name``.

    Raises :class:`NotFoundError` naming close matches when the model or version is unknown.
    """
    model_id, version = split_model_ref(model)
    candidates = [
        r.card for r in snapshot.releases if f"{r.card.namespace}/{r.card.name}" == model_id
    ]
    if not candidates:
        known = sorted({f"{r.card.namespace}/{r.card.name}" for r in snapshot.releases})
        close = difflib.get_close_matches(model_id, known, n=3, cutoff=0.6)
        prefixed = [k for k in known if k.startswith(model_id)][:3]
        hints = list(dict.fromkeys([*prefixed, *close]))
        hint = f"; did you mean {', '.join(hints)}?" if hints else ""
        raise NotFoundError(
            f"no model {model_id} in the catalogue of {snapshot.hub_url} "
            f"(serial {snapshot.serial}){hint}"
        )
    if version is None:
        chosen = newest(candidates)
        assert chosen is not None  # candidates is not empty
        return chosen
    for card in candidates:
        if card.version == version:
            return card
    versions = ", ".join(sorted((c.version for c in candidates), key=version_key))
    raise NotFoundError(f"{model_id} has no published release {version}; releases: {versions}")
