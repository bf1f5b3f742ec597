"""`evaluate`: generate samples, extract features and compute every metric, in bounded memory.

The generated set is streamed: each batch is generated, preprocessed and passed through the
extractor, its features are merged into running mean/covariance, and at most
`max_kept_features` feature rows are kept (a seeded uniform reservoir sample) for the metrics
that need samples rather than statistics (KID, precision/recall). Memory therefore depends on
the batch size, the feature dimension and that cap, not on `num_samples`.

The reference set is small (at most a few thousand images), so its features are computed at
once and, with a `cache_dir`, cached with their statistics under a key of reference, split,
extractor, weights hash and resolved preprocessing.

Each generated batch is preprocessed and extracted in slices of the extractor's `batch_size`,
which bounds the memory of the network's activations (an Inception batch of 250 images at 299
pixels would hold several GiB of them). torch's thread pool is sized to the CPUs this process may
use (`evaluation.threads`) for the run and restored after it.

The result records everything a number depends on (extractor and weights hash, preprocessing,
sample counts, seeds, software versions), so that two results can be told comparable or not,
and how long each phase took (`Timings`), so that a slow evaluation can be told why.
"""

from __future__ import annotations

import importlib.metadata
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy
import torch

from evaluation.features import FeatureExtractor, load_extractor
from evaluation.metrics import (
    FeatureStatistics,
    RunningStatistics,
    fid_rr,
    frechet_distance,
    frechet_distance_to_statistics,
    kid,
    precision_recall,
    relative_fid,
)
from evaluation.preprocessing import PreprocessOptions, preprocess
from evaluation.references import ReferenceImages, StatisticsCache, StatisticsKey
from evaluation.threads import configured_threads, torch_threads

__all__ = [
    "EvaluationOptions",
    "EvaluationResult",
    "Generator",
    "Progress",
    "Timings",
    "batch_seed",
    "evaluate",
]

Generator = Callable[[int, int], np.ndarray[Any, Any]]
"""(num_samples, seed) -> uint8 images (num_samples, H, W) or (num_samples, H, W, C)."""

Progress = Callable[[str, int, int], None]
"""(stage, done, total): stage "reference" counts reference images, "generated" samples."""


