"""Look after the local cache: list what it holds, re-verify it, and prune it safely.

Backs ``medigan-client cache ls | verify | prune``:

* :func:`list_cache` walks the cache layout (see :mod:`medigan_client.cache`) and describes every
  item: catalogue snapshots per hub, releases with their artifacts and extracted package,
  venvs, data sets, partial downloads and left-over temporary files, each with its size on disk
  and when it was last used.
* :func:`verify_cache` re-hashes every cached artifact against the sha256 recorded when it was
  downloaded (and against every cached catalogue that lists it), checks that each extracted
  package still holds its archive's files unchanged, and that snapshots parse; with ``fix`` it
  removes the damaged parts so that the next use downloads or extracts them again.
* :func:`prune_cache` removes partial downloads and stale temporary files, then whatever the
  criteria select: items unused for some days, least recently used items until the cache fits a
  size, or one model's releases. Nothing is removed while another process holds the item's
  lock (downloading, extracting) or its use lease (running from it); such items are skipped
  and reported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from filelock import Timeout

from medigan_catalog.packaging import sha256_file
from medigan_client.cache import Cache
from medigan_client.errors import BadRequestError

# Every CLI start imports this module (through the ``cache`` commands); the snapshot models and
# the sync module (pydantic, HTTP) are imported by the functions that read a snapshot.

EntryKind = Literal["catalog", "release", "venv", "dataset", "partial", "temp"]
ProblemKind = Literal["corrupt", "incomplete"]

VERIFIED_SUFFIX = ".verified"
PARTIAL_SUFFIX = ".part"
# A temporary file this old belongs to a writer that crashed; live writers finish in seconds
# (atomic writes) or keep touching their files (scratch directories of a running job).
STALE_TEMP_SECONDS = 24 * 3600
_SECONDS_PER_DAY = 86400.0
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
# What prune may evict by age or size; catalogue snapshots are tiny and offline search needs them.
_EVICTABLE: frozenset[EntryKind] = frozenset({"release", "venv", "dataset"})


@dataclass(frozen=True)
class CachedArtifact:
    """One downloaded file of a release and the sha256 recorded when it was verified."""

    filename: str
    path: Path
    size_bytes: int
    recorded_sha256: str | None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready description."""
        return {
            "filename": self.filename,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "recorded_sha256": self.recorded_sha256,
        }


@dataclass(frozen=True)
class CacheEntry:
    """One item of the cache: what it is, where, how large, when last used."""

    kind: EntryKind
    name: str
    path: Path
    size_bytes: int
    last_used: float | None
    artifacts: tuple[CachedArtifact, ...] = ()
    package_extracted: bool | None = None

    @property
    def last_used_iso(self) -> str | None:
        """``last_used`` as an ISO 8601 UTC timestamp."""
        if self.last_used is None:
            return None
        return datetime.fromtimestamp(self.last_used, tz=UTC).isoformat(timespec="seconds")

    def to_json(self) -> dict[str, object]:
        """A JSON-ready description (releases add ``artifacts`` and ``package_extracted``)."""
        data: dict[str, object] = {
            "kind": self.kind,
            "name": self.name,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "last_used": self.last_used_iso,
        }
        if self.kind == "release":
            data["artifacts"] = [artifact.to_json() for artifact in self.artifacts]
            data["package_extracted"] = self.package_extracted
        return data


