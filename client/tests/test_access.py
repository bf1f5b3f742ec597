"""Identity and access from Python: tokens, sign-in, the account, organisations, namespaces,
visibility, the refusals' typed errors, and the catalogue seen per viewer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_catalog.access import OrgRole, TokenScope, Visibility
from medigan_client import Client
from medigan_client.access import create_token_with_password, token_request
from medigan_client.errors import (
    AuthenticationRequiredError,
    BadRequestError,
    NamespaceTakenError,
    NotFoundError,
    PermissionDeniedError,
    ScopeMissingError,
    ThrottledError,
    TokenExpiredError,
)
from medigan_client.http import HubSession, RetryPolicy
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from conftest import FakeHub


def _settings(hub: FakeHub, tmp_path: Path, token: str | None) -> ClientSettings:
    return ClientSettings(hub_url=hub.url, token=token, cache_dir=tmp_path / "cache", timeout=5.0)


def _client(hub: FakeHub, tmp_path: Path, token: str | None = None) -> Client:
    """A client of the fake hub; the built-in token (every scope) unless another is given."""
    chosen = hub.state.token if token is None else token
    return Client(settings=_settings(hub, tmp_path, chosen), progress=False)


def _add_user(hub: FakeHub, username: str, **token_options: Any) -> str:
    """A user of the fake hub with one token; returns the token's key."""
    hub.state.users[username] = f"{username}-password"
    return hub.state.add_token(username, **token_options).key


# --- tokens and the account -----------------------------------------------------------------


def test_whoami_describes_the_calling_token(hub: FakeHub, tmp_path: Path) -> None:
    with _client(hub, tmp_path) as client:
        account = client.whoami()
    assert account.username == "tester"
    assert account.token is not None
    assert account.token.id == 1
    assert set(account.token.scopes) == set(TokenScope)


def test_a_created_token_works_is_listed_and_stops_working_once_revoked(
    hub: FakeHub, tmp_path: Path
) -> None:
    with _client(hub, tmp_path) as client:
        created = client.create_token("ci", scopes=["read"], days=7)
        assert created.scopes == (TokenScope.READ,)
        listed = {token.id: token for token in client.tokens()}
        assert listed[created.id].key_prefix == created.key[:8]
        with _client(hub, tmp_path, created.key) as ci:
            assert ci.whoami().token is not None
        client.revoke_token(created.id)
        assert client.tokens()[0].revoked_at is not None
    with _client(hub, tmp_path, created.key) as ci, pytest.raises(AuthenticationRequiredError):
        ci.whoami()


def test_a_token_cannot_create_a_wider_one(hub: FakeHub, tmp_path: Path) -> None:
    key = _add_user(hub, "reader", scopes=("read",))
    with _client(hub, tmp_path, key) as client, pytest.raises(ScopeMissingError) as caught:
        client.create_token("wider", scopes=["read", "push"])
    assert caught.value.code.value == "scope_missing"
    assert isinstance(caught.value, PermissionDeniedError)


def test_a_malformed_request_fails_before_anything_is_sent(hub: FakeHub, tmp_path: Path) -> None:
    with _client(hub, tmp_path) as client:
        with pytest.raises(BadRequestError, match="scopes"):
            client.create_token("ci", scopes=["everything"])
        with pytest.raises(BadRequestError, match="expires_in_days"):
            client.create_token("ci", days=1000)
        with pytest.raises(BadRequestError, match="names a version"):
            client.visibility("zoo/noise-8@1.0.0")
    assert hub.state.log == []


def test_an_expired_token_raises_token_expired(hub: FakeHub, tmp_path: Path) -> None:
    key = _add_user(hub, "late", expires_at=datetime.now(UTC) - timedelta(days=1))
    with _client(hub, tmp_path, key) as client, pytest.raises(TokenExpiredError):
        client.whoami()


def test_signing_in_with_a_password_creates_a_token_and_sends_no_other_credential(
    hub: FakeHub, tmp_path: Path
) -> None:
    settings = _settings(hub, tmp_path, "a-stale-token")
    created = create_token_with_password(
        settings, "tester", "tester-password", token_request("laptop", days=30)
    )
    assert created.name == "laptop"
    assert set(created.scopes) == {TokenScope.READ, TokenScope.PUSH}
    sent = hub.state.requests_to("/api/v1/tokens")[-1].headers["Authorization"]
    assert sent.startswith("Basic ")
    with pytest.raises(AuthenticationRequiredError):
        create_token_with_password(settings, "tester", "wrong", token_request("laptop"))


def test_a_throttled_sign_in_raises_throttled_with_retry_after_and_is_not_retried(
    hub: FakeHub, tmp_path: Path
) -> None:
    hub.state.throttle_sign_in_seconds = 120
    with pytest.raises(ThrottledError) as caught:
        create_token_with_password(
            _settings(hub, tmp_path, None), "tester", "guess", token_request("laptop")
        )
    assert caught.value.retry_after_seconds == 120.0
    assert caught.value.code.value == "throttled"
    assert len(hub.state.requests_to("/api/v1/tokens")) == 1


def test_a_throttled_read_is_not_retried_either(hub: FakeHub, tmp_path: Path) -> None:
    waits: list[float] = []
    hub.state.injected_code = "throttled"
    hub.state.fail_next = [(429, {"Retry-After": "30"})]
    session = HubSession(
        _settings(hub, tmp_path, hub.state.token), retry=RetryPolicy(), sleep=waits.append
    )
    with session, pytest.raises(ThrottledError) as caught:
        session.get_json("/api/v1/me")
    assert caught.value.retry_after_seconds == 30.0
    assert waits == []
    assert len(hub.state.requests_to("/api/v1/me")) == 1


