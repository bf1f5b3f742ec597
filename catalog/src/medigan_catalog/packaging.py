"""Packaging rules for model packages: deterministic zips, checksums, and safe unpacking.

``medigan-client push`` zips a package directory with :func:`build_deterministic_zip` (the same
files always give the same bytes, so the same sha256); the hub's "safe unpacking" check and the
client's cache run :func:`inspect_archive` / :func:`safe_extract`, which refuse path traversal,
absolute paths, links, duplicate names, too many members and oversized members (by declared size
and by the bytes actually inflated, against zip bombs). Standard library only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from medigan_catalog.errors import ArchiveUnsafeError, ChecksumMismatchError

CARD_FILENAME = "card.json"
# 1980-01-01 00:00:00 is the earliest timestamp a zip can store; using it erases mtimes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
EXCLUDED_NAMES = frozenset({"__pycache__", ".git", ".DS_Store"})
EXCLUDED_SUFFIXES = (".pyc",)
_CHUNK = 1024 * 1024
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ArchiveInfo:
    """What :func:`build_deterministic_zip` wrote: the zip's sha256, size and member count."""

    sha256: str
    size: int
    member_count: int


@dataclass(frozen=True)
class ArchiveLimits:
    """The most an archive may hold before it is refused."""

    max_members: int = 2000
    max_total_uncompressed_bytes: int = 1024**3
    max_member_bytes: int = 512 * 1024**2


@dataclass(frozen=True)
class ArchiveMember:
    """One entry of an inspected archive, as declared in its central directory."""

    name: str
    size: int
    compressed_size: int
    is_dir: bool


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The lower-case hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike[str], *, sha256: str, size: int | None = None) -> None:
    """Raise :class:`ChecksumMismatchError` unless the file has this sha256 (and size, if given)."""
    file_path = Path(path)
    if size is not None:
        actual_size = file_path.stat().st_size
        if actual_size != size:
            raise ChecksumMismatchError(
                file_path.name, str(size), str(actual_size), what="size in bytes"
            )
    actual = sha256_file(file_path)
    if actual != sha256.lower():
        raise ChecksumMismatchError(file_path.name, sha256.lower(), actual)


def _excluded(name: str) -> bool:
    return name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES)


def _package_files(source_dir: Path, skip: Path | None) -> list[tuple[str, Path]]:
    """The files to archive as (posix member name, path), sorted by name; refuses links."""
    files: list[tuple[str, Path]] = []
    for root, dirs, names in os.walk(source_dir, followlinks=False):
        root_path = Path(root)
        for entry in [*dirs, *names]:
            candidate = root_path / entry
            if candidate.is_symlink():
                member = candidate.relative_to(source_dir).as_posix()
                raise ArchiveUnsafeError(
                    f"{member} is a symbolic link; a package must contain the file itself",
                    member=member,
                )
        # Pruning in place stops os.walk from descending into excluded directories.
        dirs[:] = sorted(d for d in dirs if not _excluded(d))
        for name in names:
            path = root_path / name
            if _excluded(name) or (skip is not None and path.resolve() == skip):
                continue
            files.append((path.relative_to(source_dir).as_posix(), path))
    files.sort(key=lambda item: item[0])
    return files


