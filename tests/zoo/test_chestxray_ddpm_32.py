"""Tests of the zoo/chestxray-ddpm-32 recipe (smoke run) and of its committed v2 package."""

from __future__ import annotations

import csv
import importlib.util
import inspect
import itertools
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE_DIR = REPO_ROOT / "zoo" / "chestxray_ddpm_32"
PACKAGE_DIR = RECIPE_DIR / "package"
DATA_FILE = Path("data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz")
MEDIGAN_GLOBAL = Path("anchors/medigan/global.json")
MAX_WEIGHTS_BYTES = 4_000_000
FAST = 10  # the fewest sampler steps the card allows; keeps the tests quick
_names = (f"chestxray_ddpm_32_under_test_{n}" for n in itertools.count())


def shared_dir() -> Path:
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def load_package(directory: Path) -> ModuleType:
    """Import the package in ``directory`` by path, under a fresh name, as the client would."""
    name = next(_names)
    spec = importlib.util.spec_from_file_location(
        name, directory / "__init__.py", submodule_search_locations=[str(directory)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the package's relative import of .network needs it registered
    spec.loader.exec_module(module)
    return module


def unload(name: str) -> None:
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


@pytest.fixture
def import_package() -> Iterator[Callable[[Path], ModuleType]]:
    loaded: list[str] = []

    def _import(directory: Path) -> ModuleType:
        module = load_package(directory)
        loaded.append(module.__name__)
        return module

    yield _import
    for name in loaded:
        unload(name)


@pytest.fixture(scope="module")
def package() -> Iterator[ModuleType]:
    module = load_package(PACKAGE_DIR)
    yield module
    unload(module.__name__)


def read_card(directory: Path = PACKAGE_DIR) -> dict[str, Any]:
    card: dict[str, Any] = json.loads((directory / "card.json").read_text(encoding="utf-8"))
    return card


def read_summary() -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(
        (RECIPE_DIR / "training_summary.json").read_text(encoding="utf-8")
    )
    return summary


def run_recipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zoo.chestxray_ddpm_32.train", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


needs_data = pytest.mark.skipif(
    not (shared_dir() / DATA_FILE).exists(),
    reason=f"shared training data {DATA_FILE} not found (set MEDIGAN_SHARED_DIR)",
)


@pytest.mark.shared_data
@needs_data
def test_smoke_recipe_writes_checkpoint_log_resumes_and_exports_a_working_package(
    tmp_path: Path, import_package: Callable[[Path], ModuleType]
) -> None:
    first = run_recipe("--smoke", "--out", str(tmp_path), "--epochs", "1")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "checkpoint.pt").stat().st_size > 0
    second = run_recipe("--smoke", "--out", str(tmp_path))
    assert second.returncode == 0, second.stderr
    assert "resuming" in second.stdout
    with (tmp_path / "training_log.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    assert all(math.isfinite(float(row["loss"])) for row in rows)
    summary = json.loads((tmp_path / "training_summary.json").read_text(encoding="utf-8"))
    assert summary["smoke"] is True
    assert summary["steps"] == int(rows[-1]["steps"]) > 0
    assert read_card(tmp_path / "package")["provenance"]["training"]["steps"] == summary["steps"]
    images = import_package(tmp_path / "package").generate(2, seed=1, steps=FAST)
    assert images.shape == (2, 32, 32) and images.dtype == np.uint8


def test_generate_returns_uint8_images_of_the_card_shape(package: ModuleType) -> None:
    output = read_card()["output"]
    images = package.generate(4, seed=3, steps=FAST)
    assert images.shape == (4, output["height"], output["width"])
    assert images.dtype == np.uint8
    assert images.std() > 10


def test_generate_is_reproducible_by_seed_from_any_working_directory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    import_package: Callable[[Path], ModuleType],
    package: ModuleType,
) -> None:
    first = package.generate(3, seed=11, steps=FAST)
    assert np.array_equal(first, package.generate(3, seed=11, steps=FAST))
    assert not np.array_equal(first, package.generate(3, seed=12, steps=FAST))
    monkeypatch.chdir(tmp_path)
    assert np.array_equal(import_package(PACKAGE_DIR).generate(3, seed=11, steps=FAST), first)
    assert list(tmp_path.iterdir()) == []


def test_fewer_steps_give_different_images_for_the_same_seed(package: ModuleType) -> None:
    ten = package.generate(4, seed=5, steps=10).astype(np.int16)
    fifty = package.generate(4, seed=5, steps=50).astype(np.int16)
    assert ten.shape == fifty.shape
    assert np.abs(ten - fifty).mean() > 0.5


def test_steps_are_validated_by_the_card_and_the_package(package: ModuleType) -> None:
    validation = pytest.importorskip("medigan_catalog.validation")
    card = validation.validate_card(read_card())
    assert validation.resolve_generation_arguments(card, {}) == {"steps": 50}
    assert validation.resolve_generation_arguments(card, {"steps": "10"}) == {"steps": 10}
    for bad in ("9", "1001", "0", "ten", "2.5"):
        with pytest.raises(validation.GenerationArgumentError, match="steps"):
            validation.resolve_generation_arguments(card, {"steps": bad})
    for steps in (9, 1001):
        with pytest.raises(ValueError, match="steps"):
            package.generate(1, seed=0, steps=steps)
    with pytest.raises(ValueError, match="device"):
        package.generate(1, seed=0, device="tpu")
    assert package.generate(0, seed=0).shape == (0, 32, 32)


def test_committed_sample_grid_is_what_the_package_generates(package: ModuleType) -> None:
    summary = read_summary()
    grid_settings = summary["sample_grid"]
    generated = package.generate(
        64, seed=grid_settings["seed"], steps=grid_settings["steps"]
    ).astype(np.int16)
    grid = np.asarray(Image.open(RECIPE_DIR / "samples.png").convert("L"), dtype=np.int16)
    pad, size = 2, 32
    assert grid.shape == (8 * (size + pad) + pad,) * 2
    for index in range(64):
        row, col = divmod(index, 8)
        top, left = pad + row * (size + pad), pad + col * (size + pad)
        # a grey level of slack for floating-point differences between CPUs
        assert np.abs(grid[top : top + size, left : left + size] - generated[index]).max() <= 2


def test_weights_are_the_network_only_and_small(package: ModuleType) -> None:
    from safetensors.torch import load_file

    weights = PACKAGE_DIR / "weights.safetensors"
    assert weights.stat().st_size <= MAX_WEIGHTS_BYTES
    assert set(load_file(str(weights))) == set(package.load_network("cpu").state_dict())


def test_card_matches_the_package_and_the_run(package: ModuleType) -> None:
    card = read_card()
    summary = read_summary()
    assert card["model_id"] == "zoo/chestxray-ddpm-32"
    assert card["runtime"]["kind"] == "v2" and card["artifacts"] == []
    parameters = inspect.signature(package.generate).parameters
    for argument in card["generation_arguments"]:
        assert parameters[argument["name"]].default == argument["default"]
        assert parameters[argument["name"]].kind is inspect.Parameter.KEYWORD_ONLY
    training = card["provenance"]["training"]
    assert {k: training[k] for k in ("epochs", "steps", "seed", "wall_time_seconds")} == {
        k: summary[k] for k in ("epochs", "steps", "seed", "wall_time_seconds")
    }
    assert card["provenance"]["training_data"][0]["image_count"] == summary["image_count"] == 5216
    assert card["description"]["provided_after_epoch"] == summary["epochs"]


def test_card_medigan_blocks_use_the_medigan_key_sets() -> None:
    anchors = shared_dir() / MEDIGAN_GLOBAL
    if not anchors.exists():
        pytest.skip(f"medigan global.json anchor not found at {anchors}")
    entry = json.loads(anchors.read_text(encoding="utf-8"))["00001_DCGAN_MMG_CALC_ROI"]
    card = read_card()
    for block in ("execution", "selection", "description"):
        assert set(card[block]) == set(entry[block]), block


def test_card_validates_and_the_package_keeps_its_promises(package: ModuleType) -> None:
    validation = pytest.importorskip("medigan_catalog.validation")
    raw = read_card()
    card = validation.validate_card(raw)
    assert card.to_json() == raw
    arguments = validation.resolve_generation_arguments(card, {"steps": "10"})
    images = package.generate(3, seed=21, device="cpu", **arguments)
    problems = validation.check_generation_output(
        card,
        shape=images.shape,
        dtype=str(images.dtype),
        minimum=float(images.min()),
        maximum=float(images.max()),
        num_samples=3,
    )
    assert problems == []
