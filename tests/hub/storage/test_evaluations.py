"""Evaluations on S3: a reference set stored in the bucket, and a run that reads the release's
package and the reference images back out of it (moto in server mode, over HTTP)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client as HttpClient

from hub.evaluations import services
from hub.evaluations.models import Evaluation
from hub.registry import services as registry_services
from hub.registry.models import Release
from tests import factories
from tests.s3_server import S3Server

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

SAMPLES = 48


def test_an_evaluation_reads_its_package_and_reference_set_from_the_bucket(
    s3: S3Server, s3_bucket: str, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    images = np.random.default_rng(0).integers(0, 128, size=(SAMPLES, 16, 16), dtype=np.uint8)
    reference_set = services.reference_set_create(
        slug="test-noise",
        title="test noise",
        modality="test noise",
        match_terms=[["test noise"]],
        split="test",
        licence="CC0-1.0",
        citation="",
        source="synthetic",
        images=images,
        source_paths=[f"noise/{index}" for index in range(SAMPLES)],
    )
    alice = factories.user("alice")
    archive, sha256, card = factories.package_zip(tmp_path / "build")
    with django_capture_on_commit_callbacks(execute=True), archive.open("rb") as package:
        pushed = HttpClient().post(
            "/api/v1/releases",
            {"card": json.dumps(card), "package": package, "sha256": sha256},
            HTTP_AUTHORIZATION=f"Token {factories.token(alice)}",
        )
    assert pushed.status_code == 202, pushed.content
    with django_capture_on_commit_callbacks(execute=False):
        # Publishing would queue the standard evaluations; this test runs its own.
        release = registry_services.release_review(
            release_id=Release.objects.get().pk,
            reviewer=factories.user("rita", reviewer=True),
            decision="approve",
        )

    with django_capture_on_commit_callbacks(execute=True):
        queued = services.evaluation_request(
            release=release,
            reference_set=reference_set,
            extractor_id="medical-cnn",
            num_samples=SAMPLES,
        )

    evaluation = Evaluation.objects.get(pk=queued.pk)
    assert evaluation.status == Evaluation.Status.SUCCEEDED, evaluation.error
    assert evaluation.fid_rs is not None and evaluation.fid_rs >= 0
    assert evaluation.provenance["reference_sha256"] == reference_set.images_sha256
    stored = s3.objects(s3_bucket)
    assert reference_set.images.name == "references/test-noise.npz"
    with np.load(io.BytesIO(s3.object_bytes(s3_bucket, reference_set.images.name))) as kept:
        assert np.array_equal(kept["images"], images)
    assert stored[str(release.artifacts.get(role="package").file.name)] == archive.stat().st_size
    assert not (tmp_path / "media").exists(), "nothing may be stored on the filesystem"