@dataclass(frozen=True)
class CacheListing:
    """Everything in one cache directory, in layout order."""

    root: Path
    entries: tuple[CacheEntry, ...]

    @property
    def total_bytes(self) -> int:
        """The size of all entries together."""
        return sum(entry.size_bytes for entry in self.entries)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready description: root, entries, total."""
        return {
            "root": str(self.root),
            "entries": [entry.to_json() for entry in self.entries],
            "total_bytes": self.total_bytes,
        }


@dataclass(frozen=True)
class VerifyProblem:
    """A damaged or unfinished part of the cache, and whether ``fix`` removed it."""

    status: ProblemKind
    kind: EntryKind
    name: str
    path: Path
    reason: str
    fixed: bool = False
    skipped_reason: str | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready description."""
        return {
            "status": self.status,
            "kind": self.kind,
            "name": self.name,
            "path": str(self.path),
            "reason": self.reason,
            "fixed": self.fixed,
            "skipped_reason": self.skipped_reason,
        }


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_cache` checked and found."""

    checked: int
    problems: tuple[VerifyProblem, ...]
    busy: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no problem remains (none found, or all fixed)."""
        return all(problem.fixed for problem in self.problems)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready description."""
        return {
            "checked": self.checked,
            "ok": self.ok,
            "problems": [problem.to_json() for problem in self.problems],
            "busy": list(self.busy),
        }


@dataclass(frozen=True)
class PruneDecision:
    """One item prune removed (or would remove), or skipped, and why."""

    entry: CacheEntry
    reason: str

    def to_json(self) -> dict[str, object]:
        """A JSON-ready description."""
        return {**self.entry.to_json(), "reason": self.reason}


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune_cache` removed, or with ``dry_run`` would remove, and what it skipped."""

    dry_run: bool
    removed: tuple[PruneDecision, ...] = ()
    skipped: tuple[PruneDecision, ...] = ()
    size_before: int = 0

    @property
    def freed_bytes(self) -> int:
        """Bytes removed (or that would be)."""
        return sum(decision.entry.size_bytes for decision in self.removed)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready description."""
        return {
            "dry_run": self.dry_run,
            "removed": [decision.to_json() for decision in self.removed],
            "skipped": [decision.to_json() for decision in self.skipped],
            "freed_bytes": self.freed_bytes,
            "size_before": self.size_before,
        }


# -- listing ---------------------------------------------------------------------------------


def tree_size(path: Path) -> int:
    """Bytes of a file, or of every file below a directory (links counted, never followed)."""
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_size
    except OSError:
        return 0
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += Path(directory, name).lstat().st_size
    return total


def _mtime(path: Path) -> float | None:
    try:
        return path.lstat().st_mtime
    except OSError:
        return None


def _newest_mtime(path: Path) -> float | None:
    """The latest modification time of ``path`` or anything below it."""
    newest = _mtime(path)
    if newest is None or not path.is_dir() or path.is_symlink():
        return newest
    for directory, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            stamp = _mtime(Path(directory, name))
            if stamp is not None and stamp > newest:
                newest = stamp
    return newest


