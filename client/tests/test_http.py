"""The hub session against a real local HTTP server: headers, retries, error mapping, offline."""

from __future__ import annotations

import email.utils
import socket
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from medigan_client import __version__
from medigan_client.errors import (
    AuthenticationRequiredError,
    HubUnreachableError,
    MediganClientError,
    NotFoundError,
    OfflineError,
    ServerError,
)
from medigan_client.http import (
    HubSession,
    RetryPolicy,
    origin_of,
    retry_after_seconds,
    should_retry_status,
)
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from conftest import FakeHub

FAST = RetryPolicy(attempts=3, base_wait_seconds=0.01, max_wait_seconds=0.05)
POLICY = RetryPolicy(
    attempts=4, base_wait_seconds=0.25, max_wait_seconds=0.75, max_retry_after_seconds=30.0
)


class SleepRecorder:
    """Stands in for time.sleep: records each wait instead of spending it."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def slept() -> SleepRecorder:
    return SleepRecorder()


def _session(settings: ClientSettings, slept: SleepRecorder) -> HubSession:
    return HubSession(settings, retry=POLICY, sleep=slept)


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


def test_backoff_is_exponential_and_capped(
    settings: ClientSettings, hub: FakeHub, slept: SleepRecorder
) -> None:
    hub.state.fail_next = [(502, {}), (504, {}), (503, {})]
    with _session(settings, slept) as session:
        body = session.get_json("/api/v1/catalog")
    assert body["serial"] == hub.state.serial
    assert len(hub.state.requests_to("/api/v1/catalog")) == 4
    assert slept.calls == [0.25, 0.5, 0.75]


def test_retry_after_seconds_is_waited_on_429_and_503(
    settings: ClientSettings, hub: FakeHub, slept: SleepRecorder
) -> None:
    hub.state.fail_next = [(429, {"Retry-After": "7"}), (503, {"Retry-After": "2"})]
    with _session(settings, slept) as session:
        session.get_json("/api/v1/catalog")
    assert len(hub.state.requests_to("/api/v1/catalog")) == 3
    assert slept.calls == [7.0, 2.0]


def test_retry_after_http_date_is_waited_and_capped(
    settings: ClientSettings, hub: FakeHub, slept: SleepRecorder
) -> None:
    far = email.utils.formatdate(time.time() + 3600, usegmt=True)
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    hub.state.fail_next = [(503, {"Retry-After": far}), (429, {"Retry-After": past})]
    with _session(settings, slept) as session:
        session.get_json("/api/v1/catalog")
    assert slept.calls == [POLICY.max_retry_after_seconds, 0.0]


def test_retry_after_parsing() -> None:
    def answer(value: str) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": value})

    now = 1_700_000_000.0
    in_a_minute = email.utils.formatdate(now + 60, usegmt=True)
    assert retry_after_seconds(answer("120"), now=now) == 120.0
    assert retry_after_seconds(answer(in_a_minute), now=now) == 60.0
    zoneless = email.utils.formatdate(now + 30, usegmt=True).replace("GMT", "-0000")
    assert retry_after_seconds(answer(zoneless), now=now) == 30.0
    assert retry_after_seconds(answer("-5"), now=now) is None
    assert retry_after_seconds(answer("soon"), now=now) is None
    assert retry_after_seconds(httpx.Response(503), now=now) is None


def test_server_error_500_is_retried_for_reads_only(
    settings: ClientSettings, hub: FakeHub, slept: SleepRecorder
) -> None:
    hub.state.fail_next = [(500, {})]
    with _session(settings, slept) as session:
        session.get_json("/api/v1/catalog")
    assert len(hub.state.requests_to("/api/v1/catalog")) == 2
    assert slept.calls == [0.25]
    assert should_retry_status("GET", 500) and should_retry_status("HEAD", 500)
    assert not should_retry_status("PUT", 500)
    assert not should_retry_status("POST", 503)
    assert not should_retry_status("GET", 404)


def test_post_is_never_retried_after_an_answer_even_with_retry_after(
    settings: ClientSettings, hub: FakeHub, slept: SleepRecorder
) -> None:
    for status in (429, 500, 503):
        hub.state.log.clear()
        hub.state.fail_next = [(status, {"Retry-After": "1"})]
        with _session(settings, slept) as session, pytest.raises(MediganClientError):
            session.post_json("/api/v1/releases", {})
        assert len(hub.state.requests_to("/api/v1/releases")) == 1
    assert slept.calls == []


def test_a_dropped_connection_is_retried_for_get_but_not_for_post(
    settings: ClientSettings, hub: FakeHub, slept: SleepRecorder
) -> None:
    hub.state.fail_next = [(0, {})]
    with _session(settings, slept) as session:
        assert session.get_json("/api/v1/catalog")["serial"] == hub.state.serial
    assert len(hub.state.requests_to("/api/v1/catalog")) == 2
    assert slept.calls == [0.25]

    hub.state.fail_next = [(0, {})]
    with _session(settings, slept) as session, pytest.raises(HubUnreachableError):
        session.post_json("/api/v1/releases", {})
    assert len(hub.state.requests_to("/api/v1/releases")) == 1, "the hub may have seen it"


def test_connection_refused_is_retried_with_backoff_for_any_method(
    settings: ClientSettings, slept: SleepRecorder
) -> None:
    attempts: list[str] = []

    class CountingTransport(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            attempts.append(request.method)
            return super().handle_request(request)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = ClientSettings(hub_url=f"http://127.0.0.1:{port}", cache_dir=settings.cache_dir)
    with (
        HubSession(dead, retry=POLICY, sleep=slept, transport=CountingTransport()) as session,
        pytest.raises(HubUnreachableError),
    ):
        session.post_json("/api/v1/releases", {})
    # Nothing was sent, so even a POST may be tried again.
    assert attempts == ["POST"] * POLICY.attempts
    assert slept.calls == [0.25, 0.5, 0.75]


def test_retries_give_up_with_the_last_answer(
    settings: ClientSettings, hub: FakeHub, slept: SleepRecorder
) -> None:
    hub.state.fail_next = [(503, {"Retry-After": "1"})] * 5
    with _session(settings, slept) as session, pytest.raises(ServerError, match="injected"):
        session.get_json("/api/v1/catalog")
    assert len(hub.state.requests_to("/api/v1/catalog")) == POLICY.attempts
    assert slept.calls == [1.0, 1.0, 1.0]
