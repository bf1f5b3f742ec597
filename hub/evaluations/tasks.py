"""Celery tasks of evaluations: thin wrappers that take ids and call a service."""

from __future__ import annotations

from celery import shared_task

from hub.evaluations import services


@shared_task(name="hub.evaluations.tasks.evaluation_run_task", acks_late=True)
def evaluation_run_task(evaluation_id: int) -> str:
    """Run a queued evaluation (queue ``gpu``); a repeated delivery does nothing."""
    evaluation = services.evaluation_run(evaluation_id=evaluation_id)
    return "skipped" if evaluation is None else evaluation.status
