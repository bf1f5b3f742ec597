"""Reactions of evaluations to registry events: a published release gets evaluated."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from hub.evaluations import services
from hub.signals import release_published


@receiver(release_published)
def queue_evaluations_of_published_release(sender: Any, release_id: int, **kwargs: Any) -> None:
    """Queue the standard evaluations of a release that was just published."""
    services.evaluations_queue_for_release(release_id=release_id)
