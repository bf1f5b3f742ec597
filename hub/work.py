"""Plumbing of the apps' background work: task retries, redelivery, and the janitors' sweeps.

The registry's validation and the evaluations' runs survive the same faults the same way: a task
that hit a locked database is retried with backoff, a message delivered again means its worker
was lost, and a janitor removes what killed processes left behind. Both apps use this module, so
neither needs the other's.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Task
from django.db import OperationalError

logger = logging.getLogger(__name__)

# Retries of a task that hit a locked or unreachable database: 2, 4, 8 ... s, at most a minute
# apart, about ten minutes in all; then the janitor's pass finds the work.
BUSY_RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 12,
}


def previous_run_lost(task: Task) -> bool:
    """Whether an earlier run of this very message is known to be dead.

    A retry follows a run that raised; a redelivered message follows a worker that was lost
    while it held the message (or was stopped cold). Either way the work it began is orphaned.
    """
    request = task.request
    delivery_info = request.delivery_info or {}
    return bool(request.retries) or bool(delivery_info.get("redelivered"))


@dataclass(frozen=True)
class StaleWork:
    """What one janitor pass did with work left behind: ids re-queued, restarted, given up."""

    requeued: list[int] = field(default_factory=list)
    restarted: list[int] = field(default_factory=list)
    given_up: list[int] = field(default_factory=list)


def paths_remove_stale(
    *,
    root: Path,
    prefix: str,
    older_than_seconds: float,
    keep: Callable[[Path], bool] | None = None,
) -> list[Path]:
    """Remove the entries of ``root`` named ``prefix*`` last modified longer ago than the age.

    ``keep`` spares entries a live run still owns. Entries that cannot be removed (another
    user's, already gone) are skipped: the janitor must never fail over its cleaning.
    """
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than_seconds
    removed: list[Path] = []
    for path in sorted(root.glob(f"{prefix}*")):
        try:
            if path.lstat().st_mtime >= cutoff or (keep is not None and keep(path)):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as error:
            logger.warning("janitor could not remove %s: %s", path, error)
            continue
        removed.append(path)
    return removed
