"""Tests of validation's messages: a failed package reads in its own terms, never the hub's.

The broken package is a zoo model pushed with its weights deleted. The contributor reads the
check's message and its audit event: both name ``weights.safetensors`` and hold no path outside
the package; the full traceback goes to the worker's log and to staff in the admin.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.test import Client as HttpClient

from hub.registry import services
from hub.registry.models import Release
from medigan_catalog.lifecycle import ReleaseState
from medigan_catalog.packaging import build_deterministic_zip
from tests import factories

pytestmark = pytest.mark.django_db

ZOO_PACKAGE = Path(__file__).resolve().parents[3] / "zoo" / "chestxray_pca_64" / "package"
# An absolute path anywhere in a text.
_ABSOLUTE = re.compile(r"(?<![\w.<])/[\w.-]")


def _push_without_weights(tmp_path: Path, capture: Any) -> Release:
    package = tmp_path / "chestxray-pca-64"
    shutil.copytree(ZOO_PACKAGE, package)
    (package / "weights.safetensors").unlink()
    card = json.loads((package / "card.json").read_text(encoding="utf-8"))
    card["model_id"] = "alice/chestxray-pca-64"
    (package / "card.json").write_text(json.dumps(card), encoding="utf-8")
    archive = build_deterministic_zip(package, tmp_path / "package.zip")
    with capture(execute=True), (tmp_path / "package.zip").open("rb") as upload:
        release = services.release_submit(
            user=factories.user("alice"),
            card_data=card,
            package=upload,
            declared_sha256=archive.sha256,
        )
    return Release.objects.get(pk=release.pk)


def _assert_in_package_terms(text: str, tmp_path: Path) -> None:
    assert "weights.safetensors" in text
    assert "FileNotFoundError" in text and "(package: __init__.py, line" in text
    assert not _ABSOLUTE.search(text), text
    assert str(tmp_path) not in text and "site-packages" not in text
    assert "^" not in text and "Traceback" not in text


def test_a_package_without_its_weights_is_rejected_in_its_own_terms(
    tmp_path: Path, django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hub.registry.validation"):
        release = _push_without_weights(tmp_path, django_capture_on_commit_callbacks)

    assert release.state == ReleaseState.REJECTED
    smoke = release.checks.get(name="smoke_generation")
    assert smoke.status == "failed"
    _assert_in_package_terms(smoke.message, tmp_path)
    assert "load_file(str(WEIGHTS_PATH))" in smoke.message
    rejection = release.events.get(to_state=ReleaseState.REJECTED)
    assert rejection.note.startswith("check smoke_generation failed: ")
    _assert_in_package_terms(rejection.note, tmp_path)
    # Staff get everything: the traceback in the check's detail and in the worker's log.
    assert smoke.detail.startswith("Traceback (most recent call last):")
    assert "safetensors/numpy.py" in smoke.detail and "weights.safetensors" in smoke.detail
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "check smoke_generation failed" in logged and "Traceback" in logged


def test_the_api_shows_the_message_and_never_the_traceback(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _push_without_weights(tmp_path, django_capture_on_commit_callbacks)
    alice = HttpClient()
    alice.force_login(factories.user("alice"))

    status = alice.get(f"/api/v1/models/alice/chestxray-pca-64/releases/{release.version}").json()

    [smoke] = [check for check in status["checks"] if check["name"] == "smoke_generation"]
    assert set(smoke) == {"name", "status", "message", "duration_seconds"}
    _assert_in_package_terms(smoke["message"], tmp_path)
    assert "Traceback" not in json.dumps(status)


def test_the_admin_shows_staff_the_full_traceback_collapsed(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _push_without_weights(tmp_path, django_capture_on_commit_callbacks)
    admin = HttpClient()
    admin.force_login(factories.user("rita", reviewer=True))

    page = admin.get(f"/admin/registry/release/{release.pk}/change/").content.decode()

    assert "<details><summary>full traceback</summary>" in page
    assert "Traceback (most recent call last):" in page
