"""Tests of the zoo/busi-gan-128 recipe (smoke run), its augmentation and its v2 package."""

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
RECIPE_DIR = REPO_ROOT / "zoo" / "busi_gan_128"
PACKAGE_DIR = RECIPE_DIR / "package"
DATA_FILE = Path("data/breast-ultrasound-busi/breast_ultrasound_busi_128.npz")
MEDIGAN_GLOBAL = Path("anchors/medigan/global.json")
MAX_WEIGHTS_BYTES = 8_000_000
CARD_KEYS = {
    "schema_version",
    "model_id",
    "version",
    "runtime",
    "generation_arguments",
    "output",
    "artifacts",
    "provenance",
    "execution",
    "selection",
    "description",
    "compat",
}
_names = (f"busi_gan_128_under_test_{n}" for n in itertools.count())


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


@pytest.fixture
def import_package() -> Iterator[Callable[[Path], ModuleType]]:
    loaded: list[str] = []

    def _import(directory: Path) -> ModuleType:
        module = load_package(directory)
        loaded.append(module.__name__)
        return module

    yield _import
    for name in loaded:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]


@pytest.fixture(scope="module")
def package() -> Iterator[ModuleType]:
    module = load_package(PACKAGE_DIR)
    yield module
    for key in [k for k in sys.modules if k.startswith(module.__name__)]:
        del sys.modules[key]


def read_card(directory: Path = PACKAGE_DIR) -> dict[str, Any]:
    card: dict[str, Any] = json.loads((directory / "card.json").read_text(encoding="utf-8"))
    return card


