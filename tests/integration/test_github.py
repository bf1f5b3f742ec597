"""GitHub-linked submissions through real processes: the fake GitHub of the tests on 127.0.0.1
posts a signed release webhook to a live hub (gunicorn and a Celery worker), whose worker
fetches the asset with PyGithub, validates the release in the sandbox and posts the commit
status back; a delivery with a wrong signature is refused with 401 and leaves nothing."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import factories
from tests.github_server import GithubServer, github_server
from tests.live_hub import LiveHub, live_hub, production_path, wait_until

pytestmark = pytest.mark.integration

REPOSITORY = "carol/noise-model"
MODEL = "carol/noise-16"
PUBLIC_URL = "http://hub.example.test"
# PostgreSQL and a Redis broker where the environment names them (CI), else the embedded default.
PATH = "production" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "embedded"


@pytest.fixture(scope="module")
def github() -> Iterator[GithubServer]:
    with github_server() as server:
        yield server


@pytest.fixture(scope="module")
def stack(github: GithubServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    env = {
        "MEDIGAN_SMOKE_TIMEOUT_SECONDS": "120",
        "MEDIGAN_GITHUB_API_URL": github.url,
        "MEDIGAN_GITHUB_TOKEN": github.token,
        "MEDIGAN_PUBLIC_URL": PUBLIC_URL,
    }
    with live_hub(
        env=env,
        data_dir=tmp_path_factory.mktemp("hub-github"),
        start=False,
        production=production_path(PATH, redis_db=10, database_prefix="medigan_github"),
    ) as hub:
        hub.shell(
            "from hub.accounts.services import user_get_or_create; "
            "print(user_get_or_create(username='carol', password='carol-password-1').pk)"
        )
        hub.contributor_token = hub.manage("token_create", "carol").stdout.strip()
        hub.ensure_running()
        yield hub


def _count(hub: LiveHub, dotted: str) -> int:
    """How many rows the hub's database holds of the model ``package.module.Class``."""
    module, name = dotted.rsplit(".", 1)
    return int(hub.shell(f"from {module} import {name}; print({name}.objects.count())"))


def _link(stack: LiveHub) -> dict[str, Any]:
    with stack.api(stack.contributor_token) as api:
        response = api.post(f"/api/v1/models/{MODEL}/github", json={"repository": REPOSITORY})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_signed_release_webhook_is_submitted_validated_and_reported_to_github(
    stack: LiveHub, github: GithubServer, tmp_path: Path
) -> None:
    link = _link(stack)
    archive, _, _ = factories.package_zip(tmp_path, model_id=MODEL)
    sha = github.add_release(REPOSITORY, "v1.0.0", {"noise-16-1.0.0.zip": archive.read_bytes()})

    answer = github.deliver(
        link["webhook_url"],
        secret=link["secret"],
        event="release",
        body=github.release_event(REPOSITORY, "v1.0.0"),
    )
    success = wait_until(
        "a success status on the tagged commit",
        lambda: [s for s in github.statuses if s["sha"] == sha and s["state"] == "success"],
        240,
    )

    assert answer.status_code == 202, answer.text
    with stack.api(stack.contributor_token) as api:
        status = api.get(f"/api/v1/models/{MODEL}/releases/1.0.0").json()
        submission = api.get(f"/api/v1/github/submissions/{answer.json()['submission']}").json()
    assert status["state"] == "in_review", status["checks"]
    assert {check["status"] for check in status["checks"]} == {"passed"}
    assert (submission["state"], submission["release"]) == ("submitted", f"{MODEL}@1.0.0")
    assert success[-1]["target_url"] == f"{PUBLIC_URL}/submissions/carol/noise-16/1.0.0/"
    assert success[-1]["context"] == "medigan-hub/validation"
    assert github.statuses[0]["state"] == "pending"


def test_a_wrong_signature_gets_401_and_creates_nothing(
    stack: LiveHub, github: GithubServer, tmp_path: Path
) -> None:
    link = _link(stack)
    github.add_release(REPOSITORY, "v2.0.0", {"noise-16-2.0.0.zip": b"never fetched"})
    before = {
        name: _count(stack, name)
        for name in (
            "hub.registry.models.Release",
            "hub.github.models.GithubDelivery",
            "hub.github.models.GithubSubmission",
        )
    }
    requests_before = len(github.requests)

    answer = github.deliver(
        link["webhook_url"],
        secret="not-" + link["secret"],
        event="release",
        body=github.release_event(REPOSITORY, "v2.0.0"),
    )
    time.sleep(2)  # whatever a worker might have been given would have started by now

    assert answer.status_code == 401
    assert json.loads(answer.text)["code"] == "github_signature_invalid"
    assert {name: _count(stack, name) for name in before} == before
    assert len(github.requests) == requests_before
