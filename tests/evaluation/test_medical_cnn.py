"""Tests of the medical-cnn feature extractor: its recipe, its committed weights, what it knows."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from safetensors import safe_open

from evaluation.features import WeightsError, file_sha256
from evaluation.medical_cnn import train as recipe
from evaluation.medical_cnn.extractor import DEFAULT_WEIGHTS, MedicalCnnExtractor
from evaluation.medical_cnn.network import CLASS_NAMES, FEATURE_DIM, WEIGHTS_METADATA_KEY
from evaluation.references import busi_heldout_mask

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPE_DIR = REPO_ROOT / "evaluation" / "medical_cnn"
MAX_WEIGHTS_BYTES = 10_000_000
# Thresholds below the values measured with the committed weights (see README.md):
# separation ratio 100 chest vs 100 dermoscopy test images, NORMAL/PNEUMONIA accuracy on the
# 624 chest test images, and data-set identity accuracy on all held-out images.
MIN_SEPARATION_RATIO = 2.0
MIN_CHEST_TEST_ACCURACY = 0.75
MIN_DATASET_IDENTITY_ACCURACY = 0.98


def shared_dir() -> Path:
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


DATA_FILES = recipe.data_files(shared_dir())
needs_data = pytest.mark.skipif(
    not all(path.exists() for path in DATA_FILES.values()),
    reason=f"shared data not found at {shared_dir() / 'data'} (set MEDIGAN_SHARED_DIR)",
)


def held_out(name: str) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Held-out images (N, 64, 64, 3) and labels of a data set: the splits training never reads."""
    with np.load(DATA_FILES[name], allow_pickle=False) as archive:
        splits = archive["splits"]
        mask = busi_heldout_mask(len(splits)) if name == "busi" else splits == "test"
        return recipe.to_rgb(archive["images"][mask]), archive["labels"][mask].astype(np.int64)


@pytest.fixture(scope="module")
def extractor() -> MedicalCnnExtractor:
    torch.set_num_threads(2)
    return MedicalCnnExtractor()


def synthetic_set(count: int, seed: int) -> recipe.LabelledImages:
    """Images whose class is visible in their brightness, so that a few steps can learn them."""
    rng = np.random.default_rng(seed)
    classes = np.arange(count, dtype=np.int64) % len(CLASS_NAMES)
    noise = rng.integers(0, 40, size=(count, 64, 64, 3))
    images = (classes[:, None, None, None] * 30 + noise).astype(np.uint8)
    return recipe.LabelledImages(images, classes)


# --- recipe pieces that need no data ---------------------------------------------------------


def write_archive(path: Path, splits: list[str], labels: list[int], rgb: bool) -> None:
    """A tiny archive in the shared data's format whose image i is filled with the value i."""
    count = len(splits)
    shape = (count, 64, 64, 3) if rgb else (count, 64, 64)
    images = np.broadcast_to(
        np.arange(count, dtype=np.uint8).reshape((count,) + (1,) * (len(shape) - 1)), shape
    )
    np.savez(path, images=images, labels=np.array(labels, np.int16), splits=np.array(splits))


def test_training_images_exclude_every_held_out_split(tmp_path: Path) -> None:
    files = {
        "chest-xray": tmp_path / "chest.npz",
        "busi": tmp_path / "busi.npz",
        "isic2017": tmp_path / "isic.npz",
    }
    write_archive(files["chest-xray"], ["train", "test", "train", "test"], [0, 1, 1, 0], rgb=False)
    write_archive(files["busi"], ["all"] * 11, [0, 1, 2] * 3 + [0, 1], rgb=False)
    write_archive(files["isic2017"], ["train", "val", "test", "train"], [1, 0, -1, 0], rgb=True)
    loaded = recipe.load_training_images(files)

    def rows(name: str) -> list[int]:
        return [int(image[0, 0, 0]) for image in loaded[name].images]

    assert rows("chest-xray") == [0, 2]
    assert loaded["chest-xray"].classes.tolist() == [0, 1]
    # BUSI's held-out reference split is index % 5 == 0: rows 0, 5 and 10.
    assert rows("busi") == [1, 2, 3, 4, 6, 7, 8, 9]
    assert np.flatnonzero(busi_heldout_mask(11)).tolist() == [0, 5, 10]
    assert loaded["busi"].classes.tolist() == [3, 4, 2, 3, 2, 3, 4, 2]
    assert rows("isic2017") == [0, 3]
    assert loaded["isic2017"].classes.tolist() == [6, 5]
    # Grayscale is replicated to three identical channels.
    chest = loaded["chest-xray"].images
    assert chest.shape == (2, 64, 64, 3)
    assert (chest[..., 0] == chest[..., 2]).all()


