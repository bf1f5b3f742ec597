"""The release lifecycle as data: states, the allowed transitions, and the check for one move.

The hub's single state-changing service consults :func:`check_transition` inside its transaction;
admin screens and the API list :func:`allowed_targets`. Nothing else decides what may follow what.

::

    submitted <-> validating -> in_review -> approved -> published -> deprecated
         |             |             |  \\                  |             |
         v             v             v   v                 v             v
     withdrawn      rejected     rejected withdrawn      withdrawn     withdrawn

``validating -> submitted`` is the way back for a validation whose worker was lost (killed, out
of memory, its host gone): the hub's janitor returns the release to the queue, and rejects it
once it has been started too many times.

``published -> withdrawn`` and ``deprecated -> withdrawn`` take a release out of the hub after
publication (an admin's decision: a licence problem, patient data in the weights). The release
leaves the catalogue and is no longer served, but its stored artifacts are kept for audit.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from medigan_catalog.errors import TransitionNotAllowedError


class ReleaseState(StrEnum):
    """Where a release is in review and publication."""

    SUBMITTED = "submitted"
    VALIDATING = "validating"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    PUBLISHED = "published"
    DEPRECATED = "deprecated"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


TRANSITIONS: Mapping[ReleaseState, frozenset[ReleaseState]] = MappingProxyType(
    {
        ReleaseState.SUBMITTED: frozenset({ReleaseState.VALIDATING, ReleaseState.WITHDRAWN}),
        # Back to `submitted` only when a validation was interrupted and is started again.
        ReleaseState.VALIDATING: frozenset(
            {ReleaseState.IN_REVIEW, ReleaseState.REJECTED, ReleaseState.SUBMITTED}
        ),
        ReleaseState.IN_REVIEW: frozenset(
            {ReleaseState.APPROVED, ReleaseState.REJECTED, ReleaseState.WITHDRAWN}
        ),
        ReleaseState.APPROVED: frozenset({ReleaseState.PUBLISHED}),
        ReleaseState.PUBLISHED: frozenset({ReleaseState.DEPRECATED, ReleaseState.WITHDRAWN}),
        ReleaseState.DEPRECATED: frozenset({ReleaseState.WITHDRAWN}),
        ReleaseState.REJECTED: frozenset(),
        ReleaseState.WITHDRAWN: frozenset(),
    }
)

# States no transition leaves.
FINAL_STATES: frozenset[ReleaseState] = frozenset({ReleaseState.REJECTED, ReleaseState.WITHDRAWN})

# Releases anyone may see by exact id and download: a deprecated release stays reachable so that
# scripts pinned to it keep working, marked as deprecated.
VISIBLE_STATES: frozenset[ReleaseState] = frozenset(
    {ReleaseState.PUBLISHED, ReleaseState.DEPRECATED}
)

# Releases the catalogue snapshot lists, and that search, rank and "newest release" resolution
# consider: published only, so a deprecated release is never picked for a user.
CATALOGUE_STATES: frozenset[ReleaseState] = frozenset({ReleaseState.PUBLISHED})

# States whose release may still change its artifacts (before anyone could have downloaded it).
MUTABLE_STATES: frozenset[ReleaseState] = frozenset(
    {ReleaseState.SUBMITTED, ReleaseState.VALIDATING, ReleaseState.IN_REVIEW}
)


def allowed_targets(state: ReleaseState | str) -> frozenset[ReleaseState]:
    """The states a release in ``state`` may move to (empty for final states)."""
    return TRANSITIONS[ReleaseState(state)]


def is_final(state: ReleaseState | str) -> bool:
    """Whether no transition leaves ``state``."""
    return ReleaseState(state) in FINAL_STATES


def check_transition(current: ReleaseState | str, target: ReleaseState | str) -> None:
    """Raise :class:`TransitionNotAllowedError` unless ``current -> target`` is in the graph.

    Both arguments may be states or their string values; an unknown string raises ``ValueError``.
    """
    source = ReleaseState(current)
    destination = ReleaseState(target)
    allowed = TRANSITIONS[source]
    if destination not in allowed:
        ordered = [state.value for state in ReleaseState if state in allowed]
        raise TransitionNotAllowedError(source.value, destination.value, ordered)
