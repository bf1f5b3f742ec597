"""The hub's use of the sandbox: failing closed, the trusted mode said plainly, redaction."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from hub import sandbox
from hub.registry import services
from hub.registry.models import Release
from medigan_catalog.lifecycle import ReleaseState
from tests import factories

pytestmark = pytest.mark.django_db


def _validated(tmp_path: Path, capture: Any, generator_source: str) -> Release:
    archive, sha256, card = factories.package_zip(tmp_path, generator_source=generator_source)
    with capture(execute=True), archive.open("rb") as package:
        release = services.release_submit(
            user=factories.user("alice"), card_data=card, package=package, declared_sha256=sha256
        )
    return Release.objects.get(pk=release.pk)


def _marking_generator(marker: Path) -> str:
    return factories.NOISE_GENERATOR.replace(
        "import numpy as np", f"import numpy as np\nopen({str(marker)!r}, 'w').write('ran')"
    )


def test_without_bubblewrap_the_package_is_not_run_and_the_check_says_why(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_SANDBOX_BWRAP = str(tmp_path / "no-such-bwrap")
    marker = tmp_path / "ran"

    release = _validated(tmp_path, django_capture_on_commit_callbacks, _marking_generator(marker))

    smoke = release.checks.get(name="smoke_generation")
    assert release.state == ReleaseState.REJECTED
    assert smoke.status == "failed"
    assert "could not isolate contributed code, so the package was not run" in smoke.message
    assert not marker.exists()
    assert not sandbox.sandbox_status().available


def test_the_smoke_check_names_the_isolation_it_ran_under(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _validated(tmp_path, django_capture_on_commit_callbacks, factories.NOISE_GENERATOR)

    smoke = release.checks.get(name="smoke_generation")
    assert smoke.status == "passed"
    assert "in the sandbox (bubblewrap" in smoke.message
    assert sandbox.sandbox_status().available


def test_the_trusted_mode_runs_unisolated_and_says_so(
    tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_SANDBOX = "none"

    release = _validated(tmp_path, django_capture_on_commit_callbacks, factories.NOISE_GENERATOR)

    status = sandbox.sandbox_status()
    assert release.state == ReleaseState.IN_REVIEW
    assert "WITHOUT isolation" in release.checks.get(name="smoke_generation").message
    assert "WITHOUT isolation" in status.detail
    assert not sandbox.sandbox_isolated()


def test_messages_lose_the_hubs_paths_and_secret_values(settings: Any) -> None:
    settings.SECRET_KEY = "a-very-secret-key-value"
    work = Path(settings.MEDIGAN_WORK_DIR) / "validate-7-abc" / "package"

    text = sandbox.redact(f"failed in {work}/x.py with key a-very-secret-key-value")

    assert str(settings.MEDIGAN_WORK_DIR) not in text
    assert "a-very-secret-key-value" not in text
    # The whole path goes: the names below the work dir are the hub's too.
    assert text == "failed in [hub] with key [secret]"


def test_the_work_dir_goes_also_through_a_link_and_the_sandbox_scratch_too(
    settings: Any, tmp_path: Path
) -> None:
    real = tmp_path / "real-work"
    real.mkdir()
    (tmp_path / "linked-work").symlink_to(real)
    settings.MEDIGAN_WORK_DIR = tmp_path / "linked-work"
    scratch = Path(tempfile.gettempdir()) / "medigan-sandbox-k2j4" / "home"

    text = sandbox.redact(f"read {real}/validate-1-x/weights.pt, wrote {scratch}/out.npy; ok")

    assert text == "read [hub], wrote [hub]; ok"
    assert sandbox.redact("/usr/lib/python3/x.py and /workshop") == (
        "/usr/lib/python3/x.py and /workshop"
    )


def test_the_status_api_and_the_admin_say_how_code_is_isolated(client: Any, settings: Any) -> None:
    isolated = client.get("/api/v1/status").json()
    settings.MEDIGAN_SANDBOX = "none"
    unisolated = client.get("/api/v1/status").json()
    admin_user = factories.user("root-admin", staff=True)
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    page = client.get("/admin/").content.decode()

    assert isolated["sandbox"]["isolated"] is True
    assert isolated["sandbox"]["available"] is True
    assert isolated["sandbox"]["detail"].startswith("bubblewrap")
    assert unisolated["sandbox"] == {
        "isolation": "process",
        "isolated": False,
        "available": True,
        "detail": sandbox.UNISOLATED_WARNING,
    }
    assert "WITHOUT isolation" in page