def test_training_input_matches_the_evaluation_preprocessing() -> None:
    from evaluation.preprocessing import PreprocessOptions, preprocess

    rng = np.random.default_rng(5)
    gray = rng.integers(0, 256, size=(4, 64, 64), dtype=np.uint8)
    rgb = rng.integers(0, 256, size=(4, 64, 64, 3), dtype=np.uint8)
    extractor = MedicalCnnExtractor()
    for images in (gray, rgb):
        expected = preprocess(images, PreprocessOptions(), extractor)
        torch.testing.assert_close(recipe.to_tensor(recipe.to_rgb(images)), expected)


def test_validation_is_every_tenth_image_of_each_data_set() -> None:
    first = recipe.LabelledImages(np.zeros((25, 64, 64, 3), np.uint8), np.zeros(25, np.int64))
    second = recipe.LabelledImages(np.ones((12, 64, 64, 3), np.uint8), np.full(12, 5, np.int64))
    train_set, val_set = recipe.split_validation({"chest-xray": first, "isic2017": second})
    # 25 -> rows 0, 10, 20 validate; 12 -> rows 0, 10.
    assert len(val_set) == 5
    assert len(train_set) == 32
    assert val_set.classes.tolist() == [0, 0, 0, 5, 5]


def test_class_weights_give_every_class_the_same_total_weight() -> None:
    classes = np.array([0] * 6 + [1] * 2 + [2, 3, 4, 5, 6] * 2, dtype=np.int64)
    weights = recipe.class_weights(classes)
    totals = np.bincount(classes, weights=weights[classes].numpy().astype(np.float64))
    np.testing.assert_allclose(totals, np.full(7, len(classes) / 7), rtol=1e-6)
    assert weights[0].item() == pytest.approx(18 / (7 * 6))


