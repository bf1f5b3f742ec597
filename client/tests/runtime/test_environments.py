"""Package environments: built from the card alone, shared per requirement set, locked, isolated.

pip only ever sees a local folder of wheels written by the tests (``--no-index``,
``--find-links``). ``medigan-test-dep`` exists only there: a package that imports it runs in its
environment and fails in the running one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from medigan_catalog.schema import Card
from medigan_client.errors import GenerationFailedError
from medigan_client.push import push
from medigan_client.runtime.dependencies import installed_version
from medigan_client.runtime.environments import (
    DRY_RUN_OPT_OUT_VARIABLE,
    LOCK_NAME,
    MARKER_NAME,
    PIP_LOG_NAME,
    EnvironmentBuildError,
    PackageEnvironment,
    environment_ensure,
    shared_distributions,
)
from medigan_client.runtime.sandbox import (
    SandboxOptions,
    generate_in_sandbox,
    generate_in_subprocess,
)
from medigan_client.settings import ClientSettings

from .conftest import MakePackage, build_wheel

if TYPE_CHECKING:
    from conftest import FakeHub

needs_bubblewrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed"
)

USES_DEP = """
import numpy as np
import medigan_test_dep

def generate(num_samples, *, seed, device, brightness=0):
    return np.full((num_samples, 8, 8), medigan_test_dep.VALUE, dtype=np.uint8)
