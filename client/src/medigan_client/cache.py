"""Layout of the client's on-disk cache, and the atomic, locked writes into it.

::

    <cache_dir>/
      catalogs/<hub key>/snapshot.json     the hub's catalogue document, byte for byte
      catalogs/<hub key>/etag              its ETag, for If-None-Match
      releases/<namespace>/<name>/<version>/<filename>   a verified artifact (the package zip)
      releases/<namespace>/<name>/<version>/package/     the extracted package
      releases/<namespace>/<name>/<version>/package.extracted   marker: sha256 it came from
      tmp/                                 partial downloads and scratch space
      locks/                               one lock file per cached item

The hub key is the hub's ``host_port`` (plus its path, when the hub is mounted below ``/``),
with every character outside ``[A-Za-z0-9._-]`` replaced, so two hubs never share a snapshot.
A file is written to a temporary sibling first and moved in with :func:`os.replace`, so readers
see the old or the new bytes, never half of them; writers of the same item take a file lock.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from filelock import FileLock

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def hub_key(hub_url: str) -> str:
    """The directory name of a hub's catalogue: sanitized ``host_port[_path]``."""
    parts = urlsplit(hub_url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = parts.port or default
    key = f"{(parts.hostname or 'hub').lower()}_{port}" if port else (parts.hostname or "hub")
    path = parts.path.strip("/")
    if path:
        key += "_" + path
    return _UNSAFE.sub("_", key)


def _safe_component(value: str) -> str:
    # Identifiers are already validated by the card schema; this keeps a hostile value (``..``,
    # a slash) from ever naming a path outside the cache.
    cleaned = _UNSAFE.sub("_", value)
    if cleaned in {"", ".", ".."}:
        cleaned = "_" + cleaned
    return cleaned


@dataclass(frozen=True)
class Cache:
    """Paths inside one cache directory, and the primitives to write there safely."""

    root: Path

    def catalog_dir(self, hub_url: str) -> Path:
        """Directory holding one hub's snapshot and ETag."""
        return self.root / "catalogs" / hub_key(hub_url)

    def snapshot_path(self, hub_url: str) -> Path:
        """The cached catalogue document of a hub."""
        return self.catalog_dir(hub_url) / "snapshot.json"

    def etag_path(self, hub_url: str) -> Path:
        """The ETag that came with the cached catalogue document."""
        return self.catalog_dir(hub_url) / "etag"

    def release_dir(self, namespace: str, name: str, version: str) -> Path:
        """Directory of one release's artifacts and extracted package."""
        return (
            self.root
            / "releases"
            / _safe_component(namespace)
            / _safe_component(name)
            / _safe_component(version)
        )

    def artifact_path(self, namespace: str, name: str, version: str, filename: str) -> Path:
        """Where a verified artifact of a release lives."""
        return self.release_dir(namespace, name, version) / _safe_component(filename)

    def package_dir(self, namespace: str, name: str, version: str) -> Path:
        """Where a release's package is extracted."""
        return self.release_dir(namespace, name, version) / "package"

    def extracted_marker(self, namespace: str, name: str, version: str) -> Path:
        """File whose content is the sha256 of the archive the package was extracted from."""
        return self.release_dir(namespace, name, version) / "package.extracted"

    @property
    def tmp_dir(self) -> Path:
        """Scratch directory on the same file system as the cache (so os.replace is atomic)."""
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def partial_path(self, key: str) -> Path:
        """The temporary file of a download in progress, stable per ``key`` so it can resume."""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        return self.tmp_dir / f"{digest}.part"

    def lock(self, key: str, *, timeout: float = 600.0) -> FileLock:
        """An inter-process lock for one cache item (``key`` is any string naming it)."""
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        return FileLock(str(locks / f"{digest}.lock"), timeout=timeout)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
