"""Catalogue sync against a real local hub: ETag/304, atomic snapshot, unreachable fallback."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from medigan_catalog.snapshot import version_key
from medigan_client.cache import Cache
from medigan_client.errors import HubUnreachableError, NotFoundError, OfflineError
from medigan_client.settings import ClientSettings
from medigan_client.sync import find_release, latest_cards, load_snapshot, sync

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


def test_first_sync_writes_the_snapshot_and_etag(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    _list(hub, make_card())
    result = sync(settings)
    assert (result.serial, result.release_count, result.changed, result.from_cache) == (
        2,
        1,
        True,
        False,
    )
    cache = Cache(settings.cache_dir)
    document = json.loads(cache.snapshot_path(settings.hub_url).read_bytes())
    assert document["serial"] == 2
    assert cache.etag_path(settings.hub_url).read_text() == hub.state.etag()


def test_second_sync_sends_if_none_match_and_keeps_the_snapshot_on_304(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    _list(hub, make_card())
    sync(settings)
    result = sync(settings)
    assert result.changed is False
    assert result.from_cache is False
    assert result.serial == 2
    last = hub.state.requests_to("/api/v1/catalog")[-1]
    assert last.headers["If-None-Match"] == hub.state.etag()

    _list(hub, make_card(version="1.1.0"))
    result = sync(settings)
    assert (result.serial, result.release_count, result.changed) == (3, 2, True)


def test_unreachable_hub_falls_back_to_the_cached_snapshot(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    _list(hub, make_card())
    sync(settings)
    hub.server.shutdown()
    hub.server.server_close()
    result = sync(settings)
    assert result.from_cache is True
    assert result.serial == 2
    assert result.warning is not None
    assert f"hub unreachable at {settings.hub_url}" in result.warning
    assert "serial 2" in result.warning
    assert "2025-01-01T00:00:00+00:00" in result.warning


def test_unreachable_hub_without_a_snapshot_raises(settings: ClientSettings, hub: FakeHub) -> None:
    hub.server.shutdown()
    hub.server.server_close()
    with pytest.raises(HubUnreachableError, match="no cached catalogue"):
        sync(settings)
    with pytest.raises(NotFoundError, match="run `medigan-client sync` first"):
        load_snapshot(settings)


def test_offline_sync_uses_the_cache_without_traffic(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    offline = ClientSettings(hub_url=hub.url, cache_dir=settings.cache_dir, offline=True)
    with pytest.raises(OfflineError):
        sync(offline)
    _list(hub, make_card())
    sync(settings)
    requests = len(hub.state.log)
    result = sync(offline)
    assert result.from_cache is True
    assert len(hub.state.log) == requests


def test_snapshot_resolution_picks_the_newest_semver(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    _list(hub, make_card(version="1.10.0"))
    _list(hub, make_card(version="1.9.0"))
    _list(hub, make_card(model_id="medigan/00001_DCGAN_MMG_CALC_ROI", version="0.0.1"))
    _list(hub, make_card(version="2.0.0-rc.1"))
    sync(settings)
    snapshot = load_snapshot(settings)
    assert [c.release_id for c in latest_cards(snapshot)] == [
        "zoo/noise-8@2.0.0-rc.1",
        "medigan/00001_DCGAN_MMG_CALC_ROI@0.0.1",
    ]
    assert find_release(snapshot, "zoo/noise-8@1.9.0").version == "1.9.0"
    with pytest.raises(NotFoundError, match=re.escape("releases: 1.9.0, 1.10.0, 2.0.0-rc.1")):
        find_release(snapshot, "zoo/noise-8@3.0.0")
    with pytest.raises(NotFoundError, match="did you mean medigan/00001_DCGAN_MMG_CALC_ROI"):
        find_release(snapshot, "medigan/00001")


def test_a_card_this_client_cannot_read_is_skipped_not_fatal(
    settings: ClientSettings, hub: FakeHub, make_card: Callable[..., dict[str, Any]]
) -> None:
    broken = make_card(model_id="zoo/broken")
    broken["output"]["dtype"] = "complex128"
    _list(hub, broken)
    _list(hub, make_card())
    sync(settings)
    snapshot = load_snapshot(settings)
    assert [r.card.model_id for r in snapshot.releases] == ["zoo/noise-8"]
    assert snapshot.skipped and snapshot.skipped[0].startswith("zoo/broken@1.0.0")


def test_version_key_orders_prereleases_first() -> None:
    versions = ["1.0.0", "1.0.0-rc.1", "0.9.9", "1.0.0-alpha", "1.0.1"]
    assert sorted(versions, key=version_key) == [
        "0.9.9",
        "1.0.0-alpha",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
    ]


def test_the_shared_example_snapshot_syncs_and_resolves_by_semver(
    settings: ClientSettings, hub: FakeHub
) -> None:
    from medigan_client.api import Client

    hub.serve_example_snapshot()

    result = sync(settings)
    client = Client(settings=settings)

    assert (result.serial, result.release_count) == (7, 3)
    assert load_snapshot(settings).skipped == ()
    assert client.show("zoo/chestxray-dcgan-64").version == "1.1.0"
    assert client.show("medigan/00001_DCGAN_MMG_CALC_ROI").runtime.kind == "medigan-legacy"
    (evaluation,) = client.evaluations("zoo/chestxray-dcgan-64@1.0.0")
    assert (evaluation.value("fid"), evaluation.seed, evaluation.num_samples) == (12.5, 0, 1000)
