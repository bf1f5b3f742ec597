"""Celery tasks of evaluations: thin wrappers that take ids and call a service.

Like validation, a run is acknowledged late and put back when its worker is lost; the service
restarts it cleanly and fails it after ``MEDIGAN_MAX_ATTEMPTS``. A locked database is retried
with backoff.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from hub.evaluations import services
from hub.work import BUSY_RETRY, previous_run_lost


@shared_task(
    name="hub.evaluations.tasks.evaluation_run_task",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    **BUSY_RETRY,
)
def evaluation_run_task(self: Task, evaluation_id: int) -> str:
    """Run a queued evaluation (queue ``gpu``); a repeated delivery does nothing."""
    evaluation = services.evaluation_run(
        evaluation_id=evaluation_id,
        task_id=str(self.request.id or ""),
        previous_run_lost=previous_run_lost(self),
    )
    return "skipped" if evaluation is None else evaluation.status


@shared_task(name="hub.evaluations.tasks.evaluations_janitor_run_task", **BUSY_RETRY)
def evaluations_janitor_run_task() -> dict[str, Any]:
    """Re-queue lost evaluations and remove their work folders (run by beat)."""
    return services.evaluations_janitor_run()
