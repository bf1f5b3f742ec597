"""Reactions of the registry to other apps' events: a finished evaluation changes the catalogue."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from hub.registry import services
from hub.signals import evaluation_finished


@receiver(evaluation_finished)
def bump_serial_for_finished_evaluation(sender: Any, evaluation_id: int, **kwargs: Any) -> None:
    """Bump the catalogue serial: the snapshot carries the new numbers.

    The signal is sent inside the transaction that stored the numbers, so the bump commits with
    them or not at all.
    """
    services.catalog_serial_bump()
