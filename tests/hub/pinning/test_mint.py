"""Hub-minted DOIs: on approval the hub deposits the package on Zenodo, pins the DOI, publishes.

Against the fake Zenodo of ``tests/zenodo_server.py``, faults included: a 5xx in the middle of
the upload, a publication whose answer is lost to a timeout, Zenodo down through every attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hub import snapshot
from hub.pinning import services
from hub.pinning.models import DoiPin
from hub.registry import selectors as registry_selectors
from hub.registry.models import Release
from medigan_catalog.lifecycle import ReleaseState
from tests.hub.pinning.conftest import md5, package_bytes, sha256
from tests.zenodo_server import ZenodoServer

pytestmark = pytest.mark.django_db

Make = Callable[..., Release]
Approve = Callable[[Release], Release]


def test_a_release_approved_with_a_mint_request_is_deposited_pinned_and_published(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    package = package_bytes()
    serial_before = registry_selectors.catalog_serial_state().serial

    release = approve(in_review(package=package, doi_mint_requested=True))

    record = zenodo.published()[0]
    pin = DoiPin.objects.get(release=release)
    assert release.state == ReleaseState.PUBLISHED
    assert release.pinned and not release.pin_broken
    assert release.doi == record.doi == f"10.5072/zenodo.{record.id}"
    assert (pin.kind, pin.status, pin.concept_doi) == ("minted", "pinned", record.concept_doi)
    assert record.files == {"noise-16-1.0.0.zip": package}
    assert [(f.key, f.md5, f.sha256) for f in pin.files.all()] == [
        ("noise-16-1.0.0.zip", md5(package), sha256(package))
    ]
    assert release.checks.get(name="doi_pin").status == "passed"
    assert release.events.last().note == f"published with DOI {release.doi} pinned"  # type: ignore[union-attr]
    assert registry_selectors.catalog_serial_state().serial > serial_before
    entry = snapshot.catalog_snapshot(base_url="http://hub.test").releases[0]
    assert entry.pin is not None
    assert (entry.pin.doi, entry.pin.concept_doi, entry.pin.broken) == (
        record.doi,
        record.concept_doi,
        False,
    )


def test_the_deposit_carries_the_cards_metadata_and_links_back_to_the_model_page(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    approve(in_review(doi_mint_requested=True))

    metadata = zenodo.published()[0].metadata
    assert metadata["title"] == "Noise test model alice/noise-16"
    assert metadata["upload_type"] == "software"
    assert metadata["creators"] == [{"name": "Doe, Jane"}, {"name": "Roe, Richard"}]
    assert metadata["license"] == "mit"
    assert metadata["version"] == "1.0.0"
    assert {
        "identifier": "http://hub.test/models/alice/noise-16/1.0.0/",
        "relation": "isDocumentedBy",
    } in metadata["related_identifiers"]
    assert "alice/noise-16" in metadata["description"]


def test_a_new_release_of_the_model_becomes_a_new_version_of_the_same_concept(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    first = approve(in_review(version="1.0.0", doi_mint_requested=True))
    second = approve(in_review(version="1.1.0", doi_mint_requested=True))

    first_pin, second_pin = (DoiPin.objects.get(release=r) for r in (first, second))
    newest = zenodo.records[int(second_pin.record_id)]
    assert second.state == ReleaseState.PUBLISHED
    assert second.doi != first.doi
    assert second_pin.concept_doi == first_pin.concept_doi
    # The new version brings its own package; the previous version's file is not inherited.
    assert list(newest.files) == ["noise-16-1.1.0.zip"]
    assert zenodo.count("POST", r"/actions/newversion$") == 1
    assert zenodo.count("POST", r"^/api/deposit/depositions$") == 1


def test_without_a_request_nothing_is_deposited_and_the_release_is_published_at_once(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    release = approve(in_review())

    assert release.state == ReleaseState.PUBLISHED
    assert not release.pinned and release.doi == ""
    assert not DoiPin.objects.exists()
    assert zenodo.requests == []


def test_the_always_policy_deposits_every_approved_release(
    zenodo: ZenodoServer, in_review: Make, approve: Approve, settings: Any
) -> None:
    settings.MEDIGAN_ZENODO_MINT = "always"

    release = approve(in_review())

    assert release.state == ReleaseState.PUBLISHED
    assert release.pinned
    assert len(zenodo.published()) == 1


def test_a_5xx_in_the_middle_of_the_upload_is_retried_into_the_same_deposition(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    package = package_bytes()
    zenodo.fail_upload_midway(status=500, after_bytes=len(package) // 3)

    release = approve(in_review(package=package, doi_mint_requested=True))

    pin = DoiPin.objects.get(release=release)
    assert release.state == ReleaseState.PUBLISHED and release.pinned
    assert zenodo.count("POST", r"^/api/deposit/depositions$") == 1
    assert zenodo.count("PUT", r"^/api/files/") == 2
    assert zenodo.published()[0].files == {"noise-16-1.0.0.zip": package}
    assert [event.kind for event in pin.events.all()].count("attempt_failed") == 1
    assert pin.attempts == 1


def test_a_publication_whose_answer_is_lost_to_a_timeout_is_found_published_on_retry(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    # Zenodo publishes, then answers later than the hub waits: the retry must not publish twice.
    zenodo.delay("POST", r"/actions/publish$", seconds=1.5)

    release = approve(in_review(doi_mint_requested=True))

    assert release.state == ReleaseState.PUBLISHED and release.pinned
    assert zenodo.count("POST", r"/actions/publish$") == 1
    assert len(zenodo.published()) == 1
    assert release.doi == zenodo.published()[0].doi
    note = DoiPin.objects.get(release=release).events.get(kind="attempt_failed").note
    assert "did not answer" in note


def test_zenodo_down_through_every_attempt_leaves_the_release_approved_with_a_failed_check(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    zenodo.fail("POST", r"^/api/deposit/depositions$", status=503, times=3)

    release = approve(in_review(doi_mint_requested=True))

    check = release.checks.get(name="doi_pin")
    assert release.state == ReleaseState.APPROVED
    assert not release.pinned and release.published_at is None
    assert check.status == "failed"
    assert "after 3 attempts" in check.message and "503" in check.message
    assert check.detail == "zenodo_unavailable"
    assert DoiPin.objects.get(release=release).status == "failed"
    assert zenodo.published() == []


def test_an_operator_queues_a_failed_pin_again_and_the_release_is_published(
    zenodo: ZenodoServer,
    in_review: Make,
    approve: Approve,
    django_capture_on_commit_callbacks: Any,
) -> None:
    zenodo.fail("POST", r"^/api/deposit/depositions$", status=502, times=3)
    release = approve(in_review(doi_mint_requested=True))

    with django_capture_on_commit_callbacks(execute=True):
        services.pin_retry(release_id=release.pk)

    release.refresh_from_db()
    assert release.state == ReleaseState.PUBLISHED and release.pinned
    assert release.checks.get(name="doi_pin").status == "passed"


def test_a_request_to_a_hub_that_stopped_minting_fails_clearly_and_publishes_nothing(
    zenodo: ZenodoServer, in_review: Make, approve: Approve, settings: Any
) -> None:
    settings.MEDIGAN_ZENODO_MINT = "never"

    release = approve(in_review(doi_mint_requested=True))

    check = release.checks.get(name="doi_pin")
    assert release.state == ReleaseState.APPROVED
    assert check.status == "failed" and check.detail == "doi_mint_unavailable"
    assert "MEDIGAN_ZENODO_MINT=never" in check.message
    assert zenodo.requests == []


def test_zenodo_refusing_the_metadata_fails_at_once_with_its_words(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    zenodo.fail("POST", r"/actions/publish$", status=400, times=1)

    release = approve(in_review(doi_mint_requested=True))

    check = release.checks.get(name="doi_pin")
    assert release.state == ReleaseState.APPROVED
    assert check.detail == "zenodo_failed"
    assert "refused POST" in check.message and "400" in check.message
    assert zenodo.count("POST", r"/actions/publish$") == 1
