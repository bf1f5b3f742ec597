"""The pins' janitor: a pending pin whose task message was lost is queued again, and only such.

A lost message is made by approving without running what the approval queues on commit (the
pin task), as a worker killed with the message in hand or a broker that dropped it would leave
it; the fake Zenodo of ``tests/zenodo_server.py`` then takes the janitor's task.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from hub.celery import janitors_run_at_start_up
from hub.pinning import selectors, services
from hub.pinning.models import DoiPin, PinEvent
from hub.registry.models import Release
from medigan_catalog.lifecycle import ReleaseState
from tests.zenodo_server import ZenodoServer

pytestmark = pytest.mark.django_db

Make = Callable[..., Release]
LOST_AFTER_SECONDS = 60


@pytest.fixture
def lost_pin(zenodo: ZenodoServer, in_review: Make, approve: Make, settings: Any) -> DoiPin:
    """An approved release whose pin task was never delivered."""
    settings.MEDIGAN_ZENODO_PIN_LOST_SECONDS = LOST_AFTER_SECONDS
    release = approve(in_review(doi_mint_requested=True), run_queued=False)
    return DoiPin.objects.get(release=release)


def _overdue(pin: DoiPin, **fields: Any) -> None:
    due = timezone.now() - timedelta(seconds=2 * LOST_AFTER_SECONDS)
    DoiPin.objects.filter(pk=pin.pk).update(task_due_at=due, **fields)


def _janitor(django_capture_on_commit_callbacks: Any) -> list[int]:
    with django_capture_on_commit_callbacks(execute=True):
        return services.pins_requeue_lost()


def test_a_pin_whose_task_was_lost_is_queued_again_and_the_release_published(
    lost_pin: DoiPin, zenodo: ZenodoServer, django_capture_on_commit_callbacks: Any
) -> None:
    assert lost_pin.status == "pending" and lost_pin.task_due_at is not None
    assert _janitor(django_capture_on_commit_callbacks) == []  # not overdue yet

    _overdue(lost_pin)
    requeued = _janitor(django_capture_on_commit_callbacks)

    release = Release.objects.get(pk=lost_pin.release_id)
    assert requeued == [release.pk]
    assert release.state == ReleaseState.PUBLISHED and release.pinned
    assert release.doi == zenodo.published()[0].doi
    notes = list(PinEvent.objects.filter(pin=lost_pin).values_list("kind", "note"))
    assert ("queued", "its task was lost; queued again by the janitor") in notes
    assert _janitor(django_capture_on_commit_callbacks) == []  # nothing pending any more


def test_every_worker_runs_the_pins_janitor_when_it_starts(
    lost_pin: DoiPin, django_capture_on_commit_callbacks: Any
) -> None:
    _overdue(lost_pin)

    with django_capture_on_commit_callbacks(execute=True):
        janitors_run_at_start_up()

    assert Release.objects.get(pk=lost_pin.release_id).state == ReleaseState.PUBLISHED


def test_a_pin_a_live_task_holds_is_left_to_it_and_one_a_dead_task_held_is_taken_back(
    lost_pin: DoiPin, django_capture_on_commit_callbacks: Any
) -> None:
    _overdue(lost_pin, running_since=timezone.now() - timedelta(minutes=5))
    assert _janitor(django_capture_on_commit_callbacks) == []

    _overdue(lost_pin, running_since=timezone.now() - timedelta(hours=3))
    assert _janitor(django_capture_on_commit_callbacks) == [lost_pin.release_id]
    assert Release.objects.get(pk=lost_pin.release_id).state == ReleaseState.PUBLISHED


def test_a_pin_waiting_for_its_retry_is_not_queued_twice(
    lost_pin: DoiPin, django_capture_on_commit_callbacks: Any
) -> None:
    DoiPin.objects.filter(pk=lost_pin.pk).update(
        attempts=1, task_due_at=timezone.now() + timedelta(minutes=30)
    )

    assert _janitor(django_capture_on_commit_callbacks) == []
    assert Release.objects.get(pk=lost_pin.release_id).state == ReleaseState.APPROVED


def test_failed_pins_and_releases_that_moved_on_are_not_queued(
    lost_pin: DoiPin, django_capture_on_commit_callbacks: Any
) -> None:
    _overdue(lost_pin, status=DoiPin.Status.FAILED)
    assert _janitor(django_capture_on_commit_callbacks) == []

    _overdue(lost_pin, status=DoiPin.Status.PENDING)
    Release.objects.filter(pk=lost_pin.release_id).update(state=ReleaseState.WITHDRAWN)
    assert _janitor(django_capture_on_commit_callbacks) == []


def test_a_task_queued_again_ends_the_attempts_at_the_pins_own_count(
    lost_pin: DoiPin,
    zenodo: ZenodoServer,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # Two of three attempts were made before the task was lost; Zenodo is still down.
    _overdue(lost_pin, attempts=settings.MEDIGAN_ZENODO_PIN_ATTEMPTS - 1)
    zenodo.fail("POST", r"^/api/deposit/depositions$", status=503, times=5)

    _janitor(django_capture_on_commit_callbacks)

    pin = DoiPin.objects.get(pk=lost_pin.pk)
    assert pin.status == "failed" and pin.attempts == settings.MEDIGAN_ZENODO_PIN_ATTEMPTS
    assert f"after {pin.attempts} attempts" in pin.last_error
    assert Release.objects.get(pk=lost_pin.release_id).state == ReleaseState.APPROVED


def test_a_failed_attempt_sets_when_its_retry_is_due_and_the_task_waits_for_it(
    lost_pin: DoiPin,
    zenodo: ZenodoServer,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.MEDIGAN_ZENODO_RETRY_SECONDS = 600.0
    zenodo.fail("POST", r"^/api/deposit/depositions$", status=503, times=1)
    before = timezone.now()

    with pytest.raises(services.TRANSIENT_ERRORS):
        services.release_pin(release_id=lost_pin.release_id)

    pin = DoiPin.objects.get(pk=lost_pin.pk)
    assert pin.attempts == 1 and pin.status == "pending"
    assert pin.task_due_at is not None
    assert pin.task_due_at >= before + timedelta(seconds=600)
    # ... and the task's retry waits for that time.
    assert 590 < selectors.pin_retry_countdown(lost_pin.release_id, timezone.now()) <= 600
