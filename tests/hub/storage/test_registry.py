"""The registry's artifact paths on S3: push, validation, ranged downloads, sample grids and
``storage_check``, against moto in server mode over HTTP (``tests/s3_server.py``).

Each test's hub stores into a bucket of its own; the tests read the bucket back with boto3 to
see what landed there, and nothing may land on the filesystem.
"""

from __future__ import annotations

import hashlib
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client as HttpClient

from hub.registry.models import Release, ReleaseCheck
from tests import factories
from tests.s3_server import S3Server

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

PACKAGE_KEY = "releases/alice/noise-16/1.0.0/noise-16-1.0.0.zip"
DOWNLOAD = "/api/v1/models/alice/noise-16/releases/1.0.0/artifacts/noise-16-1.0.0.zip"


def _bytes(size: int) -> bytes:
    """``size`` bytes that differ at every offset, so a wrong range cannot match by chance."""
    block = b"".join(hashlib.sha256(str(index).encode()).digest() for index in range(4096))
    return (block * (size // len(block) + 1))[:size]


def _get_object_lengths() -> list[int]:
    """The body length of every S3 GetObject the hub makes from now on, in this thread."""
    lengths: list[int] = []

    def record(parsed: dict[str, Any], **_: Any) -> None:
        lengths.append(int(parsed["ContentLength"]))

    # The hub's own boto3 client (django-storages keeps one per thread), observed, not replaced.
    storage: Any = default_storage
    client = storage.connection.meta.client
    client.meta.events.register("after-call.s3.GetObject", record)
    return lengths


def test_a_push_lands_in_the_bucket_and_validation_reads_it_back(
    s3: S3Server, s3_bucket: str, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    key = factories.token(factories.user("alice"))
    archive, sha256, card = factories.package_zip(tmp_path / "build")

    with django_capture_on_commit_callbacks(execute=True), archive.open("rb") as package:
        response = HttpClient().post(
            "/api/v1/releases",
            {"card": json.dumps(card), "package": package, "sha256": sha256},
            HTTP_AUTHORIZATION=f"Token {key}",
        )

    assert response.status_code == 202, response.content
    release = Release.objects.get()
    assert release.state == "in_review", release.events.last()
    checks = {check.name: check.status for check in release.checks.all()}
    assert checks["artifact_integrity"] == ReleaseCheck.Status.PASSED
    assert set(checks.values()) == {ReleaseCheck.Status.PASSED}
    stored = s3.objects(s3_bucket)
    assert stored[PACKAGE_KEY] == archive.stat().st_size
    assert s3.object_bytes(s3_bucket, PACKAGE_KEY) == archive.read_bytes()
    assert release.sample_grid.name in stored and release.sample_grid.name.startswith("grids/")
    assert not (tmp_path / "media").exists(), "nothing may be stored on the filesystem"


def test_a_download_streams_from_the_bucket_and_a_range_fetches_only_its_bytes(
    s3: S3Server, s3_bucket: str
) -> None:
    data = _bytes(3 * 1024 * 1024 + 17)
    factories.release_row(submitter=factories.user("alice"), package=data)
    assert s3.objects(s3_bucket)[PACKAGE_KEY] == len(data)
    fetched = _get_object_lengths()
    http = HttpClient()

    whole = http.get(DOWNLOAD)
    body = b"".join(whole.streaming_content)  # type: ignore[attr-defined]
    middle = http.get(DOWNLOAD, HTTP_RANGE="bytes=1000000-1000999")
    middle_body = b"".join(middle.streaming_content)  # type: ignore[attr-defined]
    tail = http.get(DOWNLOAD, HTTP_RANGE="bytes=-500")
    tail_body = b"".join(tail.streaming_content)  # type: ignore[attr-defined]
    beyond = http.get(DOWNLOAD, HTTP_RANGE=f"bytes={len(data)}-")

    assert whole.status_code == 200 and body == data
    assert whole["Content-Length"] == str(len(data))
    assert whole["X-Checksum-Sha256"] == hashlib.sha256(data).hexdigest()
    assert middle.status_code == 206
    assert middle["Content-Range"] == f"bytes 1000000-1000999/{len(data)}"
    assert middle["Content-Length"] == "1000" and middle_body == data[1000000:1001000]
    assert tail.status_code == 206 and tail_body == data[-500:]
    assert tail["Content-Range"] == f"bytes {len(data) - 500}-{len(data) - 1}/{len(data)}"
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(data)}"
    # S3 was asked for exactly the bytes of each answer: a range never fetched the object.
    assert fetched == [len(data), 1000, 500]


def test_an_artifact_gone_from_the_bucket_is_a_clear_404(s3: S3Server, s3_bucket: str) -> None:
    factories.release_row(submitter=factories.user("alice"), package=b"package bytes")
    s3.client().delete_object(Bucket=s3_bucket, Key=PACKAGE_KEY)

    response = HttpClient().get(DOWNLOAD)

    assert response.status_code == 404
    assert response.json()["code"] == "artifact_unreachable"


def test_a_sample_grid_is_stored_in_the_bucket_and_served_from_it(
    s3: S3Server, s3_bucket: str
) -> None:
    release = factories.release_row(submitter=factories.user("alice"))

    response = HttpClient().get("/api/v1/models/alice/noise-16/releases/1.0.0/sample-grid")

    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    served = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert served == factories.png_bytes()
    assert s3.object_bytes(s3_bucket, release.sample_grid.name) == served


def _storage_check(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("storage_check", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def test_storage_check_audits_the_bucket(s3: S3Server, s3_bucket: str) -> None:
    factories.release_row(submitter=factories.user("alice"), package=_bytes(100_000))
    clean = _storage_check()
    orphan = "releases/ghost/model/1.0.0/model-1.0.0.zip"
    s3.object_put(s3_bucket, orphan, b"left behind")
    s3.object_put(s3_bucket, PACKAGE_KEY, _bytes(99_999) + b"!")

    found = _storage_check()
    deleted = _storage_check("--delete-orphans", "--min-age", "0")

    assert clean == (0, "2 files checked; 0 missing, 0 mismatched, 0 orphans (0 deleted)\n")
    assert found[0] == 1
    assert f"mismatch: {PACKAGE_KEY}: stored sha256" in found[1]
    assert f"orphan: {orphan}: no row names this file" in found[1]
    assert deleted[0] == 1 and f"deleted: {orphan}" in deleted[1]
    assert orphan not in s3.objects(s3_bucket)
