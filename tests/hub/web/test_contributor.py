"""The contributors' pages: sign-up and sign-in, tokens, the submission form, my submissions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client as HttpClient

from hub.accounts.models import Namespace
from hub.registry.models import Release
from medigan_catalog.lifecycle import ReleaseState
from tests import factories

pytestmark = pytest.mark.django_db


def _signed_in(username: str = "alice") -> HttpClient:
    http = HttpClient()
    http.force_login(factories.user(username))
    return http


def _upload(path: Path) -> SimpleUploadedFile:
    return SimpleUploadedFile("package.zip", path.read_bytes(), content_type="application/zip")


def test_signing_up_creates_the_account_and_its_namespace_and_signs_in() -> None:
    http = HttpClient()

    answer = http.post(
        "/accounts/signup/",
        {
            "username": "Dana.Lee",
            "email": "dana@example.org",
            "password1": "a long passphrase 42",
            "password2": "a long passphrase 42",
        },
        follow=True,
    )

    assert answer.redirect_chain[-1][0] == "/accounts/tokens/"
    assert Namespace.objects.get(name="dana-lee").user.username == "Dana.Lee"
    assert b"you push under the namespace dana-lee" in answer.content
    assert b"Sign out Dana.Lee" in answer.content


def test_a_name_whose_namespace_is_taken_is_refused_beside_the_field() -> None:
    factories.user("alice")
    Namespace.objects.create(name="bob")

    answers = [
        HttpClient().post(
            "/accounts/signup/",
            {
                "username": name,
                "email": "x@example.org",
                "password1": "a long passphrase 42",
                "password2": "a long passphrase 42",
            },
        )
        for name in ("alice", "bob")
    ]

    assert all(answer.status_code == 200 for answer in answers)
    assert b"already exists" in answers[0].content
    assert b"namespace &#x27;bob&#x27; of that name is taken" in answers[1].content


def test_signing_in_at_the_web_form_leads_to_my_submissions() -> None:
    factories.user("alice")

    answer = HttpClient().post(
        "/accounts/login/", {"username": "alice", "password": "test-password"}, follow=True
    )

    assert answer.redirect_chain[-1][0] == "/submissions/"
    assert b"<h1>My submissions</h1>" in answer.content


def test_the_contributors_pages_ask_to_sign_in_first() -> None:
    for path in ["/submit/", "/submissions/", "/accounts/tokens/"]:
        answer = HttpClient().get(path)

        assert answer.status_code == 302
        assert answer["Location"] == f"/accounts/login/?next={path}"


def test_a_token_is_shown_once_works_for_the_api_and_stops_when_revoked() -> None:
    http = _signed_in()

    page = http.post(
        "/accounts/tokens/", {"action": "create", "name": "laptop", "scopes": ["push"], "days": 30}
    ).content.decode()
    key = re.search(r'<code id="new-token">([^<]+)</code>', page)
    assert key is not None
    me = HttpClient().get("/api/v1/me", HTTP_AUTHORIZATION=f"Token {key.group(1)}")
    listing = http.get("/accounts/tokens/").content.decode()
    token_id = re.search(r'name="token" value="(\d+)"', listing)
    assert token_id is not None

    http.post("/accounts/tokens/", {"action": "revoke", "token": token_id.group(1)})

    after = HttpClient().get("/api/v1/me", HTTP_AUTHORIZATION=f"Token {key.group(1)}")
    assert me.status_code == 200 and me.json()["username"] == "alice"
    assert key.group(1) not in listing  # only its first characters are listed
    assert "laptop" in listing and "push" in listing
    assert after.status_code == 401


def test_a_package_with_its_card_inside_is_submitted_and_shown_as_mine(tmp_path: Path) -> None:
    archive, sha256, _ = factories.package_zip(tmp_path, model_id="alice/noise-16")
    http = _signed_in()

    answer = http.post(
        "/submit/", {"package": _upload(archive), "visibility": "public", "card": ""}, follow=True
    )

    release = Release.objects.get(generative_model__name="noise-16")
    assert answer.redirect_chain[-1][0] == "/submissions/alice/noise-16/1.0.0/"
    assert release.state == ReleaseState.SUBMITTED and release.submitted_by.username == "alice"
    assert release.artifacts.get(role="package").sha256 == sha256
    assert b'id="state-badge" class="badge state-submitted"' in answer.content
    assert b"alice/noise-16@1.0.0" in http.get("/submissions/").content


def test_a_card_typed_in_the_form_is_used_instead_of_the_zips(tmp_path: Path) -> None:
    archive, _, card = factories.package_zip(tmp_path, model_id="alice/noise-16")
    card["version"] = card["description"]["version"] = "2.0.0"

    _signed_in().post(
        "/submit/",
        {"package": _upload(archive), "visibility": "public", "card": json.dumps(card)},
    )

    assert Release.objects.get().version == "2.0.0"


def test_a_broken_card_is_refused_with_each_problem_named_by_its_field(tmp_path: Path) -> None:
    archive, _, card = factories.package_zip(tmp_path, model_id="alice/noise-16")
    card["version"] = "one"
    del card["output"]

    answer = _signed_in().post(
        "/submit/", {"package": _upload(archive), "visibility": "public", "card": json.dumps(card)}
    )

    body = answer.content.decode()
    assert answer.status_code == 400
    assert "<code>version</code>:" in body and "<code>output</code>:" in body
    assert not Release.objects.exists()


def test_a_zip_without_a_card_and_no_typed_card_is_refused_beside_the_package(
    tmp_path: Path,
) -> None:
    archive = factories.evil_zip(tmp_path)

    answer = _signed_in().post(
        "/submit/", {"package": _upload(archive), "visibility": "public", "card": ""}
    )

    assert answer.status_code == 400
    assert b"the zip has no card.json at its root" in answer.content
    assert not Release.objects.exists()


def test_the_card_is_checked_as_typed_against_the_schema() -> None:
    http = _signed_in()
    good = factories.card_data(model_id="alice/noise-16")

    fine = http.post("/submit/check-card", json.dumps(good), content_type="application/json")
    bad = http.post(
        "/submit/check-card",
        json.dumps({**good, "version": "one"}),
        content_type="application/json",
    )
    garbage = http.post("/submit/check-card", "{", content_type="application/json")

    assert fine.json() == {"ok": True, "problems": []}
    assert not bad.json()["ok"] and bad.json()["problems"][0]["loc"] == "version"
    assert not garbage.json()["ok"]


def test_a_contributor_withdraws_a_submission_but_not_someone_elses() -> None:
    alice = factories.user("alice")
    release = factories.release_row(submitter=alice, state="in_review")

    stranger = _signed_in("mallory").post("/submissions/alice/noise-16/1.0.0/withdraw")
    answer = _signed_in().post(
        "/submissions/alice/noise-16/1.0.0/withdraw", {"note": "found a bug"}, follow=True
    )

    release.refresh_from_db()
    assert stranger.status_code == 404
    assert release.state == ReleaseState.WITHDRAWN
    assert release.events.last().note == "found a bug"
    assert b"withdrawn." in answer.content


def test_a_published_release_cannot_be_withdrawn_from_the_contributors_page() -> None:
    release = factories.release_row(submitter=factories.user("alice"))

    answer = _signed_in().post("/submissions/alice/noise-16/1.0.0/withdraw", follow=True)

    release.refresh_from_db()
    assert release.state == ReleaseState.PUBLISHED
    assert b"cannot be withdrawn by its contributor" in answer.content


def test_a_rejected_release_offers_a_new_version_starting_from_its_card() -> None:
    release = factories.release_row(submitter=factories.user("alice"), state="rejected")
    release.events.create(to_state="rejected", note="the licence is missing")
    http = _signed_in()

    page = http.get("/submissions/alice/noise-16/1.0.0/").content.decode()
    form = http.get("/submit/", {"from": "alice/noise-16@1.0.0"}).content.decode()

    assert "the licence is missing" in page
    assert 'href="/submit/?from=alice/noise-16@1.0.0"' in page
    assert form.count("&quot;version&quot;: &quot;1.0.1&quot;") == 2  # the card's and medigan's


def test_a_live_submission_page_loads_its_polling_script_and_a_final_one_does_not() -> None:
    alice = factories.user("alice")
    factories.release_row(submitter=alice, state="validating")
    factories.release_row(submitter=alice, model_id="alice/done")
    http = _signed_in()

    live = http.get("/submissions/alice/noise-16/1.0.0/").content.decode()
    done = http.get("/submissions/alice/done/1.0.0/").content.decode()

    assert 'src="/static/web/submission.js"' in live
    assert 'data-status-url="/api/v1/models/alice/noise-16/releases/1.0.0"' in live
    assert "submission.js" not in done


def test_a_package_over_the_limit_is_stopped_as_it_arrives_with_a_clear_error(
    settings: Any, tmp_path: Path
) -> None:
    archive, _, _ = factories.package_zip(tmp_path, model_id="alice/noise-16")
    settings.MEDIGAN_MAX_PACKAGE_BYTES = archive.stat().st_size // 2
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 16  # past this an upload would be spooled to disk
    spool = Path(settings.FILE_UPLOAD_TEMP_DIR)
    spooled_before = set(spool.iterdir())

    answer = _signed_in().post(
        "/submit/", {"package": _upload(archive), "visibility": "public", "card": ""}
    )

    assert answer.status_code == 413
    assert b"the package is larger than the hub&#x27;s limit" in answer.content
    assert not Release.objects.exists()
    assert set(spool.iterdir()) == spooled_before
