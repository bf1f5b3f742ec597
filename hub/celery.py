"""The Celery application of the hub: configured from Django settings, tasks found in each app.

Every worker runs the janitors once when it is ready: work lost by a previous worker (killed,
its machine restarted) is re-queued at start-up rather than at the next beat.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

logger = logging.getLogger(__name__)

app = Celery("hub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def janitors_run_at_start_up(sender: Any = None, **kwargs: Any) -> None:
    """Run the registry's, the evaluations' and the pins' janitors once, in the worker's main
    process."""
    from hub.evaluations.services import evaluations_janitor_run
    from hub.pinning.services import pins_requeue_lost
    from hub.registry.services import registry_janitor_run

    for janitor in (registry_janitor_run, evaluations_janitor_run, pins_requeue_lost):
        try:
            janitor()
        except Exception:
            # A janitor that fails (database not migrated yet, locked) must not keep the
            # worker from serving; beat runs it again.
            logger.exception("the start-up janitor %s failed", janitor.__name__)


def _on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    from django.db import connections

    janitors_run_at_start_up()
    # The pool's children have their own connections; this process holds none while it waits.
    connections.close_all()


worker_ready.connect(_on_worker_ready)
