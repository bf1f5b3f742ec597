"""Tests for medigan_catalog.lifecycle: the release state graph and the transition check."""

from __future__ import annotations

import pytest

from medigan_catalog.errors import ErrorCode, TransitionNotAllowedError
from medigan_catalog.lifecycle import (
    CATALOGUE_STATES,
    FINAL_STATES,
    TRANSITIONS,
    VISIBLE_STATES,
    ReleaseState,
    allowed_targets,
    check_transition,
    is_final,
    selection_rank,
)

S = ReleaseState


def test_graph_is_the_documented_one() -> None:
    edges = {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
    assert edges == {
        ("submitted", "validating"),
        ("submitted", "withdrawn"),
        ("validating", "in_review"),
        ("validating", "rejected"),
        ("validating", "submitted"),
        ("in_review", "approved"),
        ("in_review", "rejected"),
        ("in_review", "withdrawn"),
        ("approved", "published"),
        ("published", "deprecated"),
        ("published", "yanked"),
        ("published", "withdrawn"),
        ("deprecated", "yanked"),
        ("deprecated", "withdrawn"),
        ("yanked", "withdrawn"),
    }
    assert set(TRANSITIONS) == set(ReleaseState)


def test_final_states_have_no_way_out() -> None:
    assert {s.value for s in FINAL_STATES} == {"rejected", "withdrawn"}
    for state in ReleaseState:
        assert is_final(state) == (not TRANSITIONS[state])


def test_every_state_is_reachable_from_submitted() -> None:
    reached = {S.SUBMITTED}
    frontier = [S.SUBMITTED]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(ReleaseState)


def test_allowed_moves_pass() -> None:
    check_transition(S.SUBMITTED, S.VALIDATING)
    check_transition("in_review", "approved")
    assert allowed_targets("approved") == frozenset({S.PUBLISHED})


def test_an_interrupted_validation_may_go_back_to_the_queue_but_no_later_state_may() -> None:
    check_transition(S.VALIDATING, S.SUBMITTED)
    for state in (S.IN_REVIEW, S.APPROVED, S.PUBLISHED, S.REJECTED):
        with pytest.raises(TransitionNotAllowedError):
            check_transition(state, S.SUBMITTED)


def test_disallowed_move_names_both_states_and_the_options() -> None:
    with pytest.raises(TransitionNotAllowedError) as caught:
        check_transition(S.SUBMITTED, S.PUBLISHED)
    error = caught.value
    assert "'submitted'" in str(error) and "'published'" in str(error)
    assert "validating, withdrawn" in str(error)
    assert error.to_body() == {
        "code": ErrorCode.TRANSITION_NOT_ALLOWED.value,
        "message": str(error),
        "detail": {
            "current": "submitted",
            "target": "published",
            "allowed": ["validating", "withdrawn"],
        },
    }


def test_leaving_a_final_state_says_so() -> None:
    with pytest.raises(TransitionNotAllowedError, match="'rejected' is a final state"):
        check_transition(S.REJECTED, S.IN_REVIEW)


def test_withdrawn_release_cannot_come_back() -> None:
    # Withdrawal after publication is final: the release never returns to the catalogue.
    for target in (S.PUBLISHED, S.DEPRECATED, S.YANKED, S.SUBMITTED):
        with pytest.raises(TransitionNotAllowedError):
            check_transition(S.WITHDRAWN, target)


def test_unknown_state_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'archived'"):
        check_transition("archived", "published")


def test_visibility_sets() -> None:
    assert frozenset({S.PUBLISHED, S.DEPRECATED, S.YANKED}) == CATALOGUE_STATES
    assert VISIBLE_STATES == CATALOGUE_STATES


def test_a_bare_model_id_prefers_published_then_deprecated_and_never_takes_a_yanked_release() -> (
    None
):
    ranks = {state: selection_rank(state) for state in ReleaseState}

    assert ranks[S.PUBLISHED] == 0
    assert ranks[S.DEPRECATED] == 1
    assert {state for state, rank in ranks.items() if rank is None} == set(ReleaseState) - {
        S.PUBLISHED,
        S.DEPRECATED,
    }


def test_a_yanked_or_deprecated_release_cannot_be_published_again() -> None:
    for state in (S.DEPRECATED, S.YANKED):
        with pytest.raises(TransitionNotAllowedError):
            check_transition(state, S.PUBLISHED)
