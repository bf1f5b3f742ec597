"""Importing packages by path: v2 and medigan-legacy, side by side, from any working directory."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.runtime.loader import load_package, resolve_device

from .conftest import MakePackage


def test_v2_package_imports_by_path_from_another_cwd(
    tmp_path: Path, make_package: MakePackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = make_package()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path_before = list(sys.path)
    loaded = load_package(package.directory, package.card)
    samples = loaded.generate_batch(3, seed=5, device="cpu", args={"brightness": 100})
    assert samples.shape == (3, 8, 8)
    assert samples.dtype == np.uint8
    assert 80 < float(samples.mean()) < 120
    again = loaded.generate_batch(3, seed=5, device="cpu", args={"brightness": 100})
    assert np.array_equal(samples, again)
    assert sys.path == path_before
    assert Path.cwd() == elsewhere


def test_two_releases_load_side_by_side(make_package: MakePackage) -> None:
    dark = make_package("one", version="1.0.0")
    bright = make_package(
        "two",
        version="2.0.0",
        init_source=(
            "import numpy as np\n"
            "def generate(num_samples, *, seed, device, brightness=0):\n"
            "    return np.full((num_samples, 8, 8), 250, dtype=np.uint8)\n"
        ),
    )
    one = load_package(dark.directory, dark.card)
    two = load_package(bright.directory, bright.card)
    assert one.module is not two.module
    assert one.module.__name__ != two.module.__name__
    assert int(two.generate_batch(1, seed=0, device="cpu", args={}).max()) == 250
    assert int(one.generate_batch(1, seed=0, device="cpu", args={"brightness": 10}).max()) < 200


def test_medigan_legacy_package_gets_model_file_and_returns_a_list(
    tmp_path: Path, make_package: MakePackage
) -> None:
    # medigan zips wrap the package in a folder named after package_name.
    package = make_package(
        "extracted",
        model_id="medigan/00099_TEST",
        version="0.0.1",
        kind="medigan-legacy",
        execution={"package_name": "00099_TEST", "model_name": "DCGAN", "extension": ".pt"},
        wrap="00099_TEST",
    )
    loaded = load_package(package.directory, package.card)
    assert loaded.legacy_model_file() == (tmp_path / "extracted" / "00099_TEST" / "DCGAN.pt")
    first = loaded.generate_batch(4, seed=1, device="cpu", args={"brightness": 100})
    again = loaded.generate_batch(4, seed=1, device="cpu", args={"brightness": 100})
    assert first.shape == (4, 8, 8, 1)
    assert first.min() >= 107  # brightness + the offset 7 read from the weights file
    assert np.array_equal(first, again), "legacy packages are seeded through the global RNGs"


def test_import_errors_and_missing_entry_points_are_generation_failures(
    tmp_path: Path, make_package: MakePackage
) -> None:
    broken = make_package("broken", "import not_a_module_x\n")
    with pytest.raises(GenerationFailedError, match="ModuleNotFoundError"):
        load_package(broken.directory, broken.card)
    assert not [name for name in sys.modules if "not_a_module_x" in name]
    empty = make_package("empty", "VALUE = 1\n")
    with pytest.raises(GenerationFailedError, match="no function 'generate'"):
        load_package(empty.directory, empty.card)
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(GenerationFailedError, match=r"no __init__\.py"):
        load_package(bare, empty.card)


def test_exceptions_of_the_package_become_generation_failures(make_package: MakePackage) -> None:
    package = make_package(
        "raises",
        "def generate(num_samples, *, seed, device, brightness=0):\n"
        "    raise RuntimeError('weights are corrupt')\n",
    )
    loaded = load_package(package.directory, package.card)
    with pytest.raises(GenerationFailedError, match="RuntimeError: weights are corrupt"):
        loaded.generate_batch(1, seed=0, device="cpu", args={})


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in {"cpu", "cuda"}
    with pytest.raises(BadRequestError, match="unknown device"):
        resolve_device("tpu")