def test_augment_keeps_shape_and_flips_or_shifts_pixels() -> None:
    batch = torch.rand(8, 3, 64, 64)
    out = recipe.augment(batch, torch.Generator().manual_seed(0))
    assert out.shape == batch.shape
    again = recipe.augment(batch, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert not torch.equal(out, batch)
    # Only existing pixel values move around (reflect padding, flips): the value range holds.
    assert out.min() >= batch.min() and out.max() <= batch.max()


def test_an_interrupted_run_resumes_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_set, val_set = synthetic_set(70, seed=1), synthetic_set(14, seed=2)
    config = dataclasses.replace(recipe.Config(), epochs=2, batch_size=16)
    (tmp_path / "whole").mkdir()
    whole, whole_state = recipe.train(config, train_set, val_set, tmp_path / "whole", smoke=True)

    # Interrupt the second run right after its first checkpoint (the log is written next).
    class SimulatedCrashError(Exception):
        pass

    def crash(path: Path, rows: object) -> None:
        raise SimulatedCrashError

    (tmp_path / "parts").mkdir()
    with monkeypatch.context() as patch:
        patch.setattr(recipe, "write_log", crash)
        with pytest.raises(SimulatedCrashError):
            recipe.train(config, train_set, val_set, tmp_path / "parts", smoke=True)
    resumed, resumed_state = recipe.train(
        config, train_set, val_set, tmp_path / "parts", smoke=True
    )
    assert [row["epoch"] for row in resumed_state.rows] == [1, 2]
    assert resumed_state.step == whole_state.step == 2 * (70 // 16)
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert resumed_state.rows[1]["train_loss"] == whole_state.rows[1]["train_loss"]
    with (tmp_path / "parts" / "training_log.csv").open(encoding="utf-8") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1", "2"]


def test_a_finished_run_is_not_trained_again(tmp_path: Path) -> None:
    train_set, val_set = synthetic_set(35, seed=3), synthetic_set(7, seed=4)
    config = dataclasses.replace(recipe.Config(), epochs=1, batch_size=16)
    first, _ = recipe.train(config, train_set, val_set, tmp_path, smoke=True)
    again, state = recipe.train(config, train_set, val_set, tmp_path, smoke=True)
    assert state.epoch == 1
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name


def test_a_checkpoint_with_other_settings_is_refused(tmp_path: Path) -> None:
    train_set, val_set = synthetic_set(35, seed=3), synthetic_set(7, seed=4)
    config = dataclasses.replace(recipe.Config(), epochs=1, batch_size=16)
    recipe.train(config, train_set, val_set, tmp_path, smoke=True)
    with pytest.raises(SystemExit, match="learning_rate"):
        recipe.train(
            dataclasses.replace(config, learning_rate=0.1), train_set, val_set, tmp_path, smoke=True
        )


# --- the smoke recipe on the real data -------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("medical-cnn-smoke")
    result = subprocess.run(
        [sys.executable, "-m", "evaluation.medical_cnn.train", "--smoke", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.shared_data
@needs_data
def test_smoke_recipe_writes_checkpoint_log_summary_and_loadable_weights(
    smoke_run: Path,
) -> None:
    assert (smoke_run / "checkpoint.pt").stat().st_size > 0
    with (smoke_run / "training_log.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    for row in rows:
        for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            assert math.isfinite(float(row[key])), key
    summary = json.loads((smoke_run / "training_summary.json").read_text(encoding="utf-8"))
    assert summary["smoke"] is True
    assert summary["epochs"] == 2
    assert summary["train_counts"] == dict.fromkeys(CLASS_NAMES, recipe.SMOKE_PER_CLASS)
    weights = smoke_run / "weights.safetensors"
    assert summary["weights_sha256"] == file_sha256(weights)
    features = MedicalCnnExtractor(weights).extract(torch.rand(2, 3, 64, 64))
    assert features.shape == (2, FEATURE_DIM)
    assert torch.isfinite(features).all()


# --- the committed weights -------------------------------------------------------------------


def committed_summary() -> dict[str, Any]:
    text = (RECIPE_DIR / "training_summary.json").read_text(encoding="utf-8")
    summary: dict[str, Any] = json.loads(text)
    return summary


def test_committed_weights_are_small_and_match_the_summary(extractor: MedicalCnnExtractor) -> None:
    assert DEFAULT_WEIGHTS.stat().st_size <= MAX_WEIGHTS_BYTES
    summary = committed_summary()
    assert summary["smoke"] is False
    assert extractor.weights_sha256 == summary["weights_sha256"] == file_sha256(DEFAULT_WEIGHTS)
    with safe_open(str(DEFAULT_WEIGHTS), framework="pt") as handle:
        metadata = handle.metadata()
    assert list(metadata) == [WEIGHTS_METADATA_KEY]
    described = json.loads(metadata[WEIGHTS_METADATA_KEY])
    assert described["extractor_id"] == "medical-cnn"
    assert described["classes"] == list(CLASS_NAMES)
    assert described["epochs"] == summary["epochs"]


def test_extractor_implements_the_protocol(extractor: MedicalCnnExtractor) -> None:
    assert extractor.id == "medical-cnn"
    assert extractor.feature_dim == FEATURE_DIM == 256
    assert extractor.input_size == 64
    assert extractor.comparable_with_published is False
    assert len(extractor.weights_sha256) == 64


def test_features_have_the_declared_shape_and_are_deterministic(
    extractor: MedicalCnnExtractor,
) -> None:
    batch = torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    first = extractor.extract(batch)
    assert first.shape == (5, FEATURE_DIM)
    assert first.dtype == torch.float32
    assert torch.equal(first, extractor.extract(batch))
    # Rows do not depend on their batch neighbours (eval-mode BatchNorm).
    torch.testing.assert_close(extractor.extract(batch[:2]), first[:2], rtol=1e-5, atol=1e-5)
    # Pre-ReLU features take negative values; post-ReLU ones could not.
    assert (first < 0).any()


def test_normalise_applies_the_training_mean_and_std(extractor: MedicalCnnExtractor) -> None:
    batch = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(8))
    mean = extractor.network.get_buffer("input_mean").reshape(1, 3, 1, 1)
    std = extractor.network.get_buffer("input_std").reshape(1, 3, 1, 1)
    summary = committed_summary()
    assert mean.flatten().tolist() == pytest.approx(summary["input_mean"], abs=1e-6)
    assert std.flatten().tolist() == pytest.approx(summary["input_std"], abs=1e-6)
    normalised = extractor.extract(batch)
    raw_of_prenormalised = extractor.extract((batch - mean) / std, normalise=False)
    torch.testing.assert_close(normalised, raw_of_prenormalised)
    assert not torch.allclose(normalised, extractor.extract(batch, normalise=False))


def test_wrong_input_shape_is_refused(extractor: MedicalCnnExtractor) -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 64\)"):
        extractor.extract(torch.rand(2, 1, 64, 64))
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 64\)"):
        extractor.extract(torch.rand(2, 3, 128, 128))


def test_missing_or_unfitting_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        MedicalCnnExtractor(tmp_path / "absent.safetensors")
    from safetensors.torch import save_file

    wrong = tmp_path / "wrong.safetensors"
    save_file({"feature.weight": torch.zeros(3, 3)}, str(wrong))
    with pytest.raises(WeightsError, match="does not fit"):
        MedicalCnnExtractor(wrong)


def test_extractor_is_registered() -> None:
    from evaluation.features import load_extractor

    loaded = load_extractor("medical-cnn")
    assert isinstance(loaded, MedicalCnnExtractor)
    assert loaded.comparable_with_published is False


# --- what the committed features know about held-out images ----------------------------------


def features_of(extractor: MedicalCnnExtractor, images: npt.NDArray[np.uint8]) -> torch.Tensor:
    return torch.cat(
        [
            extractor.extract(recipe.to_tensor(images[start : start + 200]))
            for start in range(0, len(images), 200)
        ]
    )


@pytest.mark.shared_data
@needs_data
def test_features_separate_chest_xray_from_dermoscopy(extractor: MedicalCnnExtractor) -> None:
    chest, _ = held_out("chest-xray")
    derm, _ = held_out("isic2017")
    rng = np.random.default_rng(0)
    a = features_of(extractor, chest[rng.choice(len(chest), 100, replace=False)]).double()
    b = features_of(extractor, derm[rng.choice(len(derm), 100, replace=False)]).double()
    between = float(torch.linalg.vector_norm(a.mean(0) - b.mean(0)))
    # RMS distance of an image's features to its own set's mean, pooled over both sets.
    within = math.sqrt(
        0.5 * float(((a - a.mean(0)) ** 2).sum(1).mean() + ((b - b.mean(0)) ** 2).sum(1).mean())
    )
    ratio = between / within
    print(f"separation ratio chest vs dermoscopy: {ratio:.2f}")
    assert ratio > MIN_SEPARATION_RATIO


@pytest.mark.shared_data
@needs_data
def test_classifier_reads_pneumonia_on_the_held_out_chest_test_split(
    extractor: MedicalCnnExtractor,
) -> None:
    images, labels = held_out("chest-xray")
    assert len(images) == 624
    logits = torch.cat(
        [
            extractor.classify(recipe.to_tensor(images[start : start + 200]))
            for start in range(0, len(images), 200)
        ]
    )
    # Within the two chest classes (indices 0 and 1 of CLASS_NAMES).
    predicted = logits[:, :2].argmax(dim=1).numpy()
    accuracy = float((predicted == labels).mean())
    print(f"held-out chest test NORMAL vs PNEUMONIA accuracy: {accuracy:.4f}")
    assert accuracy > MIN_CHEST_TEST_ACCURACY


@pytest.mark.shared_data
@needs_data
def test_classifier_tells_the_data_sets_apart_on_held_out_images(
    extractor: MedicalCnnExtractor,
) -> None:
    dataset_of_class = np.array([0, 0, 1, 1, 1, 2, 2])
    correct = 0
    total = 0
    for index, name in enumerate(("chest-xray", "busi", "isic2017")):
        images, _ = held_out(name)
        logits = torch.cat(
            [
                extractor.classify(recipe.to_tensor(images[start : start + 200]))
                for start in range(0, len(images), 200)
            ]
        )
        correct += int((dataset_of_class[logits.argmax(dim=1).numpy()] == index).sum())
        total += len(images)
    accuracy = correct / total
    print(f"held-out data-set identity accuracy over {total} images: {accuracy:.4f}")
    assert accuracy > MIN_DATASET_IDENTITY_ACCURACY
