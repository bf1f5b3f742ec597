"""`evaluate()`: streaming, seeding, bounded feature reservoir, caching and the recorded result."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from evaluation.features import FeatureExtractor
from evaluation.metrics import FeatureStatistics, frechet_distance, kid, precision_recall
from evaluation.preprocessing import PreprocessOptions
from evaluation.references import ReferenceImages
from evaluation.runner import (
    EvaluationOptions,
    EvaluationResult,
    Generator,
    _Reservoir,
    batch_seed,
    evaluate,
)


class ProjectionExtractor:
    """A test double of the extractor protocol: a fixed random linear map of 8 x 8 RGB images."""

    id = "test-projection"
    feature_dim = 16
    input_size = 8
    comparable_with_published = False

    def __init__(self, batch_size: int = 1000) -> None:
        self.batch_size = batch_size
        weights = np.random.default_rng(0).standard_normal((3 * 8 * 8, 16)) / 8.0
        self.projection = torch.from_numpy(weights.astype(np.float32))
        self.weights_sha256 = hashlib.sha256(weights.tobytes()).hexdigest()
        self.batch_sizes: list[int] = []

    def extract(self, batch: torch.Tensor, *, normalise: bool = True) -> torch.Tensor:
        self.batch_sizes.append(int(batch.shape[0]))
        values = batch * 2.0 - 1.0 if normalise else batch
        return values.reshape(batch.shape[0], -1) @ self.projection


def noise_images(count: int, seed: int, brightness: float = 100.0) -> np.ndarray:
    # Per-image brightness plus pixel noise: features vary along more than one direction.
    rng = np.random.default_rng(seed)
    base = rng.normal(brightness, 30.0, (count, 1, 1))
    pixels = base + rng.normal(0.0, 20.0, (count, 16, 16))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def noise_generator(brightness: float = 100.0) -> Generator:
    def generate(count: int, seed: int) -> np.ndarray:
        return noise_images(count, seed, brightness)

    return generate


@pytest.fixture
def reference() -> ReferenceImages:
    return ReferenceImages.from_images("noise", "test", noise_images(400, seed=12345))


def options(**changes: Any) -> EvaluationOptions:
    settings: dict[str, Any] = {
        "extractor_id": ProjectionExtractor.id,
        "num_samples": 300,
        "batch_size": 64,
        "kid_subsets": 10,
        "kid_subset_size": 100,
        "fid_rr_splits": 4,
        "max_kept_features": 250,
    }
    settings.update(changes)
    return EvaluationOptions(**settings)


def run(
    generator: Generator, reference: ReferenceImages, extract_batch_size: int = 1000, **changes: Any
) -> tuple[EvaluationResult, ProjectionExtractor]:
    extractor = ProjectionExtractor(extract_batch_size)
    checked: FeatureExtractor = extractor  # the double satisfies the protocol, as mypy checks
    return evaluate(generator, reference, options(**changes), extractor=checked), extractor


def test_generator_from_the_reference_distribution_scores_far_better_than_a_shifted_one(
    reference: ReferenceImages,
) -> None:
    same, _ = run(noise_generator(100.0), reference)
    shifted, _ = run(noise_generator(220.0), reference)  # 4 brightness spreads away
    assert same.fid_rs < 0.1 * shifted.fid_rs
    assert same.fid_rs < 5 * same.fid_rr_mean  # of the order of the real-real floor
    assert same.r_fid > 0.2
    assert shifted.r_fid < 0.05
    assert abs(same.kid_mean) < shifted.kid_mean / 10
    assert same.precision > 0.8 and same.recall > 0.8
    assert shifted.precision < 0.5 and shifted.recall < 0.5


def test_metrics_equal_those_of_all_features_computed_at_once(
    reference: ReferenceImages,
) -> None:
    result, extractor = run(noise_generator(110.0), reference, num_samples=200, batch_size=64)
    generated = np.concatenate(
        [noise_images(n, batch_seed(0, i), 110.0) for i, n in enumerate([64, 64, 64, 8])]
    )

    def features(images: np.ndarray) -> np.ndarray:
        batch = torch.from_numpy(images).to(torch.float32).div(255)[:, None]
        batch = torch.nn.functional.interpolate(batch, size=(8, 8), mode="bilinear")
        with torch.inference_mode():
            out = extractor.extract(batch.expand(-1, 3, -1, -1).contiguous())
        return out.numpy().astype(np.float64)

    real, fake = features(reference.images), features(generated)
    expected = frechet_distance(
        FeatureStatistics.from_features(real), FeatureStatistics.from_features(fake)
    )
    assert result.fid_rs == pytest.approx(expected, rel=1e-6)
    # 200 generated rows fit in the reservoir, so KID and precision/recall saw all of them.
    assert result.features_kept == 200
    assert (result.kid_mean, result.kid_std) == pytest.approx(
        kid(real, fake, subsets=10, subset_size=100, seed=0), rel=1e-6
    )
    assert (result.precision, result.recall) == precision_recall(real, fake, k=5)


def test_evaluate_streams_batches_with_derived_seeds(reference: ReferenceImages) -> None:
    calls: list[tuple[int, int]] = []

    def recording(count: int, seed: int) -> np.ndarray:
        calls.append((count, seed))
        return noise_images(count, seed)

    result, extractor = run(recording, reference, num_samples=250, batch_size=100, seed=7)
    assert [count for count, _ in calls] == [100, 100, 50]
    assert [seed for _, seed in calls] == [batch_seed(7, index) for index in range(3)]
    assert len({seed for _, seed in calls}) == 3
    # The extractor sees the reference in batches too, then one batch per generator call.
    assert extractor.batch_sizes == [100, 100, 100, 100, 100, 100, 50]
    assert result.num_generated == 250
    assert result.num_reference == 400


def test_the_extractor_sees_slices_of_its_own_batch_size_and_the_numbers_stay(
    reference: ReferenceImages,
) -> None:
    whole, _ = run(noise_generator(), reference, num_samples=250, batch_size=100)
    sliced, extractor = run(
        noise_generator(), reference, num_samples=250, batch_size=100, extract_batch_size=30
    )
    # Reference: 4 generator-sized chunks of 100; generated: 100, 100, 50; each in slices of 30.
    assert extractor.batch_sizes == [30, 30, 30, 10] * 6 + [30, 20]
    # The features are the same up to float rounding (a network's sums depend on the batch and
    # on the thread count); this FID is tiny (two draws of one noise), so its relative error is
    # the largest of any: 5e-9 was seen on a loaded machine.
    assert sliced.fid_rs == pytest.approx(whole.fid_rs, rel=1e-6)
    assert sliced.kid_mean == pytest.approx(whole.kid_mean, rel=1e-6)


def test_evaluate_sizes_torch_threads_for_the_run_and_restores_them(
    reference: ReferenceImages, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = torch.get_num_threads()
    seen: list[int] = []

    def recording(count: int, seed: int) -> np.ndarray:
        seen.append(torch.get_num_threads())
        return noise_images(count, seed)

    result, _ = run(recording, reference, num_samples=100, num_threads=1)
    monkeypatch.setenv("MEDIGAN_TORCH_THREADS", "1")
    from_environment, _ = run(recording, reference, num_samples=100)

    assert seen == [1, 1, 1, 1]
    assert result.torch_threads == from_environment.torch_threads == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num_threads must be positive"):
        options(num_threads=0)


def test_evaluate_is_deterministic_for_a_seed_and_changes_with_it(
    reference: ReferenceImages,
) -> None:
    first, _ = run(noise_generator(), reference, seed=3)
    again, _ = run(noise_generator(), reference, seed=3)
    other, _ = run(noise_generator(), reference, seed=4)
    numbers = ("fid_rs", "fid_rr_mean", "fid_rr_std", "kid_mean", "kid_std", "precision", "recall")
    assert [getattr(first, name) for name in numbers] == [getattr(again, name) for name in numbers]
    assert other.fid_rs != first.fid_rs
    assert other.fid_rr_mean != first.fid_rr_mean


def test_kid_and_precision_recall_use_a_bounded_reservoir(reference: ReferenceImages) -> None:
    result, _ = run(noise_generator(), reference, num_samples=300, max_kept_features=40)
    assert result.features_kept == 40
    assert result.kid_subset_size == 40  # capped by the kept generated features
    assert result.num_generated == 300


def test_reservoir_keeps_a_uniform_sample_of_the_whole_stream() -> None:
    reservoir = _Reservoir(500, 1, np.random.default_rng(0))
    for start in range(0, 20_000, 128):
        reservoir.add(np.arange(start, min(start + 128, 20_000), dtype=np.float64)[:, None])
    kept = reservoir.samples()[:, 0]
    assert kept.shape == (500,)
    assert len(set(kept.tolist())) == 500  # rows, not copies of rows
    # A uniform sample of 0..19999: mean 9999.5, std of the sample mean 5773 / sqrt(500) = 258.
    assert abs(kept.mean() - 9999.5) < 4 * 258
    assert (kept >= 15_000).sum() > 75  # late rows are kept, about a quarter of 500


def test_reference_features_are_cached_across_evaluations(
    reference: ReferenceImages, tmp_path: Path
) -> None:
    first, first_extractor = run(noise_generator(), reference, cache_dir=tmp_path, batch_size=100)
    second, second_extractor = run(noise_generator(), reference, cache_dir=tmp_path, batch_size=100)
    assert len(first_extractor.batch_sizes) == 4 + 3
    assert second_extractor.batch_sizes == [100, 100, 100]  # generated batches only
    assert (first.reference_features_cached, second.reference_features_cached) == (False, True)
    assert second.fid_rs == pytest.approx(first.fid_rs, rel=1e-12)
    assert second.fid_rr_mean == first.fid_rr_mean
    uncached, _ = run(noise_generator(), reference, batch_size=100)
    assert uncached.fid_rs == pytest.approx(first.fid_rs, rel=1e-12)
    # Different preprocessing is a different entry.
    run(
        noise_generator(),
        reference,
        cache_dir=tmp_path,
        preprocess=PreprocessOptions(size=8, normalise=False),
    )
    assert len(list(tmp_path.glob("*.statistics.npz"))) == 2


def test_result_records_its_provenance_and_is_json_ready(reference: ReferenceImages) -> None:
    result, extractor = run(noise_generator(), reference, seed=5)
    data = result.to_dict()
    decoded = json.loads(json.dumps(data, allow_nan=False))
    assert decoded["extractor_id"] == "test-projection"
    assert decoded["extractor_weights_sha256"] == extractor.weights_sha256
    assert decoded["comparable_with_published"] is False
    assert decoded["reference_sha256"] == reference.sha256
    assert decoded["reference_split"] == "test"
    assert decoded["preprocess"] == {
        "resize_filter": "bilinear",
        "size": 8,  # resolved from the extractor's input size
        "grayscale_to_rgb": True,
        "normalise": True,
        "per_image_minmax": False,
    }
    assert decoded["seed"] == 5
    assert decoded["kid_subsets"] == 10
    assert decoded["num_generated"] == 300
    timings = decoded["timings"]
    assert set(timings) == {
        "load_extractor_s",
        "features_reference_s",
        "generate_s",
        "features_generated_s",
        "metrics_s",
        "total_s",
    }
    assert timings["load_extractor_s"] == 0.0  # the extractor was passed in
    phases = sum(value for name, value in timings.items() if name != "total_s")
    assert 0 < phases <= timings["total_s"]
    assert min(timings["generate_s"], timings["features_generated_s"], timings["metrics_s"]) > 0
    assert decoded["reference_features_cached"] is False
    assert decoded["torch_threads"] >= 1
    assert set(decoded["software"]) == {"evaluation", "python", "numpy", "scipy", "torch"}
    assert decoded["software"]["numpy"] == np.__version__
    assert decoded["r_fid"] == pytest.approx(result.fid_rr_mean / result.fid_rs)


def test_to_dict_writes_an_infinite_ratio_as_none(reference: ReferenceImages) -> None:
    result, _ = run(noise_generator(), reference, num_samples=100)
    assert result.to_dict()["r_fid"] == result.r_fid
    infinite = dataclasses.replace(result, r_fid=math.inf)
    assert infinite.to_dict()["r_fid"] is None


def test_evaluate_refuses_a_generator_that_returns_the_wrong_batch(
    reference: ReferenceImages,
) -> None:
    def short(count: int, seed: int) -> np.ndarray:
        return noise_images(count - 1, seed)

    def floats(count: int, seed: int) -> np.ndarray:
        return noise_images(count, seed).astype(np.float32)

    with pytest.raises(ValueError, match="asked for 64 images"):
        run(short, reference)
    with pytest.raises(ValueError, match="uint8"):
        run(floats, reference)


def test_evaluate_refuses_an_extractor_other_than_the_one_named(
    reference: ReferenceImages,
) -> None:
    with pytest.raises(ValueError, match="does not match"):
        evaluate(
            noise_generator(),
            reference,
            options(extractor_id="medical-cnn"),
            extractor=ProjectionExtractor(),
        )
