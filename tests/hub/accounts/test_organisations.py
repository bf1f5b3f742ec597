"""Organisations and namespaces over the API: created explicitly, owned, managed by owners."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client as HttpClient

from hub.accounts.models import Namespace, OrganisationMember
from medigan_catalog.access import NamespaceList, Organisation
from medigan_catalog.snapshot import (
    NAMESPACES_PATH,
    ORGANISATIONS_PATH,
    member_path,
    members_path,
    organisation_path,
)
from tests import factories

pytestmark = pytest.mark.django_db


def _post(path: str, key: str, body: dict[str, Any]) -> Any:
    return HttpClient().post(
        path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
    )


def test_creating_an_organisation_makes_its_namespace_and_its_creator_the_owner() -> None:
    key = factories.token(factories.user("alice"))

    answer = _post(ORGANISATIONS_PATH, key, {"name": "acme", "title": "Acme Imaging"})

    assert answer.status_code == 201
    organisation = Organisation.model_validate(answer.json())
    assert (organisation.role, [m.username for m in organisation.members]) == ("owner", ["alice"])
    assert Namespace.objects.get(name="acme").organisation is not None
    pushable = NamespaceList.model_validate(
        HttpClient().get(NAMESPACES_PATH, HTTP_AUTHORIZATION=f"Token {key}").json()
    )
    assert {namespace.name for namespace in pushable.namespaces} == {"acme", "alice"}


def test_taken_reserved_and_unscoped_names_are_refused_with_their_codes() -> None:
    alice = factories.user("alice")
    factories.user("bob")
    key = factories.token(alice)
    pusher = factories.token(alice, scopes=("read", "push"))

    taken = _post(ORGANISATIONS_PATH, key, {"name": "bob"})
    reserved = _post(ORGANISATIONS_PATH, key, {"name": "zoo"})
    unscoped = _post(ORGANISATIONS_PATH, pusher, {"name": "acme"})
    namespace_taken = _post(NAMESPACES_PATH, key, {"name": "bob"})

    assert (taken.status_code, taken.json()["code"]) == (409, "namespace_taken")
    assert (reserved.status_code, reserved.json()["code"]) == (403, "permission_denied")
    assert (unscoped.status_code, unscoped.json()["code"]) == (403, "scope_missing")
    assert (namespace_taken.status_code, namespace_taken.json()["code"]) == (409, "namespace_taken")


def test_owners_manage_members_and_others_get_404_or_403() -> None:
    owner = factories.token(factories.user("alice"))
    reader_user = factories.user("rory")
    reader = factories.token(reader_user)
    outsider = factories.token(factories.user("olga"))
    _post(ORGANISATIONS_PATH, owner, {"name": "acme"})

    added = _post(members_path("acme"), owner, {"username": "rory", "role": "reader"})
    as_reader = _post(members_path("acme"), reader, {"username": "olga", "role": "owner"})
    as_outsider = HttpClient().get(
        organisation_path("acme"), HTTP_AUTHORIZATION=f"Token {outsider}"
    )
    unknown_user = _post(members_path("acme"), owner, {"username": "nobody"})

    assert added.status_code == 200
    assert {m.username: m.role for m in Organisation.model_validate(added.json()).members} == {
        "alice": "owner",
        "rory": "reader",
    }
    assert (as_reader.status_code, as_reader.json()["code"]) == (403, "permission_denied")
    assert as_outsider.status_code == 404
    assert "acme" in as_outsider.json()["message"]  # the name asked for, nothing more
    assert unknown_user.status_code == 404


def test_the_last_owner_stays_and_a_member_may_leave() -> None:
    owner = factories.token(factories.user("alice"))
    factories.user("rory")
    reader = factories.token(factories.user("rory"))
    _post(ORGANISATIONS_PATH, owner, {"name": "acme"})
    _post(members_path("acme"), owner, {"username": "rory", "role": "reader"})

    last_owner = HttpClient().delete(
        member_path("acme", "alice"), HTTP_AUTHORIZATION=f"Token {owner}"
    )
    demote = _post(members_path("acme"), owner, {"username": "alice", "role": "reader"})
    leaves = HttpClient().delete(member_path("acme", "rory"), HTTP_AUTHORIZATION=f"Token {reader}")

    assert last_owner.status_code == 400
    assert "last owner" in last_owner.json()["message"]
    assert demote.status_code == 400
    assert leaves.status_code == 200
    assert list(OrganisationMember.objects.values_list("user__username", "role")) == [
        ("alice", "owner")
    ]
