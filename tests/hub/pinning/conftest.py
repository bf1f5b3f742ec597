"""Fixtures of the DOI pinning tests: a fake Zenodo on 127.0.0.1, and releases ready to approve.

The hub is pointed at the fake (``tests/zenodo_server.py``) with its token, short timeouts, no
transport retries and no wait between a pin's attempts: Celery runs eagerly, so a retried pin
runs again at once, inside the approval that queued it. For that, eager tasks do not propagate
their exceptions here: Celery re-applies an eager task that asked for a retry only then (with
propagation on, the retry itself would be raised to the caller); every test asserts the
outcome it expects on the release, the pin and the fake Zenodo instead.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hub.registry import services
from hub.registry.models import Release
from tests import factories
from tests.zenodo_server import ZenodoServer, zenodo_server

READ_TIMEOUT_SECONDS = 0.5


@pytest.fixture
def zenodo(settings: Any) -> Iterator[ZenodoServer]:
    from hub.celery import app

    propagates = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    with zenodo_server() as server:
        settings.MEDIGAN_ZENODO_URL = server.url
        settings.MEDIGAN_ZENODO_TOKEN = server.token
        settings.MEDIGAN_ZENODO_MINT = "on_request"
        settings.MEDIGAN_ZENODO_PIN_PROVIDED = True
        settings.MEDIGAN_ZENODO_CONNECT_TIMEOUT_SECONDS = 2.0
        settings.MEDIGAN_ZENODO_READ_TIMEOUT_SECONDS = READ_TIMEOUT_SECONDS
        settings.MEDIGAN_ZENODO_HTTP_RETRIES = 0
        settings.MEDIGAN_ZENODO_HTTP_BACKOFF_SECONDS = 0.0
        settings.MEDIGAN_ZENODO_PIN_ATTEMPTS = 3
        settings.MEDIGAN_ZENODO_RETRY_SECONDS = 0.0
        settings.MEDIGAN_PUBLIC_URL = "http://hub.test"
        try:
            yield server
        finally:
            app.conf.task_eager_propagates = propagates


def package_bytes(marker: str = "1.0.0") -> bytes:
    """A small zip, different for each marker (a package as a push stores it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("__init__.py", date_time=(2020, 1, 1, 0, 0, 0))
        archive.writestr(info, f"# package {marker}\n" + "x = 1\n" * 2000)
    return buffer.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def in_review() -> Callable[..., Release]:
    """A release of alice's in review, with its package stored; ``fields`` set on its row."""

    def make(*, version: str = "1.0.0", package: bytes | None = None, **fields: Any) -> Release:
        alice = factories.user("alice")
        release = factories.release_row(
            submitter=alice,
            version=version,
            state="in_review",
            package=package if package is not None else package_bytes(version),
            provenance={
                "authors": ["Doe, Jane", "Roe, Richard"],
                "licence": "MIT",
                "dois": fields.pop("card_dois", []),
                "training_data": [{"name": "noise", "licence": "CC0-1.0", "image_count": 0}],
            },
        )
        if fields:
            Release.objects.filter(pk=release.pk).update(**fields)
        return Release.objects.get(pk=release.pk)

    return make


@pytest.fixture
def approve(django_capture_on_commit_callbacks: Any) -> Callable[..., Release]:
    """Approve a release as a reviewer, running what the approval queues (the pin task) unless
    ``run_queued`` is off (the task's message lost)."""

    def run(release: Release, *, run_queued: bool = True) -> Release:
        with django_capture_on_commit_callbacks(execute=run_queued):
            services.release_review(
                release_id=release.pk,
                reviewer=factories.user("rita", reviewer=True),
                decision="approve",
                note="looks right",
            )
        return Release.objects.get(pk=release.pk)

    return run
