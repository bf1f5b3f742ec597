"""Tokens over the API: created with a password or a token, listed, revoked, scoped, expiring."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client as HttpClient
from django.utils import timezone

from hub.accounts.models import ApiToken
from medigan_catalog.access import AccountInfo, TokenCreated, TokenList
from medigan_catalog.snapshot import CATALOG_PATH, ME_PATH, TOKENS_PATH, token_path
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    from django.core.cache import cache

    cache.clear()


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _create(authorization: str, **body: Any) -> Any:
    return HttpClient().post(
        TOKENS_PATH,
        json.dumps({"name": "laptop", **body}),
        content_type="application/json",
        HTTP_AUTHORIZATION=authorization,
    )


def test_a_password_buys_a_token_shown_once_with_read_and_push_and_90_days() -> None:
    factories.user("alice")

    answer = _create(_basic("alice", "test-password"))
    created = TokenCreated.model_validate(answer.json())
    listed = HttpClient().get(TOKENS_PATH, HTTP_AUTHORIZATION=f"Token {created.key}")
    me = HttpClient().get(ME_PATH, HTTP_AUTHORIZATION=f"Token {created.key}")

    assert answer.status_code == 201
    assert answer["Cache-Control"] == "no-store"
    assert [scope.value for scope in created.scopes] == ["push", "read"]
    assert created.expires_at is not None
    lifetime = created.expires_at - timezone.now()
    assert timedelta(days=89) < lifetime <= timedelta(days=90)
    stored = ApiToken.objects.get()
    assert created.key not in json.dumps(listed.json())
    assert stored.key_sha256 != created.key
    tokens = TokenList.model_validate(listed.json()).tokens
    assert [token.id for token in tokens] == [stored.pk]
    account = AccountInfo.model_validate(me.json())
    assert account.token is not None and account.token.id == stored.pk
    assert account.namespace == "alice"


def test_a_password_is_accepted_nowhere_but_the_token_endpoint() -> None:
    factories.user("alice")

    answer = HttpClient().get(CATALOG_PATH, HTTP_AUTHORIZATION=_basic("alice", "test-password"))
    wrong = _create(_basic("alice", "not-it"))

    # Basic is not a scheme the catalogue reads: the request is anonymous.
    assert answer.status_code == 200
    assert answer["Cache-Control"] == "no-cache"
    assert wrong.status_code == 401
    assert ApiToken.objects.count() == 0


def test_a_token_makes_no_token_wider_than_itself() -> None:
    alice = factories.user("alice")
    narrow = factories.token(alice, scopes=("read", "push"), namespace="alice", expires_in_days=5)

    wider_scope = _create(f"Token {narrow}", scopes=["read", "admin"])
    other_namespace = _create(f"Token {narrow}", scopes=["read"], namespace="acme")
    longer = _create(f"Token {narrow}", scopes=["read"], expires_in_days=300)

    assert wider_scope.status_code == 403
    assert "admin" in wider_scope.json()["message"]
    assert other_namespace.status_code == 403
    created = TokenCreated.model_validate(longer.json())
    assert created.namespace == "alice"
    assert created.expires_at is not None
    assert created.expires_at <= timezone.now() + timedelta(days=5)


def test_revoking_stops_the_token_and_another_users_token_is_a_404() -> None:
    alice, bob = factories.user("alice"), factories.user("bob")
    key = factories.token(alice)
    bobs = factories.token(bob)
    token_id = ApiToken.objects.get(user=alice).pk

    stranger = HttpClient().delete(token_path(token_id), HTTP_AUTHORIZATION=f"Token {bobs}")
    revoked = HttpClient().delete(token_path(token_id), HTTP_AUTHORIZATION=f"Token {key}")
    after = HttpClient().get(ME_PATH, HTTP_AUTHORIZATION=f"Token {key}")

    assert stranger.status_code == 404
    assert revoked.status_code == 204
    assert after.status_code == 401
    assert after.json()["code"] == "authentication_required"


def test_an_expired_token_is_refused_with_its_own_code() -> None:
    key = factories.token(factories.user("alice"))
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    answer = HttpClient().get(ME_PATH, HTTP_AUTHORIZATION=f"Token {key}")

    assert answer.status_code == 401
    assert answer.json()["code"] == "token_expired"
    assert answer["WWW-Authenticate"] == "Token"


def test_a_malformed_request_names_its_fields() -> None:
    factories.user("alice")

    answer = _create(_basic("alice", "test-password"), scopes=["everything"], expires_in_days=0)

    assert answer.status_code == 400
    fields = {problem["loc"] for problem in answer.json()["detail"]}
    assert {"scopes.0", "expires_in_days"} <= fields
