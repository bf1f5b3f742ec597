"""Tests of `manage.py seed_demo`: zoo models through review, medigan's catalogue by URL."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from hub.registry.models import Release

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue_url(tmp_path: Path, medigan_global: dict[str, Any]) -> Iterator[str]:
    """medigan's global.json served over HTTP from 127.0.0.1, as its repository serves it."""
    (tmp_path / "global.json").write_text(json.dumps(medigan_global), encoding="utf-8")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/global.json"
    server.shutdown()
    server.server_close()


def test_the_medigan_catalogue_is_imported_from_a_url_once(
    catalogue_url: str, tmp_path: Path
) -> None:
    output = StringIO()
    arguments = ["--skip-zoo", "--medigan-catalog", catalogue_url]
    credentials = ["--credentials", str(tmp_path / "credentials.json")]

    call_command("seed_demo", *arguments, *credentials, stdout=output)
    call_command("seed_demo", *arguments, *credentials, stdout=output)

    assert Release.objects.filter(state="published").count() == 23
    assert "23 releases imported" in output.getvalue()
    assert "0 releases imported, 23 already present" in output.getvalue()
    assert "normalised: " in output.getvalue()
    accounts = json.loads((tmp_path / "credentials.json").read_text(encoding="utf-8"))
    assert accounts["contributor"]["token"].startswith("mgh_")


# Validation smoke-generates each zoo package in a sandboxed child process.
@pytest.mark.integration
def test_zoo_models_are_published_through_validation_and_review(tmp_path: Path) -> None:
    zoo_packages = len(list(Path(settings.BASE_DIR, "zoo").glob("*/package/card.json")))

    call_command(
        "seed_demo", "--credentials", str(tmp_path / "credentials.json"), stdout=StringIO()
    )

    zoo = Release.objects.get(
        generative_model__namespace="zoo", generative_model__name="chestxray-dcgan-64"
    )
    assert zoo.state == "published"
    assert {check.status for check in zoo.checks.all()} == {"passed"}
    assert [event.to_state for event in zoo.events.all()] == [
        "submitted",
        "validating",
        "in_review",
        "approved",
        "published",
    ]
    assert zoo.artifacts.get().sha256 == zoo.card["artifacts"][0]["sha256"]
    published_zoo = Release.objects.filter(generative_model__namespace="zoo", state="published")
    assert published_zoo.count() == zoo_packages
