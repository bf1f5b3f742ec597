"""The hub's signing keys: kept in files outside the database, generated on first use, rotated.

The hub signs its catalogue snapshot, each change-feed page and its key set
(``medigan_catalog.signing``), and attests each release it publishes. Its Ed25519 keys live in
``MEDIGAN_SIGNING_KEY_DIR`` (default ``<data dir>/keys``), never in the database, so a database
dump or a restored backup does not carry them:

- ``<hex id>.pem``: one private key each, mode 0600, in a 0700 folder;
- ``keys.json``: when each key was made and when it retires.

The first process that needs a key makes one, under a file lock, so gunicorn's workers and the
Celery worker agree on it. ``manage.py signing_key rotate`` makes a new key and gives the old ones
a retirement time (an overlap, 14 days by default): until then the hub signs with both, so a
client that pinned the old key accepts the new one through a key set signed by the old key. A
retired key signs nothing and leaves the key set. Each process reads ``keys.json`` again when its
modification time changes.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from medigan_catalog.schema import Card
from medigan_catalog.signing import (
    Attestation,
    KeySet,
    PublicKey,
    Signature,
    SigningKey,
    attest,
    format_signatures,
)

_INDEX = "keys.json"
_LOCK = ".lock"
DEFAULT_OVERLAP = timedelta(days=14)


@dataclass(frozen=True)
class HubKey:
    """A signing key of this hub and its lifetime."""

    key: SigningKey
    created_at: datetime
    retires_at: datetime | None

    @property
    def key_id(self) -> str:
        return self.key.key_id

    def active(self, now: datetime) -> bool:
        return self.retires_at is None or self.retires_at > now

    def public(self) -> PublicKey:
        return PublicKey(
            key_id=self.key.key_id,
            public_key=self.key.public_key_b64(),
            created_at=self.created_at,
            retires_at=self.retires_at,
        )


def key_dir() -> Path:
    return Path(settings.MEDIGAN_SIGNING_KEY_DIR)


def hub_name() -> str:
    """This hub's name, as its attestations and key set carry it (``MEDIGAN_HUB_NAME``)."""
    return str(settings.MEDIGAN_HUB_NAME)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (folder / _LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_index(folder: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads((folder / _INDEX).read_text())
    except FileNotFoundError:
        return []
    return list(document.get("keys", []))


def _write_index(folder: Path, entries: list[dict[str, Any]]) -> None:
    temporary = folder / f".{_INDEX}.tmp"
    temporary.write_text(json.dumps({"keys": entries}, indent=2) + "\n")
    temporary.chmod(0o600)
    temporary.replace(folder / _INDEX)


def _write_key(folder: Path, key: SigningKey) -> None:
    path = folder / f"{key.key_id.split(':', 1)[1]}.pem"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.to_pem())


def _load(folder: Path) -> list[HubKey]:
    keys = []
    for entry in _read_index(folder):
        pem = (folder / f"{entry['key_id'].split(':', 1)[1]}.pem").read_bytes()
        key = SigningKey.from_pem(pem)
        if key.key_id != entry["key_id"]:
            raise RuntimeError(f"{folder}: the key file of {entry['key_id']} holds another key")
        retires = entry.get("retires_at")
        keys.append(
            HubKey(
                key=key,
                created_at=datetime.fromisoformat(entry["created_at"]),
                retires_at=datetime.fromisoformat(retires) if retires else None,
            )
        )
    return keys


def _entry(key: HubKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "created_at": key.created_at.isoformat(),
        "retires_at": key.retires_at.isoformat() if key.retires_at else None,
    }


class _KeyStore:
    """This process's view of the key folder, read again when ``keys.json`` changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folder: Path | None = None
        self._stamp: tuple[int, int] | None = None
        self._keys: list[HubKey] = []

    def _stamp_of(self, folder: Path) -> tuple[int, int] | None:
        try:
            stat = (folder / _INDEX).stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_ino

    def load(self) -> list[HubKey]:
        """Every key of the folder, made on first use when there is none."""
        folder = key_dir()
        with self._lock:
            stamp = self._stamp_of(folder)
            if folder == self._folder and stamp is not None and stamp == self._stamp:
                return self._keys
            if stamp is None or not _read_index(folder):
                with _locked(folder):
                    if not _read_index(folder):
                        created = HubKey(SigningKey.generate(), timezone.now(), None)
                        _write_key(folder, created.key)
                        _write_index(folder, [_entry(created)])
                stamp = self._stamp_of(folder)
            self._folder, self._stamp, self._keys = folder, stamp, _load(folder)
            return self._keys

    def forget(self) -> None:
        with self._lock:
            self._folder, self._stamp, self._keys = None, None, []


_store = _KeyStore()


def all_keys() -> list[HubKey]:
    """Every key of this hub, retired ones included (oldest first)."""
    return list(_store.load())


def active_keys(now: datetime | None = None) -> list[HubKey]:
    """The keys this hub signs with now (newest first): one, or two during an overlap."""
    moment = now or timezone.now()
    keys = [key for key in _store.load() if key.active(moment)]
    if not keys:
        # Every key retired (an overlap that ran out with no new key is an operator's slip):
        # signing with nothing would make every client refuse the hub, so rotate now.
        rotate(overlap=timedelta(0))
        keys = [key for key in _store.load() if key.active(moment)]
    return sorted(keys, key=lambda key: key.created_at, reverse=True)


def newest_key() -> HubKey:
    """The key that attests releases published now."""
    return active_keys()[0]


def sign(body: bytes) -> str:
    """The :data:`~medigan_catalog.signing.SIGNATURE_HEADER` value for ``body``: one signature
    per active key."""
    signatures: list[Signature] = [key.key.sign(body) for key in active_keys()]
    return format_signatures(signatures)


def key_generation() -> tuple[str, ...]:
    """The ids of the active keys: a cached signature is stale when this changes."""
    return tuple(key.key_id for key in active_keys())


def release_attest(*, model_id: str, version: str, card: Card) -> Attestation:
    """This hub's attestation of a release it publishes: its newest key's signature over the
    model id, the version and every artifact's sha256 (``medigan_catalog.signing``)."""
    return attest(
        newest_key().key,
        hub=hub_name(),
        model_id=model_id,
        version=version,
        artifacts={artifact.filename: artifact.sha256 for artifact in card.artifacts},
    )


def key_set() -> KeySet:
    """The public keys a client should trust now."""
    return KeySet(hub=hub_name(), keys=tuple(key.public() for key in active_keys()))


def rotate(*, overlap: timedelta = DEFAULT_OVERLAP) -> HubKey:
    """Make a new key; every older active key retires ``overlap`` from now."""
    folder = key_dir()
    now = timezone.now()
    with _locked(folder):
        existing = _load(folder)
        created = HubKey(SigningKey.generate(), now, None)
        _write_key(folder, created.key)
        entries = [
            _entry(
                key
                if not key.active(now)
                else HubKey(
                    key.key, key.created_at, min(key.retires_at or now + overlap, now + overlap)
                )
            )
            for key in existing
        ]
        _write_index(folder, [*entries, _entry(created)])
    _store.forget()
    return created


def forget_loaded_keys() -> None:
    """Read the key folder again on next use (tests that point it elsewhere)."""
    _store.forget()
