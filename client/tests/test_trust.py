"""Signed catalogues against the real fake hub: first-use pinning, configured keys, tampered
snapshots and feed pages, changed keys, rotations, the opt-out and ``keys show|forget``."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_catalog.signing import KEYS_PATH, SigningKey
from medigan_client.cache import Cache
from medigan_client.cli import main
from medigan_client.errors import KeyChangedError, SignatureInvalidError, SignatureMissingError
from medigan_client.settings import ClientSettings
from medigan_client.sync import load_snapshot, sync
from medigan_client.trust import keys_path, load_pins

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import FakeHub


def _list(hub: FakeHub, card: dict[str, Any]) -> None:
    hub.state.releases.append(
        {
            "model_id": card["model_id"],
            "version": card["version"],
            "published_at": "2025-01-02T00:00:00+00:00",
            "card": card,
        }
    )
    hub.state.serial += 1


def _snapshot_bytes(settings: ClientSettings) -> bytes:
    return Cache(settings.cache_dir).snapshot_path(settings.hub_url).read_bytes()


def test_first_sync_pins_the_hubs_key_set_in_a_private_file(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    _list(hub, make_card())
    assert sync(settings).release_count == 1
    pins = load_pins(settings)
    assert pins is not None
    assert set(pins.keys) == {hub.state.key_id}
    assert pins.hub == "fake"
    assert stat.S_IMODE(keys_path(settings).stat().st_mode) == 0o600
    # Pinned once: the next sync does not fetch the key set again.
    sync(settings)
    assert len(hub.state.requests_to(KEYS_PATH)) == 1


def test_a_tampered_snapshot_is_refused_and_the_cached_copy_kept(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    _list(hub, make_card())
    sync(settings)
    before = _snapshot_bytes(settings)
    _list(hub, make_card(version="1.1.0"))
    hub.state.tamper = True
    with pytest.raises(SignatureInvalidError) as raised:
        sync(settings)
    assert raised.value.code.value == "signature_invalid"
    assert "altered" in raised.value.message
    assert _snapshot_bytes(settings) == before
    assert [r.version for r in load_snapshot(settings).releases] == ["1.0.0"]


def test_a_tampered_feed_page_is_refused_before_it_is_applied(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    hub.state.feed = True
    _list(hub, make_card())
    sync(settings)
    before = _snapshot_bytes(settings)
    _list(hub, make_card(version="1.1.0"))
    hub.state.tamper = True
    with pytest.raises(SignatureInvalidError):
        sync(settings)
    assert hub.state.requests_to("/api/v1/changes"), "the feed was asked"
    assert _snapshot_bytes(settings) == before
    hub.state.tamper = False
    result = sync(settings)
    assert (result.release_count, result.serial) == (2, 3)


def test_an_untampered_feed_page_is_applied(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    hub.state.feed = True
    _list(hub, make_card())
    sync(settings)
    _list(hub, make_card(version="1.1.0"))
    result = sync(settings)
    assert (result.changed, result.release_count) == (True, 2)
    assert len(hub.state.requests_to("/api/v1/catalog")) == 1, "applied from the feed"


def test_an_unsigned_snapshot_is_refused(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    _list(hub, make_card())
    hub.state.unsigned = True
    with pytest.raises(SignatureMissingError) as raised:
        sync(settings)
    assert "verify = false" in raised.value.message
    assert not Cache(settings.cache_dir).snapshot_path(settings.hub_url).exists()


def test_a_snapshot_signed_by_another_key_is_a_changed_key(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    _list(hub, make_card())
    sync(settings)
    impostor = SigningKey.generate()
    hub.state.signing_keys = [impostor]  # the key set changes too: nothing the pins vouch for
    _list(hub, make_card(version="1.1.0"))
    with pytest.raises(KeyChangedError) as raised:
        sync(settings)
    assert raised.value.code.value == "key_changed"
    assert raised.value.offered == (impostor.key_id,)
    pins = load_pins(settings)
    assert pins is not None and impostor.key_id not in pins.keys


def test_a_wrong_key_with_the_pinned_keys_id_is_an_invalid_signature(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    _list(hub, make_card())
    sync(settings)
    # A signature claiming the pinned key's id, made with another key.
    hub.state.sign_with = [_ForgedKey(SigningKey.generate(), hub.state.key_id)]  # type: ignore[list-item]
    _list(hub, make_card(version="1.1.0"))
    with pytest.raises(SignatureInvalidError):
        sync(settings)
    assert [r.version for r in load_snapshot(settings).releases] == ["1.0.0"]


class _ForgedKey:
    """Signs with one key under another key's id."""

    def __init__(self, key: SigningKey, key_id: str) -> None:
        self.key, self.key_id = key, key_id

    def sign(self, data: bytes) -> Any:
        return replace(self.key.sign(data), key_id=self.key_id)


