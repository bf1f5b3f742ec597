"""Celery tasks of the registry: thin wrappers that take ids and call a service.

Validation is acknowledged late and its message is put back when the worker running it is lost
(``reject_on_worker_lost``), so a crash re-delivers it; the service restarts such a release
cleanly and gives up after ``MEDIGAN_MAX_ATTEMPTS``. A locked database (SQLite under contention,
a PostgreSQL deadlock) is retried with backoff instead of leaving the release half-way.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from hub.registry import notifications, services
from hub.work import BUSY_RETRY, previous_run_lost


@shared_task(
    name="hub.registry.tasks.release_validate_task",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    **BUSY_RETRY,
)
def release_validate_task(self: Task, release_id: int) -> str:
    """Validate a submitted release (queue ``validation``); a repeated delivery does nothing."""
    release = services.release_validate(
        release_id=release_id,
        task_id=str(self.request.id or ""),
        previous_run_lost=previous_run_lost(self),
    )
    return "skipped" if release is None else release.state


@shared_task(name="hub.registry.tasks.registry_janitor_run_task", **BUSY_RETRY)
def registry_janitor_run_task() -> dict[str, Any]:
    """Re-queue lost validations and remove leftovers of killed processes (run by beat)."""
    return services.registry_janitor_run()


@shared_task(name="hub.registry.tasks.release_event_mail_task", **BUSY_RETRY)
def release_event_mail_task(event_id: int) -> bool:
    """Tell a release's contributor about one of its state changes (queue ``default``)."""
    return notifications.release_event_mail(event_id=event_id)
