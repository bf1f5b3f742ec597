"""Reactions of the registry to other apps' events: a finished evaluation changes the catalogue."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from hub.registry import services
from hub.registry.models import Release
from hub.signals import evaluation_finished


@receiver(evaluation_finished)
def bump_serial_for_finished_evaluation(
    sender: Any, evaluation_id: int, release_id: int, **kwargs: Any
) -> None:
    """Bump the catalogue serial: the snapshot carries the new numbers.

    The signal is sent inside the transaction that stored the numbers, so the bump commits with
    them or not at all. The change is the release's model's, so only those who see the model
    see their serial move.
    """
    release = Release.objects.select_related("generative_model").get(pk=release_id)
    services.catalog_serial_bump(
        kind="evaluation_finished", generative_model=release.generative_model, release=release
    )
