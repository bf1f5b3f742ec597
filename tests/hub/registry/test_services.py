"""Tests of the registry services: submit, validate, review, publish, import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.registry import selectors, services
from hub.registry.models import Release
from medigan_catalog.errors import CardInvalidError, TransitionNotAllowedError
from medigan_catalog.lifecycle import ReleaseState
from tests import factories

pytestmark = pytest.mark.django_db


def _submit(tmp_path: Path, submitter: Any, capture: Any, **kwargs: Any) -> Release:
    archive, sha256, card = factories.package_zip(tmp_path, **kwargs)
    with capture(execute=True), archive.open("rb") as package:
        release = services.release_submit(
            user=submitter, card_data=card, package=package, declared_sha256=sha256
        )
    return Release.objects.get(pk=release.pk)


def test_a_valid_push_passes_every_check_and_waits_for_review(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _submit(tmp_path, factories.user("alice"), django_capture_on_commit_callbacks)

    assert release.state == ReleaseState.IN_REVIEW
    checks = {check.name: check.status for check in release.checks.all()}
    assert checks == {
        "card_schema": "passed",
        "licence": "passed",
        "artifact_integrity": "passed",
        "safe_unpacking": "passed",
        "smoke_generation": "passed",
        "output_contract": "passed",
        "sample_grid": "passed",
    }
    assert release.sample_grid.name.endswith(".png")
    states = [(e.from_state, e.to_state) for e in release.events.all()]
    assert states == [("", "submitted"), ("submitted", "validating"), ("validating", "in_review")]


def test_a_package_whose_output_breaks_its_card_is_rejected_with_the_reason(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    wrong_size = factories.NOISE_GENERATOR.replace("(num_samples, 16, 16)", "(num_samples, 8, 8)")
    release = _submit(
        tmp_path,
        factories.user("alice"),
        django_capture_on_commit_callbacks,
        generator_source=wrong_size,
    )

    assert release.state == ReleaseState.REJECTED
    failed = release.checks.get(status="failed")
    assert failed.name == "output_contract"
    assert "16" in failed.message
    assert "output_contract" in release.events.last().note  # type: ignore[union-attr]


def test_a_package_that_crashes_fails_smoke_generation(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    crashing = "import os\n\ndef generate(num_samples, *, seed, device='cpu', brightness=0):\n"
    crashing += "    os._exit(7)\n"
    release = _submit(
        tmp_path,
        factories.user("alice"),
        django_capture_on_commit_callbacks,
        generator_source=crashing,
    )

    assert release.state == ReleaseState.REJECTED
    assert release.checks.get(name="smoke_generation").status == "failed"
    assert release.checks.get(name="output_contract").status == "skipped"


def test_a_zip_with_a_path_traversal_is_rejected_by_safe_unpacking(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    archive = factories.evil_zip(tmp_path)
    with django_capture_on_commit_callbacks(execute=True), archive.open("rb") as package:
        release = services.release_submit(
            user=factories.user("mallory"),
            card_data=factories.card_data(model_id="mallory/noise-16"),
            package=package,
        )
    release.refresh_from_db()

    assert release.state == ReleaseState.REJECTED
    unpacking = release.checks.get(name="safe_unpacking")
    assert unpacking.status == "failed"
    assert "../evil" in unpacking.message
    assert not (Path(tmp_path / "work").parent / "evil").exists()


def test_an_invalid_card_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    archive, _, card = factories.package_zip(tmp_path)
    card["output"] = {"height": 0, "width": 16}
    with archive.open("rb") as package, pytest.raises(CardInvalidError):
        services.release_submit(user=factories.user("alice"), card_data=card, package=package)

    assert Release.objects.count() == 0


def test_a_version_cannot_be_pushed_twice(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    alice = factories.user("alice")
    _submit(tmp_path, alice, django_capture_on_commit_callbacks)

    with pytest.raises(services.ReleaseExistsError):
        _submit(tmp_path / "again", alice, django_capture_on_commit_callbacks)


def test_reserved_namespaces_and_other_owners_models_are_refused(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    with pytest.raises(services.NamespaceForbiddenError):
        _submit(
            tmp_path / "a",
            factories.user("alice"),
            django_capture_on_commit_callbacks,
            model_id="zoo/impostor",
        )
    _submit(tmp_path / "b", factories.user("alice"), django_capture_on_commit_callbacks)
    with pytest.raises(services.NamespaceForbiddenError):
        _submit(
            tmp_path / "c",
            factories.user("bob"),
            django_capture_on_commit_callbacks,
            version="2.0.0",
        )


def test_approval_publishes_unpinned_and_bumps_the_serial(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _submit(tmp_path, factories.user("alice"), django_capture_on_commit_callbacks)
    serial_before = selectors.catalog_serial_get()

    published = services.release_review(
        release_id=release.pk,
        reviewer=factories.user("rita", reviewer=True),
        decision="approve",
        note="looks like noise, as promised",
    )

    assert published.state == ReleaseState.PUBLISHED
    assert published.pinned is False and published.doi == ""
    assert selectors.catalog_serial_get() == serial_before + 1
    events = list(published.events.all())[-2:]
    last_two = [(e.to_state, e.actor.username if e.actor else None) for e in events]
    assert last_two == [("approved", "rita"), ("published", "rita")]


def test_a_rejected_release_cannot_be_approved_later(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _submit(tmp_path, factories.user("alice"), django_capture_on_commit_callbacks)
    rita = factories.user("rita", reviewer=True)
    services.release_review(release_id=release.pk, reviewer=rita, decision="reject", note="no")

    with pytest.raises(TransitionNotAllowedError):
        services.release_review(release_id=release.pk, reviewer=rita, decision="approve")
    assert Release.objects.get(pk=release.pk).state == ReleaseState.REJECTED


def test_a_repeated_validation_task_does_nothing(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _submit(tmp_path, factories.user("alice"), django_capture_on_commit_callbacks)
    checks_before = release.checks.count()

    assert services.release_validate(release_id=release.pk) is None
    assert release.checks.count() == checks_before


def test_medigan_catalogue_import_publishes_every_entry_once(
    medigan_global: dict[str, Any],
) -> None:
    operator = factories.user("operator", reviewer=True)

    created, warnings = services.medigan_catalog_import(
        raw_catalog=medigan_global, actor=operator, source="test"
    )
    again, _ = services.medigan_catalog_import(
        raw_catalog=medigan_global, actor=operator, source="test"
    )

    assert len(created) == 23 and again == []
    assert all(release.state == ReleaseState.PUBLISHED for release in created)
    assert warnings, "medigan's catalogue has inconsistencies that the import reports"
    first = created[0]
    assert first.model_id == "medigan/00001_DCGAN_MMG_CALC_ROI"
    assert first.artifacts.get().external_urls[0].startswith("https://zenodo.org/")
