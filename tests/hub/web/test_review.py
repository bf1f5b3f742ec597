"""Tests of the reviewer's pages: the review queue and a release's review page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client as HttpClient
from django.utils import timezone

from hub.accounts import services as accounts
from hub.registry.models import GenerativeModel, Release, ReleaseCheck
from medigan_catalog.access import OrgRole
from tests import factories

pytestmark = pytest.mark.django_db

QUEUE = "/review/"


def _review_path(release: Any) -> str:
    return f"/review/{release.model_id}/{release.version}/"


def _signed_in(user: Any) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


def _in_review(submitter: Any, model_id: str = "alice/noise-16", **kwargs: Any) -> Any:
    return factories.release_row(
        submitter=submitter, model_id=model_id, state="in_review", **kwargs
    )


def _waiting_in(page: Any) -> list[str]:
    """The review links of a queue page, in the order listed."""
    return re.findall(r'href="(/review/[^"]+/)"', page.content.decode())


def test_the_queue_lists_only_what_the_reviewer_may_review_oldest_first() -> None:
    alice, rita = factories.user("alice"), factories.user("rita", reviewer=True)
    newer = _in_review(alice, "alice/newer")
    older = _in_review(alice, "alice/older")
    Release.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=2))
    _in_review(rita, "rita/own")
    factories.release_row(submitter=alice, model_id="alice/done", state="published")
    owner = factories.user("olivia")
    accounts.organisation_create(user=owner, name="acme")
    secret = _in_review(owner, "acme/secret")
    GenerativeModel.objects.filter(pk=secret.generative_model_id).update(visibility="private")

    page = _signed_in(rita).get(QUEUE)

    assert page.status_code == 200
    assert _waiting_in(page) == [_review_path(older), _review_path(newer)]
    body = page.content.decode()
    assert "alice/older" in body and "alice" in body
    assert 'class="thumb"' in body
    assert "rita/own" not in body and "acme/secret" not in body and "alice/done" not in body


def test_an_organisations_reviewer_sees_its_private_releases_but_not_public_ones() -> None:
    owner, oscar = factories.user("olivia"), factories.user("oscar")
    organisation = accounts.organisation_create(user=owner, name="acme")
    accounts.organisation_member_set(organisation=organisation, user=oscar, role=OrgRole.REVIEWER)
    secret = _in_review(owner, "acme/secret")
    GenerativeModel.objects.filter(pk=secret.generative_model_id).update(visibility="private")
    _in_review(owner, "acme/open")

    page = _signed_in(oscar).get(QUEUE)

    assert _waiting_in(page) == [_review_path(secret)]


def test_nobody_signed_in_is_sent_to_sign_in() -> None:
    page = HttpClient().get(QUEUE)

    assert page.status_code == 302
    assert page["Location"] == "/accounts/login/?next=/review/"


def test_someone_who_reviews_nothing_is_refused() -> None:
    release = _in_review(factories.user("alice"))
    bob = _signed_in(factories.user("bob"))

    assert bob.get(QUEUE).status_code == 403
    assert bob.get(_review_path(release)).status_code == 403
    refused = bob.post(_review_path(release), {"decision": "approve", "note": "mine now"})
    assert refused.status_code == 403
    release.refresh_from_db()
    assert release.state == "in_review"


def test_the_review_page_shows_grid_checks_card_and_diff_in_that_order() -> None:
    alice = factories.user("alice")
    factories.release_row(
        submitter=alice,
        version="1.0.0",
        description={"title": "Noise, first cut", "version": "1.0.0"},
    )
    release = _in_review(
        alice, version="1.1.0", description={"title": "Noise, sharper", "version": "1.1.0"}
    )
    ReleaseCheck.objects.create(
        release=release, name="smoke_generation", status="passed", message="8 images generated"
    )

    page = _signed_in(factories.user("rita", reviewer=True)).get(_review_path(release))

    body = page.content.decode()
    assert page.status_code == 200
    positions = [
        body.index('src="/api/v1/models/alice/noise-16/releases/1.1.0/sample-grid"'),
        body.index("smoke_generation"),
        body.index("Noise, sharper</dd>"),
        body.index('class="card-diff"'),
        body.index('name="note"'),
    ]
    assert positions == sorted(positions)
    assert re.search(r'<span class="diff-del">-\s+&quot;title&quot;: &quot;Noise, first', body)
    assert re.search(r'<span class="diff-add">\+\s+&quot;title&quot;: &quot;Noise, sharp', body)
    assert "Compared with 1.0.0" in body
    assert re.search(r"<textarea[^>]*\brequired\b", body)
    assert 'name="csrfmiddlewaretoken"' in body


def test_the_diff_compares_with_the_newest_earlier_version_by_semantic_version() -> None:
    alice = factories.user("alice")
    factories.release_row(submitter=alice, version="1.9.0")
    factories.release_row(submitter=alice, version="1.2.0")
    factories.release_row(submitter=alice, version="2.0.0", state="in_review")
    release = _in_review(alice, version="1.10.0")

    body = _signed_in(factories.user("rita", reviewer=True)).get(_review_path(release))

    assert "Compared with 1.9.0" in body.content.decode()


def test_a_models_first_version_says_so_instead_of_a_diff() -> None:
    release = _in_review(factories.user("alice"))

    body = _signed_in(factories.user("rita", reviewer=True)).get(_review_path(release))

    assert "first version" in body.content.decode()
    assert 'class="card-diff"' not in body.content.decode()


def test_approving_with_a_note_publishes_and_records_the_note() -> None:
    release = _in_review(factories.user("alice"))
    rita = _signed_in(factories.user("rita", reviewer=True))

    answer = rita.post(_review_path(release), {"decision": "approve", "note": "grid looks right"})

    assert answer.status_code == 302 and answer["Location"] == QUEUE
    release.refresh_from_db()
    assert release.state == "published"
    assert release.events.get(to_state="approved").note == "grid looks right"
    queue = rita.get(QUEUE).content.decode()
    assert "alice/noise-16@1.0.0: approved and published" in queue


def test_an_empty_note_is_refused_with_a_field_error_and_changes_nothing() -> None:
    release = _in_review(factories.user("alice"))
    rita = _signed_in(factories.user("rita", reviewer=True))

    answer = rita.post(_review_path(release), {"decision": "approve", "note": "   "})

    assert answer.status_code == 400
    assert "This field is required." in answer.content.decode()
    release.refresh_from_db()
    assert release.state == "in_review"
    assert not release.events.exists()


def test_rejecting_says_rejected() -> None:
    release = _in_review(factories.user("alice"))
    rita = _signed_in(factories.user("rita", reviewer=True))

    answer = rita.post(
        _review_path(release), {"decision": "reject", "note": "no licence"}, follow=True
    )

    body = answer.content.decode()
    assert "alice/noise-16@1.0.0: rejected" in body and "rejectd" not in body
    release.refresh_from_db()
    assert release.state == "rejected"
    assert release.events.get(to_state="rejected").note == "no licence"


def test_a_submitter_cannot_approve_their_own_release() -> None:
    rita = factories.user("rita", reviewer=True)
    release = _in_review(rita, "rita/own")
    http = _signed_in(rita)

    answer = http.post(_review_path(release), {"decision": "approve", "note": "trust me"})

    assert answer.status_code == 403
    assert "nobody reviews their own release" in answer.content.decode()
    release.refresh_from_db()
    assert release.state == "in_review"
    assert not release.events.exists()


def test_card_text_is_escaped_on_the_review_page() -> None:
    title = '<script>alert("title")</script>'
    comment = "<img src=x onerror=alert(1)>"
    alice = factories.user("alice")
    factories.release_row(submitter=alice, version="0.9.0")
    release = _in_review(
        alice,
        description={"title": title, "comment": comment, "version": "1.0.0"},
        selection={"modality": [title], "organ": ["none"], "type": comment, "tags": []},
    )

    page = _signed_in(factories.user("rita", reviewer=True)).get(_review_path(release))

    body = page.content.decode()
    assert title not in body and comment not in body
    assert "&lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt;" in body
    assert not re.search(r"<(script|img|svg)[^>]*(alert|onerror|onload)", body)


@pytest.mark.parametrize("page", ["queue", "release"])
def test_the_review_pages_hold_no_inline_script_or_style(page: str) -> None:
    release = _in_review(factories.user("alice"))
    path = QUEUE if page == "queue" else _review_path(release)

    answer = _signed_in(factories.user("rita", reviewer=True)).get(path)

    body = answer.content.decode()
    assert all(" src=" in tag for tag in re.findall(r"<script\b[^>]*>", body))
    assert "<style" not in body
    assert not re.search(r"\sstyle=", body)
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
