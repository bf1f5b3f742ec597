"""Tests of evaluations under faults: only published releases run, lost runs are re-queued."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client as HttpClient
from django.utils import timezone

from hub.evaluations import services
from hub.evaluations.models import Evaluation, ReferenceSet
from hub.evaluations.tasks import evaluation_run_task
from hub.registry import services as registry_services
from hub.registry.models import Release
from medigan_catalog.errors import ErrorCode
from medigan_catalog.lifecycle import ReleaseState
from tests import factories

pytestmark = pytest.mark.django_db

SAMPLES = 48


def _reference_set() -> ReferenceSet:
    """A small synthetic reference set that the noise test model matches."""
    images = np.random.default_rng(0).integers(0, 128, size=(SAMPLES, 16, 16), dtype=np.uint8)
    return services.reference_set_create(
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


def _in_review(tmp_path: Path, capture: Any) -> Release:
    archive, sha256, card = factories.package_zip(tmp_path)
    with capture(execute=True), archive.open("rb") as package:
        release = registry_services.release_submit(
            user=factories.user("alice"), card_data=card, package=package, declared_sha256=sha256
        )
    release = Release.objects.get(pk=release.pk)
    assert release.state == ReleaseState.IN_REVIEW
    return release


def _published(tmp_path: Path, capture: Any) -> Release:
    release = _in_review(tmp_path, capture)
    with capture(execute=False):
        # The publish event would queue the standard evaluations; these tests queue their own.
        return registry_services.release_review(
            release_id=release.pk,
            reviewer=factories.user("rita", reviewer=True),
            decision="approve",
        )


def _queued(release: Release, capture: Any) -> Evaluation:
    with capture(execute=False):
        return services.evaluation_request(
            release=release,
            reference_set=_reference_set(),
            extractor_id="medical-cnn",
            num_samples=SAMPLES,
        )


def _running(evaluation: Evaluation, *, attempts: int, started_seconds_ago: float) -> None:
    Evaluation.objects.filter(pk=evaluation.pk).update(
        status=Evaluation.Status.RUNNING,
        attempts=attempts,
        started_at=timezone.now() - timedelta(seconds=started_seconds_ago),
    )


def test_an_unpublished_release_is_not_evaluated(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _in_review(tmp_path, django_capture_on_commit_callbacks)
    reference_set = _reference_set()
    staff = HttpClient()
    # A hub reviewer: staff who may see the release in review (hub.access).
    staff.force_login(factories.user("rita", reviewer=True))

    with pytest.raises(services.EvaluationNotAllowedError) as refused:
        services.evaluation_request(
            release=release, reference_set=reference_set, extractor_id="medical-cnn", num_samples=8
        )
    response = staff.post(
        "/api/v1/models/alice/noise-16/releases/1.0.0/evaluations",
        json.dumps({"reference": "test-noise", "num_samples": 50}),
        content_type="application/json",
    )

    assert refused.value.code is ErrorCode.TRANSITION_NOT_ALLOWED
    assert "is in_review, not published" in refused.value.message
    assert response.status_code == 409
    assert response.json()["code"] == "transition_not_allowed"
    assert Evaluation.objects.count() == 0


def test_a_queued_evaluation_of_a_release_no_longer_published_fails_without_running(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _published(tmp_path, django_capture_on_commit_callbacks)
    evaluation = _queued(release, django_capture_on_commit_callbacks)
    registry_services.release_transition(release_id=release.pk, target=ReleaseState.DEPRECATED)

    outcome = evaluation_run_task.apply(args=[evaluation.pk]).get()

    evaluation.refresh_from_db()
    assert outcome == "failed"
    assert "is deprecated, no longer published" in evaluation.error
    assert evaluation.started_at is None and evaluation.attempts == 0


def test_a_running_evaluation_whose_worker_died_is_requeued_and_finishes(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_EVALUATION_STALE_SECONDS = 60
    release = _published(tmp_path, django_capture_on_commit_callbacks)
    evaluation = _queued(release, django_capture_on_commit_callbacks)
    _running(evaluation, attempts=1, started_seconds_ago=120)
    folder = Path(settings.MEDIGAN_WORK_DIR) / f"evaluate-{evaluation.pk}-dead"
    folder.mkdir(parents=True)

    with django_capture_on_commit_callbacks(execute=True):
        report = services.evaluations_janitor_run()

    evaluation.refresh_from_db()
    assert report["restarted"] == [evaluation.pk]
    assert evaluation.status == Evaluation.Status.SUCCEEDED, evaluation.error
    assert evaluation.attempts == 2
    assert evaluation.fid_rs is not None and evaluation.error == ""
    assert not folder.exists()


def test_an_evaluation_lost_too_often_fails_with_a_clear_error(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_EVALUATION_STALE_SECONDS = 60
    settings.MEDIGAN_MAX_ATTEMPTS = 3
    release = _published(tmp_path, django_capture_on_commit_callbacks)
    evaluation = _queued(release, django_capture_on_commit_callbacks)
    _running(evaluation, attempts=3, started_seconds_ago=120)

    report = services.evaluations_janitor_run()

    evaluation.refresh_from_db()
    assert report["failed"] == [evaluation.pk]
    assert evaluation.status == Evaluation.Status.FAILED
    assert "started 3 times and never finished" in evaluation.error
    assert "gave up after 3 attempts" in evaluation.error


def test_a_live_evaluation_is_left_alone_and_a_waiting_one_is_sent_again(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_EVALUATION_STALE_SECONDS = 600
    settings.MEDIGAN_REQUEUE_AFTER_SECONDS = 60
    release = _published(tmp_path, django_capture_on_commit_callbacks)
    evaluation = _queued(release, django_capture_on_commit_callbacks)
    _running(evaluation, attempts=1, started_seconds_ago=120)

    report = services.evaluations_janitor_run()
    duplicate = evaluation_run_task.apply(args=[evaluation.pk]).get()

    assert report["restarted"] == [] and duplicate == "skipped"
    assert Evaluation.objects.get(pk=evaluation.pk).status == Evaluation.Status.RUNNING

    # The same evaluation, its message lost while it waited in the queue.
    Evaluation.objects.filter(pk=evaluation.pk).update(
        status=Evaluation.Status.QUEUED, queued_at=timezone.now() - timedelta(seconds=120)
    )
    report = services.evaluations_janitor_run()

    evaluation.refresh_from_db()
    assert report["requeued"] == [evaluation.pk]
    assert evaluation.status == Evaluation.Status.SUCCEEDED, evaluation.error


def test_a_retried_evaluation_task_restarts_the_run_its_first_try_left(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_EVALUATION_STALE_SECONDS = 600
    release = _published(tmp_path, django_capture_on_commit_callbacks)
    evaluation = _queued(release, django_capture_on_commit_callbacks)
    _running(evaluation, attempts=1, started_seconds_ago=1)

    outcome = evaluation_run_task.apply(args=[evaluation.pk], retries=1).get()

    evaluation.refresh_from_db()
    assert outcome == "succeeded", evaluation.error
    assert evaluation.attempts == 2


def test_the_same_task_delivered_again_restarts_the_run_it_started(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_EVALUATION_STALE_SECONDS = 600
    release = _published(tmp_path, django_capture_on_commit_callbacks)
    evaluation = _queued(release, django_capture_on_commit_callbacks)
    _running(evaluation, attempts=1, started_seconds_ago=1)
    Evaluation.objects.filter(pk=evaluation.pk).update(task_id="t-1")

    other = evaluation_run_task.apply(args=[evaluation.pk], task_id="t-2").get()
    again = evaluation_run_task.apply(args=[evaluation.pk], task_id="t-1").get()

    evaluation.refresh_from_db()
    assert other == "skipped", "another task's delivery leaves a live run alone"
    assert again == "succeeded", evaluation.error
    assert (evaluation.attempts, evaluation.task_id) == (2, "t-1")
