"""medigan's 23 models: their Zenodo DOIs are recorded on import, ``pin_verify`` checks them
where Zenodo is reachable, and the hub then serves their packages as a verified proxy."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client as HttpClient

from hub import snapshot
from hub.pinning.models import DoiPin
from hub.registry import services as registry_services
from hub.registry.models import Release
from tests.hub.pinning.conftest import md5, package_bytes, sha256
from tests.zenodo_server import ZenodoServer

pytestmark = pytest.mark.django_db

FIRST = "medigan/00001_DCGAN_MMG_CALC_ROI@0.0.1"
DOWNLOAD = (
    "/api/v1/models/medigan/00001_DCGAN_MMG_CALC_ROI/releases/0.0.1"
    "/artifacts/00001_DCGAN_MMG_CALC_ROI.zip"
)


def _medigan(raw: dict[str, Any]) -> dict[str, Release]:
    registry_services.medigan_catalog_import(raw_catalog=raw, actor=None, source="test")
    return {release.release_id: release for release in Release.objects.all()}


def test_the_import_records_each_packages_zenodo_doi_unpinned(
    medigan_global: dict[str, Any],
) -> None:
    releases = _medigan(medigan_global)

    assert len(releases) == 23
    first = releases[FIRST]
    # The record the package is downloaded from (record/7031735), not the card's citations.
    assert first.doi == "10.5281/zenodo.7031735"
    assert not first.pinned
    assert releases["medigan/00002_DCGAN_MMG_MASS_ROI@0.0.1"].doi == "10.5281/zenodo.6647242"
    assert all(release.doi.startswith("10.5281/zenodo.") for release in releases.values())
    assert all(release.state == "published" for release in releases.values())


def test_pin_verify_downloads_checks_stores_and_pins_and_the_hub_serves_the_package(
    zenodo: ZenodoServer, medigan_global: dict[str, Any]
) -> None:
    package = package_bytes("medigan 1")
    zenodo.add_record(
        {"00001_DCGAN_MMG_CALC_ROI.zip": package}, record_id=7031735, prefix="10.5281"
    )
    _medigan(medigan_global)
    out = StringIO()

    call_command("pin_verify", FIRST, stdout=out)

    release = Release.objects.get(generative_model__name="00001_DCGAN_MMG_CALC_ROI")
    artifact = release.artifacts.get()
    pin = DoiPin.objects.get(release=release)
    assert release.pinned and release.doi == "10.5281/zenodo.7031735"
    assert (artifact.sha256, artifact.size) == (sha256(package), len(package))
    assert artifact.file
    assert (pin.kind, pin.status) == ("imported", "pinned")
    assert [(f.md5, f.sha256) for f in pin.files.all()] == [(md5(package), sha256(package))]
    assert f"{FIRST}: DOI 10.5281/zenodo.7031735 pinned" in out.getvalue()
    assert "served by this hub" in out.getvalue()
    response = HttpClient().get(DOWNLOAD)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == package  # type: ignore[attr-defined]
    assert response["X-Checksum-Sha256"] == sha256(package)
    entry = next(
        e
        for e in snapshot.catalog_snapshot(base_url="http://hub.test").releases
        if e.model_id == "medigan/00001_DCGAN_MMG_CALC_ROI"
    )
    assert entry.pin is not None and entry.pin.doi == "10.5281/zenodo.7031735"
    assert entry.card.artifacts[0].urls[0] == f"http://hub.test{DOWNLOAD}"


def test_without_storing_the_first_download_fetches_from_zenodo_and_verifies(
    zenodo: ZenodoServer, medigan_global: dict[str, Any]
) -> None:
    package = package_bytes("medigan 2")
    zenodo.add_record({"MALIGN_DCGAN.zip": package}, record_id=6647242, prefix="10.5281")
    _medigan(medigan_global)

    call_command("pin_verify", "medigan/00002_DCGAN_MMG_MASS_ROI@0.0.1", "--no-store")
    artifact = Release.objects.get(
        generative_model__name="00002_DCGAN_MMG_MASS_ROI"
    ).artifacts.get()
    stored_before = bool(artifact.file)
    response = HttpClient().get(
        "/api/v1/models/medigan/00002_DCGAN_MMG_MASS_ROI/releases/0.0.1/artifacts/MALIGN_DCGAN.zip"
    )

    assert not stored_before
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == package  # type: ignore[attr-defined]
    artifact.refresh_from_db()
    assert artifact.file
    assert zenodo.count("GET", r"/files/MALIGN_DCGAN\.zip/content$") == 2


def test_pin_verify_reports_what_it_could_not_verify_and_pins_nothing(
    zenodo: ZenodoServer, medigan_global: dict[str, Any]
) -> None:
    package = package_bytes("medigan 1")
    zenodo.add_record(
        {"00001_DCGAN_MMG_CALC_ROI.zip": package}, record_id=7031735, prefix="10.5281"
    )
    _medigan(medigan_global)
    errors = StringIO()

    with pytest.raises(CommandError, match="22 of 23 releases could not be verified"):
        call_command("pin_verify", "--namespace", "medigan", stdout=StringIO(), stderr=errors)

    assert Release.objects.filter(pinned=True).count() == 1
    assert "medigan/00002_DCGAN_MMG_MASS_ROI@0.0.1: not verified: Zenodo has no record" in (
        errors.getvalue()
    )


def test_an_unverified_import_is_still_not_served(medigan_global: dict[str, Any]) -> None:
    _medigan(medigan_global)

    response = HttpClient().get(DOWNLOAD)

    assert response.status_code == 404
    assert response.json()["code"] == "artifact_unreachable"
    assert response.json()["detail"]["urls"][0].startswith("https://zenodo.org/")
