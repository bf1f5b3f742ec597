"""Cache layout and atomic writes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from filelock import Timeout

from medigan_client import Client
from medigan_client.cache import Cache, create_private_file, hub_key, write_atomic
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from conftest import FakeHub


def test_hub_key_is_a_sanitized_host_and_port() -> None:
    assert hub_key("http://127.0.0.1:8000") == "127.0.0.1_8000"
    assert hub_key("https://Hub.Example.org") == "hub.example.org_443"
    assert hub_key("https://example.org/medigan/") == "example.org_443_medigan"
    assert hub_key("http://[::1]:9000") == "__1_9000"


def test_layout(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    assert cache.snapshot_path("http://127.0.0.1:8000") == (
        tmp_path / "catalogs" / "127.0.0.1_8000" / "snapshot.json"
    )
    assert cache.etag_path("http://127.0.0.1:8000").name == "etag"
    assert cache.artifact_path("medigan", "00001_X", "0.0.1", "p.zip") == (
        tmp_path / "releases" / "medigan" / "00001_X" / "0.0.1" / "p.zip"
    )
    assert cache.package_dir("zoo", "a", "1.0.0") == tmp_path / "releases/zoo/a/1.0.0/package"
    assert cache.tmp_dir.is_dir()


def test_hostile_components_stay_inside_the_cache(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    path = cache.artifact_path("..", "../../etc", "..", "passwd")
    assert tmp_path in path.resolve().parents


def test_write_atomic_replaces_content_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.json"]


def test_partial_path_is_stable_per_key(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    assert cache.partial_path("a") == cache.partial_path("a")
    assert cache.partial_path("a") != cache.partial_path("b")
    assert cache.partial_path("a").parent == cache.tmp_dir


def test_lock_is_reentrant_across_instances_of_the_same_key(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    with cache.lock("item"):
        assert Path(cache.lock("item").lock_file).exists()


def test_relative_key_is_the_same_for_every_spelling_of_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    absolute = Cache(tmp_path / "cache")
    relative = Cache(Path("cache"))
    target = absolute.artifact_path("zoo", "a", "1.0.0", "p.zip")
    assert absolute.relative_key(target) == "releases/zoo/a/1.0.0/p.zip"
    assert relative.relative_key(Path("cache/releases/zoo/a/1.0.0/p.zip")) == (
        "releases/zoo/a/1.0.0/p.zip"
    )
    same_lock = Path(absolute.item_lock(target).lock_file).resolve()
    assert same_lock == Path(relative.item_lock(target).lock_file).resolve()


def test_item_lock_is_exclusive_between_holders(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    item = cache.package_dir("zoo", "a", "1.0.0")
    with cache.item_lock(item), pytest.raises(Timeout):
        # A second lock object stands for another process: flock conflicts per open file.
        cache.item_lock(item, timeout=0).acquire()
    with cache.item_lock(item, timeout=0):
        pass


@pytest.mark.skipif(sys.platform == "win32", reason="shared leases need fcntl")
def test_use_leases_are_shared_and_block_an_exclusive_claim(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    item = cache.release_dir("zoo", "a", "1.0.0")
    with cache.in_use(item), cache.in_use(item), cache.claim_unused(item) as free:
        assert free is False
    with cache.claim_unused(item) as free:
        assert free is True


def test_mark_used_refreshes_the_directory_time_and_ignores_missing_items(
    tmp_path: Path,
) -> None:
    cache = Cache(tmp_path)
    item = cache.release_dir("zoo", "a", "1.0.0")
    item.mkdir(parents=True)
    os.utime(item, (1_000, 1_000))
    cache.mark_used(item)
    assert item.stat().st_mtime > 1_000
    cache.mark_used(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _default_modes(scratch: Path) -> tuple[int, int]:
    """The modes this process gives a new folder and a new file (the umask's doing)."""
    scratch.mkdir()
    (scratch / "file").write_bytes(b"")
    return _mode(scratch), _mode(scratch / "file")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_private_releases_are_cached_for_their_user_only_and_public_ones_as_usual(
    settings: ClientSettings,
    hub: FakeHub,
    tmp_path: Path,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: Callable[..., dict[str, Any]],
) -> None:
    publish(make_card(model_id="zoo/open"))
    publish(make_card(model_id="my-lab/secret"))
    hub.state.releases[-1]["visibility"] = "private"
    hub.state.add_organisation("my-lab", {"tester": "reader"})
    default_dir, default_file = _default_modes(tmp_path / "defaults")
    cache = Cache(settings.cache_dir)
    with Client(settings=settings, progress=False) as client:
        client.sync()
        open_package = client.package("zoo/open")
        secret_package = client.package("my-lab/secret")
        open_zip, secret_zip = client.download("zoo/open"), client.download("my-lab/secret")
        secret_dataset = client.dataset("my-lab/secret", num_samples=2, isolation="inprocess")

    assert _mode(secret_dataset.directory) == 0o700
    dataset_files = [path for path in secret_dataset.directory.rglob("*") if path.is_file()]
    assert dataset_files and {_mode(path) for path in dataset_files} == {0o600}
    secret_release = cache.release_dir("my-lab", "secret", "1.0.0")
    assert _mode(secret_release) == 0o700
    assert _mode(secret_release.parent) == 0o700
    assert _mode(secret_zip) == 0o600
    assert _mode(secret_package) == 0o700
    extracted = list(secret_package.rglob("*"))
    assert extracted and {_mode(p) for p in extracted if p.is_file()} == {0o600}
    assert {_mode(p) for p in secret_release.iterdir() if p.is_file()} == {0o600}
    assert _mode(cache.snapshot_path(settings.hub_url)) == 0o600

    open_release = cache.release_dir("zoo", "open", "1.0.0")
    assert _mode(open_release) == default_dir
    assert _mode(open_zip) == default_file
    assert {_mode(p) for p in open_package.rglob("*") if p.is_file()} == {0o644}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_a_release_cached_while_public_is_narrowed_once_it_is_not(
    settings: ClientSettings,
    hub: FakeHub,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: Callable[..., dict[str, Any]],
) -> None:
    publish(make_card(model_id="zoo/open"))
    with Client(settings=settings, progress=False) as client:
        client.sync()
        client.download("zoo/open")
        hub.state.releases[-1]["visibility"] = "internal"
        hub.state.serial += 1
        client.sync()
        client.download("zoo/open")
    assert _mode(Cache(settings.cache_dir).release_dir("zoo", "open", "1.0.0")) == 0o700


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_private_folders_and_files_are_created_private_and_existing_ones_narrowed(
    tmp_path: Path,
) -> None:
    cache = Cache(tmp_path / "cache")
    release = cache.make_release_dir("ns", "model", "1.0.0", private=True)
    assert (_mode(release), _mode(release.parent)) == (0o700, 0o700)
    partial = tmp_path / "partial"
    create_private_file(partial)
    assert _mode(partial) == 0o600
    wide = tmp_path / "wide"
    wide.write_bytes(b"x")
    wide.chmod(0o644)
    create_private_file(wide)
    assert (_mode(wide), wide.read_bytes()) == (0o600, b"x")
    public = cache.make_release_dir("ns", "other", "1.0.0", private=False)
    public.chmod(0o755)
    cache.make_release_dir("ns", "other", "1.0.0", private=True)
    assert _mode(public) == 0o700