def run_recipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zoo.busi_gan_128.train", *args],
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


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoke")
    result = run_recipe("--smoke", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.shared_data
@needs_data
def test_smoke_recipe_writes_checkpoint_log_and_a_working_package(
    smoke_run: Path, import_package: Callable[[Path], ModuleType]
) -> None:
    assert (smoke_run / "checkpoint.pt").stat().st_size > 0
    with (smoke_run / "training_log.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    for row in rows:
        for key in ("loss_d", "loss_g", "d_real", "d_fake"):
            assert math.isfinite(float(row[key]))
    summary = json.loads((smoke_run / "training_summary.json").read_text(encoding="utf-8"))
    assert summary["smoke"] is True
    assert summary["steps"] == int(rows[-1]["steps"]) > 0
    smoke_card = read_card(smoke_run / "package")
    assert smoke_card["provenance"]["training"]["steps"] == summary["steps"]
    images = import_package(smoke_run / "package").generate(3, seed=1)
    assert images.shape == (3, 128, 128)
    assert images.dtype == np.uint8


@pytest.mark.shared_data
@needs_data
def test_smoke_recipe_resumes_to_the_same_weights(smoke_run: Path, tmp_path: Path) -> None:
    first = run_recipe("--smoke", "--out", str(tmp_path), "--epochs", "1")
    assert first.returncode == 0, first.stderr
    second = run_recipe("--smoke", "--out", str(tmp_path))
    assert second.returncode == 0, second.stderr
    assert "resuming" in second.stdout
    with (tmp_path / "training_log.csv").open(encoding="utf-8") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1", "2"]
    resumed = (tmp_path / "package" / "weights.safetensors").read_bytes()
    assert resumed == (smoke_run / "package" / "weights.safetensors").read_bytes()


def test_generate_returns_uint8_images_of_the_card_shape(package: ModuleType) -> None:
    output = read_card()["output"]
    images = package.generate(5, seed=3)
    assert images.shape == (5, output["height"], output["width"])
    assert images.dtype == np.uint8
    assert images.std() > 10  # images, not a constant field


def test_generate_is_reproducible_by_seed(package: ModuleType) -> None:
    first = package.generate(4, seed=11)
    assert np.array_equal(first, package.generate(4, seed=11))
    assert not np.array_equal(first, package.generate(4, seed=12))


def test_generate_ignores_the_working_directory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    import_package: Callable[[Path], ModuleType],
    package: ModuleType,
) -> None:
    monkeypatch.chdir(tmp_path)
    fresh = import_package(PACKAGE_DIR)
    assert np.array_equal(fresh.generate(2, seed=5), package.generate(2, seed=5))
    assert list(tmp_path.iterdir()) == []


def test_generate_accepts_auto_device_and_rejects_bad_arguments(package: ModuleType) -> None:
    assert package.generate(1, seed=0, device="auto").shape == (1, 128, 128)
    assert package.generate(0, seed=0).shape == (0, 128, 128)
    with pytest.raises(ValueError, match="truncation"):
        package.generate(1, seed=0, truncation=0.0)
    with pytest.raises(ValueError, match="truncation"):
        package.generate(1, seed=0, truncation=2.5)
    with pytest.raises(ValueError, match="device"):
        package.generate(1, seed=0, device="tpu")


def test_truncation_below_one_reduces_diversity(package: ModuleType) -> None:
    wide = package.generate(64, seed=7, truncation=1.0).astype(np.float64)
    narrow = package.generate(64, seed=7, truncation=0.3).astype(np.float64)
    assert narrow.std(axis=0).mean() < wide.std(axis=0).mean()


def test_diff_augment_is_differentiable_and_changes_each_image() -> None:
    torch = pytest.importorskip("torch")
    from zoo.busi_gan_128.train import Config, diff_augment

    torch.manual_seed(0)
    x = (torch.rand(8, 1, 128, 128) * 2 - 1).requires_grad_(True)
    augmented = diff_augment(x, Config())
    assert augmented.shape == x.shape
    assert not torch.equal(augmented, x)
    # cutout blacks out a square of (64 * 64) pixels per image (more where translation pads)
    assert bool(((augmented == -1.0).flatten(1).sum(dim=1) >= 64 * 64).all())
    (grad,) = torch.autograd.grad(augmented.sum(), x)
    assert float(grad.abs().sum()) > 0


def test_recipe_trains_on_the_non_held_out_images_only() -> None:
    from evaluation.references import busi_heldout_mask
    from zoo.busi_gan_128.train import load_train_images

    path = shared_dir() / DATA_FILE
    if not path.exists():
        pytest.skip(f"shared training data {DATA_FILE} not found")
    images = load_train_images(path)
    with np.load(path, allow_pickle=False) as archive:
        everything = archive["images"]
    assert images.shape == (624, 128, 128)
    assert np.array_equal(images, everything[~busi_heldout_mask(len(everything))])


def test_committed_sample_grid_is_what_the_package_generates(package: ModuleType) -> None:
    summary = json.loads((RECIPE_DIR / "training_summary.json").read_text(encoding="utf-8"))
    generated = package.generate(64, seed=summary["config"]["sample_seed"]).astype(np.int16)
    grid = np.asarray(Image.open(RECIPE_DIR / "samples.png").convert("L"), dtype=np.int16)
    pad, size = 2, 128
    assert grid.shape == (8 * (size + pad) + pad,) * 2
    for index in range(64):
        row, col = divmod(index, 8)
        top, left = pad + row * (size + pad), pad + col * (size + pad)
        tile = grid[top : top + size, left : left + size]
        # a grey level of slack for floating-point differences between CPUs
        assert np.abs(tile - generated[index]).max() <= 2


def test_weights_are_the_generator_only_and_at_most_8_mb(package: ModuleType) -> None:
    from safetensors.torch import load_file

    weights = PACKAGE_DIR / "weights.safetensors"
    assert weights.stat().st_size <= MAX_WEIGHTS_BYTES
    tensors = load_file(str(weights))
    assert set(tensors) == set(package.load_generator("cpu").state_dict())


def test_card_has_the_contract_fields_and_matches_the_package(package: ModuleType) -> None:
    card = read_card()
    assert set(card) == CARD_KEYS
    assert card["schema_version"] == "1.0"
    assert card["model_id"] == "zoo/busi-gan-128"
    assert card["runtime"]["kind"] == "v2"
    assert card["artifacts"] == []
    entry_point = getattr(package, card["runtime"]["entry_point"])
    parameters = inspect.signature(entry_point).parameters
    for argument in card["generation_arguments"]:
        assert parameters[argument["name"]].default == argument["default"]
        assert parameters[argument["name"]].kind is inspect.Parameter.KEYWORD_ONLY
    summary = json.loads((RECIPE_DIR / "training_summary.json").read_text(encoding="utf-8"))
    training = card["provenance"]["training"]
    assert {k: training[k] for k in ("epochs", "steps", "seed", "wall_time_seconds")} == {
        k: summary[k] for k in ("epochs", "steps", "seed", "wall_time_seconds")
    }
    assert card["provenance"]["training_data"][0]["image_count"] == summary["image_count"] == 624
    assert card["description"]["provided_after_epoch"] == summary["epochs"]


def test_card_medigan_blocks_use_the_medigan_key_sets() -> None:
    anchors = shared_dir() / MEDIGAN_GLOBAL
    if not anchors.exists():
        pytest.skip(f"medigan global.json anchor not found at {anchors}")
    entry = json.loads(anchors.read_text(encoding="utf-8"))["00001_DCGAN_MMG_CALC_ROI"]
    card = read_card()
    for block in ("execution", "selection", "description"):
        assert set(card[block]) == set(entry[block]), block
    assert set(card["execution"]["generate_method"]) == set(entry["execution"]["generate_method"])


def test_card_validates_against_the_catalog_schema() -> None:
    validation = pytest.importorskip("medigan_catalog.validation")
    raw = read_card()
    card = validation.validate_card(raw)  # schema plus the cross-field rules
    assert card.model_id == "zoo/busi-gan-128"
    assert card.to_json() == raw  # nothing in the committed card is dropped or rewritten


def test_package_keeps_the_cards_promises_when_called_like_the_client(
    package: ModuleType,
) -> None:
    validation = pytest.importorskip("medigan_catalog.validation")
    card = validation.validate_card(read_card())
    for given in ({}, {"truncation": "0.7"}):
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
