"""Contributors are mailed on each state change of their releases (locmem in the tests)."""

from __future__ import annotations

from typing import Any

import pytest

from hub.registry import services
from hub.registry.tasks import release_event_mail_task
from medigan_catalog.lifecycle import ReleaseState
from tests import factories

pytestmark = pytest.mark.django_db


def _contributor(email: str = "alice@example.org") -> Any:
    alice = factories.user("alice")
    alice.email = email
    alice.save(update_fields=["email"])
    return alice


def test_approval_mails_the_contributor_once_per_state_change_with_the_note_and_a_link(
    mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    release = factories.release_row(submitter=_contributor(), state="in_review")

    with django_capture_on_commit_callbacks(execute=True):
        services.release_review(
            release_id=release.pk,
            reviewer=factories.user("rita", reviewer=True),
            decision="approve",
            note="the grid looks right",
        )

    assert [mail.subject for mail in mailoutbox] == [
        "[medigan hub] alice/noise-16@1.0.0: approved",
        "[medigan hub] alice/noise-16@1.0.0: published",
    ]
    first = mailoutbox[0]
    assert first.to == ["alice@example.org"]
    assert "moved from in_review to approved" in first.body
    assert "the grid looks right" in first.body
    assert "/submissions/alice/noise-16/1.0.0/" in first.body


def test_a_rejection_mails_the_reviewers_reasons(
    mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    release = factories.release_row(submitter=_contributor(), state="in_review")

    with django_capture_on_commit_callbacks(execute=True):
        services.release_review(
            release_id=release.pk,
            reviewer=factories.user("rita", reviewer=True),
            decision="reject",
            note="the licence of the training data is missing",
        )

    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject.endswith(": rejected")
    assert "the licence of the training data is missing" in mailoutbox[0].body


def test_nobody_is_mailed_without_an_address(
    mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    release = factories.release_row(submitter=_contributor(email=""), state="in_review")

    with django_capture_on_commit_callbacks(execute=True):
        services.release_transition(release_id=release.pk, target=ReleaseState.WITHDRAWN)

    assert mailoutbox == []


def test_a_mail_that_cannot_be_queued_does_not_undo_the_change(
    monkeypatch: pytest.MonkeyPatch,
    mailoutbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    release = factories.release_row(submitter=_contributor(), state="in_review")

    def broker_down(*args: object) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(release_event_mail_task, "delay", broker_down)

    with django_capture_on_commit_callbacks(execute=True):
        services.release_transition(release_id=release.pk, target=ReleaseState.WITHDRAWN)

    release.refresh_from_db()
    assert release.state == ReleaseState.WITHDRAWN
    assert mailoutbox == []
