"""Celery tasks of DOI pinning: thin wrappers that take ids and call a service (queue ``default``).

A pin is retried with backoff while Zenodo is unreachable or slow, up to
``MEDIGAN_ZENODO_PIN_ATTEMPTS`` attempts; the last one records the failure (the release stays
approved). A locked database is retried like everywhere else (``hub.work.BUSY_RETRY``'s pace).
"""

from __future__ import annotations

from celery import Task, shared_task
from django.db import OperationalError
from django.utils import timezone

from hub.pinning import selectors, services
from hub.work import BUSY_RETRY


@shared_task(name="hub.pinning.tasks.release_pin_task", bind=True, acks_late=True, max_retries=None)
def release_pin_task(self: Task, release_id: int) -> str:
    """Pin an approved release's DOI and publish it; retried while Zenodo is unreachable."""
    retries = int(self.request.retries or 0)
    try:
        return services.release_pin(release_id=release_id)
    except services.TRANSIENT_ERRORS as error:
        countdown = selectors.pin_retry_countdown(release_id, timezone.now())
        raise self.retry(exc=error, countdown=countdown) from error
    except OperationalError as error:
        if retries >= BUSY_RETRY["max_retries"]:
            raise
        countdown = min(BUSY_RETRY["retry_backoff"] * 2**retries, BUSY_RETRY["retry_backoff_max"])
        raise self.retry(exc=error, countdown=countdown) from error


@shared_task(name="hub.pinning.tasks.pin_recheck_task", **BUSY_RETRY)
def pin_recheck_task(pin_id: int) -> str:
    """Re-fetch one pinned record and compare its files with the pin's."""
    return services.pin_recheck(pin_id=pin_id)


@shared_task(name="hub.pinning.tasks.pins_recheck_due_task")
def pins_recheck_due_task() -> list[int]:
    """Queue a re-check of every pin not checked for MEDIGAN_ZENODO_RECHECK_SECONDS (beat)."""
    due = selectors.pins_recheck_due(timezone.now())
    for pin_id in due:
        pin_recheck_task.delay(pin_id)
    return due


@shared_task(name="hub.pinning.tasks.pins_janitor_run_task", **BUSY_RETRY)
def pins_janitor_run_task() -> list[int]:
    """Queue again the pins whose task was lost (beat, and every worker at start-up)."""
    return services.pins_requeue_lost()
