"""Mirrored artifacts on S3: an upstream hub that stores in one bucket, a mirror in another.

The upstream is a live hub (gunicorn, its own SQLite database) whose storage is a bucket on the
session's moto server; it serves its package's bytes out of that bucket over HTTP and exports
them into a bundle. The mirror is the hub of the test process, storing into a bucket of its own:
a first download fetches the artifact from the upstream, verifies it and stores it
(``artifact_materialise``, ``artifact_store_verified``); a bundle import stores it the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import Client as HttpClient

from hub import signing, snapshot
from hub.federation import services
from hub.federation.bundles import bundle_import
from hub.registry.models import Artifact
from medigan_catalog.signing import KEYS_PATH, KeySet
from medigan_catalog.snapshot import artifact_path
from tests.live_hub import LiveHub, live_hub
from tests.s3_server import S3Server

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

MODEL_ID = "carol/noise-16"
FILENAME = "noise-16-1.0.0.zip"
KEY = f"releases/carol/noise-16/1.0.0/{FILENAME}"
# Bytes that differ at every offset, over two S3 parts of the hub's uploads (8 MiB each).
PACKAGE_EXPRESSION = "b''.join(hashlib.sha256(str(i).encode()).digest() for i in range(300_000))"
PACKAGE = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(300_000))

# Run in the upstream's ``manage.py shell``: one published release of carol's with a stored
# package its card lists, and its catalogue change, so the feed carries it.
POPULATE = f"""
import hashlib
from hub.registry.models import CatalogChange, CatalogSerial
from tests import factories
data = {PACKAGE_EXPRESSION}
artifacts = [{{"filename": {FILENAME!r}, "role": "package", "urls": [],
    "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}}]
release = factories.release_row(
    submitter=factories.user("carol"), model_id={MODEL_ID!r}, package=data, artifacts=artifacts
)
CatalogChange.objects.create(serial=1, kind="release_published",
    generative_model=release.generative_model, release=release, namespace="carol",
    visibility_before="public", visibility_after="public")
CatalogSerial.objects.update_or_create(pk=1, defaults={{"serial": 1}})
print(release.artifacts.get().file.name)
"""


@pytest.fixture(scope="module")
def upstream(s3: S3Server) -> Iterator[tuple[LiveHub, str]]:
    """The upstream hub, serving from its own bucket; with that bucket's name."""
    bucket = "medigan-upstream"
    s3.bucket_create(bucket)
    with live_hub(
        env={**s3.hub_env(bucket), "MEDIGAN_HUB_NAME": "public"}, workers={}, start=False
    ) as hub:
        stored = hub.shell(POPULATE)
        assert stored == KEY
        hub.ensure_running()
        yield hub, bucket


@pytest.fixture(autouse=True)
def _mirror_hub(settings: Any) -> Iterator[None]:
    """The hub of the test process plays the mirror, with a name of its own."""
    settings.MEDIGAN_HUB_NAME = "institution"
    signing.forget_loaded_keys()
    snapshot.snapshot_cache_clear()
    yield
    signing.forget_loaded_keys()
    snapshot.snapshot_cache_clear()


def test_a_mirrored_artifact_is_fetched_into_the_mirrors_bucket_and_served_from_it(
    s3: S3Server, s3_bucket: str, upstream: tuple[LiveHub, str], tmp_path: Path
) -> None:
    hub, upstream_bucket = upstream
    assert s3.object_bytes(upstream_bucket, KEY) == PACKAGE
    mirror = services.upstream_add(name="public", url=hub.url)
    assert services.upstream_sync(upstream_id=mirror.pk).ok
    assert KEY not in s3.objects(s3_bucket), "metadata mode: nothing fetched before a download"
    path = artifact_path(MODEL_ID, "1.0.0", FILENAME)
    http = HttpClient()

    first = http.get(path)
    first_body = b"".join(first.streaming_content)  # type: ignore[attr-defined]
    ranged = http.get(path, HTTP_RANGE="bytes=4096-8191")
    ranged_body = b"".join(ranged.streaming_content)  # type: ignore[attr-defined]

    assert first.status_code == 200 and first_body == PACKAGE
    artifact = Artifact.objects.get(filename=FILENAME)
    assert artifact.file.name == KEY and artifact.size == len(PACKAGE)
    assert s3.object_bytes(s3_bucket, KEY) == PACKAGE
    assert ranged.status_code == 206 and ranged_body == PACKAGE[4096:8192]
    assert not (tmp_path / "media").exists(), "nothing may be stored on the filesystem"


def test_a_bundle_exported_from_a_bucket_is_imported_into_another(
    s3: S3Server, s3_bucket: str, upstream: tuple[LiveHub, str], tmp_path: Path
) -> None:
    hub, _ = upstream
    bundle = tmp_path / "carol.tar"
    hub.manage("bundle_export", str(bundle), "--namespaces", "carol")
    key_set = KeySet.model_validate_json(httpx.get(hub.url + KEYS_PATH).content)

    report = bundle_import(bundle, keys=[key_set.keys[0].key_id])

    assert report.stored == [f"{MODEL_ID}@1.0.0/{FILENAME}"]
    assert s3.object_bytes(s3_bucket, KEY) == PACKAGE
    artifact = Artifact.objects.get(filename=FILENAME)
    assert artifact.file.name == KEY
    assert hashlib.sha256(PACKAGE).hexdigest() == artifact.sha256