@dataclass(frozen=True)
class EvaluationOptions:
    """What to compute and how; every field that changes a number is recorded in the result.

    `batch_size` is how many samples the generator is asked for at once (the extractor works in
    slices of its own `batch_size`). `num_threads` sizes torch's thread pool for the run; None
    means `MEDIGAN_TORCH_THREADS`, else the CPUs available to the process.
    """

    extractor_id: str
    num_samples: int = 1000
    batch_size: int = 100
    seed: int = 0
    preprocess: PreprocessOptions = field(default_factory=PreprocessOptions)
    fid_rr_splits: int = 10
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    nearest_k: int = 5
    max_kept_features: int = 2000
    device: str = "cpu"
    weights_path: Path | None = None
    cache_dir: Path | None = None
    num_threads: int | None = None

    def __post_init__(self) -> None:
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be positive or None, got {self.num_threads}")
        for name in ("num_samples", "batch_size", "max_kept_features", "fid_rr_splits"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_samples < 2:
            raise ValueError(f"num_samples must be at least 2, got {self.num_samples}")
        if self.kid_subsets < 1 or self.kid_subset_size < 2:
            raise ValueError("kid_subsets must be >= 1 and kid_subset_size >= 2")
        if self.nearest_k < 1:
            raise ValueError(f"nearest_k must be positive, got {self.nearest_k}")


@dataclass(frozen=True)
class Timings:
    """Wall-clock seconds of each phase of one `evaluate()` call.

    `load_extractor_s`: building the network and reading (and hashing) its weights, 0 when the
    caller passed the extractor; `features_reference_s`: the reference set's features, computed
    or read from the cache; `generate_s`: inside the generator; `features_generated_s`:
    preprocessing and extracting the generated samples; `metrics_s`: streaming statistics, the
    reservoir and every metric; `total_s`: the whole call.
    """

    load_extractor_s: float
    features_reference_s: float
    generate_s: float
    features_generated_s: float
    metrics_s: float
    total_s: float


@dataclass(frozen=True)
class EvaluationResult:
    """The numbers of one evaluation and everything they depend on.

    `r_fid` is +inf when `fid_rs` is 0 and `fid_rr` is not (see `relative_fid`); `to_dict`
    writes non-finite numbers as None, as JSON has no infinity. `features_kept` is how many
    generated feature rows KID and precision/recall saw (min(num_generated, max_kept_features)).
    `reference_features_cached` says whether the reference features came from the cache, and
    `torch_threads` how many threads computed; neither changes a number beyond rounding.
    """

    fid_rs: float
    fid_rr_mean: float
    fid_rr_std: float
    r_fid: float
    kid_mean: float
    kid_std: float
    precision: float
    recall: float
    num_generated: int
    num_reference: int
    reference_id: str
    reference_split: str
    reference_sha256: str
    extractor_id: str
    extractor_weights_sha256: str
    comparable_with_published: bool
    preprocess: dict[str, Any]
    seed: int
    fid_rr_splits: int
    kid_subsets: int
    kid_subset_size: int
    nearest_k: int
    features_kept: int
    timings: Timings
    reference_features_cached: bool
    torch_threads: int
    software: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (plain types; NaN and infinity as None)."""
        return {
            name: (None if isinstance(value, float) and not math.isfinite(value) else value)
            for name, value in asdict(self).items()
        }


def batch_seed(seed: int, batch_index: int) -> int:
    """The seed passed to the generator for batch `batch_index` of an evaluation seeded `seed`.

    Derived through `np.random.SeedSequence((seed, batch_index))`, so batches get independent
    streams and the same (seed, batch size) always yields the same samples.
    """
    state = np.random.SeedSequence((seed, batch_index)).generate_state(1, dtype=np.uint32)
    return int(state[0])


def evaluate(
    generator: Generator,
    reference: ReferenceImages,
    options: EvaluationOptions,
    *,
    extractor: FeatureExtractor | None = None,
    progress: Progress | None = None,
) -> EvaluationResult:
    """Evaluate `generator` against `reference`: FID_rs, FID_rr, r_FID, KID, precision, recall.

    The generator is called ceil(num_samples / batch_size) times, for batch_size samples (the
    last call for the remainder), with the seed `batch_seed(options.seed, index)`. `extractor`
    overrides loading `options.extractor_id` (its id must match). Raises ValueError when the
    generator returns something other than the requested number of uint8 images.
    """
    threads = configured_threads(options.num_threads)
    with torch_threads(threads):
        return _evaluate(generator, reference, options, extractor, progress, threads)


def _evaluate(
    generator: Generator,
    reference: ReferenceImages,
    options: EvaluationOptions,
    extractor: FeatureExtractor | None,
    progress: Progress | None,
    threads: int,
) -> EvaluationResult:
    started = time.perf_counter()
    load_extractor_s = 0.0
    if extractor is None:
        extractor = load_extractor(
            options.extractor_id, weights_path=options.weights_path, device=options.device
        )
        load_extractor_s = time.perf_counter() - started
    elif extractor.id != options.extractor_id:
        raise ValueError(
            f"extractor {extractor.id!r} does not match options.extractor_id "
            f"{options.extractor_id!r}"
        )
    preprocess_options = options.preprocess.resolve(extractor)

    clock = time.perf_counter()
    reference_features, cached = _reference_features(
        reference, extractor, preprocess_options, options, progress
    )
    features_reference_s = time.perf_counter() - clock

    clock = time.perf_counter()
    reference_statistics = _reference_statistics(
        reference, extractor, preprocess_options, options, reference_features
    )
    metrics_s = time.perf_counter() - clock

    running = RunningStatistics(extractor.feature_dim)
    reservoir = _Reservoir(
        options.max_kept_features, extractor.feature_dim, np.random.default_rng(options.seed)
    )
    generate_s = 0.0
    features_generated_s = 0.0
    num_batches = math.ceil(options.num_samples / options.batch_size)
    for index in range(num_batches):
        count = min(options.batch_size, options.num_samples - index * options.batch_size)
        clock = time.perf_counter()
        images = generator(count, batch_seed(options.seed, index))
        generate_s += time.perf_counter() - clock
        _check_generated(images, count, index)
        clock = time.perf_counter()
        features = _extract(images, extractor, preprocess_options)
        del images
        features_generated_s += time.perf_counter() - clock
        clock = time.perf_counter()
        running.update(features)
        reservoir.add(features)
        metrics_s += time.perf_counter() - clock
        if progress is not None:
            progress("generated", index * options.batch_size + count, options.num_samples)

    clock = time.perf_counter()
    generated_statistics = running.finalize()
    kept = reservoir.samples()
    if len(reference) < extractor.feature_dim:
        # The reference covariance is singular: its features factor it directly (no d x d
        # eigendecomposition, which took most of an Inception evaluation's metrics time).
        fid_rs = frechet_distance_to_statistics(reference_features, generated_statistics)
    else:
        fid_rs = frechet_distance(reference_statistics, generated_statistics)
    rr_mean, rr_std = fid_rr(reference_features, splits=options.fid_rr_splits, seed=options.seed)
    kid_mean, kid_std = kid(
        reference_features,
        kept,
        subsets=options.kid_subsets,
        subset_size=options.kid_subset_size,
        seed=options.seed,
    )
    precision, recall = precision_recall(reference_features, kept, k=options.nearest_k)
    metrics_s += time.perf_counter() - clock

    return EvaluationResult(
        fid_rs=fid_rs,
        fid_rr_mean=rr_mean,
        fid_rr_std=rr_std,
        r_fid=relative_fid(rr_mean, fid_rs),
        kid_mean=kid_mean,
        kid_std=kid_std,
        precision=precision,
        recall=recall,
        num_generated=generated_statistics.count,
        num_reference=len(reference),
        reference_id=reference.id,
        reference_split=reference.split,
        reference_sha256=reference.sha256,
        extractor_id=extractor.id,
        extractor_weights_sha256=extractor.weights_sha256,
        comparable_with_published=extractor.comparable_with_published,
        preprocess=preprocess_options.to_dict(),
        seed=options.seed,
        fid_rr_splits=options.fid_rr_splits,
        kid_subsets=options.kid_subsets,
        kid_subset_size=min(options.kid_subset_size, len(reference), kept.shape[0]),
        nearest_k=options.nearest_k,
        features_kept=int(kept.shape[0]),
        timings=Timings(
            load_extractor_s=load_extractor_s,
            features_reference_s=features_reference_s,
            generate_s=generate_s,
            features_generated_s=features_generated_s,
            metrics_s=metrics_s,
            total_s=time.perf_counter() - started,
        ),
        reference_features_cached=cached,
        torch_threads=threads,
        software=_software_versions(),
    )


class _Reservoir:
    """A uniform random sample of at most `capacity` rows of a stream (Vitter's Algorithm R).

    After t rows, every row seen so far is kept with probability min(1, capacity / t),
    independently of when it arrived, so KID and precision/recall see an unbiased subsample of
    all generated samples, not the first batches.
    """

    def __init__(self, capacity: int, dim: int, rng: np.random.Generator) -> None:
        self._rows = np.empty((capacity, dim), dtype=np.float64)
        self._capacity = capacity
        self._seen = 0
        self._rng = rng

    def add(self, batch: npt.NDArray[np.float64]) -> None:
        n = batch.shape[0]
        fill = min(max(self._capacity - self._seen, 0), n)
        self._rows[self._seen : self._seen + fill] = batch[:fill]
        if fill < n:
            # Row number t (1-based) of the stream replaces a random slot with probability
            # capacity / t: draw j uniform in [0, t) and replace slot j when j < capacity.
            positions = np.arange(self._seen + fill + 1, self._seen + n + 1)
            slots = self._rng.integers(0, positions)
            for row, slot in zip(range(fill, n), slots, strict=True):
                if slot < self._capacity:
                    self._rows[slot] = batch[row]
        self._seen += n

    def samples(self) -> npt.NDArray[np.float64]:
        return self._rows[: min(self._seen, self._capacity)]


def _check_generated(images: object, count: int, index: int) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise ValueError(f"generator batch {index}: expected a uint8 numpy array of images")
    if images.ndim not in (3, 4) or images.shape[0] != count:
        raise ValueError(
            f"generator batch {index}: asked for {count} images, got an array of shape "
            f"{images.shape}"
        )


def _extract(
    images: np.ndarray[Any, Any], extractor: FeatureExtractor, options: PreprocessOptions
) -> npt.NDArray[np.float64]:
    # Slices of the extractor's batch size: the preprocessed images and the activations of one
    # slice at a time, whatever the generator's batch.
    step = max(int(extractor.batch_size), 1)
    rows = []
    for start in range(0, images.shape[0], step):
        batch = preprocess(images[start : start + step], options, extractor)
        with torch.inference_mode():
            features = extractor.extract(batch, normalise=options.normalise)
        del batch
        rows.append(features.detach().cpu().numpy().astype(np.float64))
    array: npt.NDArray[np.float64] = rows[0] if len(rows) == 1 else np.concatenate(rows)
    if array.shape != (images.shape[0], extractor.feature_dim):
        raise ValueError(
            f"extractor {extractor.id!r} returned features of shape {array.shape}, expected "
            f"({images.shape[0]}, {extractor.feature_dim})"
        )
    return array


def _statistics_key(
    reference: ReferenceImages, extractor: FeatureExtractor, options: PreprocessOptions
) -> StatisticsKey:
    return StatisticsKey(
        reference_id=reference.id,
        reference_split=reference.split,
        reference_sha256=reference.sha256,
        extractor_id=extractor.id,
        weights_sha256=extractor.weights_sha256,
        preprocess_key=options.key(),
    )


def _reference_features(
    reference: ReferenceImages,
    extractor: FeatureExtractor,
    preprocess_options: PreprocessOptions,
    options: EvaluationOptions,
    progress: Progress | None,
) -> tuple[npt.NDArray[np.float64], bool]:
    """The reference set's features, and whether they came from the cache."""
    computed = False

    def compute() -> npt.NDArray[np.float64]:
        nonlocal computed
        computed = True
        total = len(reference)
        rows = []
        for start in range(0, total, options.batch_size):
            chunk = reference.images[start : start + options.batch_size]
            rows.append(_extract(chunk, extractor, preprocess_options))
            if progress is not None:
                progress("reference", start + chunk.shape[0], total)
        return np.concatenate(rows, axis=0)

    if options.cache_dir is None:
        return compute(), False
    cache = StatisticsCache(options.cache_dir)
    key = _statistics_key(reference, extractor, preprocess_options)
    features = cache.get_or_compute_features(key, compute)
    return features, not computed


def _reference_statistics(
    reference: ReferenceImages,
    extractor: FeatureExtractor,
    preprocess_options: PreprocessOptions,
    options: EvaluationOptions,
    features: npt.NDArray[np.float64],
) -> FeatureStatistics:
    if options.cache_dir is None:
        return FeatureStatistics.from_features(features)
    cache = StatisticsCache(options.cache_dir)
    key = _statistics_key(reference, extractor, preprocess_options)
    return cache.get_or_compute(key, lambda: FeatureStatistics.from_features(features))


def _software_versions() -> dict[str, str]:
    try:
        # `evaluation` ships in the medigan-hub distribution; a source checkout has no metadata.
        evaluation_version = importlib.metadata.version("medigan-hub")
    except importlib.metadata.PackageNotFoundError:
        evaluation_version = "source"
    return {
        "evaluation": evaluation_version,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
    }
