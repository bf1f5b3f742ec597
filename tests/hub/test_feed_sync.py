"""The client's sync through the hub's change feed, against the hub on a live server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from hub import snapshot
from hub.registry import services
from medigan_catalog.lifecycle import ReleaseState
from medigan_client.http import HubSession
from medigan_client.settings import ClientSettings
from medigan_client.sync import load_snapshot, sync
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


class RecordingSession(HubSession):
    """A hub session that notes each request's path and the size of each answer."""

    def __init__(self, settings: ClientSettings) -> None:
        super().__init__(settings)
        self.seen: list[tuple[str, int]] = []

    def send(self, method: str, path: str, **kwargs: Any) -> Any:
        response = super().send(method, path, **kwargs)
        self.seen.append((path, len(response.content)))
        return response


def _publish(owner: Any, model_id: str, version: str = "1.0.0") -> None:
    release = factories.release_row(
        submitter=owner, model_id=model_id, version=version, state="in_review"
    )
    with transaction.atomic():
        for target in (ReleaseState.APPROVED, ReleaseState.PUBLISHED):
            services.release_transition(release_id=release.pk, target=target)


def _sync(settings: ClientSettings) -> tuple[Any, list[tuple[str, int]]]:
    with RecordingSession(settings) as session:
        result = sync(settings, session=session)
        return result, session.seen


def _entries(settings: ClientSettings) -> dict[str, Any]:
    document = load_snapshot(settings).document
    return {
        f"{entry.model_id}@{entry.version}": entry.card.model_dump(mode="json")
        for entry in document.releases
    }


def test_a_resync_reads_only_the_feed_and_ends_where_a_full_sync_does(
    live_server: Any, tmp_path: Path
) -> None:
    snapshot.snapshot_cache_clear()
    owner = factories.user("olivia")
    _publish(owner, "olivia/alpha")
    settings = ClientSettings(hub_url=live_server.url, cache_dir=tmp_path / "cache")
    fresh = ClientSettings(hub_url=live_server.url, cache_dir=tmp_path / "fresh")

    first, first_requests = _sync(settings)
    unchanged, unchanged_requests = _sync(settings)
    for index in range(3):
        _publish(owner, f"olivia/beta-{index}")
    _publish(owner, "olivia/alpha", "1.1.0")
    changed, changed_requests = _sync(settings)
    full, _ = _sync(fresh)

    # The first sync pins the hub's keys (trust on first use) with one more request.
    assert first.changed
    assert sorted(path for path, _ in first_requests) == ["/api/v1/catalog", "/api/v1/keys"]
    assert not unchanged.changed
    assert len(unchanged_requests) == 1
    assert unchanged_requests[0][0].startswith("/api/v1/changes?since=")
    assert unchanged_requests[0][1] < 1024
    assert changed.changed and changed.serial == full.serial
    assert all(path.startswith("/api/v1/changes") for path, _ in changed_requests)
    assert _entries(settings) == _entries(fresh)
    assert changed.release_count == 5


def test_another_token_is_another_scope_and_syncs_whole(live_server: Any, tmp_path: Path) -> None:
    snapshot.snapshot_cache_clear()
    owner = factories.user("olivia")
    _publish(owner, "olivia/alpha")
    anonymous = ClientSettings(hub_url=live_server.url, cache_dir=tmp_path / "cache")
    signed_in = ClientSettings(
        hub_url=live_server.url, cache_dir=tmp_path / "cache", token=factories.token(owner)
    )

    _sync(anonymous)
    _, requests = _sync(signed_in)

    # The feed answered for the signed-in scope, not the cached one: the snapshot is fetched.
    assert [path.split("?")[0] for path, _ in requests] == ["/api/v1/changes", "/api/v1/catalog"]
