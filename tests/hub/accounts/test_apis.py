"""``GET /api/v1/me``: who a token belongs to and the namespace they push into by default."""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient

from medigan_catalog.access import AccountInfo
from medigan_catalog.snapshot import ME_PATH, me_path
from tests import factories

pytestmark = pytest.mark.django_db


def _me(key: str | None) -> tuple[int, dict[str, object]]:
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"} if key else {}
    response = HttpClient().get(me_path(), **headers)
    return response.status_code, response.json()


def test_me_names_the_user_and_their_namespace() -> None:
    status, body = _me(factories.token(factories.user("Alice.Smith")))

    assert status == 200
    account = AccountInfo.model_validate(body)
    assert account.username == "Alice.Smith"
    assert account.namespace == "alice-smith"
    assert set(account.reserved_namespaces) == {"medigan", "zoo"}


def test_a_reserved_namespace_is_nobodys_default_but_staffs() -> None:
    _, body = _me(factories.token(factories.user("zoo")))
    assert body["namespace"] is None

    _, staff = _me(factories.token(factories.user("medigan", staff=True)))
    assert staff["namespace"] == "medigan"


def test_me_needs_a_token() -> None:
    status, body = _me(None)

    assert ME_PATH == "/api/v1/me"
    assert status == 401
    assert body["code"] == "authentication_required"