# --- organisations and namespaces -----------------------------------------------------------


def test_an_organisation_is_created_listed_and_its_members_managed(
    hub: FakeHub, tmp_path: Path
) -> None:
    hub.state.users["bob"] = "bob-password"
    with _client(hub, tmp_path) as client:
        created = client.create_organisation("my-lab", "My lab")
        assert (created.name, created.title, created.role) == ("my-lab", "My lab", OrgRole.OWNER)
        assert [o.name for o in client.organisations()] == ["my-lab"]
        added = client.add_member("my-lab", "bob", "maintainer")
        assert {m.username: m.role for m in added.members} == {
            "tester": OrgRole.OWNER,
            "bob": OrgRole.MAINTAINER,
        }
        removed = client.remove_member("my-lab", "bob")
        assert [m.username for m in removed.members] == ["tester"]
        assert "my-lab" in client.whoami().namespaces
        with pytest.raises(NamespaceTakenError):
            client.create_organisation("my-lab")
        with pytest.raises(PermissionDeniedError):
            client.create_organisation("zoo")


def test_an_organisation_needs_the_admin_scope_and_is_hidden_from_non_members(
    hub: FakeHub, tmp_path: Path
) -> None:
    key = _add_user(hub, "pusher", scopes=("read", "push"))
    with _client(hub, tmp_path) as owner:
        owner.create_organisation("my-lab")
    with _client(hub, tmp_path, key) as client:
        with pytest.raises(ScopeMissingError):
            client.create_organisation("their-lab")
        with pytest.raises(NotFoundError):
            client.organisation("my-lab")


def test_a_namespace_is_created_and_listed(hub: FakeHub, tmp_path: Path) -> None:
    with _client(hub, tmp_path) as client:
        assert client.create_namespace("tests-ns").name == "tests-ns"
        assert {ns.name for ns in client.namespaces()} == {"tester", "tests-ns"}
        with pytest.raises(NamespaceTakenError):
            client.create_namespace("tests-ns")


# --- visibility -----------------------------------------------------------------------------


def test_visibility_is_changed_at_once_except_public_which_waits_for_a_hub_reviewer(
    hub: FakeHub, tmp_path: Path
) -> None:
    reviewer_key = _add_user(hub, "hub-reviewer")
    hub.state.hub_reviewers.add("hub-reviewer")
    with _client(hub, tmp_path) as client:
        client.create_organisation("my-lab")
        made_private = client.set_visibility("my-lab/model", "private")
        assert (made_private.visibility, made_private.requested) == (Visibility.PRIVATE, None)
        waiting = client.set_visibility("my-lab/model", "public", note="paper is out")
        assert waiting.visibility == Visibility.PRIVATE
        assert waiting.requested == Visibility.PUBLIC
        assert waiting.requested_by == "tester"
    with _client(hub, tmp_path, reviewer_key) as reviewer:
        decided = reviewer.review_visibility("my-lab/model", "approve")
    assert (decided.visibility, decided.requested) == (Visibility.PUBLIC, None)
    with _client(hub, tmp_path) as client:
        assert client.visibility("my-lab/model").visibility == Visibility.PUBLIC


# --- the catalogue seen per viewer ----------------------------------------------------------


def test_a_lower_serial_under_a_new_etag_after_a_token_change_replaces_the_cached_catalogue(
    hub: FakeHub,
    tmp_path: Path,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: Callable[..., dict[str, Any]],
) -> None:
    publish(make_card(model_id="zoo/open"))
    publish(make_card(model_id="my-lab/secret"))
    hub.state.releases[-1]["visibility"] = "private"
    hub.state.add_organisation("my-lab", {"tester": "owner"})
    outsider = _add_user(hub, "outsider")
    hub.state.viewer_serials["outsider"] = hub.state.serial - 1

    with _client(hub, tmp_path) as member:
        seen = member.sync()
        assert {card.model_id for card in member.models()} == {"zoo/open", "my-lab/secret"}
    with _client(hub, tmp_path, outsider) as other:
        lower = other.sync()
        assert lower.serial == seen.serial - 1
        assert lower.changed and not lower.from_cache
        assert [card.model_id for card in other.models()] == ["zoo/open"]
        assert [hit.entry.model_id for hit in other.search_entries("secret")] == []
        # The If-None-Match it sent was the member's ETag: a different ETag is a new document.
        catalog_requests = hub.state.requests_to("/api/v1/catalog")
        assert catalog_requests[-1].headers["If-None-Match"] == hub.state.etag("tester")
        assert other.sync().changed is False
    with _client(hub, tmp_path) as member:
        assert member.sync().serial == seen.serial
        assert "my-lab/secret" in {card.model_id for card in member.models()}


def test_settings_without_a_token_read_the_public_catalogue(
    hub: FakeHub,
    tmp_path: Path,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: Callable[..., dict[str, Any]],
) -> None:
    publish(make_card(model_id="zoo/open"))
    publish(make_card(model_id="zoo/internal"))
    hub.state.releases[-1]["visibility"] = "internal"
    anonymous = Client(settings=replace(_settings(hub, tmp_path, None)), progress=False)
    with anonymous:
        anonymous.sync()
        assert [card.model_id for card in anonymous.models()] == ["zoo/open"]
