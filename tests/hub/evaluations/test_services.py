"""Tests of evaluations: reference sets, matching, and a publish that gets evaluated."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client as HttpClient

from hub.evaluations import selectors, services
from hub.evaluations.models import Evaluation, ReferenceSet
from hub.registry.services import package_publish_as_operator
from tests import factories

pytestmark = pytest.mark.django_db

ZOO_PACKAGE = Path(__file__).resolve().parents[3] / "zoo/chestxray_dcgan_64/package"


@pytest.mark.shared_data
def test_the_demo_reference_sets_are_the_held_out_splits(reference_sets: None) -> None:
    counts = {item.slug: item.image_count for item in ReferenceSet.objects.all()}
    chest = ReferenceSet.objects.get(slug="chest-xray-test")

    call_command("reference_sets_load", stdout=StringIO())

    assert counts == {"chest-xray-test": 624, "dermoscopy-isic2017-test": 600, "busi-heldout": 156}
    assert ReferenceSet.objects.count() == 3
    assert (chest.height, chest.width, chest.channels, chest.licence) == (64, 64, 1, "CC-BY-4.0")
    assert len(chest.manifest) == 624 and chest.manifest[0]["source"].startswith("dataset/test/")
    assert "Kermany" in chest.citation


def test_a_reference_set_cannot_change_its_images_under_the_same_slug(db: None) -> None:
    arguments: dict[str, Any] = {
        "slug": "tiny",
        "title": "tiny",
        "modality": "test",
        "match_terms": [["test"]],
        "split": "test",
        "licence": "CC0-1.0",
        "citation": "",
        "source": "test",
        "source_paths": ["a", "b"],
    }
    services.reference_set_create(images=np.zeros((2, 4, 4), np.uint8), **arguments)

    with pytest.raises(ValueError, match="exists with other images"):
        services.reference_set_create(images=np.ones((2, 4, 4), np.uint8), **arguments)


@pytest.mark.shared_data
def test_matching_needs_every_group_of_terms(reference_sets: None) -> None:
    chest = factories.card_data(selection={"modality": ["Chest X-ray"], "organ": ["chest"]})
    mammography = factories.card_data(
        selection={"modality": ["x-ray mammography"], "organ": ["breast"]}
    )
    ultrasound = factories.card_data(
        selection={"modality": ["B-mode ultrasound"], "organ": ["breast"]}
    )

    assert [r.slug for r in selectors.reference_sets_matching(card=chest)] == ["chest-xray-test"]
    assert selectors.reference_sets_matching(card=mammography) == []
    assert [r.slug for r in selectors.reference_sets_matching(card=ultrasound)] == ["busi-heldout"]


@pytest.mark.shared_data
def test_publishing_the_zoo_model_evaluates_it_and_the_numbers_reach_clients(
    reference_sets: None, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_EVALUATION_SAMPLES = 200
    settings.MEDIGAN_EVALUATION_BATCH_SIZE = 100
    operator = factories.user("operator", reviewer=True)

    with django_capture_on_commit_callbacks(execute=True):
        release = package_publish_as_operator(
            package_dir=ZOO_PACKAGE, operator=operator, note="test"
        )

    evaluation = Evaluation.objects.get(release=release)
    assert evaluation.status == "succeeded", evaluation.error
    assert evaluation.reference_set.slug == "chest-xray-test"
    timings = selectors.evaluation_timings(evaluation)
    assert timings is not None
    assert list(timings) == [
        "package_s",
        "reference_load_s",
        "load_extractor_s",
        "features_reference_s",
        "generate_s",
        "features_generated_s",
        "metrics_s",
        "total_s",
    ]
    assert 0 < sum(timings.values()) - timings["total_s"] <= timings["total_s"]
    assert evaluation.provenance["reference_features_cached"] is False
    # 200 samples asked for in chunks of 100: one sandbox run of 100 sets the pace, one more.
    assert evaluation.provenance["generation"]["sandbox_runs"] == 2
    assert evaluation.extractor_id == "medical-cnn"
    assert evaluation.comparable_with_published is False
    assert evaluation.fid_rs is not None and evaluation.fid_rs > 0
    assert evaluation.r_fid == pytest.approx(evaluation.fid_rr_mean / evaluation.fid_rs)
    assert evaluation.provenance["num_generated"] == 200
    assert evaluation.provenance["reference_sha256"] == evaluation.reference_set.images_sha256

    http = HttpClient()
    snapshot = http.get("/api/v1/catalog").json()
    (entry,) = [item for item in snapshot["releases"] if item["model_id"] == release.model_id]
    board = http.get("/api/v1/leaderboards/chest-xray-test").json()
    page = http.get("/leaderboard/")

    assert entry["evaluations"][0]["fid_rs"] == evaluation.fid_rs
    # Timings are answered with the release's evaluations, not downloaded with the catalogue.
    assert "timings" not in entry["evaluations"][0]
    assert "timings" not in board["rows"][0]
    answered = http.get("/api/v1/models/zoo/chestxray-dcgan-64/releases/1.0.0/evaluations").json()
    assert answered["results"][0]["timings"] == pytest.approx(timings)
    assert board["rows"][0]["model_id"] == "zoo/chestxray-dcgan-64"
    assert board["rows"][0]["extractor_weights_sha256"]
    assert page.status_code == 200
    assert b"zoo/chestxray-dcgan-64" in page.content and b"<circle" in page.content


@pytest.mark.shared_data
def test_staff_request_evaluations_and_others_may_not(
    reference_sets: None, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    archive, sha256, card = factories.package_zip(tmp_path)
    from hub.registry import services as registry_services

    with django_capture_on_commit_callbacks(execute=True), archive.open("rb") as package:
        release = registry_services.release_submit(
            user=factories.user("alice"), card_data=card, package=package, declared_sha256=sha256
        )
    with django_capture_on_commit_callbacks(execute=False):
        # Published (by someone other than alice): only published releases are evaluated.
        release = registry_services.release_review(
            release_id=release.pk,
            reviewer=factories.user("rita", reviewer=True),
            decision="approve",
        )
    url = "/api/v1/models/alice/noise-16/releases/1.0.0/evaluations"
    body = json.dumps({"reference": "chest-xray-test", "num_samples": 50})
    staff = HttpClient()
    staff.force_login(factories.user("sam", staff=True))

    refused = HttpClient().post(
        url,
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {factories.token(factories.user('alice'))}",
    )
    with django_capture_on_commit_callbacks(execute=False):
        accepted = staff.post(url, body, content_type="application/json")

    assert refused.status_code == 403
    assert accepted.status_code == 202
    assert accepted.json()["status"] == "queued"
    assert Evaluation.objects.get().num_samples == 50


def test_leaderboard_refuses_an_unknown_sort(db: None) -> None:
    response = HttpClient().get("/api/v1/leaderboards", {"sort": "vibes"})

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
