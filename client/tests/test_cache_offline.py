"""Offline mode answers from the cache alone: no request reaches the hub, no socket connects."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_client.api import Client
from medigan_client.cli import main
from medigan_client.errors import OfflineError
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from conftest import FakeHub, MakeCard, WritePackage, ZipPackage


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "no-config.toml"))
    for name in ("MEDIGAN_HUB_URL", "MEDIGAN_TOKEN", "MEDIGAN_CACHE_DIR", "MEDIGAN_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


class ConnectionGuard:
    """Replaces socket connects: records the address and fails, so nothing can slip out."""

    def __init__(self) -> None:
        self.attempts: list[object] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def refuse(_sock: socket.socket, address: object) -> None:
            self.attempts.append(address)
            _sock.close()  # closed here: the caller only closes sockets on OSError
            raise AssertionError(f"offline mode tried to connect to {address!r}")

        monkeypatch.setattr(socket.socket, "connect", refuse)
        monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def test_the_guard_really_stops_a_connection(
    settings: ClientSettings, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = ConnectionGuard()
    guard.install(monkeypatch)
    with Client(settings=settings, progress=False) as online, pytest.raises(AssertionError):
        online.sync()
    assert guard.attempts == [("127.0.0.1", int(hub.url.rsplit(":", 1)[1]))]
    assert hub.state.log == []


def _warm_cache(settings: ClientSettings, tmp_path: Path) -> None:
    with Client(settings=settings, progress=False) as online:
        online.sync()
        online.generate("zoo/noise-8", 2, tmp_path / "warm", device="cpu")


def test_a_cached_release_is_synced_searched_shown_downloaded_and_generated_offline(
    settings: ClientSettings,
    hub: FakeHub,
    published: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _warm_cache(settings, tmp_path)
    hub.state.log.clear()
    guard = ConnectionGuard()
    guard.install(monkeypatch)

    offline = dataclasses.replace(settings, offline=True)
    with Client(settings=offline, progress=False) as client:
        synced = client.sync()
        hits = client.search("noise")
        card = client.show("zoo/noise-8")
        archive = client.download("zoo/noise-8@1.0.0")
        result = client.generate("zoo/noise-8", 3, tmp_path / "out", device="cpu")

    assert synced.from_cache and synced.warning is not None and "offline" in synced.warning
    assert [hit.card.model_id for hit in hits] == ["zoo/noise-8"]
    assert card.release_id == "zoo/noise-8@1.0.0"
    assert archive.is_file()
    assert [path.name for path in result.files] == ["000000.png", "000001.png", "000002.png"]
    assert all(path.is_file() for path in result.files)
    assert hub.state.log == []
    assert guard.attempts == []


def test_the_cli_with_medigan_offline_makes_no_request(
    settings: ClientSettings,
    hub: FakeHub,
    published: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _warm_cache(settings, tmp_path)
    hub.state.log.clear()
    guard = ConnectionGuard()
    guard.install(monkeypatch)
    monkeypatch.setenv("MEDIGAN_OFFLINE", "1")
    base = ["--hub", hub.url, "--cache-dir", str(settings.cache_dir)]
    for command in (
        ["sync"],
        ["search", "noise"],
        ["show", "zoo/noise-8"],
        ["download", "zoo/noise-8@1.0.0"],
        ["generate", "zoo/noise-8", "-n", "2", "-o", str(tmp_path / "cli"), "--device", "cpu"],
    ):
        assert main([*base, *command]) == 0, capsys.readouterr().err
    assert (tmp_path / "cli" / "000001.png").is_file()
    assert hub.state.log == []
    assert guard.attempts == []


def test_an_uncached_release_offline_is_a_clear_offline_error(
    settings: ClientSettings,
    hub: FakeHub,
    published: dict[str, Any],
    make_card: MakeCard,
    write_package: WritePackage,
    zip_package: ZipPackage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    card = make_card(model_id="zoo/other")
    package = write_package(tmp_path / "other", card)
    hub.publish(card, zip_package(package, tmp_path / "other.zip"))
    _warm_cache(settings, tmp_path)  # the catalogue knows zoo/other; its package is not cached
    hub.state.log.clear()
    guard = ConnectionGuard()
    guard.install(monkeypatch)

    offline = dataclasses.replace(settings, offline=True)
    with (
        Client(settings=offline, progress=False) as client,
        pytest.raises(OfflineError) as info,
    ):
        client.generate("zoo/other", 1, tmp_path / "out", device="cpu")
    assert info.value.code.value == "offline"
    assert info.value.message.startswith(
        "offline mode: the package of zoo/other@1.0.0 is not in the cache"
    )
    assert "medigan-client download zoo/other@1.0.0" in info.value.message

    base = ["--hub", hub.url, "--cache-dir", str(settings.cache_dir), "--offline"]
    code = main([*base, "download", "zoo/other"])
    assert code == 1
    assert capsys.readouterr().err.startswith(
        f"hub: {hub.url} (from --hub)\nerror: offline mode: the package of zoo/other@1.0.0 is not"
    )
    assert hub.state.log == []
    assert guard.attempts == []


def test_offline_without_a_cached_catalogue_says_how_to_get_one(
    settings: ClientSettings, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = ConnectionGuard()
    guard.install(monkeypatch)
    offline = dataclasses.replace(settings, offline=True)
    with Client(settings=offline, progress=False) as client, pytest.raises(OfflineError) as info:
        client.sync()
    assert "run `medigan-client sync` once while online" in info.value.message
    assert hub.state.log == []
    assert guard.attempts == []
