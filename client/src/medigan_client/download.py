"""Download a release's package into the content-verified cache, and extract it safely once.

:func:`download_release` returns the cached package zip when its sha256 and size are known to
match; otherwise it streams the first reachable URL of the card's package artifact (and only
those URLs) into a partial file while hashing, verifies sha256 and size, and moves the file
into place atomically; a ``<file>.verified`` sidecar records the sha256, size and mtime so that
later calls (and ``cache verify``) need not trust the file blindly.
:func:`ensure_package` extracts the verified zip with the catalogue's safe extraction rules
into ``.../package/`` once, recording the archive's sha256 in a marker file.

Robustness:

* a connection that breaks mid-body leaves the partial file; the download continues at once
  from where it broke with ``Range: bytes=<have>-`` (a bounded number of times, waiting the
  session's backoff), and a later call resumes it too. A server that ignores ``Range``
  (answers 200), answers a different range, or 416, restarts the file cleanly from byte 0;
  a resumed file whose hash turns out wrong is fetched once more from scratch;
* writers of one item serialise on the cache's item lock, so parallel processes sharing one
  cache download and extract each release once; the one that waits says so on stderr (when
  progress is on) and then finds the finished file;
* every use refreshes the release's "last used" time for ``cache prune``.

Private releases: a release that the cached catalogue does not list as ``public`` (``internal``,
``private``, or not listed at all) is kept readable by its user only. Its model and version
folders are created 0700, the partial download is created 0600 before a byte is written (and so
is the zip it becomes), and its package is extracted into a 0700 staging folder whose files are
narrowed to 0600 before it is moved into place, so no file is readable by others at any moment.
A release cached while it was public has its folders narrowed to 0700 on its next use. Public
releases keep the default modes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from filelock import FileLock, Timeout
from tqdm import tqdm  # type: ignore[import-untyped]

from medigan_catalog.errors import CatalogError
from medigan_catalog.packaging import ArchiveLimits, safe_extract, sha256_file
from medigan_catalog.schema import Artifact, Card
from medigan_client.cache import (
    PRIVATE_DIR_MODE,
    PRIVATE_FILE_MODE,
    Cache,
    create_private_file,
    write_atomic,
)
from medigan_client.errors import (
    ArchiveUnsafeError,
    ArtifactUnreachableError,
    AuthenticationRequiredError,
    ChecksumMismatchError,
    ClientError,
    HubUnreachableError,
    NotFoundError,
    OfflineError,
    PermissionDeniedError,
)
from medigan_client.http import HubSession
from medigan_client.settings import ClientSettings
from medigan_client.sync import release_visibility

if TYPE_CHECKING:
    from _hashlib import HASH

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class _Verified:
    sha256: str
    size: int
    mtime_ns: int


def is_private(settings: ClientSettings, card: Card) -> bool:
    """Whether a release's cached files must be readable by their user only.

    Every release the cached catalogue does not list as ``public`` is: ``internal`` and
    ``private`` ones, and one it does not list at all (the safe side when unsure).
    """
    return release_visibility(settings, card.release_id) != "public"


def package_artifact(card: Card) -> Artifact:
    """The card's package artifact; :class:`NotFoundError` when the release has none."""
    artifact = card.package_artifact
    if artifact is None or not artifact.urls:
        raise NotFoundError(f"{card.release_id} has no downloadable package artifact")
    return artifact


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _read_verified(path: Path) -> _Verified | None:
    try:
        data = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        return _Verified(str(data["sha256"]), int(data["size"]), int(data["mtime_ns"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_verified(path: Path, sha256: str) -> None:
    stat = path.stat()
    record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    write_atomic(_sidecar(path), json.dumps(record).encode("utf-8"))


def cached_sha256(path: Path, artifact: Artifact) -> str | None:
    """The sha256 of a cached artifact if it is present and matches the card, else None.

    A record written after verification spares re-hashing large files on every call; when the
    record is missing or stale (file touched), the file is hashed again.
    """
    if not path.is_file():
        return None
    stat = path.stat()
    if artifact.size is not None and stat.st_size != artifact.size:
        return None
    record = _read_verified(path)
    if record is not None and record.size == stat.st_size and record.mtime_ns == stat.st_mtime_ns:
        digest = record.sha256
    else:
        digest = sha256_file(path)
        _write_verified(path, digest)
    if artifact.sha256 is not None and digest != artifact.sha256.lower():
        return None
    return digest


def partial_download_path(cache: Cache, artifact: Artifact, target: Path, url: str) -> Path:
    """The partial file of ``artifact`` on its way to ``target``, stable so a later call resumes.

    Named by the expected sha256 when the card has one (any URL continues the same bytes),
    else by the URL; and by the target relative to the cache root.
    """
    return cache.partial_path(f"{artifact.sha256 or url}:{cache.relative_key(target)}")


@contextmanager
def _holding(lock: FileLock, waiting_message: str, progress: bool) -> Iterator[None]:
    """Hold ``lock``; when another process has it, say so (with progress on) and wait."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            print(f"{waiting_message} ...", file=sys.stderr, flush=True)
        try:
            lock.acquire()
        except Timeout as exc:
            raise ArtifactUnreachableError(
                f"{waiting_message}: gave up after {lock.timeout:g} s; is another "
                "medigan-client process stuck?"
            ) from exc
    try:
        yield
    finally:
        lock.release()


def download_release(
    settings: ClientSettings,
    card: Card,
    *,
    session: HubSession | None = None,
    progress: bool = True,
) -> Path:
    """Path of the release's verified package zip in the cache, downloading it if needed.

    Raises :class:`ChecksumMismatchError` (the partial file is deleted) when the bytes differ
    from the card, :class:`ArtifactUnreachableError` when no URL answers, and
    :class:`OfflineError` in offline mode when the file is not cached. Safe to call from many
    processes at once: one downloads, the others wait for it and reuse its file.
    """
    artifact = package_artifact(card)
    cache = Cache(settings.cache_dir)
    target = cache.artifact_path(card.namespace, card.name, card.version, artifact.filename)
    private = is_private(settings, card)
    if private and target.parent.is_dir():
        cache.make_release_dir(card.namespace, card.name, card.version, private=True)
    if cached_sha256(target, artifact) is not None:
        cache.mark_used(target.parent)
        return target
    if settings.offline:
        raise OfflineError(
            f"offline mode: the package of {card.release_id} is not in the cache "
            f"{settings.cache_dir}; run `medigan-client download {card.release_id}` online"
        )
    waiting = f"waiting for another process to finish downloading {card.release_id}"
    # No time limit: a multi-gigabyte download by another process may take long; a process
    # that dies releases its lock with it.
    with _holding(cache.item_lock(target, timeout=-1), waiting, progress):
        # Another process may have finished the same download while we waited for the lock.
        if cached_sha256(target, artifact) is None:
            own_session = session is None
            hub = session or HubSession(settings)
            try:
                _download_first_reachable(
                    hub, cache, card, artifact, target, progress, private=private
                )
            finally:
                if own_session:
                    hub.close()
    cache.mark_used(target.parent)
    return target


class _BodyInterruptedError(ArtifactUnreachableError):
    """The connection broke mid-body; the partial file was kept for a resume."""


def _download_first_reachable(
    hub: HubSession,
    cache: Cache,
    card: Card,
    artifact: Artifact,
    target: Path,
    progress: bool,
    *,
    private: bool,
) -> Path:
    reasons: list[tuple[str, str]] = []
    access_error: ClientError | None = None
    for url in artifact.urls:
        try:
            digest = _fetch_resuming(
                hub, cache, card, artifact, url, target, progress, private=private
            )
        except ChecksumMismatchError:
            raise
        except (AuthenticationRequiredError, PermissionDeniedError) as exc:
            access_error = access_error or exc
            reasons.append((url, exc.message))
            continue
        except HubUnreachableError as exc:
            reasons.append((url, exc.detail if isinstance(exc.detail, str) else exc.message))
            continue
        except ClientError as exc:
            reasons.append((url, exc.message))
            continue
        _write_verified(target, digest)
        return target
    if access_error is not None:
        raise access_error
    outside = not any(hub.is_hub_url(url) for url, _ in reasons)
    where = "; ".join(f"at {url}: {reason}" for url, reason in reasons)
    suffix = "; this release's package is hosted outside the hub" if outside else ""
    raise ArtifactUnreachableError(
        f"cannot reach the artifact of {card.release_id} {where}{suffix}",
        detail={"urls": [url for url, _ in reasons]},
    )


def _fetch_resuming(
    hub: HubSession,
    cache: Cache,
    card: Card,
    artifact: Artifact,
    url: str,
    target: Path,
    progress: bool,
    *,
    private: bool,
) -> str:
    """:func:`_fetch`, continuing after broken connections and retrying a bad resume once."""
    interruptions = 0
    restarted_after_mismatch = False
    while True:
        try:
            return _fetch(hub, cache, card, artifact, url, target, progress, private=private)
        except _BodyInterruptedError:
            interruptions += 1
            if interruptions >= hub.retry.attempts:
                raise
            hub.wait_before_retry(interruptions)
        except ChecksumMismatchError as exc:
            # The bytes kept from an earlier attempt may be what is wrong (a different file
            # behind the same URL then): the partial is gone now, so one clean try decides.
            resumed = isinstance(exc.detail, dict) and exc.detail.get("resumed") is True
            if not resumed or restarted_after_mismatch:
                raise
            restarted_after_mismatch = True


def _fetch(
    hub: HubSession,
    cache: Cache,
    card: Card,
    artifact: Artifact,
    url: str,
    target: Path,
    progress: bool,
    *,
    private: bool,
) -> str:
    partial = partial_download_path(cache, artifact, target, url)
    # The partial's own lock tells `cache prune` that this file is being written.
    with cache.item_lock(partial):
        digest = _fetch_locked(hub, card, artifact, url, target, partial, progress, private)
        cache.make_release_dir(card.namespace, card.name, card.version, private=private)
        partial.replace(target)
    return digest


def _fetch_locked(
    hub: HubSession,
    card: Card,
    artifact: Artifact,
    url: str,
    target: Path,
    partial: Path,
    progress: bool,
    private: bool,
) -> str:
    """Stream ``url`` into ``partial`` (resuming it) and verify it; return its sha256."""
    if private:
        # 0600 before the first byte is written; the zip it becomes keeps the mode.
        create_private_file(partial)
    have = partial.stat().st_size if partial.is_file() else 0
    if artifact.size is not None and have >= artifact.size:
        have = 0  # a partial as large as the file that was not moved in is not trustworthy
    headers = {"Range": f"bytes={have}-"} if have else {}
    hasher = hashlib.sha256()
    # 416: the partial no longer fits the file behind the URL; start over without Range.
    accept_416 = frozenset({416}) if have else frozenset()
    with hub.stream("GET", url, headers=headers, ok_statuses=accept_416) as response:
        if response.status_code == 416:
            response.read()
            partial.unlink(missing_ok=True)
            have = 0
            restart = True
        else:
            restart = False
            resumed = (
                have > 0
                and response.status_code == 206
                and response.headers.get("Content-Range", "").startswith(f"bytes {have}-")
            )
            if resumed:
                with partial.open("rb") as existing:
                    for chunk in iter(lambda: existing.read(CHUNK_BYTES), b""):
                        hasher.update(chunk)
            else:
                have = 0
            _stream_body(response, partial, hasher, artifact, have=have, progress=progress)
    if restart:
        return _fetch_locked(hub, card, artifact, url, target, partial, progress, private)
    digest = hasher.hexdigest()
    size = partial.stat().st_size
    announced = response.headers.get("X-Checksum-Sha256")
    expected = (artifact.sha256 or announced or "").lower() or None
    if (expected is not None and digest != expected) or (
        artifact.size is not None and size != artifact.size
    ):
        partial.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"the package of {card.release_id} from {url} has sha256 {digest} and {size} "
            f"bytes, expected sha256 {expected or 'unknown'} and "
            f"{artifact.size if artifact.size is not None else 'unknown'} bytes; "
            "the download was deleted",
            detail={
                "expected_sha256": expected,
                "got_sha256": digest,
                "expected_size": artifact.size,
                "got_size": size,
                "url": url,
                "resumed": have > 0,
            },
        )
    return digest


def _stream_body(
    response: httpx.Response,
    partial: Path,
    hasher: HASH,
    artifact: Artifact,
    *,
    have: int,
    progress: bool,
) -> None:
    """Append (``have`` > 0) or write the response body to ``partial`` while hashing it."""
    total = artifact.size
    if total is None and response.headers.get("Content-Length", "").isdigit():
        total = have + int(response.headers["Content-Length"])
    with (
        partial.open("ab" if have else "wb") as out,
        tqdm(
            total=total,
            initial=have,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=artifact.filename,
            file=sys.stderr,
            disable=not progress,
            leave=False,
        ) as bar,
    ):
        try:
            # No chunk size: each piece is written as it arrives, so a broken connection
            # loses nothing that was received and the resume starts exactly there.
            for chunk in response.iter_bytes():
                out.write(chunk)
                hasher.update(chunk)
                bar.update(len(chunk))
        except httpx.HTTPError as exc:
            out.flush()
            raise _BodyInterruptedError(
                f"the connection broke after {out.tell()} bytes: {exc or type(exc).__name__}"
            ) from exc
        finally:
            out.flush()
            os.fsync(out.fileno())


def ensure_package(
    settings: ClientSettings,
    card: Card,
    *,
    session: HubSession | None = None,
    progress: bool = True,
    limits: ArchiveLimits | None = None,
) -> Path:
    """Directory of the release's extracted package, downloading and extracting it once.

    Extraction goes through :func:`medigan_catalog.packaging.safe_extract` (no path traversal,
    links or oversized members) into a temporary sibling that is moved into place; a marker
    file records the archive's sha256 so a re-downloaded, different archive is re-extracted.
    """
    archive = download_release(settings, card, session=session, progress=progress)
    cache = Cache(settings.cache_dir)
    package_dir = cache.package_dir(card.namespace, card.name, card.version)
    marker = cache.extracted_marker(card.namespace, card.name, card.version)
    artifact = package_artifact(card)
    digest = cached_sha256(archive, artifact)
    if digest is None:  # replaced under our feet between download and here
        archive = download_release(settings, card, session=session, progress=progress)
        digest = sha256_file(archive)
    if _marker_matches(marker, digest) and package_dir.is_dir():
        return package_dir
    waiting = f"waiting for another process to finish extracting {card.release_id}"
    with _holding(cache.item_lock(package_dir, timeout=-1), waiting, progress):
        if _marker_matches(marker, digest) and package_dir.is_dir():
            return package_dir
        # mkdtemp makes the staging folder 0700, so nothing in it is reachable by others
        # while a private package's modes are narrowed below.
        staging = Path(tempfile.mkdtemp(prefix=".package-", dir=package_dir.parent))
        try:
            safe_extract(archive, staging, limits or ArchiveLimits())
            if is_private(settings, card):
                _restrict_tree(staging)
        except CatalogError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise ArchiveUnsafeError(
                f"the package of {card.release_id} cannot be extracted safely: {exc.message}",
                detail=exc.detail,
            ) from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        marker.unlink(missing_ok=True)
        if package_dir.exists():
            shutil.rmtree(package_dir)
        staging.replace(package_dir)
        write_atomic(marker, digest.encode("ascii"))
    return package_dir


def _restrict_tree(root: Path) -> None:
    """Folders 0700 and files 0600 below ``root`` (the extraction writes 0755 and 0644)."""
    for folder, subfolders, files in os.walk(root):
        for name in subfolders:
            (Path(folder) / name).chmod(PRIVATE_DIR_MODE)
        for name in files:
            (Path(folder) / name).chmod(PRIVATE_FILE_MODE)


def _marker_matches(marker: Path, digest: str) -> bool:
    try:
        return marker.read_text(encoding="ascii").strip() == digest
    except OSError:
        return False
