"""Tests of the zoo/chestxray-pca-64 recipe (smoke fit) and of its committed numpy v2 package."""

from __future__ import annotations

import csv
import importlib.util
import inspect
import itertools
import json
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
RECIPE_DIR = REPO_ROOT / "zoo" / "chestxray_pca_64"
PACKAGE_DIR = RECIPE_DIR / "package"
DATA_FILE = Path("data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz")
MEDIGAN_GLOBAL = Path("anchors/medigan/global.json")
MAX_WEIGHTS_BYTES = 4_000_000
_names = (f"chestxray_pca_64_under_test_{n}" for n in itertools.count())


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
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def import_package() -> Iterator[Callable[[Path], ModuleType]]:
    loaded: list[str] = []

    def _import(directory: Path) -> ModuleType:
        module = load_package(directory)
        loaded.append(module.__name__)
        return module

    yield _import
    for name in loaded:
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def package() -> Iterator[ModuleType]:
    module = load_package(PACKAGE_DIR)
    yield module
    sys.modules.pop(module.__name__, None)


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
        [sys.executable, "-m", "zoo.chestxray_pca_64.train", *args],
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
def test_smoke_recipe_fits_checkpoints_resumes_and_exports_a_working_package(
    tmp_path: Path, import_package: Callable[[Path], ModuleType]
) -> None:
    first = run_recipe("--smoke", "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "decomposition.npz").stat().st_size > 0
    with (tmp_path / "training_log.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    eigenvalues = [float(row["eigenvalue"]) for row in rows]
    assert all(np.isfinite(eigenvalues)) and eigenvalues == sorted(eigenvalues, reverse=True)
    summary = json.loads((tmp_path / "training_summary.json").read_text(encoding="utf-8"))
    assert summary["smoke"] is True and summary["image_count"] == 256
    weights = (tmp_path / "package" / "weights.safetensors").read_bytes()
    second = run_recipe("--smoke", "--out", str(tmp_path))
    assert second.returncode == 0, second.stderr
    assert "resuming" in second.stdout
    assert (tmp_path / "package" / "weights.safetensors").read_bytes() == weights
    smoke_card = read_card(tmp_path / "package")
    components = summary["components"]
    assert smoke_card["generation_arguments"][0]["default"] == components
    images = import_package(tmp_path / "package").generate(3, seed=1)
    assert images.shape == (3, 64, 64) and images.dtype == np.uint8


def test_generate_returns_uint8_images_of_the_card_shape(package: ModuleType) -> None:
    output = read_card()["output"]
    images = package.generate(5, seed=3)
    assert images.shape == (5, output["height"], output["width"])
    assert images.dtype == np.uint8
    assert images.std() > 10


def test_generate_is_reproducible_by_seed_from_any_working_directory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    import_package: Callable[[Path], ModuleType],
    package: ModuleType,
) -> None:
    first = package.generate(4, seed=11)
    assert np.array_equal(first, package.generate(4, seed=11))
    assert not np.array_equal(first, package.generate(4, seed=12))
    monkeypatch.chdir(tmp_path)
    assert np.array_equal(import_package(PACKAGE_DIR).generate(4, seed=11), first)
    assert list(tmp_path.iterdir()) == []


def test_samples_have_the_training_mean_image(package: ModuleType) -> None:
    """A Gaussian model's sample mean converges to the fitted mean: the chest shape shows."""
    images = package.generate(400, seed=0).astype(np.float64)
    model = package.load_model()
    mean = model.mean.reshape(64, 64)
    assert np.abs(images.mean(axis=0) - mean).mean() < 6.0
    centre, corner = mean[24:40, 8:56].mean(), mean[:8, :8].mean()
    assert centre != corner  # an image with structure, not a flat field


def test_components_and_temperature_change_the_spread(package: ModuleType) -> None:
    k = package.load_model().components
    full = package.generate(200, seed=7).astype(np.float64)
    few = package.generate(200, seed=7, components=5).astype(np.float64)
    cold = package.generate(200, seed=7, temperature=0.3).astype(np.float64)
    assert few.std(axis=0).mean() < full.std(axis=0).mean()
    assert cold.std(axis=0).mean() < full.std(axis=0).mean()
    assert np.array_equal(package.generate(2, seed=1, components=k), package.generate(2, seed=1))


def test_generate_rejects_bad_arguments(package: ModuleType) -> None:
    k = package.load_model().components
    assert package.generate(0, seed=0).shape == (0, 64, 64)
    for bad in (0, k + 1):
        with pytest.raises(ValueError, match="components"):
            package.generate(1, seed=0, components=bad)
    for temperature in (0.05, 2.5):
        with pytest.raises(ValueError, match="temperature"):
            package.generate(1, seed=0, temperature=temperature)
    with pytest.raises(ValueError, match="device"):
        package.generate(1, seed=0, device="tpu")


def test_committed_sample_grid_is_what_the_package_generates(package: ModuleType) -> None:
    generated = package.generate(64, seed=read_summary()["config"]["sample_seed"])
    grid = np.asarray(Image.open(RECIPE_DIR / "samples.png").convert("L"))
    pad, size = 2, 64
    for index in range(64):
        row, col = divmod(index, 8)
        top, left = pad + row * (size + pad), pad + col * (size + pad)
        assert np.array_equal(grid[top : top + size, left : left + size], generated[index])


def test_weights_are_small_and_match_the_summary(package: ModuleType) -> None:
    from safetensors.numpy import load_file

    weights = PACKAGE_DIR / "weights.safetensors"
    assert weights.stat().st_size <= MAX_WEIGHTS_BYTES
    tensors = load_file(str(weights))
    summary = read_summary()
    assert set(tensors) == {"mean", "loadings"}
    assert tensors["loadings"].shape == (summary["components"], 64 * 64)
    assert 100 <= summary["components"] <= 200


def test_card_matches_the_package_and_the_run(package: ModuleType) -> None:
    card = read_card()
    summary = read_summary()
    assert card["model_id"] == "zoo/chestxray-pca-64"
    assert card["runtime"]["dependencies"] == ["numpy>=1.26", "safetensors>=0.4"]
    assert card["selection"]["type"] == "PCA"
    assert "noise to image" in card["selection"]["function"]
    arguments = {argument["name"]: argument for argument in card["generation_arguments"]}
    assert arguments["components"]["default"] == arguments["components"]["maximum"]
    assert arguments["components"]["default"] == package.load_model().components
    parameters = inspect.signature(package.generate).parameters
    assert parameters["temperature"].default == arguments["temperature"]["default"]
    training = card["provenance"]["training"]
    assert {k: training[k] for k in ("epochs", "steps", "seed", "wall_time_seconds")} == {
        k: summary[k] for k in ("epochs", "steps", "seed", "wall_time_seconds")
    }
    assert card["provenance"]["training_data"][0]["image_count"] == summary["image_count"] == 5216


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
    for given in ({}, {"components": "10", "temperature": "0.5"}):
        arguments = validation.resolve_generation_arguments(card, given)
        images = package.generate(6, seed=21, device="cpu", **arguments)
        problems = validation.check_generation_output(
            card,
            shape=images.shape,
            dtype=str(images.dtype),
            minimum=float(images.min()),
            maximum=float(images.max()),
            num_samples=6,
        )
        assert problems == []
    with pytest.raises(validation.GenerationArgumentError):
        validation.resolve_generation_arguments(card, {"components": "0"})
