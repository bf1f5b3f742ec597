"""The release lifecycle as data: states, the allowed transitions, and the check for one move.

The hub's single state-changing service consults :func:`check_transition` inside its transaction;
admin screens and the API list :func:`allowed_targets`. Nothing else decides what may follow what.

::

    submitted <-> validating -> in_review -> approved -> published -> deprecated
         |             |             |  \\                  |   \\         |    \\
         v             v             v   v                 v    v        v     v
     withdrawn      rejected     rejected withdrawn   withdrawn yanked  withdrawn yanked
                                                                  |
                                                                  v
                                                              withdrawn

``validating -> submitted`` is the way back for a validation whose worker was lost (killed, out
of memory, its host gone): the hub's janitor returns the release to the queue, and rejects it
once it has been started too many times.

``deprecated`` (a maintainer's word, with a reason and perhaps the model that replaces it) and
``yanked`` (PEP 592: a release that should not be chosen, kept downloadable by exact version for
whoever pinned it) stay in the catalogue, marked, so clients warn; a model named without a version
resolves to its newest published release, else its newest deprecated one, never a yanked one
(:func:`selection_rank`).

``published``, ``deprecated`` or ``yanked -> withdrawn`` take a release out of the hub after
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
    YANKED = "yanked"
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
        ReleaseState.PUBLISHED: frozenset(
            {ReleaseState.DEPRECATED, ReleaseState.YANKED, ReleaseState.WITHDRAWN}
        ),
        ReleaseState.DEPRECATED: frozenset({ReleaseState.YANKED, ReleaseState.WITHDRAWN}),
        ReleaseState.YANKED: frozenset({ReleaseState.WITHDRAWN}),
        ReleaseState.REJECTED: frozenset(),
        ReleaseState.WITHDRAWN: frozenset(),
    }
)

# States no transition leaves.
FINAL_STATES: frozenset[ReleaseState] = frozenset({ReleaseState.REJECTED, ReleaseState.WITHDRAWN})

# Releases the catalogue snapshot lists, each with its state, that anyone who may see the model
# may download by exact id: deprecated and yanked releases stay reachable so that scripts pinned
# to them keep working, marked so that clients warn.
CATALOGUE_STATES: frozenset[ReleaseState] = frozenset(
    {ReleaseState.PUBLISHED, ReleaseState.DEPRECATED, ReleaseState.YANKED}
)
VISIBLE_STATES: frozenset[ReleaseState] = CATALOGUE_STATES

# States a maintainer's notice goes with (a reason, and for deprecation a replacement model).
NOTICE_STATES: frozenset[ReleaseState] = frozenset({ReleaseState.DEPRECATED, ReleaseState.YANKED})

# States whose release may still change its artifacts (before anyone could have downloaded it).
MUTABLE_STATES: frozenset[ReleaseState] = frozenset(
    {ReleaseState.SUBMITTED, ReleaseState.VALIDATING, ReleaseState.IN_REVIEW}
)


def selection_rank(state: ReleaseState | str) -> int | None:
    """How a release in ``state`` is preferred when its model is named without a version.

    0 for published, 1 for deprecated (chosen only when no published release is left, with a
    warning), None for every other state: a yanked release is never chosen (PEP 592), whatever
    else is left, and releases outside the catalogue are not candidates at all.
    """
    value = ReleaseState(state)
    if value is ReleaseState.PUBLISHED:
        return 0
    if value is ReleaseState.DEPRECATED:
        return 1
    return None


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
