"""Layout of the client's on-disk cache, and the atomic, locked writes into it.

::

    <cache_dir>/
      catalogs/<hub key>/snapshot.json     the hub's catalogue document, byte for byte
      catalogs/<hub key>/etag              its ETag, for If-None-Match
      catalogs/<hub key>/search-index.json its search index (medigan_client.sync), rebuilt if stale
      releases/<namespace>/<name>/<version>/<filename>   a verified artifact (the package zip)
      releases/<namespace>/<name>/<version>/package/     the extracted package
      releases/<namespace>/<name>/<version>/package.extracted   marker: sha256 it came from
      venvs/<key>/                         a virtual environment per release (venv isolation)
      datasets/<key>/                      generated data sets, kept for reuse
      tmp/                                 partial downloads and scratch space
      locks/                               one lock file per cached item

The hub key is the hub's ``host_port`` (plus its path, when the hub is mounted below ``/``),
with every character outside ``[A-Za-z0-9._-]`` replaced, so two hubs never share a snapshot.
A file is written to a temporary sibling first and moved in with :func:`os.replace`, so readers
see the old or the new bytes, never half of them; writers of the same item take a file lock.

Two kinds of inter-process locks live in ``locks/``, both named by the item's path relative to
the cache root (so ``./cache`` and ``/abs/cache`` agree):

* :meth:`Cache.item_lock`, exclusive, held while an item is written (download, extraction,
  venv build) or deleted (``cache prune``/``verify --fix``);
* :meth:`Cache.in_use`, shared, held by whoever runs from an item for a long time (generation
  from a package, a venv); deleting takes it exclusively and without waiting, so an item in use
  is skipped, never removed under a running model. (POSIX only: where ``fcntl`` is missing the
  shared lease is a no-op and only the item lock protects.)

"Last used" is the modification time of the item's directory, refreshed with
:meth:`Cache.mark_used` (a ``utime``, no extra files inside the item).

Private releases (a snapshot entry that is not ``public``) are kept readable by their user only:
:meth:`Cache.make_release_dir` creates their model and version folders 0700, and the files
written into them are created 0600 (see :mod:`medigan_client.download`). Every file
:func:`write_atomic` writes is 0600 from the start (``mkstemp``), snapshots included.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from filelock import FileLock

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# What the cache gives the folders and files of a release that is not public.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def restrict_to_owner(path: Path) -> None:
    """Narrow an existing folder to 0700 or file to 0600 when it is wider (never widen)."""
    mode = path.stat().st_mode
    wanted = PRIVATE_DIR_MODE if stat.S_ISDIR(mode) else PRIVATE_FILE_MODE
    if stat.S_IMODE(mode) & ~wanted:
        path.chmod(stat.S_IMODE(mode) & wanted)


def create_private_file(path: Path) -> None:
    """Make sure ``path`` exists and is readable by its owner only, before anything is in it.

    A missing file is created 0600 (``os.open``'s mode); an existing one is narrowed to 0600
    through its descriptor, so whatever is written next is never readable by others.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(descriptor, PRIVATE_FILE_MODE)
    finally:
        os.close(descriptor)


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

    def make_release_dir(self, namespace: str, name: str, version: str, *, private: bool) -> Path:
        """Create (if missing) and return the directory of one release.

        With ``private`` the model and version folders are created 0700 (``mkdir``'s mode, which
        the umask can only narrow), so no other user ever sees inside them, not even for a
        moment; existing ones wider than that (a release cached while it was public) are
        narrowed to 0700. Without it, missing folders get the default mode.
        """
        release_dir = self.release_dir(namespace, name, version)
        if not private:
            release_dir.mkdir(parents=True, exist_ok=True)
            return release_dir
        model_dir = release_dir.parent
        model_dir.parent.mkdir(parents=True, exist_ok=True)
        for folder in (model_dir, release_dir):
            try:
                folder.mkdir(mode=PRIVATE_DIR_MODE)
            except FileExistsError:
                restrict_to_owner(folder)
        return release_dir

    def artifact_path(self, namespace: str, name: str, version: str, filename: str) -> Path:
        """Where a verified artifact of a release lives."""
        return self.release_dir(namespace, name, version) / _safe_component(filename)

    def package_dir(self, namespace: str, name: str, version: str) -> Path:
        """Where a release's package is extracted."""
        return self.release_dir(namespace, name, version) / "package"

    def extracted_marker(self, namespace: str, name: str, version: str) -> Path:
        """File whose content is the sha256 of the archive the package was extracted from."""
        return self.release_dir(namespace, name, version) / "package.extracted"

    def venv_dir(self, key: str) -> Path:
        """The virtual environment of one release and dependency set (``key`` names both)."""
        return self.root / "venvs" / _safe_component(key)

    def dataset_dir(self, key: str) -> Path:
        """A generated data set kept for reuse (``key`` names model, seed, count, arguments)."""
        return self.root / "datasets" / _safe_component(key)

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

    def relative_key(self, path: Path) -> str:
        """``path`` relative to the cache root, with ``/`` separators (stable across spellings).

        Paths outside the root are returned absolute, so they still name one thing.
        """
        absolute = Path(path).resolve()
        root = self.root.resolve()
        try:
            return absolute.relative_to(root).as_posix()
        except ValueError:
            return absolute.as_posix()

    def item_lock(self, path: Path, *, timeout: float = 600.0) -> FileLock:
        """The exclusive lock of one cached item (an artifact, a package, a venv, a partial)."""
        return self.lock(f"item:{self.relative_key(path)}", timeout=timeout)

    def _lease_path(self, path: Path) -> Path:
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(self.relative_key(path).encode("utf-8")).hexdigest()[:32]
        return locks / f"{digest}.use"

    @contextlib.contextmanager
    def in_use(self, path: Path) -> Iterator[None]:
        """Hold a shared lease on an item while running from it; pruning skips leased items.

        Any number of processes may hold the lease at once; it only waits while the item is
        being deleted.
        """
        with _lease(self._lease_path(path), exclusive=False, wait=True) as held:
            assert held  # a waiting lease is always granted
            yield

    @contextlib.contextmanager
    def claim_unused(self, path: Path) -> Iterator[bool]:
        """Try to take an item's lease exclusively without waiting; yields whether it was free.

        While a ``True`` claim is held, no new :meth:`in_use` lease starts, so the item can be
        deleted safely.
        """
        with _lease(self._lease_path(path), exclusive=True, wait=False) as held:
            yield held

    def mark_used(self, path: Path) -> None:
        """Record that an item was used now (its directory's mtime); quiet when it is gone."""
        with contextlib.suppress(OSError):
            os.utime(path)


if sys.platform == "win32":  # pragma: no cover - exercised only on Windows

    @contextlib.contextmanager
    def _lease(path: Path, *, exclusive: bool, wait: bool) -> Iterator[bool]:
        # msvcrt has no shared locks; item locks still serialise writers and deleters.
        yield True

else:
    import fcntl

    @contextlib.contextmanager
    def _lease(path: Path, *, exclusive: bool, wait: bool) -> Iterator[bool]:
        # flock is per open file description: a second open in the same process conflicts
        # like another process would, which is what pruning from a busy process needs.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            try:
                fcntl.flock(fd, mode if wait else mode | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


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
