"""Cache tooling: ``cache ls``, ``cache verify [--fix]`` and ``cache prune`` against real caches."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_catalog.schema import Card, card_from_json
from medigan_client.cache import Cache
from medigan_client.cache_admin import (
    format_size,
    list_cache,
    parse_size,
    prune_cache,
    verify_cache,
)
from medigan_client.cli import main
from medigan_client.download import ensure_package, partial_download_path
from medigan_client.errors import BadRequestError
from medigan_client.settings import ClientSettings
from medigan_client.sync import sync

if TYPE_CHECKING:
    from conftest import FakeHub, MakeCard

Publish = Callable[[dict[str, Any]], dict[str, Any]]
LONG_AGO = time.time() - 90 * 86400


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "no-config.toml"))
    for name in ("MEDIGAN_HUB_URL", "MEDIGAN_TOKEN", "MEDIGAN_CACHE_DIR", "MEDIGAN_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def _cached(settings: ClientSettings, catalogue_card: dict[str, Any]) -> Card:
    """Download and extract a published release into the cache; return its card."""
    card = card_from_json(catalogue_card)
    ensure_package(settings, card, progress=False)
    return card


def _cli(capsys: pytest.CaptureFixture[str], cache_dir: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--cache-dir", str(cache_dir), "--offline", "cache", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _artifact_requests(hub: FakeHub) -> int:
    return sum(1 for r in hub.state.log if "/artifacts/" in r.path)


def _age(path: Path, when: float = LONG_AGO) -> None:
    os.utime(path, (when, when))


# -- ls --------------------------------------------------------------------------------------


def test_ls_describes_every_kind_of_item_with_sizes_and_total(
    settings: ClientSettings,
    hub: FakeHub,
    published: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sync(settings)
    card = _cached(settings, published)
    cache = Cache(settings.cache_dir)
    venv = cache.venv_dir("zoo_noise-8_1.0.0-abc")
    venv.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    dataset = cache.dataset_dir("zoo_noise-8-seed0-n10")
    dataset.mkdir(parents=True)
    (dataset / "000000.png").write_bytes(b"x" * 10)
    artifact = card.package_artifact
    assert artifact is not None
    target = cache.artifact_path("zoo", "noise-8", "1.0.0", artifact.filename)
    partial_download_path(cache, artifact, target, artifact.urls[0]).write_bytes(b"y" * 7)

    listing = list_cache(cache)
    by_kind = {entry.kind: entry for entry in listing.entries}
    assert set(by_kind) == {"catalog", "release", "venv", "dataset", "partial"}
    release = by_kind["release"]
    assert release.name == "zoo/noise-8@1.0.0"
    assert release.package_extracted is True
    assert [(a.filename, a.recorded_sha256) for a in release.artifacts] == [
        (artifact.filename, artifact.sha256)
    ]
    assert release.size_bytes > (artifact.size or 0)
    assert by_kind["dataset"].size_bytes == 10
    assert by_kind["partial"].size_bytes == 7
    assert by_kind["catalog"].name == "127.0.0.1_" + hub.url.rsplit(":", 1)[1]
    assert listing.total_bytes == sum(entry.size_bytes for entry in listing.entries)

    code, out, _ = _cli(capsys, settings.cache_dir, "ls", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["total_bytes"] == listing.total_bytes
    assert {entry["kind"] for entry in document["entries"]} == set(by_kind)
    json_release = next(e for e in document["entries"] if e["kind"] == "release")
    assert json_release["artifacts"][0]["recorded_sha256"] == artifact.sha256
    assert json_release["last_used"].endswith("+00:00")

    code, out, _ = _cli(capsys, settings.cache_dir, "ls")
    lines = out.splitlines()
    assert code == 0
    assert any(line.startswith("release\tzoo/noise-8@1.0.0\t") for line in lines)
    assert "package extracted" in next(line for line in lines if line.startswith("release"))
    assert lines[-1] == f"total\t5 items\t{format_size(listing.total_bytes)}"


def test_ls_of_an_empty_or_missing_cache_is_empty(tmp_path: Path) -> None:
    listing = list_cache(Cache(tmp_path / "nothing"))
    assert listing.entries == ()
    assert listing.total_bytes == 0


# -- verify ----------------------------------------------------------------------------------


def test_verify_passes_on_a_healthy_cache(
    settings: ClientSettings,
    published: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sync(settings)
    _cached(settings, published)
    report = verify_cache(Cache(settings.cache_dir))
    assert report.ok
    assert report.problems == ()
    assert report.checked == 3  # the snapshot, the artifact, the extracted package
    code, out, err = _cli(capsys, settings.cache_dir, "verify")
    assert (code, out) == (0, "")
    assert "0 problem(s)" in err


def test_a_corrupt_artifact_fails_verify_and_fix_makes_the_next_use_download_again(
    settings: ClientSettings,
    hub: FakeHub,
    published: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    card = _cached(settings, published)
    artifact = card.package_artifact
    assert artifact is not None
    cache = Cache(settings.cache_dir)
    archive = cache.artifact_path("zoo", "noise-8", "1.0.0", artifact.filename)
    data = bytearray(archive.read_bytes())
    data[-1] ^= 0xFF  # same size, one bit pattern off: only a re-hash can tell
    archive.write_bytes(bytes(data))

    code, out, _ = _cli(capsys, settings.cache_dir, "verify")
    assert code == 1
    assert out.startswith("corrupt\trelease\tzoo/noise-8@1.0.0\t")
    assert f"{artifact.sha256} was recorded" in out
    assert archive.exists(), "verify without --fix changes nothing"

    code, out, _ = _cli(capsys, settings.cache_dir, "verify", "--fix")
    assert code == 0
    assert out.startswith("removed\trelease\tzoo/noise-8@1.0.0\t")
    assert not archive.exists()
    assert not cache.package_dir("zoo", "noise-8", "1.0.0").exists()

    package = ensure_package(settings, card, progress=False)
    assert (package / "__init__.py").is_file()
    assert _artifact_requests(hub) == 2
    assert verify_cache(cache).ok


def test_a_changed_extracted_package_is_corrupt_and_fix_only_re_extracts(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    card = _cached(settings, published)
    cache = Cache(settings.cache_dir)
    package = cache.package_dir("zoo", "noise-8", "1.0.0")
    (package / "noise.py").write_text("def spread():\n    return 99.0\n")
    (package / "__pycache__").mkdir()  # what running a package leaves is not a problem

    report = verify_cache(cache)
    assert [(p.status, p.path) for p in report.problems] == [("corrupt", package)]
    assert "noise.py" in report.problems[0].reason

    fixed = verify_cache(cache, fix=True)
    assert fixed.ok and fixed.problems[0].fixed
    assert not package.exists()
    ensure_package(settings, card, progress=False)
    assert (package / "noise.py").read_text() == "def spread():\n    return 20.0\n"
    assert _artifact_requests(hub) == 1, "the verified archive was kept"


def test_a_missing_package_file_is_reported(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    _cached(settings, published)
    cache = Cache(settings.cache_dir)
    (cache.package_dir("zoo", "noise-8", "1.0.0") / "card.json").unlink()
    (problem,) = verify_cache(cache).problems
    assert problem.reason.endswith("card.json is missing")


def test_an_artifact_without_a_record_is_checked_against_the_cached_catalogue(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    card = _cached(settings, published)
    artifact = card.package_artifact
    assert artifact is not None
    cache = Cache(settings.cache_dir)
    archive = cache.artifact_path("zoo", "noise-8", "1.0.0", artifact.filename)
    archive.with_name(archive.name + ".verified").unlink()

    (problem,) = verify_cache(cache).problems
    assert problem.status == "incomplete"
    assert "no recorded sha256" in problem.reason

    sync(settings)
    assert verify_cache(cache).ok, "the catalogue's sha256 vouches for the file"
    archive.write_bytes(b"not the package")
    (problem,) = [p for p in verify_cache(cache).problems if p.path == archive]
    assert problem.status == "corrupt"
    assert "the cached catalogue lists" in problem.reason


def test_a_broken_snapshot_and_an_unfinished_venv_are_reported(
    settings: ClientSettings, hub: FakeHub
) -> None:
    sync(settings)
    cache = Cache(settings.cache_dir)
    cache.snapshot_path(hub.url).write_text("{ not json")
    cache.venv_dir("half-built").mkdir(parents=True)
    report = verify_cache(cache)
    assert {(p.kind, p.status) for p in report.problems} == {
        ("catalog", "corrupt"),
        ("venv", "incomplete"),
    }
    verify_cache(cache, fix=True)
    assert not cache.snapshot_path(hub.url).exists()
    assert not cache.venv_dir("half-built").exists()
    sync(settings)
    assert verify_cache(cache).ok


def test_verify_skips_an_item_that_is_being_written(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    card = _cached(settings, published)
    artifact = card.package_artifact
    assert artifact is not None
    cache = Cache(settings.cache_dir)
    archive = cache.artifact_path("zoo", "noise-8", "1.0.0", artifact.filename)
    archive.write_bytes(b"damaged")
    with cache.item_lock(archive):
        report = verify_cache(cache, fix=True)
    assert report.problems == ()
    assert report.busy == (
        "release zoo/noise-8@1.0.0: another process is writing it (its lock is held)",
    )
    assert archive.read_bytes() == b"damaged"


# -- prune -----------------------------------------------------------------------------------


def test_prune_removes_partials_and_stale_temporaries_but_not_fresh_ones(
    settings: ClientSettings, published: dict[str, Any], hub: FakeHub
) -> None:
    sync(settings)
    card = _cached(settings, published)
    artifact = card.package_artifact
    assert artifact is not None
    cache = Cache(settings.cache_dir)
    target = cache.artifact_path("zoo", "noise-8", "1.0.0", artifact.filename)
    partial = partial_download_path(cache, artifact, target, artifact.urls[0])
    partial.write_bytes(b"half")
    stale = cache.catalog_dir(hub.url) / ".snapshot.json.abc.tmp"
    stale.write_bytes(b"crashed writer")
    _age(stale)
    fresh = cache.catalog_dir(hub.url) / ".snapshot.json.def.tmp"
    fresh.write_bytes(b"a writer at work")
    staging = target.parent / ".package-xyz"
    staging.mkdir()
    (staging / "__init__.py").write_text("")

    report = prune_cache(cache)
    assert {d.entry.path for d in report.removed} == {partial, stale, staging}
    assert report.freed_bytes == 4 + len(b"crashed writer")
    assert not partial.exists() and not stale.exists() and not staging.exists()
    assert fresh.exists()
    assert target.exists(), "no criterion given: verified items stay"


def test_prune_keeps_a_partial_that_a_download_is_writing(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    card = card_from_json(published)
    artifact = card.package_artifact
    assert artifact is not None
    cache = Cache(settings.cache_dir)
    target = cache.artifact_path("zoo", "noise-8", "1.0.0", artifact.filename)
    partial = partial_download_path(cache, artifact, target, artifact.urls[0])
    partial.write_bytes(b"half")
    with cache.item_lock(partial):
        report = prune_cache(cache)
    assert report.removed == ()
    (skipped,) = report.skipped
    assert skipped.entry.path == partial
    assert skipped.reason == "kept: another process is writing it (its lock is held)"
    assert partial.exists()


def _three_releases(
    settings: ClientSettings, publish: Publish, make_card: MakeCard
) -> dict[str, Path]:
    """Cache zoo/a@1.0.0 (oldest use), zoo/a@2.0.0, zoo/b@1.0.0 (newest use)."""
    cache = Cache(settings.cache_dir)
    dirs: dict[str, Path] = {}
    for age_days, (model_id, version) in zip(
        (60, 30, 1), [("zoo/a", "1.0.0"), ("zoo/a", "2.0.0"), ("zoo/b", "1.0.0")], strict=True
    ):
        _cached(settings, publish(make_card(model_id=model_id, version=version)))
        namespace, name = model_id.split("/")
        directory = cache.release_dir(namespace, name, version)
        _age(directory, time.time() - age_days * 86400)
        dirs[f"{model_id}@{version}"] = directory
    return dirs


def test_prune_older_than_removes_only_unused_items_and_dry_run_changes_nothing(
    settings: ClientSettings,
    publish: Publish,
    make_card: MakeCard,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dirs = _three_releases(settings, publish, make_card)
    code, out, err = _cli(capsys, settings.cache_dir, "prune", "--older-than", "20", "--dry-run")
    assert code == 0
    assert [line.split("\t")[:3] for line in out.splitlines()] == [
        ["would remove", "release", "zoo/a@1.0.0"],
        ["would remove", "release", "zoo/a@2.0.0"],
    ]
    assert "not used for 20 days" in out
    assert err.startswith("would remove 2 item(s)")
    assert all(directory.exists() for directory in dirs.values())

    code, out, _ = _cli(capsys, settings.cache_dir, "prune", "--older-than", "45")
    assert code == 0
    assert [line.split("\t")[:3] for line in out.splitlines()] == [
        ["removed", "release", "zoo/a@1.0.0"]
    ]
    assert not dirs["zoo/a@1.0.0"].exists()
    assert dirs["zoo/a@2.0.0"].exists() and dirs["zoo/b@1.0.0"].exists()


def test_prune_max_size_evicts_least_recently_used_first(
    settings: ClientSettings, publish: Publish, make_card: MakeCard
) -> None:
    dirs = _three_releases(settings, publish, make_card)
    cache = Cache(settings.cache_dir)
    before = list_cache(cache).total_bytes
    newest = next(e for e in list_cache(cache).entries if e.path == dirs["zoo/b@1.0.0"])
    report = prune_cache(cache, max_size_bytes=newest.size_bytes + 1)
    assert [d.entry.name for d in report.removed] == ["zoo/a@1.0.0", "zoo/a@2.0.0"]
    assert list_cache(cache).total_bytes == before - report.freed_bytes
    assert list_cache(cache).total_bytes <= newest.size_bytes + 1
    assert dirs["zoo/b@1.0.0"].exists()


def test_prune_model_removes_one_version_or_all(
    settings: ClientSettings, publish: Publish, make_card: MakeCard
) -> None:
    dirs = _three_releases(settings, publish, make_card)
    cache = Cache(settings.cache_dir)
    report = prune_cache(cache, model="zoo/a@2.0.0")
    assert [d.entry.name for d in report.removed] == ["zoo/a@2.0.0"]
    assert dirs["zoo/a@1.0.0"].exists()
    report = prune_cache(cache, model="zoo/a")
    assert [d.entry.name for d in report.removed] == ["zoo/a@1.0.0"]
    assert not (settings.cache_dir / "releases" / "zoo" / "a").exists()
    assert dirs["zoo/b@1.0.0"].exists()


def test_prune_never_deletes_an_item_another_process_uses_or_writes(
    settings: ClientSettings,
    publish: Publish,
    make_card: MakeCard,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dirs = _three_releases(settings, publish, make_card)
    cache = Cache(settings.cache_dir)
    with (
        cache.in_use(dirs["zoo/a@1.0.0"]),
        cache.item_lock(cache.package_dir("zoo", "a", "2.0.0")),
    ):
        code, out, err = _cli(capsys, settings.cache_dir, "prune", "--older-than", "0")
    assert code == 0
    lines = sorted(out.splitlines())
    assert lines[0].startswith("removed\trelease\tzoo/b@1.0.0\t")
    assert lines[1:] == [
        "skipped\trelease\tzoo/a@1.0.0\tkept: another process is using it",
        "skipped\trelease\tzoo/a@2.0.0\tkept: another process is writing it (its lock is held)",
    ]
    assert "skipped 2" in err
    assert dirs["zoo/a@1.0.0"].exists() and dirs["zoo/a@2.0.0"].exists()
    assert not dirs["zoo/b@1.0.0"].exists()


def test_prune_leaves_catalogues_alone(settings: ClientSettings, hub: FakeHub) -> None:
    sync(settings)
    cache = Cache(settings.cache_dir)
    _age(cache.catalog_dir(hub.url))
    report = prune_cache(cache, older_than_days=0, max_size_bytes=0)
    assert report.removed == ()
    assert cache.snapshot_path(hub.url).is_file()


def test_sizes_parse_and_bad_input_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert parse_size("4096") == 4096
    assert parse_size("500M") == 500 * 1024**2
    assert parse_size("1.5GiB") == int(1.5 * 1024**3)
    assert parse_size("2 gb") == 2 * 1024**3
    with pytest.raises(BadRequestError, match="cannot read the size 'lots'"):
        parse_size("lots")
    with pytest.raises(BadRequestError, match="is not a model reference"):
        prune_cache(Cache(tmp_path), model="no-namespace")
    code, _, err = _cli(capsys, tmp_path, "prune", "--max-size", "huge")
    assert code == 1
    assert err.startswith("error: cannot read the size 'huge'")
    code, _, err = _cli(capsys, tmp_path, "prune", "--older-than", "-1")
    assert code == 2


def _built(directory: Path) -> Path:
    directory.mkdir(parents=True)
    (directory / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return directory


def test_prune_model_takes_the_models_venvs_and_data_sets_along(
    settings: ClientSettings, publish: Publish, make_card: MakeCard
) -> None:
    dirs = _three_releases(settings, publish, make_card)
    cache = Cache(settings.cache_dir)
    # Key formats of the venv builder and the data set builder.
    mine = [
        _built(cache.venv_dir("zoo_a_1.0.0-0123456789abcdef")),
        _built(cache.dataset_dir("zoo--a--2.0.0--0123456789abcdef01234567")),
    ]
    others = [
        _built(cache.venv_dir("zoo_a_b_1.0.0-0123456789abcdef")),  # zoo/a_b, not zoo/a
        _built(cache.dataset_dir("zoo--b--1.0.0--0123456789abcdef01234567")),
    ]
    report = prune_cache(cache, model="zoo/a", dry_run=True)
    assert {d.entry.path for d in report.removed} == {
        dirs["zoo/a@1.0.0"],
        dirs["zoo/a@2.0.0"],
        *mine,
    }
    report = prune_cache(cache, model="zoo/a@1.0.0")
    assert {d.entry.path for d in report.removed} == {dirs["zoo/a@1.0.0"], mine[0]}
    assert all(path.exists() for path in others)
    assert mine[1].exists()


def test_prune_keeps_venvs_and_data_sets_their_builders_are_working_on(
    settings: ClientSettings,
) -> None:
    cache = Cache(settings.cache_dir)
    venv = _built(cache.venv_dir("zoo_a_1.0.0-0123456789abcdef"))
    dataset = _built(cache.dataset_dir("zoo--a--1.0.0--0123456789abcdef01234567"))
    with cache.lock(f"venv:{venv.name}"), cache.lock(f"dataset:{dataset.name}"):
        report = prune_cache(cache, older_than_days=0)
    assert report.removed == ()
    assert {d.entry.kind for d in report.skipped} == {"venv", "dataset"}
    assert prune_cache(cache, older_than_days=0).freed_bytes > 0
    assert not venv.exists() and not dataset.exists()