def test_a_rotation_is_accepted_and_the_new_key_pinned_then_the_old_unpinned(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    _list(hub, make_card())
    sync(settings)
    old = hub.state.key_id
    new = hub.state.rotate()
    _list(hub, make_card(version="1.1.0"))
    assert sync(settings).release_count == 2
    pins = load_pins(settings)
    assert pins is not None and set(pins.keys) == {old, new.key_id}
    # The old key retires: documents signed by the new key alone are accepted.
    hub.state.signing_keys = [new]
    _list(hub, make_card(version="1.2.0"))
    assert sync(settings).release_count == 3
    # The next rotation's refresh pins the hub's set as it is then: the old key is unpinned.
    hub.state.rotate()
    _list(hub, make_card(version="1.3.0"))
    assert sync(settings).release_count == 4
    pins = load_pins(settings)
    assert pins is not None and old not in pins.keys and new.key_id in pins.keys


def test_a_configured_key_must_be_in_the_key_set(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    _list(hub, make_card())
    other = SigningKey.generate()
    with pytest.raises(KeyChangedError) as raised:
        sync(replace(settings, hub_keys=(other.key_id,)))
    assert other.key_id in raised.value.message
    assert load_pins(settings) is None
    result = sync(replace(settings, hub_keys=(hub.state.key_id,)))
    assert result.release_count == 1


def test_verify_false_syncs_an_unsigned_hub_with_a_warning_each_time(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    _list(hub, make_card())
    hub.state.unsigned = True
    trusting = replace(settings, verify=False)
    for _ in range(2):
        result = sync(trusting)
        assert result.warning is not None and "not verified" in result.warning
    assert not hub.state.requests_to(KEYS_PATH)


def test_keys_show_and_forget_from_the_command_line(
    tmp_path: Path,
    hub: FakeHub,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    make_card: Callable[..., dict[str, Any]],
) -> None:
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "config.toml"))
    _list(hub, make_card())
    base = ["--hub", hub.url, "--cache-dir", str(tmp_path / "cache")]
    assert main([*base, "sync"]) == 0
    capsys.readouterr()
    name = hub.url.removeprefix("http://")
    assert main([*base, "keys", "show"]) == 0
    assert f"{name}\t{hub.state.key_id}\t" in capsys.readouterr().out

    hub.state.signing_keys = [SigningKey.generate()]
    _list(hub, make_card(version="1.1.0"))
    assert main([*base, "sync"]) == 1
    err = capsys.readouterr().err
    assert "(key_changed)" in err and "keys forget" in err

    assert main([*base, "keys", "forget", name]) == 0
    assert "forgot the keys pinned" in capsys.readouterr().out
    assert main([*base, "sync"]) == 0
    fresh = ClientSettings(hub_url=hub.url, cache_dir=tmp_path / "cache")
    document = json.loads(keys_path(fresh).read_text())
    assert list(document["keys"]) == [hub.state.key_id]
