"""Failed sign-ins are counted per address and refused with 429 past the limit."""

from __future__ import annotations

import base64

import pytest
from django.test import Client as HttpClient

from medigan_catalog.snapshot import CATALOG_PATH, TOKENS_PATH
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    from django.core.cache import cache

    cache.clear()


def test_fifty_wrong_tokens_from_one_address_get_429_before_the_51st_is_checked() -> None:
    alice = factories.user("alice")
    good = factories.token(alice)
    http = HttpClient(REMOTE_ADDR="203.0.113.7")

    statuses = [
        http.get(CATALOG_PATH, HTTP_AUTHORIZATION=f"Token mgh_wrong{attempt}").status_code
        for attempt in range(50)
    ]
    # The 51st carries a valid token: refused before it is looked at.
    refused = http.get(CATALOG_PATH, HTTP_AUTHORIZATION=f"Token {good}")
    other_address = HttpClient(REMOTE_ADDR="203.0.113.8").get(
        CATALOG_PATH, HTTP_AUTHORIZATION=f"Token {good}"
    )

    assert statuses == [401] * 50
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 600
    assert other_address.status_code == 200


def test_successes_do_not_reset_the_count_and_anonymous_requests_are_not_throttled() -> None:
    good = factories.token(factories.user("alice"))
    http = HttpClient(REMOTE_ADDR="203.0.113.9")
    for attempt in range(50):
        http.get(CATALOG_PATH, HTTP_AUTHORIZATION=f"Token mgh_wrong{attempt}")
        if attempt % 10 == 0:
            assert http.get(CATALOG_PATH, HTTP_AUTHORIZATION=f"Token {good}").status_code == 200

    assert http.get(CATALOG_PATH, HTTP_AUTHORIZATION=f"Token {good}").status_code == 429
    # No credential, nothing to guess: the public catalogue stays open.
    assert http.get(CATALOG_PATH).status_code == 200


def test_wrong_passwords_on_the_token_endpoint_and_the_admin_count_together() -> None:
    factories.user("alice")
    http = HttpClient(REMOTE_ADDR="203.0.113.10")
    wrong = base64.b64encode(b"alice:not-the-password").decode()
    for _ in range(25):
        answer = http.post(
            TOKENS_PATH,
            '{"name": "laptop"}',
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Basic {wrong}",
        )
        assert answer.status_code == 401
    for _ in range(25):
        page = http.post("/admin/login/", {"username": "alice", "password": "nope"})
        assert page.status_code == 200  # the form again, with its error

    blocked_form = http.post("/admin/login/", {"username": "alice", "password": "test-password"})
    right = base64.b64encode(b"alice:test-password").decode()
    blocked_api = http.post(
        TOKENS_PATH,
        '{"name": "laptop"}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {right}",
    )

    assert blocked_form.status_code == 429
    assert int(blocked_form["Retry-After"]) > 0
    assert blocked_api.status_code == 429
    assert blocked_api.json()["code"] == "throttled"


def test_a_burst_across_the_clocks_ten_minute_mark_is_counted_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hub.accounts import throttling

    clock = [1_800_000_000.0 - 5]  # five seconds before a multiple of 600
    monkeypatch.setattr(throttling, "_now", lambda: clock[0])
    http = HttpClient(REMOTE_ADDR="203.0.113.11")
    for attempt in range(50):
        clock[0] += 0.2  # the mark passes half way through
        http.get(CATALOG_PATH, HTTP_AUTHORIZATION=f"Token mgh_wrong{attempt}")

    refused = http.get(CATALOG_PATH, HTTP_AUTHORIZATION="Token mgh_wrong-again")
    clock[0] += 600
    later = http.get(CATALOG_PATH, HTTP_AUTHORIZATION="Token mgh_wrong-later")

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == 591  # 600 s from the first failure, 9.8 s ago
    assert later.status_code == 401  # the window ended: guessing may start again, and counts