def _children(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except OSError:
        return []


def _read_sidecar_sha256(artifact: Path) -> str | None:
    try:
        record = json.loads(artifact.with_name(artifact.name + VERIFIED_SUFFIX).read_text("utf-8"))
        value = record["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value.lower() if isinstance(value, str) else None


def _is_temporary(path: Path) -> bool:
    # write_atomic leaves ``.<name>.<random>.tmp``; ensure_package stages in ``.package-*``.
    return path.name.startswith(".")


def _size_without_temporaries(directory: Path) -> int:
    # Temporaries are listed (and pruned) as entries of their own; count them once.
    temporaries = [child for child in _children(directory) if _is_temporary(child)]
    return tree_size(directory) - sum(tree_size(child) for child in temporaries)


def _release_artifacts(release_dir: Path) -> list[Path]:
    return [
        child
        for child in _children(release_dir)
        if child.is_file()
        and not _is_temporary(child)
        and not child.name.endswith(VERIFIED_SUFFIX)
        and child.name != "package.extracted"
    ]


def _release_entry(cache: Cache, release_dir: Path) -> CacheEntry:
    version = release_dir.name
    name = release_dir.parent.name
    namespace = release_dir.parent.parent.name
    artifacts = tuple(
        CachedArtifact(
            filename=path.name,
            path=path,
            size_bytes=tree_size(path),
            recorded_sha256=_read_sidecar_sha256(path),
        )
        for path in _release_artifacts(release_dir)
    )
    package = cache.package_dir(namespace, name, version)
    marker = cache.extracted_marker(namespace, name, version)
    return CacheEntry(
        kind="release",
        name=f"{namespace}/{name}@{version}",
        path=release_dir,
        size_bytes=_size_without_temporaries(release_dir),
        last_used=_mtime(release_dir),
        artifacts=artifacts,
        package_extracted=package.is_dir() and marker.is_file(),
    )


def _release_dirs(cache: Cache) -> Iterator[Path]:
    for namespace in _children(cache.root / "releases"):
        for name in _children(namespace):
            for version in _children(name):
                if version.is_dir() and not _is_temporary(version):
                    yield version


def _catalog_entries(cache: Cache) -> Iterator[CacheEntry]:
    for directory in _children(cache.root / "catalogs"):
        if directory.is_dir():
            snapshot = directory / "snapshot.json"
            yield CacheEntry(
                kind="catalog",
                name=directory.name,
                path=directory,
                size_bytes=_size_without_temporaries(directory),
                last_used=max(
                    (stamp for stamp in (_mtime(directory), _mtime(snapshot)) if stamp),
                    default=None,
                ),
            )


def _temporary_entries(cache: Cache) -> Iterator[CacheEntry]:
    """Partial downloads and scratch files in tmp/, and leftovers of atomic writes elsewhere."""
    tmp = cache.root / "tmp"
    for child in _children(tmp):
        partial = child.name.endswith(PARTIAL_SUFFIX) and child.is_file()
        yield CacheEntry(
            kind="partial" if partial else "temp",
            name=child.name,
            path=child,
            size_bytes=tree_size(child),
            last_used=_newest_mtime(child),
        )
    containers = [
        *(cache.root / "catalogs").glob("*"),
        *_release_dirs(cache),
        cache.root / "venvs",
        cache.root / "datasets",
    ]
    for container in containers:
        for child in _children(container):
            if _is_temporary(child):
                yield CacheEntry(
                    kind="temp",
                    name=cache.relative_key(child),
                    path=child,
                    size_bytes=tree_size(child),
                    last_used=_newest_mtime(child),
                )


def list_cache(cache: Cache) -> CacheListing:
    """Every item of the cache with its size and last use (nothing is changed)."""
    entries: list[CacheEntry] = [*_catalog_entries(cache)]
    entries.extend(_release_entry(cache, directory) for directory in _release_dirs(cache))
    folders: tuple[tuple[EntryKind, str], ...] = (("venv", "venvs"), ("dataset", "datasets"))
    for kind, folder in folders:
        for directory in _children(cache.root / folder):
            if not _is_temporary(directory):
                entries.append(
                    CacheEntry(
                        kind=kind,
                        name=directory.name,
                        path=directory,
                        size_bytes=tree_size(directory),
                        last_used=_mtime(directory),
                    )
                )
    entries.extend(_temporary_entries(cache))
    return CacheListing(root=cache.root, entries=tuple(entries))


# -- locking for deletion --------------------------------------------------------------------


def _item_paths(cache: Cache, entry: CacheEntry) -> list[Path]:
    """Paths whose item locks guard ``entry`` (what download/extract/build lock while writing)."""
    if entry.kind != "release":
        return [entry.path]
    version = entry.path.name
    name = entry.path.parent.name
    namespace = entry.path.parent.parent.name
    return [
        *(artifact.path for artifact in entry.artifacts),
        cache.package_dir(namespace, name, version),
    ]


def _builder_lock_keys(entry: CacheEntry) -> list[str]:
    """Lock keys that the builders of venvs and data sets take (runtime/venvs.py, dataset.py)."""
    if entry.kind == "venv":
        return [f"venv:{entry.name}"]
    if entry.kind == "dataset":
        return [f"dataset:{entry.name}"]
    return []


@contextlib.contextmanager
def _exclusive(cache: Cache, entry: CacheEntry, *, lease: bool = True) -> Iterator[str | None]:
    """Hold every lock of ``entry`` without waiting; yields None, or why the item is busy.

    With ``lease`` the item's use lease is claimed too (needed before deleting, not for reading).
    """
    locks = [cache.item_lock(path, timeout=0) for path in _item_paths(cache, entry)]
    locks += [cache.lock(key, timeout=0) for key in _builder_lock_keys(entry)]
    with contextlib.ExitStack() as stack:
        for lock in locks:
            try:
                lock.acquire()
            except Timeout:
                yield "another process is writing it (its lock is held)"
                return
            stack.callback(lock.release)
        free = stack.enter_context(cache.claim_unused(entry.path)) if lease else True
        if not free:
            yield "another process is using it"
            return
        yield None


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _remove_empty_parents(path: Path, stop: Path) -> None:
    parent = path.parent
    while parent != stop and stop in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


# -- verification ----------------------------------------------------------------------------


def _catalogued_sha256(cache: Cache) -> dict[tuple[str, str, str, str], set[str]]:
    """``(namespace, name, version, filename) -> {sha256}`` from every cached catalogue."""
    from medigan_catalog.snapshot import SnapshotInvalidError, parse_snapshot

    known: dict[tuple[str, str, str, str], set[str]] = {}
    for directory in _children(cache.root / "catalogs"):
        try:
            document = json.loads((directory / "snapshot.json").read_text("utf-8"))
            releases = parse_snapshot(document).snapshot.releases
        except (OSError, ValueError, SnapshotInvalidError):
            continue
        for release in releases:
            namespace, name, version = release.card.namespace, release.card.name, release.version
            release_dir = cache.release_dir(namespace, name, version)
            for artifact in release.card.artifacts:
                if artifact.sha256 is not None:
                    filename = cache.artifact_path(namespace, name, version, artifact.filename).name
                    key = (
                        release_dir.parent.parent.name,
                        release_dir.parent.name,
                        release_dir.name,
                        filename,
                    )
                    known.setdefault(key, set()).add(artifact.sha256.lower())
    return known


def _package_differences(archive: Path, package_dir: Path) -> str | None:
    """Why the extracted package no longer matches the archive's files, or None."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [info for info in bundle.infolist() if not info.is_dir()]
    except (OSError, zipfile.BadZipFile) as exc:
        return f"its archive cannot be read: {exc}"
    for info in members:
        extracted = package_dir.joinpath(*info.filename.split("/"))
        if not extracted.is_file():
            return f"{info.filename} is missing"
        if extracted.stat().st_size != info.file_size:
            return f"{info.filename} has {extracted.stat().st_size} bytes, not {info.file_size}"
        crc = 0
        with extracted.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                crc = zlib.crc32(chunk, crc)
        if crc != info.CRC:
            return f"{info.filename} differs from the archive"
    return None


@dataclass
class _Findings:
    checked: int = 0
    problems: list[VerifyProblem] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)


def _verify_release(
    cache: Cache,
    entry: CacheEntry,
    catalogued: dict[tuple[str, str, str, str], set[str]],
    findings: _Findings,
) -> list[tuple[VerifyProblem, list[Path]]]:
    """Problems of one release, each with the paths whose removal repairs it."""
    version = entry.path.name
    name = entry.path.parent.name
    namespace = entry.path.parent.parent.name
    found: list[tuple[VerifyProblem, list[Path]]] = []
    package = cache.package_dir(namespace, name, version)
    marker = cache.extracted_marker(namespace, name, version)

    def problem(status: ProblemKind, path: Path, reason: str, remove: list[Path]) -> None:
        found.append(
            (
                VerifyProblem(
                    status=status, kind="release", name=entry.name, path=path, reason=reason
                ),
                remove,
            )
        )

    digests: dict[str, Path] = {}
    for artifact in entry.artifacts:
        findings.checked += 1
        sidecar = artifact.path.with_name(artifact.path.name + VERIFIED_SUFFIX)
        # Extraction comes from this file: a damaged archive makes the package suspect too.
        remove = [artifact.path, sidecar, package, marker]
        digest = sha256_file(artifact.path)
        expected = catalogued.get((namespace, name, version, artifact.filename), set())
        if artifact.recorded_sha256 is not None and digest != artifact.recorded_sha256:
            problem(
                "corrupt",
                artifact.path,
                f"{artifact.filename} has sha256 {digest}, but {artifact.recorded_sha256} "
                "was recorded when it was downloaded",
                remove,
            )
        elif expected and digest not in expected:
            problem(
                "corrupt",
                artifact.path,
                f"{artifact.filename} has sha256 {digest}, but the cached catalogue lists "
                + ", ".join(sorted(expected)),
                remove,
            )
        elif artifact.recorded_sha256 is None and not expected:
            problem(
                "incomplete",
                artifact.path,
                f"{artifact.filename} has no recorded sha256 to check it against",
                remove,
            )
        else:
            digests[digest] = artifact.path

    findings.checked += 1
    # A damaged archive already removes the package it was extracted from.
    archive_problem = bool(found)
    marker_digest: str | None = None
    with contextlib.suppress(OSError):
        marker_digest = marker.read_text(encoding="ascii").strip()
    if package.is_dir() and marker_digest is None:
        problem("incomplete", package, "the package has no extraction marker", [package])
    elif marker_digest is not None and not package.is_dir():
        problem("incomplete", marker, "the extraction marker has no package", [marker])
    elif marker_digest is not None:
        archive = digests.get(marker_digest)
        if archive is None and not archive_problem:
            problem(
                "incomplete",
                package,
                f"the package was extracted from an archive (sha256 {marker_digest}) that is "
                "no longer cached",
                [package, marker],
            )
        elif archive is not None:
            difference = _package_differences(archive, package)
            if difference is not None:
                problem(
                    "corrupt",
                    package,
                    f"the extracted package differs from its archive: {difference}",
                    [package, marker],
                )
    return found


def _verify_catalog(entry: CacheEntry) -> list[tuple[VerifyProblem, list[Path]]]:
    from medigan_catalog.snapshot import SnapshotInvalidError, parse_snapshot

    snapshot = entry.path / "snapshot.json"
    try:
        document = json.loads(snapshot.read_text("utf-8"))
    except FileNotFoundError:
        reason = "the directory holds no snapshot.json"
        status: ProblemKind = "incomplete"
    except (OSError, ValueError) as exc:
        reason = f"snapshot.json cannot be read as JSON: {exc}"
        status = "corrupt"
    else:
        try:
            parse_snapshot(document)
        except SnapshotInvalidError as exc:
            reason = f"snapshot.json is {exc.message}"
            status = "corrupt"
        else:
            return []
    problem = VerifyProblem(
        status=status, kind="catalog", name=entry.name, path=snapshot, reason=reason
    )
    return [(problem, [snapshot, entry.path / "etag"])]


def _verify_venv(entry: CacheEntry) -> list[tuple[VerifyProblem, list[Path]]]:
    if (entry.path / "pyvenv.cfg").is_file():
        return []
    problem = VerifyProblem(
        status="incomplete",
        kind="venv",
        name=entry.name,
        path=entry.path,
        reason="no pyvenv.cfg: the environment was never finished",
    )
    return [(problem, [entry.path])]


def verify_cache(cache: Cache, *, fix: bool = False) -> VerifyReport:
    """Re-check every cached artifact, extracted package, snapshot and venv.

    An artifact is *corrupt* when its sha256 differs from the one recorded at download time or
    from every cached catalogue that lists it, and *incomplete* when there is nothing to check
    it against; an extracted package is corrupt when a file of its archive is missing or
    differs. Items that another process is writing or using are reported as busy, not checked.
    With ``fix`` every problem's files are removed (under the item's locks), so the next use
    downloads or extracts again; nothing else is touched.
    """
    catalogued = _catalogued_sha256(cache)
    findings = _Findings()
    for entry in list_cache(cache).entries:
        if entry.kind not in {"release", "catalog", "venv"}:
            continue
        with _exclusive(cache, entry, lease=fix) as busy:
            if busy is not None:
                findings.busy.append(f"{entry.kind} {entry.name}: {busy}")
                continue
            if entry.kind == "release":
                found = _verify_release(cache, entry, catalogued, findings)
            else:
                findings.checked += 1
                found = _verify_catalog(entry) if entry.kind == "catalog" else _verify_venv(entry)
            for problem, remove in found:
                if fix:
                    for path in remove:
                        _delete(path)
                    problem = dataclasses.replace(problem, fixed=True)
                findings.problems.append(problem)
    return VerifyReport(
        checked=findings.checked, problems=tuple(findings.problems), busy=tuple(findings.busy)
    )


# -- pruning ---------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    """Bytes in a size such as ``500M``, ``2G``, ``1.5GiB``, ``10GB`` or ``4096`` (binary units)."""
    match = _SIZE_PATTERN.match(text)
    if match is None:
        raise BadRequestError(
            f"cannot read the size {text!r}; write a number of bytes or e.g. 500M, 2G, 1.5GiB"
        )
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNITS[unit.upper()])


# A version inside a cache key: semver characters, never "_" (which separates key parts).
_KEY_VERSION = r"[0-9][0-9A-Za-z.+-]*?"


def _matches_model(cache: Cache, entry: CacheEntry, model_id: str, version: str | None) -> bool:
    namespace, _, name = model_id.partition("/")
    if entry.kind == "release":
        # Compare cache paths, so that the model id is sanitised exactly as the cache names it.
        wanted = cache.release_dir(namespace, name, version or "any")
        if version is None:
            return entry.path.parent == wanted.parent
        return entry.path == wanted
    release = re.escape(version) if version is not None else _KEY_VERSION
    ns, nm = re.escape(namespace), re.escape(name)
    # The key formats of runtime/venvs.py (venv_key) and dataset.py (dataset_key).
    if entry.kind == "venv":
        return re.fullmatch(rf"{ns}_{nm}_{release}-[0-9a-f]+", entry.name) is not None
    if entry.kind == "dataset":
        return re.fullmatch(rf"{ns}--{nm}--{release}--[0-9a-f]+", entry.name) is not None
    return False


def _is_stale_temporary(entry: CacheEntry, now: float, stale_seconds: float) -> bool:
    if entry.kind == "partial":
        return True  # guarded by the partial's lock while a download writes it
    if entry.path.name.startswith(".package-"):
        return True  # guarded by the package lock while an extraction fills it
    return entry.last_used is None or now - entry.last_used >= stale_seconds


def _temporary_guard(cache: Cache, entry: CacheEntry) -> CacheEntry:
    """The entry whose locks protect a temporary (a staging dir is its package's)."""
    if entry.path.name.startswith(".package-"):
        return CacheEntry(
            kind="temp",
            name=entry.name,
            path=entry.path.parent / "package",
            size_bytes=entry.size_bytes,
            last_used=entry.last_used,
        )
    return entry


def prune_cache(
    cache: Cache,
    *,
    older_than_days: float | None = None,
    max_size_bytes: int | None = None,
    model: str | None = None,
    dry_run: bool = False,
    now: float | None = None,
    stale_temp_seconds: float = STALE_TEMP_SECONDS,
) -> PruneReport:
    """Remove partial downloads and stale temporary files, and the items the criteria select.

    * ``older_than_days``: releases, venvs and data sets not used for that many days;
    * ``max_size_bytes``: then the least recently used of those until the cache fits;
    * ``model``: ``ns/name`` (every cached version) or ``ns/name@version``: its releases, venvs
      and data sets.

    An item is removed only while this process holds its item locks and its use lease
    exclusively; an item another process writes or runs from is skipped and reported. Catalogue
    snapshots are never pruned by age or size. With ``dry_run`` nothing changes and the report
    says what would go (busy items are still found and reported as skipped).
    """
    if older_than_days is not None and older_than_days < 0:
        raise BadRequestError(f"--older-than must be zero or more days, not {older_than_days}")
    if max_size_bytes is not None and max_size_bytes < 0:
        raise BadRequestError(f"--max-size must be zero or more bytes, not {max_size_bytes}")
    wanted_model: tuple[str, str | None] | None = None
    if model is not None:
        from medigan_client.sync import split_model_ref

        wanted_model = split_model_ref(model)
    current = time.time() if now is None else now
    listing = list_cache(cache)
    removed: list[PruneDecision] = []
    skipped: list[PruneDecision] = []

    def try_remove(entry: CacheEntry, reason: str, guard: CacheEntry | None = None) -> bool:
        with _exclusive(cache, guard or entry) as busy:
            if busy is not None:
                skipped.append(PruneDecision(entry, f"kept: {busy}"))
                return False
            if not dry_run:
                _delete(entry.path)
                if entry.kind == "release":
                    _remove_empty_parents(entry.path, cache.root / "releases")
            removed.append(PruneDecision(entry, reason))
            return True

    for entry in listing.entries:
        if entry.kind in {"partial", "temp"} and _is_stale_temporary(
            entry, current, stale_temp_seconds
        ):
            reason = "partial download" if entry.kind == "partial" else "stale temporary file"
            try_remove(entry, reason, _temporary_guard(cache, entry))

    gone: set[Path] = {decision.entry.path for decision in removed}
    candidates = [e for e in listing.entries if e.kind in _EVICTABLE and e.path not in gone]
    if wanted_model is not None:
        for entry in [e for e in candidates if _matches_model(cache, e, *wanted_model)]:
            if try_remove(entry, f"cached for {wanted_model[0]}"):
                gone.add(entry.path)
    if older_than_days is not None:
        cutoff = current - older_than_days * _SECONDS_PER_DAY
        for entry in candidates:
            if entry.path in gone or (entry.last_used is not None and entry.last_used >= cutoff):
                continue
            if try_remove(entry, f"not used for {older_than_days:g} days"):
                gone.add(entry.path)
    if max_size_bytes is not None:
        remaining = listing.total_bytes - sum(d.entry.size_bytes for d in removed)
        by_age = sorted(
            (e for e in candidates if e.path not in gone), key=lambda e: e.last_used or 0.0
        )
        for entry in by_age:
            if remaining <= max_size_bytes:
                break
            if try_remove(entry, f"least recently used, over {format_size(max_size_bytes)}"):
                gone.add(entry.path)
                remaining -= entry.size_bytes
    return PruneReport(
        dry_run=dry_run,
        removed=tuple(removed),
        skipped=tuple(skipped),
        size_before=listing.total_bytes,
    )


def format_size(size_bytes: int) -> str:
    """A human size with binary units: ``512 B``, ``1.5 KiB``, ``2.0 GiB``, ``3.0 TiB``."""
    if size_bytes < 1024:
        return f"{size_bytes} B"
    value = float(size_bytes) / 1024
    units = ["KiB", "MiB", "GiB", "TiB"]
    while value >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    return f"{value:.1f} {units[0]}"
