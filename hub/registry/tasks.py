"""Celery tasks of the registry: thin wrappers that take ids and call a service."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from hub.registry import services


@shared_task(name="hub.registry.tasks.release_validate_task", acks_late=True)
def release_validate_task(release_id: int) -> str:
    """Validate a submitted release (queue ``validation``); a repeated delivery does nothing."""
    release = services.release_validate(release_id=release_id)
    return "skipped" if release is None else release.state


@shared_task(name="hub.registry.tasks.release_requeue_stale_task")
def release_requeue_stale_task() -> int:
    """Re-queue validation of releases whose first queueing was lost (run by beat)."""
    requeued = services.release_requeue_stale(
        older_than_seconds=float(settings.MEDIGAN_REQUEUE_AFTER_SECONDS)
    )
    return len(requeued)
