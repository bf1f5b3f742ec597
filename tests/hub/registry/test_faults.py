"""Tests of the registry's fault handling: the janitor, lost validations, a locked database,
pushes that fail after storing, ``storage_check`` and four eyes."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from celery.signals import task_prerun, task_retry
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection
from django.test import Client as HttpClient
from django.utils import timezone

from hub.api.errors import database_is_busy
from hub.celery import janitors_run_at_start_up
from hub.registry import services
from hub.registry.models import Release, ReleaseCheck
from hub.registry.tasks import release_validate_task
from medigan_catalog.errors import ErrorCode
from medigan_catalog.lifecycle import ReleaseState
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_temp_dirs(tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The janitor sweeps the upload and system temp dirs: point both into this test's folder."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    (tmp_path / "upload-tmp").mkdir()
    (tmp_path / "system-tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "system-tmp"))


def _submitted(tmp_path: Path, capture: Any, *, user: Any = None, **kwargs: Any) -> Release:
    """A pushed release whose validation task was never sent (its message was lost)."""
    archive, sha256, card = factories.package_zip(tmp_path, **kwargs)
    with capture(execute=False), archive.open("rb") as package:
        release = services.release_submit(
            user=user or factories.user("alice"),
            card_data=card,
            package=package,
            declared_sha256=sha256,
        )
    return Release.objects.get(pk=release.pk)


def _age(release: Release, seconds: float) -> None:
    Release.objects.filter(pk=release.pk).update(
        updated_at=timezone.now() - timedelta(seconds=seconds)
    )


def _transitions(release: Release) -> list[tuple[str, str]]:
    return [(event.from_state, event.to_state) for event in release.events.all()]


def _backdate(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


# The janitor and lost validations.


def test_the_janitor_requeues_a_release_whose_validation_message_was_lost(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_REQUEUE_AFTER_SECONDS = 60
    waiting = _submitted(tmp_path, django_capture_on_commit_callbacks)
    _age(waiting, 120)

    report = services.registry_janitor_run()
    again = services.registry_janitor_run()

    waiting.refresh_from_db()
    assert report["requeued"] == [waiting.pk]
    assert waiting.state == ReleaseState.IN_REVIEW
    assert again["requeued"] == []


def test_a_fresh_submitted_release_is_not_requeued(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_REQUEUE_AFTER_SECONDS = 60
    fresh = _submitted(tmp_path, django_capture_on_commit_callbacks)

    report = services.registry_janitor_run()

    assert report["requeued"] == []
    assert Release.objects.get(pk=fresh.pk).state == ReleaseState.SUBMITTED


def test_a_validation_whose_worker_died_is_restarted_cleanly_after_its_deadline(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_VALIDATION_STALE_SECONDS = 30
    settings.MEDIGAN_REQUEUE_AFTER_SECONDS = 10
    release = _submitted(tmp_path, django_capture_on_commit_callbacks)
    # What a worker killed half-way leaves: the state, one check, a grid and its work folder.
    services.release_transition(release_id=release.pk, target=ReleaseState.VALIDATING)
    ReleaseCheck.objects.create(release=release, name="card_schema", status="passed")
    grid = default_storage.save("grids/partial.png", ContentFile(b"not a grid"))
    Release.objects.filter(pk=release.pk).update(sample_grid=grid)
    folder = Path(settings.MEDIGAN_WORK_DIR) / f"validate-{release.pk}-dead"
    (folder / "package").mkdir(parents=True)
    _backdate(folder, 60)
    _age(release, 60)

    with django_capture_on_commit_callbacks(execute=True):
        report = services.registry_janitor_run()

    release.refresh_from_db()
    assert report["restarted"] == [release.pk]
    assert release.state == ReleaseState.IN_REVIEW
    assert _transitions(release) == [
        ("", "submitted"),
        ("submitted", "validating"),
        ("validating", "submitted"),
        ("submitted", "validating"),
        ("validating", "in_review"),
    ]
    assert "attempt 1 of 3 did not finish" in release.events.all()[2].note
    assert release.events.all()[3].note.startswith("validation attempt 2 [task ")
    assert [check.name for check in release.checks.all()].count("card_schema") == 1
    assert not default_storage.exists(grid)
    assert release.sample_grid.name != grid and default_storage.exists(release.sample_grid.name)
    assert not folder.exists()


def test_a_validation_lost_too_often_is_rejected_with_a_note(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_VALIDATION_STALE_SECONDS = 30
    settings.MEDIGAN_MAX_ATTEMPTS = 2
    release = _submitted(tmp_path, django_capture_on_commit_callbacks)
    for target in (ReleaseState.VALIDATING, ReleaseState.SUBMITTED, ReleaseState.VALIDATING):
        services.release_transition(release_id=release.pk, target=target)
    _age(release, 60)

    with django_capture_on_commit_callbacks(execute=True):
        report = services.registry_janitor_run()

    release.refresh_from_db()
    assert report["rejected"] == [release.pk]
    assert release.state == ReleaseState.REJECTED
    note = release.events.last().note  # type: ignore[union-attr]
    assert "started 2 times and never finished" in note
    assert "gave up after 2 attempts" in note


def test_a_live_validation_is_left_alone_by_the_janitor_and_a_duplicate_task(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_VALIDATION_STALE_SECONDS = 600
    release = _submitted(tmp_path, django_capture_on_commit_callbacks)
    services.release_transition(release_id=release.pk, target=ReleaseState.VALIDATING)

    report = services.registry_janitor_run()
    duplicate = release_validate_task.apply(args=[release.pk]).get()

    assert report["restarted"] == [] and duplicate == "skipped"
    assert Release.objects.get(pk=release.pk).state == ReleaseState.VALIDATING


def test_a_retried_validation_task_restarts_the_run_its_first_try_left(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _submitted(tmp_path, django_capture_on_commit_callbacks)
    services.release_transition(release_id=release.pk, target=ReleaseState.VALIDATING)

    with django_capture_on_commit_callbacks(execute=True):
        outcome = release_validate_task.apply(args=[release.pk], retries=1).get()

    release.refresh_from_db()
    assert outcome == "in_review"
    assert ("validating", "submitted") in _transitions(release)
    assert "the worker running it was lost" in release.events.all()[2].note


def test_a_message_the_broker_marks_redelivered_restarts_at_once(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_VALIDATION_STALE_SECONDS = 600
    release = _submitted(tmp_path, django_capture_on_commit_callbacks)
    services.release_transition(release_id=release.pk, target=ReleaseState.VALIDATING)

    with django_capture_on_commit_callbacks(execute=True):
        validated = services.release_validate(release_id=release.pk, previous_run_lost=True)

    assert validated is not None and validated.state == ReleaseState.IN_REVIEW


def test_the_same_task_delivered_again_restarts_the_validation_it_started(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_VALIDATION_STALE_SECONDS = 600
    release = _submitted(tmp_path, django_capture_on_commit_callbacks)
    # What the first delivery of task t-1 recorded before its worker died.
    services.release_transition(
        release_id=release.pk, target=ReleaseState.VALIDATING, note="validation started [task t-1]"
    )

    other = release_validate_task.apply(args=[release.pk], task_id="t-2").get()
    with django_capture_on_commit_callbacks(execute=True):
        again = release_validate_task.apply(args=[release.pk], task_id="t-1").get()

    release.refresh_from_db()
    assert other == "skipped", "another task's delivery leaves a live validation alone"
    assert again == "in_review"
    assert "the worker running it was lost" in release.events.all()[2].note
    assert release.events.all()[3].note == "validation attempt 2 [task t-1]"


def test_a_worker_starting_up_runs_the_janitor(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_REQUEUE_AFTER_SECONDS = 60
    waiting = _submitted(tmp_path, django_capture_on_commit_callbacks)
    _age(waiting, 120)

    janitors_run_at_start_up()

    assert Release.objects.get(pk=waiting.pk).state == ReleaseState.IN_REVIEW


def test_the_janitor_removes_what_killed_processes_left_and_spares_live_work(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_REQUEUE_AFTER_SECONDS = 60
    settings.MEDIGAN_SMOKE_TIMEOUT_SECONDS = 60
    settings.MEDIGAN_EVALUATION_BATCH_TIMEOUT_SECONDS = 100
    settings.MEDIGAN_VALIDATION_STALE_SECONDS = 600
    system_tmp = Path(tempfile.gettempdir())
    live = _submitted(tmp_path, django_capture_on_commit_callbacks)
    services.release_transition(release_id=live.pk, target=ReleaseState.VALIDATING)
    work = Path(settings.MEDIGAN_WORK_DIR)
    upload_tmp = Path(settings.FILE_UPLOAD_TEMP_DIR)
    paths = {
        "dead validation": work / "validate-999999-abc",
        "live validation": work / f"validate-{live.pk}-abc",
        "old sandbox": system_tmp / "medigan-sandbox-old",
        "young sandbox": system_tmp / "medigan-sandbox-young",
        "someone else's": system_tmp / "unrelated-old",
    }
    for path in paths.values():
        (path / "inside").mkdir(parents=True)
    dead_upload = upload_tmp / "tmpdead.upload.zip"
    dead_upload.write_bytes(b"x" * 1024)
    live_upload = upload_tmp / "tmplive.upload.zip"
    live_upload.write_bytes(b"y")
    for name in ("dead validation", "live validation", "someone else's"):
        _backdate(paths[name], 3600)
    _backdate(paths["old sandbox"], 161)  # past the longer run limit plus the re-queue delay
    _backdate(paths["young sandbox"], 150)
    _backdate(dead_upload, 61)

    report = services.registry_janitor_run()

    assert sorted(report["removed"]) == sorted(
        [str(paths["dead validation"]), str(paths["old sandbox"]), str(dead_upload)]
    )
    assert paths["live validation"].exists() and paths["young sandbox"].exists()
    assert paths["someone else's"].exists() and live_upload.exists()


# A locked database.


@pytest.fixture
def database_lock() -> Iterator[sqlite3.Connection]:
    """A second connection to the test database that can hold its write lock (BEGIN IMMEDIATE)."""
    if connection.vendor != "sqlite":
        pytest.skip("provokes SQLite's lock")
    name = str(connection.settings_dict["NAME"])
    other = sqlite3.connect(name, uri=name.startswith("file:"), timeout=0.1)
    other.isolation_level = None
    yield other
    if other.in_transaction:
        other.execute("ROLLBACK")
    other.close()


def _lock(other: sqlite3.Connection) -> None:
    other.execute("BEGIN IMMEDIATE")
    # A write, so the lock is held by a real writer, not only announced.
    other.execute(
        "INSERT INTO registry_catalogserial (serial, changed_at) VALUES (0, '2020-01-01')"
    )


@pytest.mark.django_db(transaction=True)
def test_a_push_while_the_database_is_locked_answers_503_and_leaves_no_file(
    tmp_path: Path, settings: Any, database_lock: sqlite3.Connection
) -> None:
    settings.MEDIGAN_BUSY_RETRY_AFTER_SECONDS = 7
    key = factories.token(factories.user("alice"))
    http = HttpClient(HTTP_AUTHORIZATION=f"Token {key}")
    assert http.get("/api/v1/catalog").status_code == 200  # the token's use is recorded now
    archive, sha256, card = factories.package_zip(tmp_path)

    _lock(database_lock)
    with archive.open("rb") as package:
        response = http.post(
            "/api/v1/releases", {"card": json.dumps(card), "package": package, "sha256": sha256}
        )
    database_lock.execute("ROLLBACK")

    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    body = response.json()
    assert body["code"] == ErrorCode.HUB_BUSY.value
    assert "busy" in body["message"] and body["detail"] == {"retry_after_seconds": 7}
    assert Release.objects.count() == 0
    assert list((tmp_path / "media").rglob("*.zip")) == [], "the stored package was removed"


@pytest.mark.django_db(transaction=True)
def test_a_page_that_hits_a_locked_database_answers_503_not_500(
    database_lock: sqlite3.Connection,
) -> None:
    factories.user("admin-user", staff=True)

    _lock(database_lock)
    response = HttpClient().post(
        "/admin/login/?next=/admin/", {"username": "admin-user", "password": "test-password"}
    )
    database_lock.execute("ROLLBACK")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"busy" in response.content


@pytest.mark.django_db(transaction=True)
def test_a_validation_task_that_hits_a_locked_database_retries_and_finishes(
    tmp_path: Path,
    database_lock: sqlite3.Connection,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # Outside a test transaction the push's commit would queue (and eagerly run) validation at
    # once; this push's message is lost instead, so the task below is the one that validates.
    monkeypatch.setattr(services, "_queue_validation", lambda release_id: None)
    release = _submitted(tmp_path, django_capture_on_commit_callbacks)
    retries: list[str] = []

    def unlock_on_retry(reason: Any = None, **kwargs: Any) -> None:
        retries.append(str(reason))
        if database_lock.in_transaction:
            database_lock.execute("ROLLBACK")

    _lock(database_lock)
    task_retry.connect(unlock_on_retry, weak=False)
    try:
        # throw=False: run the retry as a worker would, instead of raising it to the caller.
        outcome = release_validate_task.apply(args=[release.pk], throw=False).get()
    finally:
        task_retry.disconnect(unlock_on_retry)

    assert len(retries) == 1 and "locked" in retries[0]
    assert outcome == "in_review"
    assert Release.objects.get(pk=release.pk).state == ReleaseState.IN_REVIEW


def test_only_contention_counts_as_busy() -> None:
    class DeadlockDetectedError(Exception):
        sqlstate = "40P01"

    deadlock = OperationalError("deadlock detected")
    deadlock.__cause__ = DeadlockDetectedError()

    assert database_is_busy(OperationalError("database is locked"))
    assert database_is_busy(deadlock)
    assert not database_is_busy(OperationalError("no such table: registry_release"))
    assert not database_is_busy(ValueError("database is locked"))


# Pushes that fail after the file was stored.


def test_a_push_that_loses_the_race_for_its_version_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    alice = factories.user("alice")
    archive, _, card = factories.package_zip(tmp_path)
    store = services._store_upload

    def store_while_another_push_commits(upload: Any, *, name: str) -> tuple[str, str, int]:
        stored = store(upload, name=name)
        # The other push of the same version commits while this one is storing its file.
        monkeypatch.setattr(services, "_store_upload", store)
        with archive.open("rb") as other:
            services.release_submit(user=alice, card_data=card, package=other)
        return stored

    monkeypatch.setattr(services, "_store_upload", store_while_another_push_commits)
    with (
        django_capture_on_commit_callbacks(execute=False),
        archive.open("rb") as package,
        pytest.raises(services.ReleaseExistsError),
    ):
        services.release_submit(user=alice, card_data=card, package=package)

    stored = sorted(
        path.relative_to(tmp_path / "media").as_posix()
        for path in (tmp_path / "media").rglob("*.zip")
    )
    assert Release.objects.count() == 1
    assert stored == [Release.objects.get().artifacts.get().file.name], "the winner's file only"


# storage_check.


def _storage_check(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("storage_check", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def test_storage_check_passes_a_clean_store_and_reports_orphans_until_deleted(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    _submitted(tmp_path, django_capture_on_commit_callbacks)
    orphan = default_storage.save("releases/ghost/model/1.0.0/model-1.0.0.zip", ContentFile(b"z"))
    grid_orphan = default_storage.save("grids/ghost.png", ContentFile(b"png"))
    os.utime(default_storage.path(orphan), (0, 0))
    os.utime(default_storage.path(grid_orphan), (0, 0))

    status_before, report_before = _storage_check()
    young = default_storage.save("releases/ghost/model/2.0.0/model-2.0.0.zip", ContentFile(b"y"))
    status_delete, report_delete = _storage_check("--delete-orphans", "--min-age", "3600")
    default_storage.delete(young)
    status_after, report_after = _storage_check()

    assert status_before == 1
    assert f"orphan: {orphan}: no row names this file" in report_before
    assert f"orphan: {grid_orphan}" in report_before
    assert "1 files checked; 0 missing, 0 mismatched, 2 orphans" in report_before
    assert status_delete == 1, "the young orphan is kept: it may be a push about to commit"
    assert f"deleted: {orphan}" in report_delete and f"orphan: {young}" in report_delete
    assert not default_storage.exists(orphan) and not default_storage.exists(grid_orphan)
    assert status_after == 0
    assert report_after.splitlines()[-1].endswith("0 orphans (0 deleted)")


def test_storage_check_finds_an_altered_and_a_missing_artifact(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    altered = _submitted(tmp_path / "a", django_capture_on_commit_callbacks)
    missing = _submitted(tmp_path / "b", django_capture_on_commit_callbacks, version="2.0.0")
    altered_name = altered.artifacts.get().file.name
    Path(default_storage.path(altered_name)).write_bytes(b"tampered")
    missing_name = missing.artifacts.get().file.name
    default_storage.delete(missing_name)

    status, report = _storage_check()

    assert status == 1
    assert f"mismatch: {altered_name}: stored sha256" in report
    assert "8 bytes; its row says sha256 " + altered.artifacts.get().sha256 in report
    assert f"missing: {missing_name}: named by a row but not in storage" in report


# Four eyes.


def test_nobody_reviews_their_own_release(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    rita = factories.user("rita", reviewer=True)
    archive, _, card = factories.package_zip(tmp_path, model_id="rita/noise-16")
    with django_capture_on_commit_callbacks(execute=True), archive.open("rb") as package:
        release = services.release_submit(user=rita, card_data=card, package=package)
    api = HttpClient(HTTP_AUTHORIZATION=f"Token {factories.token(rita)}")

    with pytest.raises(services.SelfReviewError) as refused:
        services.release_review(release_id=release.pk, reviewer=rita, decision="approve")
    with pytest.raises(services.SelfReviewError):
        services.release_review(release_id=release.pk, reviewer=rita, decision="reject", note="x")
    response = api.post(
        "/api/v1/models/rita/noise-16/releases/1.0.0/review",
        {"decision": "approve"},
        content_type="application/json",
    )
    approved = services.release_review(
        release_id=release.pk, reviewer=factories.user("otto", reviewer=True), decision="approve"
    )

    assert refused.value.code is ErrorCode.PERMISSION_DENIED
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "own release" in response.json()["message"]
    assert approved.state == ReleaseState.PUBLISHED


def test_the_operators_seeding_path_still_submits_and_approves_as_one_person(
    tmp_path: Path,
) -> None:
    operator = factories.user("hub-operator", staff=True, reviewer=True)
    package = factories.package_dir(tmp_path, model_id="zoo/noise-16")

    release = services.package_publish_as_operator(
        package_dir=package, operator=operator, note="seeded"
    )

    assert release.state == ReleaseState.PUBLISHED
    assert release.submitted_by == operator
    assert {event.actor for event in release.events.all() if event.actor} == {operator}


def test_the_operators_seeding_path_leaves_no_validation_for_a_running_worker(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """A worker that also took the release would race the operator's own validation for it."""
    operator = factories.user("hub-operator", staff=True, reviewer=True)
    package = factories.package_dir(tmp_path, model_id="zoo/noise-16")
    started: list[str] = []

    def record(sender: Any = None, **_: Any) -> None:
        started.append(sender.name)

    task_prerun.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            release = services.package_publish_as_operator(
                package_dir=package, operator=operator, note="seeded"
            )
    finally:
        task_prerun.disconnect(record)

    assert release.state == ReleaseState.PUBLISHED
    assert release_validate_task.name not in started
    assert release.events.filter(to_state=ReleaseState.VALIDATING).count() == 1
