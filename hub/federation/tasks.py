"""Celery tasks of federation: thin wrappers that take ids and call a service."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from hub.federation import services
from hub.work import BUSY_RETRY


@shared_task(name="hub.federation.tasks.upstream_sync_task", **BUSY_RETRY)
def upstream_sync_task(upstream_id: int) -> dict[str, Any]:
    """Sync one upstream (queued by the beat task below, or by an operator)."""
    report = services.upstream_sync(upstream_id=upstream_id)
    return {"upstream": report.upstream, "ok": report.ok, "serial": report.serial}


@shared_task(name="hub.federation.tasks.upstreams_sync_due_task")
def upstreams_sync_due_task() -> list[int]:
    """Queue a sync of every upstream whose next sync is due (run by beat every minute)."""
    due = services.upstreams_due()
    for upstream_id in due:
        upstream_sync_task.delay(upstream_id)
    return due
