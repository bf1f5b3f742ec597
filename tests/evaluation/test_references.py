"""Reference sets (hashes, npz splits, the BUSI held-out rule) and the statistics cache."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from evaluation.metrics import FeatureStatistics
from evaluation.preprocessing import PreprocessOptions
from evaluation.references import (
    ReferenceImages,
    StatisticsCache,
    StatisticsKey,
    busi_heldout_mask,
    images_sha256,
    load_npz_split,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def key(preprocess: PreprocessOptions | None = None, **changes: str) -> StatisticsKey:
    fields = {
        "reference_id": "chest-xray-test",
        "reference_split": "test",
        "reference_sha256": "ab" * 32,
        "extractor_id": "medical-cnn",
        "weights_sha256": "cd" * 32,
        "preprocess_key": (preprocess or PreprocessOptions(size=64)).key(),
    }
    fields.update(changes)
    return StatisticsKey(**fields)


def statistics(seed: int) -> FeatureStatistics:
    return FeatureStatistics.from_features(np.random.default_rng(seed).standard_normal((20, 4)))


# --- hashing and reference images ---------------------------------------------------------------


def test_images_sha256_covers_bytes_shape_and_dtype() -> None:
    images = np.arange(2 * 4 * 8, dtype=np.uint8).reshape(2, 4, 8)
    first = images_sha256(images)
    assert first == images_sha256(images.copy())
    assert len(first) == 64
    assert images_sha256(images.reshape(2, 8, 4)) != first  # same bytes, other shape
    assert images_sha256(images.astype(np.int8)) != first  # same bytes, other dtype
    changed = images.copy()
    changed[1, 3, 7] += 1
    assert images_sha256(changed) != first
    # A non-contiguous view hashes as its C-ordered copy.
    assert images_sha256(images.transpose(0, 2, 1)) == images_sha256(
        np.ascontiguousarray(images.transpose(0, 2, 1))
    )


def test_reference_images_check_their_hash_and_dtype() -> None:
    images = np.zeros((3, 8, 8), dtype=np.uint8)
    reference = ReferenceImages.from_images("demo", "test", images)
    assert reference.sha256 == images_sha256(images)
    assert len(reference) == 3
    with pytest.raises(ValueError, match="expected 00"):
        ReferenceImages("demo", "test", images, sha256="00" * 32)
    with pytest.raises(ValueError, match="uint8"):
        ReferenceImages.from_images("demo", "test", images.astype(np.float32))


# --- npz splits and the held-out rule -----------------------------------------------------------


def test_busi_heldout_mask_holds_out_every_fifth_index() -> None:
    mask = busi_heldout_mask(12)
    assert mask.tolist() == [i % 5 == 0 for i in range(12)]
    assert np.flatnonzero(mask).tolist() == [0, 5, 10]
    assert busi_heldout_mask(780).sum() == 156


def write_npz(path: Path, splits: list[str]) -> np.ndarray:
    images = np.stack([np.full((4, 4), index, dtype=np.uint8) for index in range(len(splits))])
    np.savez(path, images=images, splits=np.array(splits), labels=np.zeros(len(splits)))
    return images


def test_load_npz_split_selects_the_named_split(tmp_path: Path) -> None:
    images = write_npz(tmp_path / "set.npz", ["train", "test", "train", "test", "val"])
    test = load_npz_split(tmp_path / "set.npz", "test", id="demo-test")
    assert (test.id, test.split) == ("demo-test", "test")
    np.testing.assert_array_equal(test.images, images[[1, 3]])
    assert test.sha256 == images_sha256(images[[1, 3]])
    with pytest.raises(ValueError, match="no split 'heldout'; available: test, train, val"):
        load_npz_split(tmp_path / "set.npz", "heldout", id="demo")


def test_load_npz_split_divides_a_set_without_splits_by_the_heldout_rule(tmp_path: Path) -> None:
    images = write_npz(tmp_path / "busi.npz", ["all"] * 11)
    heldout = load_npz_split(tmp_path / "busi.npz", "heldout", id="busi-heldout")
    train = load_npz_split(tmp_path / "busi.npz", "train", id="busi-train")
    everything = load_npz_split(tmp_path / "busi.npz", "all", id="busi")
    assert heldout.images[:, 0, 0].tolist() == [0, 5, 10]
    assert train.images[:, 0, 0].tolist() == [1, 2, 3, 4, 6, 7, 8, 9]
    np.testing.assert_array_equal(everything.images, images)
    with pytest.raises(ValueError, match="available: all, heldout, train"):
        load_npz_split(tmp_path / "busi.npz", "test", id="busi")


@pytest.mark.shared_data
def test_the_shared_data_splits_have_their_documented_sizes() -> None:
    data = shared_dir() / "data"
    busi = data / "breast-ultrasound-busi" / "breast_ultrasound_busi_64.npz"
    chest = data / "chest-xray-pneumonia" / "chest_xray_pneumonia_64.npz"
    if not busi.is_file() or not chest.is_file():
        pytest.skip("../shared/data is not present")
    heldout = load_npz_split(busi, "heldout", id="busi-heldout")
    assert heldout.images.shape == (156, 64, 64)
    assert load_npz_split(busi, "train", id="busi-train").images.shape == (624, 64, 64)
    assert load_npz_split(chest, "test", id="chest-xray-test").images.shape == (624, 64, 64)
    # Loading twice gives the same pinned hash.
    assert load_npz_split(busi, "heldout", id="busi-heldout").sha256 == heldout.sha256


# --- statistics cache ---------------------------------------------------------------------------


def test_statistics_cache_computes_once_and_survives_a_new_instance(tmp_path: Path) -> None:
    calls: list[int] = []

    def compute() -> FeatureStatistics:
        calls.append(1)
        return statistics(0)

    first = StatisticsCache(tmp_path).get_or_compute(key(), compute)
    second = StatisticsCache(tmp_path).get_or_compute(key(), compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(second.mean, first.mean)
    np.testing.assert_array_equal(second.covariance, first.covariance)
    assert second.count == first.count == 20
    # One entry, readable without pickle, no temporary files left behind.
    assert [path.name for path in tmp_path.iterdir()] == [f"{key().digest()}.statistics.npz"]
    with np.load(tmp_path / f"{key().digest()}.statistics.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["count", "covariance", "key", "mean"]


def test_statistics_keys_differ_by_preprocessing_and_every_other_field(tmp_path: Path) -> None:
    calls: list[str] = []
    cache = StatisticsCache(tmp_path)
    variants = [
        key(),
        key(PreprocessOptions(size=64, resize_filter="lanczos")),
        key(PreprocessOptions(size=64, normalise=False)),
        key(weights_sha256="ef" * 32),
        key(reference_split="train"),
    ]

    def computing(index: int) -> Callable[[], FeatureStatistics]:
        def compute() -> FeatureStatistics:
            calls.append(str(index))
            return statistics(index)

        return compute

    for index, variant in enumerate(variants):
        cache.get_or_compute(variant, computing(index))
    for variant in variants:
        cache.get_or_compute(variant, lambda: pytest.fail("cached entry recomputed"))
    assert calls == ["0", "1", "2", "3", "4"]
    assert len({variant.digest() for variant in variants}) == 5
    assert len(list(tmp_path.glob("*.npz"))) == 5


def test_statistics_cache_recomputes_a_damaged_or_foreign_entry(tmp_path: Path) -> None:
    cache = StatisticsCache(tmp_path)
    cache.get_or_compute(key(), lambda: statistics(0))
    path = cache.path_for(key())
    path.write_bytes(b"not a zip file")
    repaired = cache.get_or_compute(key(), lambda: statistics(1))
    np.testing.assert_array_equal(repaired.mean, statistics(1).mean)

    # An entry written for another key, found under this key's name, is not trusted.
    other = key(extractor_id="inception-v3-fid")
    cache.get_or_compute(other, lambda: statistics(2))
    cache.path_for(other).replace(path)
    result = cache.get_or_compute(key(), lambda: statistics(3))
    np.testing.assert_array_equal(result.mean, statistics(3).mean)


def test_feature_cache_stores_features_once_in_their_precision(tmp_path: Path) -> None:
    cache = StatisticsCache(tmp_path)
    calls: list[int] = []
    features = np.random.default_rng(0).standard_normal((30, 5)).astype(np.float32)

    def compute() -> np.ndarray:
        calls.append(1)
        return features

    first = cache.get_or_compute_features(key(), compute)
    second = cache.get_or_compute_features(key(), compute)
    assert len(calls) == 1
    assert first.dtype == second.dtype == np.float64
    np.testing.assert_array_equal(second, features.astype(np.float64))
    with np.load(cache.path_for(key(), "features"), allow_pickle=False) as data:
        assert data["features"].dtype == np.float32
    assert cache.path_for(key(), "features") != cache.path_for(key())
