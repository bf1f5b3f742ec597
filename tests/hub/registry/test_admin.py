"""Tests of review in the Django admin: the approve action asks for a note and publishes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client as HttpClient

from hub.registry import services
from hub.registry.models import Release
from tests import factories

pytestmark = pytest.mark.django_db


def _release_in_review(tmp_path: Path, capture: Any) -> Release:
    archive, sha256, card = factories.package_zip(tmp_path)
    with capture(execute=True), archive.open("rb") as package:
        release = services.release_submit(
            user=factories.user("alice"), card_data=card, package=package, declared_sha256=sha256
        )
    return Release.objects.get(pk=release.pk)


def test_a_reviewer_approves_with_a_note_in_the_admin(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _release_in_review(tmp_path, django_capture_on_commit_callbacks)
    admin = HttpClient()
    admin.force_login(factories.user("rita", reviewer=True))
    changelist = "/admin/registry/release/"

    confirmation = admin.post(changelist, {"action": "approve", ACTION_CHECKBOX_NAME: [release.pk]})
    applied = admin.post(
        changelist,
        {"action": "approve", ACTION_CHECKBOX_NAME: [release.pk], "apply": "1", "note": "ok"},
    )

    assert confirmation.status_code == 200
    assert b"note" in confirmation.content
    assert applied.status_code == 302
    release.refresh_from_db()
    assert release.state == "published"
    assert release.events.get(to_state="approved").note == "ok"


def test_the_change_page_shows_checks_card_and_sample_grid(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _release_in_review(tmp_path, django_capture_on_commit_callbacks)
    admin = HttpClient()
    admin.force_login(factories.user("rita", reviewer=True))

    page = admin.get(f"/admin/registry/release/{release.pk}/change/")

    assert page.status_code == 200
    assert b"smoke_generation" in page.content
    assert b"<img" in page.content
    assert b"&quot;model_id&quot;: &quot;alice/noise-16&quot;" in page.content


def test_a_user_outside_the_reviewer_group_has_no_review_action(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _release_in_review(tmp_path, django_capture_on_commit_callbacks)
    staff = HttpClient()
    staff.force_login(factories.user("sam", staff=True))

    staff.post(
        "/admin/registry/release/",
        {"action": "approve", ACTION_CHECKBOX_NAME: [release.pk], "apply": "1"},
    )

    release.refresh_from_db()
    assert release.state == "in_review"


def test_the_admin_lists_staff_only_what_they_may_see() -> None:
    from django.contrib.auth.models import User

    from hub.accounts import services as accounts
    from hub.registry.models import GenerativeModel

    owner = factories.user("olivia")
    accounts.organisation_create(user=owner, name="acme")
    for name, visibility in (("open", "public"), ("secret", "private")):
        factories.release_row(
            submitter=owner, model_id=f"acme/{name}-model", state="in_review", grid=False
        )
        GenerativeModel.objects.filter(name=f"{name}-model").update(visibility=visibility)
    superuser = User.objects.create_superuser("root", "root@example.org", "x")
    reviewer, boss = HttpClient(), HttpClient()
    reviewer.force_login(factories.user("rita", reviewer=True))
    boss.force_login(superuser)

    pages = {
        who: (
            client.get("/admin/registry/release/").content.decode(),
            client.get("/admin/registry/generativemodel/").content.decode(),
        )
        for who, client in (("reviewer", reviewer), ("superuser", boss))
    }
    secret = Release.objects.get(generative_model__name="secret-model")
    hidden_change_page = reviewer.get(f"/admin/registry/release/{secret.pk}/change/")

    assert all("acme/open-model" in page for page in pages["reviewer"])
    assert not any("acme/secret-model" in page for page in pages["reviewer"])
    assert all("acme/secret-model" in page for page in pages["superuser"])
    # Another object's change page: the admin's own "does not exist" answer, as for a bad id.
    assert hidden_change_page.status_code == 302
    assert "acme/secret-model" not in reviewer.get(hidden_change_page["Location"]).content.decode()


def test_rejecting_in_the_admin_says_rejected(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _release_in_review(tmp_path, django_capture_on_commit_callbacks)
    admin = HttpClient()
    admin.force_login(factories.user("rita", reviewer=True))

    applied = admin.post(
        "/admin/registry/release/",
        {"action": "reject", ACTION_CHECKBOX_NAME: [release.pk], "apply": "1", "note": "no"},
        follow=True,
    )

    body = applied.content.decode()
    # The admin capitalises the first letter of a message.
    assert "lice/noise-16@1.0.0: rejected</li>" in body and "rejectd" not in body
    release.refresh_from_db()
    assert release.state == "rejected"


def test_the_admin_index_links_the_review_queue_with_its_count() -> None:
    alice = factories.user("alice")
    for model_id in ("alice/one", "alice/two"):
        factories.release_row(submitter=alice, model_id=model_id, state="in_review", grid=False)
    factories.release_row(submitter=alice, model_id="alice/done", grid=False)
    reviewer, staff = HttpClient(), HttpClient()
    reviewer.force_login(factories.user("rita", reviewer=True))
    staff.force_login(factories.user("sam", staff=True))

    reviewers_index = reviewer.get("/admin/").content.decode()
    staff_index = staff.get("/admin/").content.decode()

    assert re.search(r'<a [^>]*href="/review/"[^>]*>Review queue: 2 waiting</a>', reviewers_index)
    # The list of apps is still there, below the link.
    assert reviewers_index.index("Review queue") < reviewers_index.index('id="content-main"')
    assert "Review queue" not in staff_index


def test_the_change_page_shows_the_grid_then_the_checks_then_the_card_collapsed(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _release_in_review(tmp_path, django_capture_on_commit_callbacks)
    admin = HttpClient()
    admin.force_login(factories.user("rita", reviewer=True))

    body = admin.get(f"/admin/registry/release/{release.pk}/change/").content.decode()

    grid = body.index('class="review-grid-large"')
    checks = body.index("smoke_generation")
    card = body.index("Noise test model alice/noise-16</dd>")
    raw = body.index("&quot;model_id&quot;: &quot;alice/noise-16&quot;")
    assert grid < checks < card < raw
    # The JSON card sits in a collapsed fieldset: a closed <details> opened just before it.
    collapsed = body.rindex("<details>", 0, raw)
    assert "Card as JSON" in body[collapsed:raw]
    assert "<details open" not in body[collapsed:raw]
    assert "</details>" not in body[collapsed:raw]


def test_the_change_page_of_a_release_in_review_links_its_review_page(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _release_in_review(tmp_path, django_capture_on_commit_callbacks)
    published = factories.release_row(submitter=factories.user("bob"), model_id="bob/done")
    admin = HttpClient()
    admin.force_login(factories.user("rita", reviewer=True))

    in_review = admin.get(f"/admin/registry/release/{release.pk}/change/").content.decode()
    done = admin.get(f"/admin/registry/release/{published.pk}/change/").content.decode()

    review_page = "/review/alice/noise-16/1.0.0/"
    assert re.search(
        rf'<a class="button review-approve" href="{review_page}[^"]*">Approve</a>', in_review
    )
    assert re.search(
        rf'<a class="button review-reject" href="{review_page}[^"]*">Reject</a>', in_review
    )
    assert "review-approve" not in done
