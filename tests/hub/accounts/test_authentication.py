"""Tests of API tokens: hashed storage, authentication, revocation."""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient

from hub.accounts.models import ApiToken
from hub.accounts.selectors import api_token_get_unrevoked, user_is_reviewer
from hub.accounts.services import api_token_revoke
from tests import factories

pytestmark = pytest.mark.django_db


def test_tokens_are_stored_only_as_hashes() -> None:
    key = factories.token(factories.user("alice"))

    stored = ApiToken.objects.get()
    assert key not in (stored.key_sha256, stored.key_prefix)
    assert api_token_get_unrevoked(raw_key=key) == stored


def test_a_revoked_token_no_longer_authenticates() -> None:
    key = factories.token(factories.user("alice"))
    api_token_revoke(token=ApiToken.objects.get())

    response = HttpClient().get("/api/v1/catalog", HTTP_AUTHORIZATION=f"Token {key}")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_required"


def test_reviewers_are_the_group_and_superusers() -> None:
    assert user_is_reviewer(factories.user("rita", reviewer=True))
    assert not user_is_reviewer(factories.user("alice"))