"""


def _imports(module: str) -> str:
    return (
        "import numpy as np\n"
        f"import {module}\n"
        "def generate(num_samples, *, seed, device, brightness=0):\n"
        "    return np.zeros((num_samples, 8, 8), dtype=np.uint8)\n"
    )


def _dep_wheel(wheel_dir: Path, version: str = "1.0", value: int = 42) -> Path:
    return build_wheel(
        wheel_dir,
        "medigan-test-dep",
        version,
        {"medigan_test_dep/__init__.py": f"VALUE = {value}\n"},
    )


def _pip_runs(environment: PackageEnvironment) -> int:
    log = environment.root / "logs" / f"{environment.key}-{PIP_LOG_NAME}"
    return log.read_text().count("$ ") if log.exists() else 0


def test_a_declared_dependency_is_installed_pinned_and_the_running_env_lacks_it(
    make_package: MakePackage, wheel_dir: Path, runtime_settings: ClientSettings, tmp_path: Path
) -> None:
    _dep_wheel(wheel_dir)
    assert installed_version("medigan-test-dep") is None
    package = make_package("dep", USES_DEP, dependencies=["numpy", "medigan-test-dep"])

    environment = environment_ensure(
        package.card, root=tmp_path / "envs", settings=runtime_settings
    )
    samples = generate_in_subprocess(package.directory, package.card, 2, environment=environment)

    assert samples.shape == (2, 8, 8) and int(samples.max()) == 42
    assert environment.installed == ("medigan-test-dep",)
    lock = (environment.directory / LOCK_NAME).read_text()
    assert "medigan-test-dep==1.0\n" in lock and "numpy==" in lock
    marker = json.loads((environment.directory / MARKER_NAME).read_text())
    assert marker["lock_sha256"] == environment.lock_digest
    assert environment.lock_digest in environment.describe()
    # The running environment does not have it, and nothing was installed into it.
    with pytest.raises(GenerationFailedError, match="medigan_test_dep"):
        generate_in_subprocess(package.directory, package.card, 2)
    assert installed_version("medigan-test-dep") is None

    # A later, newer wheel changes nothing: the bare name was resolved once, and recorded.
    _dep_wheel(wheel_dir, "2.0", value=7)
    again = environment_ensure(package.card, root=tmp_path / "envs", settings=runtime_settings)
    assert again == environment
    assert int(generate_in_subprocess(package.directory, package.card, 1, environment=again).max())
    assert _pip_runs(environment) == 1


def test_the_environment_sees_only_the_shared_base_not_the_running_environment(
    make_package: MakePackage, runtime_settings: ClientSettings, tmp_path: Path
) -> None:
    # httpx is a requirement of the client, installed here, and not one of the shared base.
    assert installed_version("httpx") is not None
    assert "httpx" not in shared_distributions()
    package = make_package("httpx", _imports("httpx"), dependencies=["numpy"])
    environment = environment_ensure(
        package.card, root=tmp_path / "envs", settings=runtime_settings
    )

    with pytest.raises(GenerationFailedError, match="No module named 'httpx'"):
        generate_in_subprocess(package.directory, package.card, 1, environment=environment)
    assert generate_in_subprocess(package.directory, package.card, 1).shape == (1, 8, 8)

    # A card that asks for nothing beyond the base gets the base environment: no pip at all.
    assert environment.installed == ()
    assert _pip_runs(environment) == 0
    printed = subprocess.run(
        [str(environment.python), "-s", "-c", "import sys, torch, numpy; print(sys.path)"],
        capture_output=True,
        text=True,
        check=True,
    )
    # The running environment (this test's venv) is not on the environment's path at all.
    assert sys.prefix != sys.base_prefix and sys.prefix not in printed.stdout


def test_an_uninstallable_requirement_fails_with_a_short_message_naming_it(
    make_package: MakePackage, runtime_settings: ClientSettings, tmp_path: Path
) -> None:
    package = make_package("missing", dependencies=["numpy", "medigan-test-missing==9.9"])

    with pytest.raises(EnvironmentBuildError) as info:
        environment_ensure(package.card, root=tmp_path / "envs", settings=runtime_settings)

    message = info.value.message
    assert message.startswith("dependencies: could not install medigan-test-missing==9.9: ")
    assert "Traceback" not in message and "\n" not in message and len(message) < 400
    assert not list((tmp_path / "envs" / "envs").glob(f"*/{MARKER_NAME}"))


def test_direct_urls_are_refused(
    make_package: MakePackage, runtime_settings: ClientSettings, tmp_path: Path
) -> None:
    package = make_package("url", dependencies=["evil @ https://example.invalid/evil.whl"])
    with pytest.raises(EnvironmentBuildError, match="direct URL requirements are not installed"):
        environment_ensure(package.card, root=tmp_path / "envs", settings=runtime_settings)


def test_concurrent_builds_wait_for_one_and_a_killed_build_is_redone(
    make_package: MakePackage, wheel_dir: Path, runtime_settings: ClientSettings, tmp_path: Path
) -> None:
    _dep_wheel(wheel_dir)
    first = make_package("first", USES_DEP, model_id="zoo/first", dependencies=["medigan-test-dep"])
    second = make_package(
        "second", USES_DEP, model_id="zoo/second", dependencies=["medigan-test-dep"]
    )
    root = tmp_path / "envs"
    results: list[PackageEnvironment] = []
    start = threading.Barrier(2)

    def build(card: Card) -> None:
        start.wait()
        results.append(environment_ensure(card, root=root, settings=runtime_settings))

    threads = [threading.Thread(target=build, args=(p.card,)) for p in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    # Two releases, one requirement set: one environment, one pip run; the other build waited.
    assert len(results) == 2 and results[0] == results[1]
    environment = results[0]
    assert _pip_runs(environment) == 1
    assert [p.name for p in (root / "envs").iterdir()] == [environment.key]

    (environment.directory / MARKER_NAME).unlink()  # as if the build had been killed
    sentinel = environment.directory / "sentinel"
    sentinel.write_text("left by the killed build")
    rebuilt = environment_ensure(first.card, root=root, settings=runtime_settings)
    assert not sentinel.exists() and (rebuilt.directory / MARKER_NAME).is_file()
    assert _pip_runs(rebuilt) == 2


@needs_bubblewrap
def test_the_sandbox_runs_the_package_with_its_environment_only(
    make_package: MakePackage, wheel_dir: Path, runtime_settings: ClientSettings, tmp_path: Path
) -> None:
    _dep_wheel(wheel_dir)
    package = make_package("sandboxed", USES_DEP, dependencies=["medigan-test-dep"])
    environment = environment_ensure(
        package.card, root=tmp_path / "envs", settings=runtime_settings
    )

    result = generate_in_sandbox(
        package.directory, package.card, 2, options=SandboxOptions(), environment=environment
    )
    assert int(result.samples.max()) == 42

    leaky = make_package("leaky", _imports("httpx"), model_id="zoo/leaky", dependencies=["numpy"])
    base = environment_ensure(leaky.card, root=tmp_path / "envs", settings=runtime_settings)
    with pytest.raises(GenerationFailedError, match="No module named 'httpx'"):
        generate_in_sandbox(leaky.directory, leaky.card, 1, environment=base)


def test_the_push_dry_run_uses_the_cards_environment_unless_opted_out(
    make_package: MakePackage,
    wheel_dir: Path,
    hub: FakeHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _dep_wheel(wheel_dir)
    package = make_package("pushed", USES_DEP, dependencies=["numpy", "medigan-test-dep"])
    settings = ClientSettings(
        hub_url=hub.url,
        token=hub.state.token,
        cache_dir=tmp_path / "cache",
        timeout=5.0,
        pip_no_index=True,
        pip_find_links=(str(wheel_dir),),
    )
    monkeypatch.delenv(DRY_RUN_OPT_OUT_VARIABLE, raising=False)

    result = push(settings, package.directory)

    assert result.state is not None and result.sha256
    (built,) = (settings.cache_dir / "environments" / "envs").iterdir()
    assert "medigan-test-dep==1.0\n" in (built / LOCK_NAME).read_text()

    # Opted out, the dry run uses the running environment, which lacks the dependency.
    monkeypatch.setenv(DRY_RUN_OPT_OUT_VARIABLE, "1")
    with pytest.raises(GenerationFailedError, match="medigan_test_dep"):
        push(settings, package.directory)
