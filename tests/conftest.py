"""Server test set-up: tasks run eagerly in-process unless a test starts a real worker.

Every test also runs under the socket guard, the plugin ``tests/socket_guard.py``: it may
connect only to this machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _eager_celery_and_private_storage(settings: Any, tmp_path: Path) -> Iterator[None]:
    from hub.celery import app

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    settings.MEDIGAN_WORK_DIR = tmp_path / "work"
    # Each test's hub has its own signing key, made on first use.
    settings.MEDIGAN_SIGNING_KEY_DIR = tmp_path / "keys"
    settings.MEDIGAN_SMOKE_TIMEOUT_SECONDS = 60
    # Evaluations run eagerly in these tests: keep them small, and their caches private.
    settings.MEDIGAN_EVALUATION_SAMPLES = 100
    settings.MEDIGAN_EVALUATION_BATCH_SIZE = 100
    settings.MEDIGAN_EVALUATION_CACHE_DIR = tmp_path / "evaluation-cache"
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def medigan_global() -> dict[str, Any]:
    """medigan's real catalogue, as the hub ships it."""
    import json

    path = Path(__file__).resolve().parent.parent / "hub/registry/seed/medigan-global.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
