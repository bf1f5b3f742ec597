"""Where people see pins: the model page, the status API, the admin, and the settings check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client as HttpClient

from hub.pinning.apps import zenodo_settings_check
from hub.pinning.models import DoiPin
from hub.registry.models import Release
from tests import factories
from tests.zenodo_server import ZenodoServer

pytestmark = pytest.mark.django_db

Make = Callable[..., Release]
Approve = Callable[[Release], Release]


def test_the_model_page_links_the_pinned_doi_and_its_concept(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    release = approve(in_review(doi_mint_requested=True))
    pin = DoiPin.objects.get(release=release)

    page = HttpClient().get("/models/alice/noise-16/").content.decode()

    assert f'<a href="https://doi.org/{release.doi}">{release.doi}</a>' in page
    assert '<span class="badge state-published">pinned</span>' in page
    assert f'href="https://doi.org/{pin.concept_doi}"' in page
    assert "Pin broken" not in page
    assert "<style" not in page and "style=" not in page


def test_the_status_api_says_whether_the_doi_is_pinned_or_broken(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    release = approve(in_review(doi_mint_requested=True))
    Release.objects.filter(pk=release.pk).update(pin_broken=True, pin_note="the file changed")

    status = HttpClient().get("/api/v1/models/alice/noise-16/releases/1.0.0").json()

    assert (status["doi"], status["pinned"]) == (release.doi, True)
    assert (status["pin_broken"], status["pin_note"]) == (True, "the file changed")


def test_the_admin_shows_a_pin_with_its_files_and_steps_and_queues_a_failed_one_again(
    zenodo: ZenodoServer,
    in_review: Make,
    approve: Approve,
    django_capture_on_commit_callbacks: Any,
) -> None:
    zenodo.fail("POST", r"^/api/deposit/depositions$", status=503, times=3)
    release = approve(in_review(doi_mint_requested=True))
    pin = DoiPin.objects.get(release=release)
    root = factories.user("root", staff=True)
    root.is_superuser = True
    root.save()
    admin = HttpClient()
    admin.force_login(root)

    listing = admin.get("/admin/pinning/doipin/?status__exact=failed").content.decode()
    detail = admin.get(f"/admin/pinning/doipin/{pin.pk}/change/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(
            "/admin/pinning/doipin/", {"action": "pin_again", ACTION_CHECKBOX_NAME: [pin.pk]}
        )

    assert "alice/noise-16@1.0.0" in listing
    assert "attempt_failed" in detail and "after 3 attempts" in detail
    release.refresh_from_db()
    assert release.state == "published" and release.pinned


def test_minting_always_without_a_token_is_a_configuration_error(settings: Any) -> None:
    settings.MEDIGAN_ZENODO_MINT = "always"
    settings.MEDIGAN_ZENODO_TOKEN = ""

    assert [message.id for message in zenodo_settings_check()] == ["pinning.E001"]

    settings.MEDIGAN_ZENODO_TOKEN = "a-token"
    assert zenodo_settings_check() == []
