"""Answers of GitHub-linked submissions to the registry's announcements (``hub.signals``)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from hub import signals
from hub.github import services


@receiver(signals.release_state_changed, dispatch_uid="github-commit-status")
def release_state_changed(sender: Any, *, release_id: int, **kwargs: Any) -> None:
    """Queue the commit status of the GitHub submission that made the release, if any."""
    services.github_release_state_changed(release_id=release_id)