def build_deterministic_zip(source_dir: Path, destination: Path) -> ArchiveInfo:
    """Zip a package directory so that the same files always give the same bytes.

    Members are the regular files below ``source_dir`` (directories are implied), sorted by
    path, each stamped 1980-01-01 with mode 0644 and deflated; ``__pycache__``, ``*.pyc``,
    ``.git`` and ``.DS_Store`` are left out, and so is ``destination`` if it lies inside.
    A symbolic link anywhere in the source raises :class:`ArchiveUnsafeError`. The zip is
    written next to ``destination`` and moved into place, so a failure leaves no partial file.
    """
    source = Path(source_dir)
    if not source.is_dir():
        raise NotADirectoryError(f"{source} is not a directory")
    target = Path(destination)
    files = _package_files(source, target.resolve())
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(prefix=".", suffix=".zip.partial", dir=target.parent)
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member, path in files:
                info = zipfile.ZipInfo(member, date_time=ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix, so external_attr holds st_mode on every platform
                info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
                # Declaring the size lets zipfile decide on ZIP64 before streaming the bytes.
                info.file_size = path.stat().st_size
                with path.open("rb") as reader, archive.open(info, "w") as writer:
                    shutil.copyfileobj(reader, writer, _CHUNK)
        temporary.replace(target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return ArchiveInfo(
        sha256=sha256_file(target), size=target.stat().st_size, member_count=len(files)
    )


def _name_problem(name: str) -> str | None:
    """Why a member name is unsafe to extract, or ``None``."""
    if not name or "\x00" in name:
        return "has an empty or NUL-containing name"
    if "\\" in name:
        return "uses backslashes in its path"
    if name.startswith("/") or _DRIVE_RE.match(name):
        return "has an absolute path"
    parts = PurePosixPath(name).parts
    if ".." in parts:
        return "climbs out of the archive with '..'"
    if any(part in ("", ".") for part in name.rstrip("/").split("/")):
        return "has an empty or '.' path component"
    return None


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveUnsafeError(f"{path.name} is not a readable zip archive: {error}") from None


def _inspect_open(archive: zipfile.ZipFile, limits: ArchiveLimits) -> list[ArchiveMember]:
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise ArchiveUnsafeError(
            f"the archive has {len(infos)} members, more than the limit of {limits.max_members}"
        )
    members: list[ArchiveMember] = []
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        problem = _name_problem(name)
        if problem:
            raise ArchiveUnsafeError(f"member {name!r} {problem}", member=name)
        normalised = name.rstrip("/")
        if normalised in seen:
            raise ArchiveUnsafeError(f"member {name!r} appears more than once", member=name)
        seen.add(normalised)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ArchiveUnsafeError(f"member {name!r} is a symbolic link", member=name)
        # Only the file-type bits matter: zipfile.writestr and non-Unix tools leave them at
        # zero (permissions only, or nothing), which means a regular file.
        file_type = stat.S_IFMT(mode)
        if file_type and file_type not in (stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveUnsafeError(f"member {name!r} is not a regular file", member=name)
        if info.flag_bits & 0x1:
            raise ArchiveUnsafeError(f"member {name!r} is encrypted", member=name)
        if info.file_size > limits.max_member_bytes:
            raise ArchiveUnsafeError(
                f"member {name!r} declares {info.file_size} bytes, more than the limit of "
                f"{limits.max_member_bytes}",
                member=name,
            )
        total += info.file_size
        if total > limits.max_total_uncompressed_bytes:
            raise ArchiveUnsafeError(
                f"member {name!r} brings the archive to {total} bytes uncompressed, more than "
                f"the limit of {limits.max_total_uncompressed_bytes}",
                member=name,
            )
        members.append(
            ArchiveMember(
                name=name,
                size=info.file_size,
                compressed_size=info.compress_size,
                is_dir=info.is_dir(),
            )
        )
    return members


def inspect_archive(
    path: str | os.PathLike[str], limits: ArchiveLimits | None = None
) -> list[ArchiveMember]:
    """List an archive's members, raising :class:`ArchiveUnsafeError` at the first unsafe one.

    Refused: not a zip; more than ``max_members`` entries; names with ``..`` components, absolute
    paths (``/x``, ``C:x``), backslashes, empty or ``.`` components; duplicate names; symbolic
    links and other non-regular entries; encrypted members; a declared size above
    ``max_member_bytes`` or a declared total above ``max_total_uncompressed_bytes``.
    """
    checked = limits or ArchiveLimits()
    with _open_zip(Path(path)) as archive:
        return _inspect_open(archive, checked)


def safe_extract(
    path: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    limits: ArchiveLimits | None = None,
) -> list[Path]:
    """Inspect an archive, then extract its files below ``destination``; return their paths.

    Bytes are counted while they inflate, so a member that inflates to more than it declared,
    or past the limits, is refused even though its header lies; whatever was extracted by then
    is removed. Files are written with mode 0644 whatever the archive says.
    """
    checked = limits or ArchiveLimits()
    root = Path(destination)
    root.mkdir(parents=True, exist_ok=True)
    resolved_root = root.resolve()
    written: list[Path] = []
    try:
        with _open_zip(Path(path)) as archive:
            _inspect_open(archive, checked)
            total = 0
            for info in archive.infolist():
                target = root.joinpath(*PurePosixPath(info.filename).parts)
                # Defence in depth: the name checks above should make this impossible.
                if not target.resolve().is_relative_to(resolved_root):
                    raise ArchiveUnsafeError(
                        f"member {info.filename!r} would land outside the destination",
                        member=info.filename,
                    )
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink():
                    raise ArchiveUnsafeError(
                        f"member {info.filename!r} would overwrite a symbolic link",
                        member=info.filename,
                    )
                total = _extract_member(archive, info, target, checked, total)
                written.append(target)
    except BaseException:
        for extracted in written:
            extracted.unlink(missing_ok=True)
        raise
    return written


def _extract_member(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    target: Path,
    limits: ArchiveLimits,
    total: int,
) -> int:
    """Stream one member to ``target`` under the limits; return the new running total."""
    name = info.filename
    member_limit = min(info.file_size, limits.max_member_bytes)
    count = 0
    try:
        with archive.open(info) as reader, target.open("wb") as writer:
            for chunk in iter(lambda: reader.read(_CHUNK), b""):
                count += len(chunk)
                total += len(chunk)
                if count > member_limit:
                    raise ArchiveUnsafeError(
                        f"member {name!r} inflates past its declared {info.file_size} bytes "
                        f"(limit {limits.max_member_bytes})",
                        member=name,
                    )
                if total > limits.max_total_uncompressed_bytes:
                    raise ArchiveUnsafeError(
                        f"member {name!r} takes the extracted total past "
                        f"{limits.max_total_uncompressed_bytes} bytes",
                        member=name,
                    )
                writer.write(chunk)
        target.chmod(FILE_MODE)
    except zipfile.BadZipFile as error:
        # zipfile stops at the declared size and then finds the CRC wrong: a lying header.
        with contextlib.suppress(OSError):
            target.unlink()
        raise ArchiveUnsafeError(f"member {name!r} is corrupt: {error}", member=name) from None
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        raise
    return total
