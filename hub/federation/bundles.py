"""Air-gapped transfer: a hub's public releases in one archive, verified whole before it is applied.

``bundle_export`` writes a tar archive (format ``medigan-hub-bundle/1``):

- ``manifest.json``: the exporting hub's name and URL, the serials the bundle spans, the filter,
  and the sha256 and size of every other file; ``manifest.sig``: its signature header line;
- ``keys.json``: the exporting hub's key set (the importer learns a key from it only when the key's
  id is one it pinned out of band);
- ``feed/NNNN.json`` and ``.sig``: the signed feed segment, pages of the hub's public change feed
  (or, when the feed does not reach back to the first serial asked for, one page built from the
  public snapshot), each filtered to the selected releases and signed by the exporting hub;
- ``artifacts/<namespace>/<name>/<version>/<file>``: the stored artifacts of those releases.

Only the public catalogue is exported: a private or internal model never leaves its hub in a bundle.

``bundle_import`` checks everything before it touches the database: the archive's members (plain
files, no absolute paths or ``..``), the manifest's signature against the keys pinned for the
exporting hub, each file's sha256 against the manifest, each page's signature, and each artifact
against its card. Any failure refuses the bundle whole. It then applies the pages as a mirror
applies a feed (``services._apply_change``) and stores the artifacts, verified again by sha256.
Importing the same bundle twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError

from hub import signing
from hub.access import PUBLIC_SCOPE
from hub.api.errors import ApiError
from hub.federation import services
from hub.federation.filters import ReleaseFilter
from hub.federation.models import Upstream
from hub.federation.upstream import trusted_keys
from hub.registry import services as registry_services
from hub.registry.models import Artifact, Release
from hub.snapshot import FEED_MAX_LIMIT, catalog_change_page, catalog_snapshot, signed_json
from hub.storage import stored_open
from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.signing import (
    KeySet,
    is_key_id,
    parse_signatures,
    verify_signed,
)
from medigan_catalog.snapshot import CatalogChange, ChangePage, SnapshotRelease, release_key

FORMAT: Final = "medigan-hub-bundle/1"
CHUNK_BYTES: Final = 1024 * 1024
MANIFEST: Final = "manifest.json"
MANIFEST_SIGNATURE: Final = "manifest.sig"
KEYS: Final = "keys.json"


class BundleInvalidError(CatalogError):
    """A bundle that does not verify; nothing of it was applied."""

    code = ErrorCode.BUNDLE_INVALID


@dataclass
class ExportReport:
    path: Path
    pages: int = 0
    releases: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    not_included: list[str] = field(default_factory=list)
    serial: int = 0


# --- export --------------------------------------------------------------------------------


def _filtered(page: ChangePage, chosen: ReleaseFilter) -> ChangePage:
    changes = []
    for change in page.changes:
        entries = tuple(entry for entry in change.releases if chosen.takes(entry))
        removed = change.removed if chosen.takes_model(change.model_id) else ()
        if entries or removed:
            changes.append(
                change.model_copy(
                    update={
                        "releases": entries,
                        "removed": removed,
                        "removed_states": {
                            k: v for k, v in change.removed_states.items() if k in removed
                        },
                    }
                )
            )
    return page.model_copy(update={"changes": tuple(changes)})


def _pages(*, since: int, base_url: str) -> Iterator[ChangePage]:
    """The public feed from ``since``, page by page; one page from the snapshot when the feed
    does not reach back that far."""
    serial = since
    while True:
        try:
            page = catalog_change_page(
                scope=PUBLIC_SCOPE, since=serial, limit=FEED_MAX_LIMIT, base_url=base_url
            )
        except ApiError as error:
            if error.error_code is not ErrorCode.FEED_GONE:
                raise
            snapshot = catalog_snapshot(base_url=base_url, scope=PUBLIC_SCOPE)
            groups: dict[str, list[SnapshotRelease]] = {}
            for entry in snapshot.releases:
                groups.setdefault(entry.model_id, []).append(entry)
            yield ChangePage(
                since=since,
                serial=snapshot.serial,
                latest=snapshot.serial,
                scope=snapshot.scope,
                changes=tuple(
                    CatalogChange(
                        serial=max(snapshot.serial, 1),
                        kind="snapshot",
                        model_id=model_id,
                        releases=tuple(entries),
                    )
                    for model_id, entries in groups.items()
                ),
            )
            return
        yield page
        if not page.more:
            return
        serial = page.serial


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> dict[str, Any]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(timezone.now().timestamp())
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _add_artifact(archive: tarfile.TarFile, name: str, artifact: Artifact) -> dict[str, Any]:
    """Stream a stored artifact into the archive while hashing it (memory stays flat)."""
    digest = hashlib.sha256()

    class _Hashing(io.RawIOBase):
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self.handle.read(len(buffer))
            digest.update(chunk)
            buffer[: len(chunk)] = chunk
            return len(chunk)

    # Streamed out of storage: on S3 the object's body is read as it arrives, never held whole.
    with stored_open(artifact.file.storage, str(artifact.file.name)) as handle:
        size = int(artifact.size if artifact.size is not None else artifact.file.size)
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = int(timezone.now().timestamp())
        info.mode = 0o644
        archive.addfile(info, io.BufferedReader(_Hashing(handle), CHUNK_BYTES))
    if digest.hexdigest() != artifact.sha256:
        raise CatalogError(
            f"{artifact} in storage has sha256 {digest.hexdigest()}, not {artifact.sha256}: "
            "run manage.py storage_check",
            code=ErrorCode.CHECKSUM_MISMATCH,
        )
    return {"sha256": artifact.sha256, "size": size}


def bundle_export(
    path: Path, *, chosen: ReleaseFilter, since: int = 0, base_url: str
) -> ExportReport:
    """Write the bundle of the public releases ``chosen`` takes, from serial ``since``."""
    report = ExportReport(path=path)
    files: dict[str, dict[str, Any]] = {}
    # The key set is vouched for by the manifest's signature, which covers its digest.
    keys_body, _ = signed_json(signing.key_set())
    with tarfile.open(path, "w") as archive:
        files[KEYS] = _add_bytes(archive, KEYS, keys_body)
        for index, raw_page in enumerate(_pages(since=since, base_url=base_url), start=1):
            page = _filtered(raw_page, chosen)
            body, signature = signed_json(page)
            name = f"feed/{index:04d}"
            files[f"{name}.json"] = _add_bytes(archive, f"{name}.json", body)
            files[f"{name}.sig"] = _add_bytes(archive, f"{name}.sig", signature.encode())
            report.pages += 1
            report.serial = page.serial
            for change in page.changes:
                for entry in change.releases:
                    report.releases.append(release_key(entry.model_id, entry.version))
                    _export_artifacts(archive, entry, files, report)
        manifest = {
            "format": FORMAT,
            "hub": signing.hub_name(),
            "url": base_url.rstrip("/"),
            "created_at": timezone.now().isoformat(),
            "since": since,
            "serial": report.serial,
            "filter": chosen.to_dict(),
            "files": files,
        }
        manifest_body = json.dumps(manifest, sort_keys=True, indent=1).encode()
        _add_bytes(archive, MANIFEST, manifest_body)
        _add_bytes(archive, MANIFEST_SIGNATURE, signing.sign(manifest_body).encode())
    return report


def _export_artifacts(
    archive: tarfile.TarFile, entry: SnapshotRelease, files: dict[str, Any], report: ExportReport
) -> None:
    namespace, _, name = entry.model_id.partition("/")
    stored = Artifact.objects.filter(
        release__generative_model__namespace=namespace,
        release__generative_model__name=name,
        release__version=entry.version,
    ).exclude(file="")
    stored_names = set()
    for artifact in stored:
        member = f"artifacts/{namespace}/{name}/{entry.version}/{artifact.filename}"
        if member not in files:
            files[member] = _add_artifact(archive, member, artifact)
            report.artifacts.append(member)
        stored_names.add(artifact.filename)
    for card_artifact in entry.card.artifacts:
        if card_artifact.filename not in stored_names:
            report.not_included.append(
                f"{release_key(entry.model_id, entry.version)}/{card_artifact.filename}: "
                "not stored by this hub (hosted elsewhere, or a mirror's copy not fetched yet)"
            )


# --- import --------------------------------------------------------------------------------


@dataclass
class ImportReport:
    upstream: str
    pages: int = 0
    mirrored: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)
    serial: int = 0


@dataclass
class _Verified:
    manifest: dict[str, Any]
    pages: list[ChangePage]
    folder: Path


def _safe_member(member: tarfile.TarInfo) -> str:
    path = PurePosixPath(member.name)
    if (
        not member.isfile()
        or path.is_absolute()
        or ".." in path.parts
        or not path.parts
        or member.name != str(path)
    ):
        raise BundleInvalidError(f"the bundle holds {member.name!r}, which is not a plain file")
    return member.name


def _unpack(path: Path, folder: Path) -> dict[str, dict[str, Any]]:
    """Copy every member to ``folder`` while hashing it; (name -> sha256, size)."""
    seen: dict[str, dict[str, Any]] = {}
    try:
        # Opened apart from the loop: an unreadable archive and a bad member are told apart.
        archive = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError) as error:
        raise BundleInvalidError(f"{path} is not a bundle: {error}") from error
    with archive:
        for member in archive:
            name = _safe_member(member)
            if name in seen:
                raise BundleInvalidError(f"the bundle holds {name} twice")
            source = archive.extractfile(member)
            if source is None:
                raise BundleInvalidError(f"{name} cannot be read")
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            size = 0
            with target.open("wb") as out:
                while chunk := source.read(CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            seen[name] = {"sha256": digest.hexdigest(), "size": size}
    return seen


def _trusted_for(upstream: Upstream, keys_body: bytes) -> dict[str, bytes]:
    """The keys a bundle of ``upstream`` must be signed with: those pinned already, or, on the
    first bundle, the bundle's own key set where a key's id is one the operator pinned."""
    if upstream.public_keys:
        return trusted_keys(upstream.public_keys)
    try:
        key_set = KeySet.model_validate_json(keys_body)
        listed = key_set.trusted()
    except (ValidationError, ValueError, CatalogError) as error:
        raise BundleInvalidError(f"the bundle's key set is unreadable: {error}") from error
    pinned = {key: value for key, value in listed.items() if key in upstream.pinned_keys}
    if not pinned:
        raise BundleInvalidError(
            f"none of the bundle's keys ({', '.join(sorted(listed))}) is pinned for "
            f"{upstream.name}; pin the exporting hub's key id (bundle_import --key)"
        )
    return pinned


def _verify(path: Path, upstream: Upstream, folder: Path) -> _Verified:
    files = _unpack(path, folder)
    for required in (MANIFEST, MANIFEST_SIGNATURE, KEYS):
        if required not in files:
            raise BundleInvalidError(f"the bundle has no {required}")
    manifest_body = (folder / MANIFEST).read_bytes()
    trusted = _trusted_for(upstream, (folder / KEYS).read_bytes())
    try:
        verify_signed(
            manifest_body,
            parse_signatures((folder / MANIFEST_SIGNATURE).read_text().strip()),
            trusted,
            what="the bundle's manifest",
            source=f"hub {upstream.name}",
        )
        manifest = json.loads(manifest_body)
    except CatalogError as error:
        raise BundleInvalidError(str(error), {"cause": error.code.value}) from error
    if manifest.get("format") != FORMAT:
        raise BundleInvalidError(f"unknown bundle format {manifest.get('format')!r}")
    listed: dict[str, Any] = manifest["files"]
    extra = set(files) - set(listed) - {MANIFEST, MANIFEST_SIGNATURE}
    missing = set(listed) - set(files)
    if extra or missing:
        raise BundleInvalidError(
            f"the bundle's files do not match its manifest (extra {sorted(extra)}, "
            f"missing {sorted(missing)})"
        )
    for name, expected in listed.items():
        if files[name] != expected:
            raise BundleInvalidError(
                f"{name} has sha256 {files[name]['sha256']}, the manifest says "
                f"{expected['sha256']}: the bundle was altered"
            )
    pages = []
    for name in sorted(n for n in listed if n.startswith("feed/") and n.endswith(".json")):
        body = (folder / name).read_bytes()
        signature = (folder / name.replace(".json", ".sig")).read_text().strip()
        try:
            verify_signed(body, parse_signatures(signature), trusted, what=name)
            pages.append(ChangePage.model_validate_json(body))
        except (CatalogError, ValidationError) as error:
            raise BundleInvalidError(f"{name}: {error}") from error
    for page in pages:
        for change in page.changes:
            for entry in change.releases:
                _check_artifacts(entry, folder, listed)
    return _Verified(manifest, pages, folder)


def _artifact_member(entry: SnapshotRelease, filename: str) -> str:
    namespace, _, name = entry.model_id.partition("/")
    return f"artifacts/{namespace}/{name}/{entry.version}/{filename}"


def _check_artifacts(entry: SnapshotRelease, folder: Path, listed: dict[str, Any]) -> None:
    for artifact in entry.card.artifacts:
        member = _artifact_member(entry, artifact.filename)
        if member in listed and listed[member]["sha256"] != artifact.sha256:
            raise BundleInvalidError(
                f"{member} is not the file {release_key(entry.model_id, entry.version)}'s card "
                f"names (sha256 {listed[member]['sha256']}, card {artifact.sha256})"
            )


def _bundle_upstream(
    manifest_hub: str, manifest_url: str, name: str | None, keys: Sequence[str]
) -> Upstream:
    upstream = Upstream.objects.filter(name=name or manifest_hub).first()
    if upstream is not None:
        return upstream
    if not keys:
        raise BundleInvalidError(
            f"no upstream {name or manifest_hub!r} is configured here; name the exporting hub's "
            "key id with --key (confirmed out of band) to create it"
        )
    for key in keys:
        if not is_key_id(key):
            raise BundleInvalidError(f"{key!r} is not a key id")
    return Upstream.objects.create(
        name=name or manifest_hub,
        url=manifest_url,
        pinned_keys=list(keys),
        mode=Upstream.Mode.FULL,
        # Reached only through bundles: the beat task has nothing to poll.
        enabled=False,
    )


def _peek_manifest(path: Path) -> dict[str, Any]:
    try:
        with tarfile.open(path, "r:*") as archive:
            member = archive.getmember(MANIFEST)
            handle = archive.extractfile(member)
            if handle is None:
                raise BundleInvalidError("the manifest cannot be read")
            document: dict[str, Any] = json.loads(handle.read())
            return document
    except (tarfile.TarError, KeyError, OSError, ValueError) as error:
        raise BundleInvalidError(f"{path} is not a bundle: {error}") from error


def bundle_import(
    path: Path, *, upstream_name: str | None = None, keys: Sequence[str] = ()
) -> ImportReport:
    """Verify a bundle whole, then apply it as a mirror applies a feed (idempotent)."""
    unverified = _peek_manifest(path)
    with transaction.atomic():
        upstream = _bundle_upstream(
            str(unverified.get("hub", "")), str(unverified.get("url", "")), upstream_name, keys
        )
    report = ImportReport(upstream=upstream.name)
    scratch_root = Path(settings.FILE_UPLOAD_TEMP_DIR)
    scratch_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bundle-", dir=scratch_root))
    try:
        verified = _verify(path, upstream, folder)
        sync_report = services.SyncReport(upstream=upstream.name)
        with transaction.atomic():
            locked = Upstream.objects.select_for_update().get(pk=upstream.pk)
            first = verified.pages[0].since if verified.pages else 0
            if first > locked.serial:
                raise BundleInvalidError(
                    f"the bundle starts after serial {first}; this hub has applied "
                    f"{upstream.name} up to {locked.serial}: import the bundle before it first"
                )
            if not locked.public_keys:
                keys_set = KeySet.model_validate_json((folder / KEYS).read_bytes())
                locked.public_keys = {k.key_id: k.public_key for k in keys_set.keys}
                locked.hub_name = keys_set.hub
                locked.save(update_fields=["public_keys", "hub_name"])
                upstream.public_keys, upstream.hub_name = locked.public_keys, locked.hub_name
            for page in verified.pages:
                for change in page.changes:
                    services.apply_change(upstream, change, sync_report)
                report.pages += 1
            newest = max([locked.serial, *(page.serial for page in verified.pages)])
            Upstream.objects.filter(pk=upstream.pk).update(
                serial=newest,
                latest_serial=max(newest, locked.latest_serial),
                last_success_at=timezone.now(),
            )
            report.serial = newest
        report.mirrored, report.retired, report.refused = (
            sync_report.mirrored,
            sync_report.retired,
            sync_report.refused,
        )
        _store_artifacts(upstream, verified, report)
        services.record_event(
            upstream,
            "bundle_imported",
            f"{path.name}: {len(report.mirrored)} mirrored, {len(report.stored)} stored",
            report.serial,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return report


def _store_artifacts(upstream: Upstream, verified: _Verified, report: ImportReport) -> None:
    for page in verified.pages:
        for change in page.changes:
            for entry in change.releases:
                release = Release.objects.filter(
                    mirror__upstream=upstream,
                    generative_model__namespace=entry.model_id.partition("/")[0],
                    generative_model__name=entry.model_id.partition("/")[2],
                    version=entry.version,
                ).first()
                if release is None:
                    continue
                for artifact in release.artifacts.filter(file=""):
                    member = verified.folder / _artifact_member(entry, artifact.filename)
                    if not member.is_file():
                        continue
                    registry_services.artifact_store_verified(
                        artifact_id=artifact.pk, chunks=_chunks(member)
                    )
                    report.stored.append(f"{release.release_id}/{artifact.filename}")


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


__all__ = ["BundleInvalidError", "ReleaseFilter", "bundle_export", "bundle_import"]
