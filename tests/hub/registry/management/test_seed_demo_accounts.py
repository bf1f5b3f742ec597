"""`manage.py seed_demo`'s demo accounts and their tokens, and its quiet mode (`--log`)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client as HttpClient

from hub.accounts.models import REVIEWER_GROUP_NAME, ApiToken, Namespace

pytestmark = pytest.mark.django_db


def seed(tmp_path: Path, *extra: str) -> str:
    output = StringIO()
    call_command(
        "seed_demo",
        "--skip-zoo",
        "--credentials",
        str(tmp_path / "credentials.json"),
        *extra,
        stdout=output,
    )
    return output.getvalue()


def test_every_demo_account_gets_an_api_token_of_its_own(tmp_path: Path) -> None:
    seed(tmp_path)

    credentials = json.loads((tmp_path / "credentials.json").read_text(encoding="utf-8"))
    assert sorted(credentials) == ["admin", "colleague", "contributor", "reviewer", "visitor"]
    tokens = {name: entry["token"] for name, entry in credentials.items()}
    assert all(token.startswith("mgh_") for token in tokens.values())
    assert len(set(tokens.values())) == 5
    scopes = {token.user.username: sorted(token.scopes) for token in ApiToken.objects.all()}
    assert scopes == {
        "admin": ["admin", "push", "read", "review"],
        "reviewer": ["read", "review"],
        "contributor": ["admin", "push", "read"],
        "colleague": ["push", "read", "review"],
        "visitor": ["read"],
    }
    namespaces = set(Namespace.objects.filter(user__isnull=False).values_list("name", flat=True))
    assert {"admin", "reviewer", "contributor", "colleague", "visitor"} <= namespaces
    assert credentials["admin"]["username"] == "admin" and credentials["admin"]["password"]
    assert credentials["reviewer"]["password"] and "password" not in credentials["contributor"]
    admin, reviewer = User.objects.get(username="admin"), User.objects.get(username="reviewer")
    assert admin.is_staff and admin.is_superuser
    assert reviewer.is_staff and reviewer.groups.filter(name=REVIEWER_GROUP_NAME).exists()
    assert (tmp_path / "credentials.json").stat().st_mode & 0o777 == 0o600
    # The staff token queues evaluations; the contributor's may not (docs/api.md's walk-through).
    url = "/api/v1/models/nobody/nothing/releases/1.0.0/evaluations"
    body = json.dumps({"reference": "chest-xray-test"})
    as_staff = HttpClient().post(
        url, body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {tokens['admin']}"
    )
    as_contributor = HttpClient().post(
        url,
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {tokens['contributor']}",
    )
    assert as_staff.status_code == 404  # allowed, and there is no such release
    assert as_contributor.status_code == 403


def test_seeding_again_keeps_the_credentials_and_completes_an_older_file(tmp_path: Path) -> None:
    seed(tmp_path)
    path = tmp_path / "credentials.json"
    first = json.loads(path.read_text(encoding="utf-8"))
    seed(tmp_path)
    assert json.loads(path.read_text(encoding="utf-8")) == first

    # A file from before reviewers and admins had tokens.
    older = {
        "admin": {"username": "admin", "password": first["admin"]["password"]},
        "reviewer": {"username": "reviewer", "password": first["reviewer"]["password"]},
        "contributor": first["contributor"],
    }
    path.write_text(json.dumps(older), encoding="utf-8")
    seed(tmp_path)

    completed = json.loads(path.read_text(encoding="utf-8"))
    assert completed["admin"]["password"] == first["admin"]["password"]
    assert completed["contributor"] == first["contributor"]
    assert completed["reviewer"]["token"].startswith("mgh_")
    assert completed["admin"]["token"] != first["admin"]["token"]
    assert HttpClient().login(username="admin", password=first["admin"]["password"])


def test_with_a_log_the_terminal_gets_a_summary_and_the_log_the_details(tmp_path: Path) -> None:
    log = tmp_path / "log" / "setup.log"

    printed = seed(tmp_path, "--log", str(log))

    lines = printed.strip().splitlines()
    assert len(lines) <= 4, printed
    assert "medigan's 23 models" in printed
    assert f"API tokens: {tmp_path / 'credentials.json'}" in printed
    assert f"details: {log}" in printed
    details = log.read_text(encoding="utf-8")
    assert "chest-xray-test: 624 images (CC-BY-4.0)" in details
    assert "medigan catalogue: 23 releases imported" in details
    assert "normalised: " in details
    # The hub's log records of the seed (release transitions) go to the log too.
    assert "INFO hub.registry.services: release medigan/" in details
    assert "normalised" not in printed and "INFO" not in printed
