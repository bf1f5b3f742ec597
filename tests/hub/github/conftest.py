"""Fixtures of the GitHub tests: a fake GitHub on 127.0.0.1 the hub is pointed at, and a link.

``github`` is the fake (tests/github_server.py); ``linked`` makes alice's ``alice/noise-16``
linked to ``alice/noise-model`` through the API and holds the webhook's secret and URL path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client as HttpClient

from tests import factories
from tests.github_server import GithubServer, github_server

REPOSITORY = "alice/noise-model"
MODEL = "alice/noise-16"
PUBLIC_URL = "http://hub.example.test"


@pytest.fixture
def github(settings: Any) -> Iterator[GithubServer]:
    with github_server() as server:
        settings.MEDIGAN_GITHUB_API_URL = server.url
        settings.MEDIGAN_GITHUB_TOKEN = server.token
        settings.MEDIGAN_PUBLIC_URL = PUBLIC_URL
        yield server


@dataclass
class Linked:
    user: Any
    token: str
    secret: str
    webhook_path: str
    link_id: int


@pytest.fixture
def linked(github: GithubServer) -> Linked:
    alice = factories.user("alice")
    key = factories.token(alice)
    response = HttpClient().post(
        f"/api/v1/models/{MODEL}/github",
        {"repository": REPOSITORY},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    path = body["webhook_url"].removeprefix("http://testserver")
    return Linked(alice, key, body["secret"], path, body["id"])


def package_bytes(tmp_path: Path, **kwargs: Any) -> bytes:
    """A package zip of the noise model (card.json at its root), as a release asset."""
    archive, _, _ = factories.package_zip(tmp_path, model_id=MODEL, **kwargs)
    return archive.read_bytes()


def deliver(
    path: str,
    body: bytes,
    *,
    secret: str,
    event: str = "release",
    delivery_id: str | None = None,
    signature: str | None = None,
) -> Any:
    """Post a webhook delivery to the hub through Django's test client, signed as GitHub does."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers: dict[str, Any] = {
        "HTTP_X_GITHUB_EVENT": event,
        "HTTP_X_GITHUB_DELIVERY": delivery_id or str(uuid.uuid4()),
    }
    value = f"sha256={digest}" if signature is None else signature
    if value:
        headers["HTTP_X_HUB_SIGNATURE_256"] = value
    return HttpClient().post(path, body, content_type="application/json", **headers)


def ping_body() -> bytes:
    return json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
