"""Tests for medigan_catalog.packaging: deterministic zips, checksums and safe unpacking."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from medigan_catalog.errors import ChecksumMismatchError, UnsafeArchiveError
from medigan_catalog.packaging import (
    ArchiveLimits,
    build_deterministic_zip,
    inspect_archive,
    safe_extract,
    sha256_file,
    verify_file,
)


def _package(root: Path) -> Path:
    source = root / "pkg"
    (source / "src" / "nets").mkdir(parents=True)
    (source / "card.json").write_text('{"model_id": "zoo/x"}\n')
    (source / "__init__.py").write_text("def generate(num_samples, *, seed, device):\n    pass\n")
    (source / "src" / "nets" / "gen.py").write_text("X = 1\n")
    (source / "weights.safetensors").write_bytes(os.urandom(4096))
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    (source / "src" / "old.pyc").write_bytes(b"junk")
    (source / ".git").mkdir()
    (source / ".git" / "HEAD").write_text("ref\n")
    (source / ".DS_Store").write_bytes(b"\0")
    return source


def _touch_all(source: Path, when: int) -> None:
    for path in source.rglob("*"):
        os.utime(path, (when, when))


def test_same_files_give_identical_zips(tmp_path: Path) -> None:
    source = _package(tmp_path)
    _touch_all(source, 1_000_000_000)
    first = build_deterministic_zip(source, tmp_path / "one.zip")
    _touch_all(source, 1_700_000_000)
    (source / "__init__.py").chmod(0o755)
    second = build_deterministic_zip(source, tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    assert first == second
    assert first.sha256 == hashlib.sha256((tmp_path / "one.zip").read_bytes()).hexdigest()
    assert first.size == (tmp_path / "one.zip").stat().st_size


def test_zip_members_sorted_stamped_and_filtered(tmp_path: Path) -> None:
    source = _package(tmp_path)
    info = build_deterministic_zip(source, tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        members = archive.infolist()
        names = [member.filename for member in members]
        assert names == sorted(names)
        assert names == [
            "__init__.py", "card.json", "src/nets/gen.py", "weights.safetensors",
        ]  # fmt: skip
        assert info.member_count == 4
        for member in members:
            assert member.date_time == (1980, 1, 1, 0, 0, 0)
            assert stat.S_IMODE(member.external_attr >> 16) == 0o644
            assert member.compress_type == zipfile.ZIP_DEFLATED
        assert archive.read("src/nets/gen.py") == b"X = 1\n"


def test_zip_inside_source_is_not_archived_into_itself(tmp_path: Path) -> None:
    source = _package(tmp_path)
    build_deterministic_zip(source, source / "dist" / "pkg.zip")
    info = build_deterministic_zip(source, source / "dist" / "pkg.zip")
    with zipfile.ZipFile(source / "dist" / "pkg.zip") as archive:
        assert "dist/pkg.zip" not in archive.namelist()
    assert info.member_count == 4
    assert [p.name for p in (source / "dist").iterdir()] == ["pkg.zip"]


def test_symlinks_in_source_are_refused(tmp_path: Path) -> None:
    source = _package(tmp_path)
    (source / "src" / "link.py").symlink_to(source / "__init__.py")
    with pytest.raises(UnsafeArchiveError, match=r"src/link\.py is a symbolic link"):
        build_deterministic_zip(source, tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["pkg"]


def test_sha256_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_file(path) == digest
    verify_file(path, sha256=digest.upper(), size=3)
    with pytest.raises(ChecksumMismatchError, match=re.escape("f.bin: sha256 is")):
        verify_file(path, sha256="0" * 64)
    with pytest.raises(ChecksumMismatchError, match="size in bytes is 3, expected 4"):
        verify_file(path, sha256=digest, size=4)


def _zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def _symlink_member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.py", "climbs out of the archive"),
        ("pkg/../../evil.py", "climbs out of the archive"),
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/evil.dll", "absolute path"),
        ("c:evil", "absolute path"),
        ("..\\evil.py", "backslashes"),
        ("pkg\\sub\\x.py", "backslashes"),
        ("pkg//x.py", "empty or '.' path component"),
        ("./x.py", "empty or '.' path component"),
    ],
)
def test_unsafe_names_refused(tmp_path: Path, name: str, reason: str) -> None:
    archive = _zip(tmp_path / "bad.zip", [("ok.py", b"1"), (name, b"evil")])
    with pytest.raises(UnsafeArchiveError, match=reason) as caught:
        inspect_archive(archive)
    assert caught.value.member == name
    assert repr(name) in str(caught.value)


def test_symlink_member_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "link.zip", [(_symlink_member("data/link"), b"/etc/passwd")])
    with pytest.raises(UnsafeArchiveError, match="'data/link' is a symbolic link"):
        inspect_archive(archive)


def test_duplicate_names_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.zip"
    with pytest.warns(UserWarning, match="Duplicate name"):
        _zip(path, [("a.py", b"1"), ("a.py", b"2")])
    with pytest.raises(UnsafeArchiveError, match=re.escape("'a.py' appears more than once")):
        inspect_archive(path)


def test_too_many_members_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "many.zip", [(f"f{i}.txt", b"x") for i in range(6)])
    with pytest.raises(UnsafeArchiveError, match="6 members, more than the limit of 5"):
        inspect_archive(archive, ArchiveLimits(max_members=5))
    assert len(inspect_archive(archive, ArchiveLimits(max_members=6))) == 6


def test_declared_sizes_over_limits_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "big.zip", [("a.bin", b"\0" * 600), ("b.bin", b"\0" * 600)])
    with pytest.raises(UnsafeArchiveError, match=re.escape("'a.bin' declares 600 bytes")) as caught:
        inspect_archive(archive, ArchiveLimits(max_member_bytes=500))
    assert caught.value.member == "a.bin"
    with pytest.raises(
        UnsafeArchiveError, match=re.escape("'b.bin' brings the archive to 1200 bytes")
    ):
        inspect_archive(archive, ArchiveLimits(max_total_uncompressed_bytes=1000))


def test_not_a_zip_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.zip"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(
        UnsafeArchiveError, match=re.escape("fake.zip is not a readable zip archive")
    ):
        inspect_archive(path)
    with pytest.raises(UnsafeArchiveError):
        safe_extract(path, tmp_path / "out")


def test_safe_extract_writes_files(tmp_path: Path) -> None:
    source = _package(tmp_path)
    build_deterministic_zip(source, tmp_path / "pkg.zip")
    members = inspect_archive(tmp_path / "pkg.zip")
    assert [m.name for m in members][:2] == ["__init__.py", "card.json"]
    written = safe_extract(tmp_path / "pkg.zip", tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
        "__init__.py", "card.json", "src/nets/gen.py", "weights.safetensors",
    ]  # fmt: skip
    extracted = tmp_path / "out" / "weights.safetensors"
    assert extracted.read_bytes() == (source / "weights.safetensors").read_bytes()
    assert stat.S_IMODE(extracted.stat().st_mode) == 0o644


def test_safe_extract_refuses_traversal_before_writing(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bad.zip", [("ok.py", b"1"), ("../evil.py", b"evil")])
    with pytest.raises(UnsafeArchiveError, match=re.escape("'../evil.py'")):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.py").exists()
    assert list((tmp_path / "out").iterdir()) == []


def _lie_about_size(path: Path, member: str, declared: int) -> None:
    """Rewrite the uncompressed size in the member's local and central headers."""
    data = bytearray(path.read_bytes())
    encoded = member.encode()
    local = data.index(b"PK\x03\x04")
    while True:
        name_length = struct.unpack_from("<H", data, local + 26)[0]
        if data[local + 30 : local + 30 + name_length] == encoded:
            struct.pack_into("<I", data, local + 22, declared)
            break
        local = data.index(b"PK\x03\x04", local + 4)
    central = data.index(b"PK\x01\x02")
    while True:
        name_length = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + name_length] == encoded:
            struct.pack_into("<I", data, central + 24, declared)
            break
        central = data.index(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))


def test_zip_bomb_with_lying_header_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bomb.zip", [("first.txt", b"fine"), ("bomb.bin", b"\0" * 200_000)])
    _lie_about_size(archive, "bomb.bin", 100)
    limits = ArchiveLimits(max_member_bytes=1000)
    assert [m.size for m in inspect_archive(archive, limits)] == [4, 100]  # headers look fine
    with pytest.raises(UnsafeArchiveError, match=re.escape("'bomb.bin'")) as caught:
        safe_extract(archive, tmp_path / "out", limits)
    assert caught.value.member == "bomb.bin"
    assert list((tmp_path / "out").iterdir()) == []


def test_lying_later_member_removes_earlier_files(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "t.zip", [("a.bin", b"\0" * 800), ("b.bin", b"\0" * 800)])
    _lie_about_size(archive, "b.bin", 1)
    limits = ArchiveLimits(max_total_uncompressed_bytes=1000)
    with pytest.raises(UnsafeArchiveError, match=re.escape("member 'b.bin' is corrupt")):
        safe_extract(archive, tmp_path / "out", limits)
    assert list((tmp_path / "out").iterdir()) == []
