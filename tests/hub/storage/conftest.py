"""Fixtures of the S3 storage tests: one moto server for the session, a fresh bucket per test.

The test's hub keeps everything it stores in that bucket (``STORAGES["default"]`` as the hub's
settings build it for ``MEDIGAN_STORAGE=s3``), reached over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.s3_server import ISOLATING_ENV, S3Server, s3_server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto in server mode, a process of its own on a free port of 127.0.0.1."""
    with s3_server(log_dir=tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def s3_bucket(
    s3: S3Server,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    _eager_celery_and_private_storage: None,
) -> str:
    """A new, empty bucket that holds everything this test's hub stores; its name.

    Requested after the suite's own storage fixture, whose filesystem storage it replaces.
    """
    for name, value in ISOLATING_ENV.items():
        monkeypatch.setenv(name, value)
    bucket = f"medigan-test-{secrets.token_hex(6)}"
    s3.bucket_create(bucket)
    settings.STORAGES = {**settings.STORAGES, "default": s3.storage_settings(bucket)}
    return bucket
