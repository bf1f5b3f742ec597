"""Validation runs a package with an environment built from its card, never with the hub's own.

pip sees only a folder of wheels written here (``MEDIGAN_PIP_NO_INDEX``,
``MEDIGAN_PIP_FIND_LINKS``): ``medigan-test-dep`` exists nowhere else, so a package that imports
it can pass only in the environment built from its card.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from hub.registry import services
from hub.registry.models import Release
from medigan_catalog.lifecycle import ReleaseState
from medigan_catalog.schema import card_from_json
from medigan_client.errors import GenerationFailedError
from medigan_client.runtime.dependencies import installed_version
from medigan_client.runtime.environments import LOCK_NAME, PIP_LOG_NAME
from medigan_client.runtime.sandbox import generate_in_subprocess
from tests import factories

pytestmark = pytest.mark.django_db

USES_DEP = """
    import numpy as np
    import medigan_test_dep


    def generate(num_samples, *, seed, device="cpu", brightness=0):
        return np.full((num_samples, 16, 16), medigan_test_dep.VALUE + brightness, dtype=np.uint8)
"""

USES_DJANGO = """
    import numpy as np
    import django


    def generate(num_samples, *, seed, device="cpu", brightness=0):
        return np.zeros((num_samples, 16, 16), dtype=np.uint8)
"""


@pytest.fixture
def local_index(settings: Any, tmp_path: Path) -> Path:
    """The hub's pip restricted to a local folder of wheels; environments under tmp_path."""
    wheels = tmp_path / "wheels"
    factories.dep_wheel(wheels)
    settings.MEDIGAN_PIP_NO_INDEX = True
    settings.MEDIGAN_PIP_FIND_LINKS = (str(wheels),)
    settings.MEDIGAN_PIP_ENVIRONMENTS_DIR = tmp_path / "environments"
    return tmp_path / "environments"


def _validated(
    root: Path, capture: Any, generator_source: str, dependencies: list[str], version: str
) -> Release:
    card_runtime = {
        "kind": "v2",
        "entry_point": "generate",
        "python_requires": ">=3.11",
        "dependencies": dependencies,
    }
    archive, sha256, card = factories.package_zip(
        root / version, generator_source=generator_source, version=version, runtime=card_runtime
    )
    with capture(execute=True), archive.open("rb") as package:
        release = services.release_submit(
            user=factories.user("alice"), card_data=card, package=package, declared_sha256=sha256
        )
    return Release.objects.get(pk=release.pk)


def test_a_package_passes_with_its_declared_dependency_which_the_hub_lacks(
    tmp_path: Path, local_index: Path, django_capture_on_commit_callbacks: Any
) -> None:
    assert installed_version("medigan-test-dep") is None
    release = _validated(
        tmp_path,
        django_capture_on_commit_callbacks,
        USES_DEP,
        ["numpy>=1.26", "medigan-test-dep"],
        "1.0.0",
    )

    smoke = release.checks.get(name="smoke_generation")
    assert smoke.status == "passed", smoke.message
    assert release.state == ReleaseState.IN_REVIEW
    assert "in the sandbox (bubblewrap" in smoke.message
    assert "installed medigan-test-dep" in smoke.message
    (environment,) = (local_index / "envs").iterdir()
    lock = (environment / LOCK_NAME).read_text()
    assert "medigan-test-dep==1.0\n" in lock
    lock_digest = hashlib.sha256(lock.encode()).hexdigest()
    assert f"lock sha256 {lock_digest}" in smoke.message

    # The same package with the hub's own environment cannot import it.
    package_dir = tmp_path / "1.0.0" / "package"
    card = card_from_json(factories.card_data(version="1.0.0"))
    with pytest.raises(GenerationFailedError, match="medigan_test_dep"):
        generate_in_subprocess(package_dir, card, 1)
    assert installed_version("medigan-test-dep") is None


def test_a_package_importing_the_hubs_django_fails_in_the_sandbox(
    tmp_path: Path, local_index: Path, django_capture_on_commit_callbacks: Any
) -> None:
    assert installed_version("django") is not None
    release = _validated(
        tmp_path, django_capture_on_commit_callbacks, USES_DJANGO, ["numpy>=1.26"], "1.0.0"
    )

    smoke = release.checks.get(name="smoke_generation")
    assert release.state == ReleaseState.REJECTED
    assert smoke.status == "failed"
    assert "No module named 'django'" in smoke.message


def test_an_uninstallable_requirement_is_a_short_failed_check_naming_it(
    tmp_path: Path, local_index: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _validated(
        tmp_path,
        django_capture_on_commit_callbacks,
        factories.NOISE_GENERATOR,
        ["numpy>=1.26", "opencv-python-headless==4.10.0.84"],
        "1.0.0",
    )

    smoke = release.checks.get(name="smoke_generation")
    assert release.state == ReleaseState.REJECTED
    assert smoke.status == "failed"
    assert smoke.message.startswith(
        "dependencies: could not install opencv-python-headless==4.10.0.84: "
        "Could not find a version that satisfies the requirement"
    ), smoke.message
    assert "Traceback" not in smoke.message and len(smoke.message) < 400


def test_two_releases_with_the_same_requirements_share_one_environment_built_once(
    tmp_path: Path, local_index: Path, django_capture_on_commit_callbacks: Any
) -> None:
    requirements = ["numpy>=1.26", "medigan-test-dep"]
    first = _validated(
        tmp_path, django_capture_on_commit_callbacks, USES_DEP, requirements, "1.0.0"
    )
    second = _validated(
        tmp_path,
        django_capture_on_commit_callbacks,
        USES_DEP,
        list(reversed(requirements)),
        "1.1.0",
    )

    messages = [r.checks.get(name="smoke_generation").message for r in (first, second)]
    assert [r.state for r in (first, second)] == [ReleaseState.IN_REVIEW] * 2, messages
    (environment,) = (local_index / "envs").iterdir()
    assert all(f"package environment {environment.name}:" in m for m in messages)
    pip_log = local_index / "logs" / f"{environment.name}-{PIP_LOG_NAME}"
    assert pip_log.read_text().count("$ ") == 1
