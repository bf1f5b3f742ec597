"""What the reviewer's pages show: the queue of releases waiting for a viewer, and one release
laid out for a decision (sample grid, checks, card as text, and how the card changed since the
model's previous version).

Everything here is data for templates, which escape it; nothing is marked safe.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from django.urls import reverse

from hub.access import Viewer
from hub.registry import selectors
from hub.registry.models import Release, ReleaseCheck
from medigan_catalog.lifecycle import ReleaseState
from medigan_catalog.schema import Card

# The decisions a reviewer makes, and how a message says each was done.
DECIDED: Final = {"approve": "approved and published", "reject": "rejected"}


def review_url(release: Release) -> str:
    """The review page of ``release``."""
    model = release.generative_model
    return reverse(
        "review-release",
        kwargs={"namespace": model.namespace, "name": model.name, "version": release.version},
    )


@dataclass(frozen=True)
class QueueRow:
    """One release waiting in a reviewer's queue."""

    release: Release
    model_id: str
    version: str
    submitter: str
    submitted_at: datetime
    grid_url: str | None
    url: str


def queue_rows(viewer: Viewer) -> list[QueueRow]:
    """The releases ``viewer`` may review, oldest first."""
    return [
        QueueRow(
            release=release,
            model_id=release.model_id,
            version=release.version,
            submitter=release.submitted_by.get_username() if release.submitted_by else "",
            submitted_at=release.created_at,
            grid_url=selectors.release_sample_grid_path(release),
            url=review_url(release),
        )
        for release in selectors.releases_awaiting_review(viewer)
    ]


@dataclass(frozen=True)
class DiffLine:
    """A line of a unified diff; ``kind`` (add, del, hunk, head, same) names its CSS class."""

    kind: str
    text: str


def _pretty(card: Any) -> list[str]:
    # Sorted keys: two cards that differ only in key order show no change.
    return json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def _line_kind(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "head"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return "same"


def card_diff(before: Any, after: Any, *, before_label: str, after_label: str) -> list[DiffLine]:
    """A unified diff of two cards' pretty JSON, line by line; empty when they are equal."""
    lines = difflib.unified_diff(
        _pretty(before), _pretty(after), fromfile=before_label, tofile=after_label, lineterm=""
    )
    return [DiffLine(_line_kind(line), line) for line in lines]


@dataclass(frozen=True)
class ReviewPage:
    """A release as its reviewer sees it, with what changed since the previous version."""

    release: Release
    card: Card
    grid_url: str | None
    checks: list[ReleaseCheck]
    previous: Release | None
    diff: list[DiffLine]
    in_review: bool
    own_release: bool


def review_page(release: Release, viewer: Viewer) -> ReviewPage:
    """The review page of ``release`` (one ``viewer`` sees) for ``viewer``."""
    previous = selectors.release_previous_version(release, viewer)
    diff = (
        card_diff(
            previous.card,
            release.card,
            before_label=previous.release_id,
            after_label=release.release_id,
        )
        if previous is not None
        else []
    )
    return ReviewPage(
        release=release,
        card=selectors.release_card(release),
        grid_url=selectors.release_sample_grid_path(release),
        checks=list(release.checks.order_by("id")),
        previous=previous,
        diff=diff,
        in_review=release.state == ReleaseState.IN_REVIEW,
        own_release=viewer.user_id is not None and release.submitted_by_id == viewer.user_id,
    )
