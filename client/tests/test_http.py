"""The hub session against a real local HTTP server: headers, retries, error mapping, offline."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

import pytest

from medigan_client import __version__
from medigan_client.errors import (
    AuthenticationRequiredError,
    HubUnreachableError,
    NotFoundError,
    OfflineError,
)
from medigan_client.http import HubSession, RetryPolicy, origin_of
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from conftest import FakeHub

FAST = RetryPolicy(attempts=3, base_wait_seconds=0.01, max_wait_seconds=0.05)


def test_token_and_user_agent_are_sent_to_the_hub(settings: ClientSettings, hub: FakeHub) -> None:
    with HubSession(settings, retry=FAST) as session:
        session.get_json("/api/v1/catalog")
    request = hub.state.log[-1]
    assert request.headers["Authorization"] == f"Token {hub.state.token}"
    assert request.headers["User-Agent"] == f"medigan-client/{__version__}"


def test_token_is_not_sent_to_other_origins(settings: ClientSettings, hub: FakeHub) -> None:
    elsewhere = hub.url.replace("127.0.0.1", "localhost") + "/api/v1/catalog"
    with HubSession(settings, retry=FAST) as session:
        assert not session.is_hub_url(elsewhere)
        session.get_json(elsewhere)
    assert "Authorization" not in hub.state.log[-1].headers


def test_gateway_errors_are_retried_honouring_retry_after(
    settings: ClientSettings, hub: FakeHub
) -> None:
    hub.state.fail_next = [(503, {"Retry-After": "0"}), (502, {})]
    with HubSession(settings, retry=FAST) as session:
        body = session.get_json("/api/v1/catalog")
    assert body["serial"] == hub.state.serial
    assert len(hub.state.requests_to("/api/v1/catalog")) == 3


def test_retries_are_bounded(settings: ClientSettings, hub: FakeHub) -> None:
    hub.state.fail_next = [(503, {}), (503, {}), (503, {}), (503, {})]
    with HubSession(settings, retry=FAST) as session, pytest.raises(Exception) as info:
        session.get_json("/api/v1/catalog")
    assert len(hub.state.requests_to("/api/v1/catalog")) == 3
    assert info.value.__class__.__name__ in {"ServerError", "HubUnreachableError"}


def test_posts_are_not_retried_after_the_hub_answered(
    settings: ClientSettings, hub: FakeHub
) -> None:
    hub.state.fail_next = [(503, {})]
    with HubSession(settings, retry=FAST) as session, pytest.raises(Exception):  # noqa: B017
        session.post_json("/api/v1/releases", {})
    assert len(hub.state.requests_to("/api/v1/releases")) == 1


def test_error_bodies_become_typed_exceptions(settings: ClientSettings, hub: FakeHub) -> None:
    with (
        HubSession(settings, retry=FAST) as session,
        pytest.raises(NotFoundError, match="nothing at /api/v1/nowhere"),
    ):
        session.get_json("/api/v1/nowhere")
    anonymous = ClientSettings(hub_url=hub.url, cache_dir=settings.cache_dir)
    with (
        HubSession(anonymous, retry=FAST) as session,
        pytest.raises(AuthenticationRequiredError),
    ):
        session.post_json("/api/v1/releases", {})


def test_connection_refused_is_hub_unreachable(settings: ClientSettings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = ClientSettings(hub_url=f"http://127.0.0.1:{port}", cache_dir=settings.cache_dir)
    started = time.monotonic()
    with HubSession(dead, retry=FAST) as session, pytest.raises(HubUnreachableError) as info:
        session.get_json("/api/v1/catalog")
    assert f"127.0.0.1:{port}" in info.value.message
    assert time.monotonic() - started < 5


def test_offline_refuses_before_any_traffic(settings: ClientSettings, hub: FakeHub) -> None:
    offline = ClientSettings(hub_url=hub.url, cache_dir=settings.cache_dir, offline=True)
    with HubSession(offline, retry=FAST) as session, pytest.raises(OfflineError):
        session.get_json("/api/v1/catalog")
    assert hub.state.log == []


def test_origin_fills_default_ports() -> None:
    assert origin_of("https://Zenodo.org/record/1") == ("https", "zenodo.org", 443)
    assert origin_of("http://127.0.0.1:8000/x") == ("http", "127.0.0.1", 8000)
