"""Contributor-provided DOIs: the hub reads the named Zenodo record, downloads the files that
could be the package, and pins the DOI only when one has the package's sha256."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hub.pinning.models import DoiPin
from hub.registry.models import Release
from medigan_catalog.lifecycle import ReleaseState
from tests.hub.pinning.conftest import md5, package_bytes, sha256
from tests.zenodo_server import ZenodoServer

pytestmark = pytest.mark.django_db

Make = Callable[..., Release]
Approve = Callable[[Release], Release]


def test_a_pushed_doi_whose_record_holds_the_package_is_pinned_and_published(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    package = package_bytes()
    record = zenodo.add_record({"README.md": b"about", "weights.zip": package})

    release = approve(in_review(package=package, doi=record.doi))

    pin = DoiPin.objects.get(release=release)
    assert release.state == ReleaseState.PUBLISHED
    assert release.pinned and release.doi == record.doi
    assert (pin.kind, pin.status, pin.record_id) == ("provided", "pinned", str(record.id))
    assert [(f.key, f.md5, f.sha256) for f in pin.files.all()] == [
        ("weights.zip", md5(package), sha256(package))
    ]
    # Only the file of the package's size was downloaded.
    assert zenodo.count("GET", r"/files/weights\.zip/content$") == 1
    assert zenodo.count("GET", r"/files/README\.md/content$") == 0
    assert zenodo.count("POST", r"^/api/deposit/") == 0


def test_a_zenodo_doi_in_the_card_is_checked_and_pinned_too(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    package = package_bytes()
    record = zenodo.add_record({"noise-16-1.0.0.zip": package})

    release = approve(in_review(package=package, card_dois=["10.1117/12.2543506", record.doi]))

    assert release.state == ReleaseState.PUBLISHED
    assert release.pinned and release.doi == record.doi


def test_a_record_holding_other_bytes_fails_the_check_and_nothing_is_published(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    package = package_bytes()
    other = bytearray(package)
    other[-40] ^= 0xFF  # same size, different bytes
    record = zenodo.add_record({"noise-16-1.0.0.zip": bytes(other)})

    release = approve(in_review(package=package, doi=record.doi))

    check = release.checks.get(name="doi_pin")
    assert release.state == ReleaseState.APPROVED
    assert not release.pinned and release.published_at is None
    assert check.status == "failed" and check.detail == "checksum_mismatch"
    assert f"the Zenodo record {record.doi} holds no file with this release's package" in (
        check.message
    )
    assert sha256(package) in check.message and md5(bytes(other)) in check.message
    assert DoiPin.objects.get(release=release).status == "failed"


def test_a_doi_that_names_no_record_fails_and_says_to_name_the_version(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    release = approve(in_review(doi="10.5072/zenodo.999999"))

    check = release.checks.get(name="doi_pin")
    assert release.state == ReleaseState.APPROVED
    assert check.detail == "doi_unresolvable"
    assert "names no record" in check.message and "concept DOI" in check.message


def test_a_record_read_that_times_out_is_retried_and_then_pinned(
    zenodo: ZenodoServer, in_review: Make, approve: Approve
) -> None:
    package = package_bytes()
    record = zenodo.add_record({"weights.zip": package})
    zenodo.delay("GET", rf"^/api/records/{record.id}$", seconds=1.5)

    release = approve(in_review(package=package, doi=record.doi))

    assert release.state == ReleaseState.PUBLISHED and release.pinned
    pin = DoiPin.objects.get(release=release)
    assert pin.attempts == 1
    assert "did not answer" in pin.events.get(kind="attempt_failed").note


def test_a_provided_doi_is_left_unpinned_where_the_operator_turned_checks_off(
    zenodo: ZenodoServer, in_review: Make, approve: Approve, settings: Any
) -> None:
    settings.MEDIGAN_ZENODO_PIN_PROVIDED = False
    record = zenodo.add_record({"weights.zip": b"not read"})

    release = approve(in_review(doi=record.doi))

    assert release.state == ReleaseState.PUBLISHED
    assert release.doi == record.doi and not release.pinned
    assert zenodo.requests == []
