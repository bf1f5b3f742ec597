"""Choosing a runtime: the modes, the ``auto`` rule, and what every mode returns alike."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pytest

from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.runtime import Runner, choose_isolation, open_runner
from medigan_client.runtime.dependencies import card_requirements, is_satisfied, python_problem
from medigan_client.runtime.inprocess import InProcessRunner
from medigan_client.runtime.process import ProcessRunner

from .conftest import MakePackage

SEEDED = """
import numpy as np


def generate(num_samples, *, seed, device, seeds=None, brightness=128):
    rng = np.random.default_rng(seed)
    values = rng.normal(brightness, 20.0, size=(num_samples, 8, 8))
    return np.clip(values, 0, 255).astype(np.uint8)
"""


@pytest.mark.parametrize("isolation", ["inprocess", "process"])
def test_every_mode_generates_the_same_v2_samples(
    make_package: MakePackage, isolation: str
) -> None:
    package = make_package()
    with open_runner(package.directory, package.card, isolation=isolation) as runner:
        assert isinstance(runner, Runner)
        assert runner.isolation == isolation
        assert runner.supports_sample_seeds is False
        batch = runner.generate_batch(3, seed=7, device="cpu", args={"brightness": 60})
    expected = np.clip(np.random.default_rng(7).normal(60, 20.0, size=(3, 8, 8)), 0, 255)
    assert np.array_equal(batch.images, expected.astype(np.uint8))
    assert batch.masks is None and batch.labels is None and dict(batch.extras) == {}


@pytest.mark.parametrize("isolation", ["inprocess", "process"])
def test_every_mode_runs_the_medigan_template_package(
    make_package: MakePackage, isolation: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = make_package(
        "extracted",
        model_id="medigan/00099_TEST",
        version="0.0.1",
        kind="medigan-legacy",
        execution={"package_name": "00099_TEST", "model_name": "DCGAN", "extension": ".pt"},
        wrap="00099_TEST",
    )
    monkeypatch.chdir(tmp_path)
    with open_runner(package.directory, package.card, isolation=isolation) as runner:
        first = runner.generate_batch(4, seed=1, device="cpu", args={"brightness": 100})
        again = runner.generate_batch(4, seed=1, device="cpu", args={"brightness": 100})
    assert first.images.shape == (4, 8, 8, 1)
    assert first.images.min() >= 107  # brightness + the offset 7 read from model_file
    assert np.array_equal(first.images, again.images), "seeded through the global generators"


def test_auto_runs_in_a_child_process_when_the_environment_satisfies_the_card(
    make_package: MakePackage,
) -> None:
    package = make_package(dependencies=[f"numpy=={np.__version__}", "pillow"])
    assert choose_isolation(package.card) == "process"
    with open_runner(package.directory, package.card) as runner:
        assert isinstance(runner, ProcessRunner)
        assert runner.isolation == "process"


def test_auto_wants_a_venv_for_unsatisfied_or_missing_requirements(
    make_package: MakePackage,
) -> None:
    pinned_elsewhere = make_package("a", dependencies=["numpy<1.0"])
    missing = make_package("b", dependencies=["numpy"], execution={"dependencies": ["not-here-x"]})
    assert choose_isolation(pinned_elsewhere.card) == "venv"
    assert choose_isolation(missing.card) == "venv"


def test_requirements_are_read_from_both_lists_with_markers_and_typos(
    make_package: MakePackage,
) -> None:
    package = make_package(
        dependencies=["numpy>=1.0", "numpy>=1.0", 'pywin32==306; sys_platform == "nt"', "a b c"],
        execution={"dependencies": ["Pillow", "opencv-contrib-python-headless"]},
    )
    requirements = [str(r) for r in card_requirements(package.card)]
    assert requirements == ["numpy>=1.0", "Pillow", "opencv-contrib-python-headless"]
    satisfied = [is_satisfied(r) for r in card_requirements(package.card)]
    assert satisfied[:2] == [True, True]


def test_a_card_for_another_python_is_refused(make_package: MakePackage) -> None:
    package = make_package(python_requires="<3.0")
    assert python_problem(package.card) is not None
    with pytest.raises(
        GenerationFailedError, match=f"needs Python <3.0.*{platform.python_version()}"
    ):
        open_runner(package.directory, package.card, isolation="inprocess")
    assert python_problem(make_package("ok", python_requires=">=3.8").card) is None


def test_an_unknown_isolation_mode_is_a_bad_request(make_package: MakePackage) -> None:
    package = make_package()
    with pytest.raises(BadRequestError, match="isolation must be one of"):
        open_runner(package.directory, package.card, isolation="docker")


def test_in_process_a_package_calling_sys_exit_does_not_end_the_caller(
    make_package: MakePackage,
) -> None:
    package = make_package(
        "exits",
        "import sys\ndef generate(num_samples, *, seed, device, brightness=0):\n    sys.exit(2)\n",
    )
    with (
        InProcessRunner(package.directory, package.card) as runner,
        pytest.raises(GenerationFailedError, match=r"sys\.exit\(2\)"),
    ):
        runner.generate_batch(1, seed=0, device="cpu", args={})


def test_in_process_per_sample_seeds_are_detected_and_passed(make_package: MakePackage) -> None:
    package = make_package(
        "seeds",
        "import numpy as np\n"
        "def generate(num_samples, *, seed, device, seeds, brightness=0):\n"
        "    return np.stack([np.full((8, 8), s, dtype=np.int32) for s in seeds])\n",
    )
    plain = make_package("plain", SEEDED.replace("seeds=None, ", ""))
    with InProcessRunner(package.directory, package.card) as runner:
        assert runner.supports_sample_seeds is True
        batch = runner.generate_batch(2, seed=0, device="cpu", args={}, sample_seeds=[11, 12])
        assert batch.images[:, 0, 0].tolist() == [11, 12]
    assert InProcessRunner(plain.directory, plain.card).supports_sample_seeds is False
