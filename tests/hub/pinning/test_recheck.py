"""Re-checks of pinned records: an edited or vanished file flags the release, clients see it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client as HttpClient
from django.utils import timezone

from hub import snapshot
from hub.pinning import services
from hub.pinning.models import DoiPin
from hub.pinning.tasks import pins_recheck_due_task
from hub.registry import selectors as registry_selectors
from hub.registry.models import Release
from tests.hub.pinning.conftest import package_bytes
from tests.zenodo_server import ZenodoServer

pytestmark = pytest.mark.django_db

Make = Callable[..., Release]
Approve = Callable[[Release], Release]


@pytest.fixture
def minted(zenodo: ZenodoServer, in_review: Make, approve: Approve) -> DoiPin:
    """A published release whose DOI the hub minted on the fake Zenodo."""
    release = approve(in_review(package=package_bytes(), doi_mint_requested=True))
    return DoiPin.objects.select_related("release").get(release=release)


def test_a_file_replaced_after_pinning_flags_the_release_for_every_client(
    zenodo: ZenodoServer, minted: DoiPin
) -> None:
    serial = registry_selectors.catalog_serial_state().serial
    zenodo.replace_file(int(minted.record_id), "noise-16-1.0.0.zip", b"edited behind our back")

    outcome = services.pin_recheck(pin_id=minted.pk)

    release = Release.objects.get(pk=minted.release_id)
    assert outcome == "broken"
    assert release.pin_broken and release.pinned
    assert "noise-16-1.0.0.zip changed" in release.pin_note
    assert DoiPin.objects.get(pk=minted.pk).status == "broken"
    assert minted.events.filter(kind="broken").count() == 1
    assert registry_selectors.catalog_serial_state().serial == serial + 1
    pin = snapshot.catalog_snapshot(base_url="http://hub.test").releases[0].pin
    assert pin is not None and pin.broken and "changed" in (pin.note or "")
    page = HttpClient().get("/models/alice/noise-16/").content.decode()
    assert "Pin broken" in page and release.doi in page


def test_a_second_recheck_of_a_broken_pin_changes_nothing_more(
    zenodo: ZenodoServer, minted: DoiPin
) -> None:
    zenodo.replace_file(int(minted.record_id), "noise-16-1.0.0.zip", b"edited")
    services.pin_recheck(pin_id=minted.pk)
    serial = registry_selectors.catalog_serial_state().serial

    assert services.pin_recheck(pin_id=minted.pk) == "broken"
    assert registry_selectors.catalog_serial_state().serial == serial
    assert minted.events.filter(kind="broken").count() == 1


def test_a_deleted_record_and_a_removed_file_flag_the_release(
    zenodo: ZenodoServer, minted: DoiPin, in_review: Make, approve: Approve
) -> None:
    zenodo.delete_record(int(minted.record_id))

    assert services.pin_recheck(pin_id=minted.pk) == "broken"
    assert "gone from Zenodo" in Release.objects.get(pk=minted.release_id).pin_note

    other = approve(in_review(version="2.0.0", doi_mint_requested=True))
    other_pin = DoiPin.objects.get(release=other)
    zenodo.remove_file(int(other_pin.record_id), "noise-16-2.0.0.zip")
    assert services.pin_recheck(pin_id=other_pin.pk) == "broken"
    assert "no longer in the record" in Release.objects.get(pk=other.pk).pin_note


def test_an_unreachable_zenodo_flags_nothing(zenodo: ZenodoServer, minted: DoiPin) -> None:
    zenodo.fail("GET", r"^/api/records/", status=503)

    assert services.pin_recheck(pin_id=minted.pk) == "unreachable"
    assert not Release.objects.get(pk=minted.release_id).pin_broken
    assert minted.events.filter(kind="unreachable").exists()


def test_a_record_whole_again_restores_the_pin(zenodo: ZenodoServer, minted: DoiPin) -> None:
    original = zenodo.records[int(minted.record_id)].files["noise-16-1.0.0.zip"]
    zenodo.replace_file(int(minted.record_id), "noise-16-1.0.0.zip", b"edited")
    services.pin_recheck(pin_id=minted.pk)
    zenodo.replace_file(int(minted.record_id), "noise-16-1.0.0.zip", original)

    assert services.pin_recheck(pin_id=minted.pk) == "restored"
    release = Release.objects.get(pk=minted.release_id)
    assert not release.pin_broken and release.pin_note == ""


def test_a_downloading_recheck_reads_the_bytes(zenodo: ZenodoServer, minted: DoiPin) -> None:
    assert services.pin_recheck(pin_id=minted.pk, download=True) == "intact"
    assert zenodo.count("GET", r"/files/noise-16-1\.0\.0\.zip/content$") == 1


def test_the_beat_task_rechecks_the_pins_that_are_due(
    zenodo: ZenodoServer, minted: DoiPin, in_review: Make, approve: Approve
) -> None:
    fresh = DoiPin.objects.get(release=approve(in_review(version="2.0.0", doi_mint_requested=True)))
    DoiPin.objects.filter(pk=minted.pk).update(checked_at=timezone.now() - timedelta(days=2))
    zenodo.replace_file(int(minted.record_id), "noise-16-1.0.0.zip", b"edited")
    zenodo.replace_file(int(fresh.record_id), "noise-16-2.0.0.zip", b"edited too")

    due = pins_recheck_due_task.delay().get()

    assert due == [minted.pk]
    assert Release.objects.get(pk=minted.release_id).pin_broken
    assert not Release.objects.get(pk=fresh.release_id).pin_broken


def test_the_recheck_command_reports_each_pin(zenodo: ZenodoServer, minted: DoiPin) -> None:
    zenodo.replace_file(int(minted.record_id), "noise-16-1.0.0.zip", b"edited")
    out = StringIO()

    call_command("pin_recheck", stdout=out)

    assert f"alice/noise-16@1.0.0: {minted.doi}: broken" in out.getvalue()
    assert "1 pins re-checked: 1 broken" in out.getvalue()


def test_the_catalogue_tells_clients_the_pin_is_broken(
    zenodo: ZenodoServer, minted: DoiPin
) -> None:
    from medigan_catalog.snapshot import CatalogSnapshot

    zenodo.replace_file(int(minted.record_id), "noise-16-1.0.0.zip", b"edited")
    services.pin_recheck(pin_id=minted.pk)
    body = HttpClient().get("/api/v1/catalog").content

    entry = CatalogSnapshot.model_validate_json(body).releases[0]
    assert entry.pin is not None and entry.pin.broken
    assert entry.pin.doi == minted.doi
