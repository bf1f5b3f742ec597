"""Downloads into the verified cache against a real local hub: verify, mismatch, cache hits."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_catalog.schema import Card, card_from_json
from medigan_client.cache import Cache
from medigan_client.download import download_release, ensure_package, partial_download_path
from medigan_client.errors import (
    ArchiveUnsafeError,
    ArtifactUnreachableError,
    ChecksumMismatchError,
    OfflineError,
)
from medigan_client.http import HubSession, RetryPolicy
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from conftest import FakeHub


def _artifact_requests(hub: FakeHub) -> int:
    return sum(1 for r in hub.state.log if "/artifacts/" in r.path)


def test_download_verifies_and_caches(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    card = card_from_json(published)
    path = download_release(settings, card, progress=False)
    artifact = card.package_artifact
    assert artifact is not None
    assert path == Cache(settings.cache_dir).artifact_path(
        "zoo", "noise-8", "1.0.0", artifact.filename
    )
    assert hashlib.sha256(path.read_bytes()).hexdigest() == artifact.sha256
    assert _artifact_requests(hub) == 1

    again = download_release(settings, card, progress=False)
    assert again == path
    assert _artifact_requests(hub) == 1, "a verified cached file must not cause traffic"


def test_checksum_mismatch_deletes_the_download(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    path_on_hub = next(iter(hub.state.artifacts))
    hub.state.artifacts[path_on_hub] = b"tampered" + hub.state.artifacts[path_on_hub][8:]
    card = card_from_json(published)
    with pytest.raises(ChecksumMismatchError) as info:
        download_release(settings, card, progress=False)
    artifact = card.package_artifact
    assert artifact is not None and artifact.sha256 is not None
    assert artifact.sha256 in info.value.message
    cache = Cache(settings.cache_dir)
    assert not cache.artifact_path("zoo", "noise-8", "1.0.0", artifact.filename).exists()
    assert list(cache.tmp_dir.iterdir()) == []


def test_works_without_range_support_and_restarts_a_stale_partial(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    hub.state.support_range = False
    card = card_from_json(published)
    artifact = card.package_artifact
    assert artifact is not None
    cache = Cache(settings.cache_dir)
    target = cache.artifact_path("zoo", "noise-8", "1.0.0", artifact.filename)
    partial = partial_download_path(cache, artifact, target, artifact.urls[0])
    partial.write_bytes(b"garbage that is not the start of the file")
    path = download_release(settings, card, progress=False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == artifact.sha256
    assert "Range" in hub.state.log[-1].headers


def test_resumes_a_partial_download_with_range(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    card = card_from_json(published)
    artifact = card.package_artifact
    assert artifact is not None
    data = next(iter(hub.state.artifacts.values()))
    cache = Cache(settings.cache_dir)
    target = cache.artifact_path("zoo", "noise-8", "1.0.0", artifact.filename)
    partial_download_path(cache, artifact, target, artifact.urls[0]).write_bytes(data[:100])
    path = download_release(settings, card, progress=False)
    assert path.read_bytes() == data
    assert hub.state.log[-1].headers["Range"] == "bytes=100-"


def _with_urls(card: Card, urls: list[str]) -> Card:
    artifact = card.package_artifact
    assert artifact is not None
    return card.with_artifacts([artifact.model_copy(update={"urls": tuple(urls)})])


def test_unreachable_external_url_names_the_release_and_the_url(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://localhost:{port}/record/7031735/files/package.zip?download=1"
    card = _with_urls(card_from_json(published), [url])
    with pytest.raises(ArtifactUnreachableError) as info:
        download_release(settings, card, progress=False)
    message = info.value.message
    assert message.startswith(f"cannot reach the artifact of zoo/noise-8@1.0.0 at {url}: ")
    assert message.endswith("this release's package is hosted outside the hub")


def test_falls_back_to_the_next_url(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    card = card_from_json(published)
    artifact = card.package_artifact
    assert artifact is not None
    card = _with_urls(card, [hub.url + "/api/v1/missing.zip", *artifact.urls])
    path = download_release(settings, card, progress=False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == artifact.sha256


def test_offline_never_touches_the_network(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    offline = ClientSettings(hub_url=hub.url, cache_dir=settings.cache_dir, offline=True)
    card = card_from_json(published)
    with pytest.raises(OfflineError, match="not in the cache"):
        download_release(offline, card, progress=False)
    assert hub.state.log == []
    download_release(settings, card, progress=False)
    assert download_release(offline, card, progress=False).is_file()


def test_ensure_package_extracts_once(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    card = card_from_json(published)
    package = ensure_package(settings, card, progress=False)
    assert (package / "__init__.py").is_file()
    assert (package / "card.json").is_file()
    marker = Cache(settings.cache_dir).extracted_marker("zoo", "noise-8", "1.0.0")
    artifact = card.package_artifact
    assert artifact is not None
    assert marker.read_text() == artifact.sha256
    (package / "extra.txt").write_text("kept while the marker matches")
    assert ensure_package(settings, card, progress=False) == package
    assert (package / "extra.txt").exists()


def test_unsafe_archive_is_refused(
    settings: ClientSettings, hub: FakeHub, make_card: Any, tmp_path: Path
) -> None:
    import zipfile

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("__init__.py", "")
        archive.writestr("../escape.py", "print('out')")
    hub.publish(make_card(model_id="zoo/evil"), evil)
    card = card_from_json(hub.state.releases[-1]["card"])
    with pytest.raises(ArchiveUnsafeError, match="cannot be extracted safely"):
        ensure_package(settings, card, progress=False)
    assert not (settings.cache_dir / "releases" / "zoo" / "evil" / "escape.py").exists()
    assert not Cache(settings.cache_dir).package_dir("zoo", "evil", "1.0.0").exists()


def _quick_session(settings: ClientSettings, slept: list[float]) -> HubSession:
    return HubSession(
        settings, retry=RetryPolicy(attempts=3, base_wait_seconds=0.5), sleep=slept.append
    )


def _artifact_ranges(hub: FakeHub) -> list[str | None]:
    return [r.headers.get("Range") for r in hub.state.log if "/artifacts/" in r.path]


def test_a_connection_cut_mid_body_is_resumed_with_range(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    data = next(iter(hub.state.artifacts.values()))
    hub.state.cut_artifact_after = [100]
    slept: list[float] = []
    with _quick_session(settings, slept) as session:
        path = download_release(
            settings, card_from_json(published), session=session, progress=False
        )
    assert path.read_bytes() == data
    assert _artifact_ranges(hub) == [None, "bytes=100-"]
    assert slept == [0.5]
    assert list(Cache(settings.cache_dir).tmp_dir.iterdir()) == []


def test_a_cut_download_restarts_cleanly_when_the_server_ignores_range(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    data = next(iter(hub.state.artifacts.values()))
    hub.state.support_range = False
    hub.state.cut_artifact_after = [100, 300]
    slept: list[float] = []
    with _quick_session(settings, slept) as session:
        path = download_release(
            settings, card_from_json(published), session=session, progress=False
        )
    assert path.read_bytes() == data
    # Each retry asks for the rest, gets the whole file with 200, and starts the file over.
    assert _artifact_ranges(hub) == [None, "bytes=100-", "bytes=300-"]


def test_a_download_cut_every_time_keeps_the_partial_for_a_later_call(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    data = next(iter(hub.state.artifacts.values()))
    card = card_from_json(published)
    artifact = card.package_artifact
    assert artifact is not None
    hub.state.cut_artifact_after = [50, 50, 50]  # 50 more bytes each time, then the cut
    slept: list[float] = []
    with _quick_session(settings, slept) as session, pytest.raises(ArtifactUnreachableError):
        download_release(settings, card, session=session, progress=False)
    cache = Cache(settings.cache_dir)
    target = cache.artifact_path("zoo", "noise-8", "1.0.0", artifact.filename)
    partial = partial_download_path(cache, artifact, target, artifact.urls[0])
    assert partial.read_bytes() == data[:150]
    assert not target.exists()
    assert download_release(settings, card, progress=False).read_bytes() == data
    assert _artifact_ranges(hub)[-1] == "bytes=150-"


def test_range_not_satisfiable_restarts_from_zero(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    data = next(iter(hub.state.artifacts.values()))
    card = card_from_json(published)
    artifact = card.package_artifact
    assert artifact is not None
    # A card without size, so the client cannot tell that the partial is too long itself.
    card = card.with_artifacts([artifact.model_copy(update={"size": None})])
    cache = Cache(settings.cache_dir)
    target = cache.artifact_path("zoo", "noise-8", "1.0.0", artifact.filename)
    partial_download_path(cache, artifact, target, artifact.urls[0]).write_bytes(
        b"x" * (len(data) + 10)
    )
    hub.state.fail_next = [(416, {})]
    assert download_release(settings, card, progress=False).read_bytes() == data
    assert _artifact_ranges(hub) == [f"bytes={len(data) + 10}-", None]


def test_a_resumed_download_with_a_wrong_hash_is_fetched_again_from_scratch(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    data = next(iter(hub.state.artifacts.values()))
    card = card_from_json(published)
    artifact = card.package_artifact
    assert artifact is not None
    cache = Cache(settings.cache_dir)
    target = cache.artifact_path("zoo", "noise-8", "1.0.0", artifact.filename)
    partial_download_path(cache, artifact, target, artifact.urls[0]).write_bytes(b"\0" * 100)
    assert download_release(settings, card, progress=False).read_bytes() == data
    assert _artifact_ranges(hub) == ["bytes=100-", None]


def test_downloads_record_a_sidecar_and_refresh_last_use(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    card = card_from_json(published)
    path = download_release(settings, card, progress=False)
    sidecar = json.loads(path.with_name(path.name + ".verified").read_text())
    assert sidecar["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sidecar["size"] == path.stat().st_size
    os.utime(path.parent, (1_000_000, 1_000_000))
    download_release(settings, card, progress=False)
    assert path.parent.stat().st_mtime > 1_000_000
    assert _artifact_requests(hub) == 1
