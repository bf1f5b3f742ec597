"""Peak memory of `evaluate()` at 1,000 and at 10,000 generated samples (goal: ratio <= 1.2).

Run from the repository root: `python benchmarks/evaluate_memory.py [--samples 1000 10000]`.
Each size runs in a fresh child process, which reports `resource.getrusage(RUSAGE_SELF)
.ru_maxrss` (the process's peak resident set size) after `evaluate()` returns; fresh processes so
that one run's allocations cannot hide or inflate the other's peak. The generator makes 64 x 64
grayscale noise; the extractor is `medical-cnn` when its committed weights load, else the
`NoiseProjection` test extractor defined here (the output says which). The reference set is the
chest X-ray test split from ../shared/data when present, else 624 noise images.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

# `python benchmarks/evaluate_memory.py` puts benchmarks/ on the path, not the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation.features import FeatureExtractor, WeightsError, load_extractor
from evaluation.preprocessing import PreprocessOptions
from evaluation.references import ReferenceImages, load_npz_split
from evaluation.runner import EvaluationOptions, evaluate

REPO_ROOT = Path(__file__).resolve().parent.parent


class NoiseProjection:
    """Fallback extractor: a fixed random linear map of 64 x 64 RGB images to 256 features."""

    id = "benchmark-projection"
    feature_dim = 256
    input_size = 64
    comparable_with_published = False
    batch_size = 250

    def __init__(self) -> None:
        weights = np.random.default_rng(0).standard_normal((3 * 64 * 64, 256)) / 64.0
        self.projection = torch.from_numpy(weights.astype(np.float32))
        self.weights_sha256 = hashlib.sha256(weights.tobytes()).hexdigest()

    def extract(self, batch: torch.Tensor, *, normalise: bool = True) -> torch.Tensor:
        values = batch * 2.0 - 1.0 if normalise else batch
        return values.reshape(batch.shape[0], -1) @ self.projection


def noise(count: int, seed: int) -> np.ndarray[Any, Any]:
    """The benchmark's generator: uniform 64 x 64 grayscale noise."""
    return np.random.default_rng(seed).integers(0, 256, (count, 64, 64), dtype=np.uint8)


def shared_dir() -> Path:
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def reference_set() -> ReferenceImages:
    path = shared_dir() / "data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz"
    if path.is_file():
        return load_npz_split(path, "test", id="chest-xray-test")
    return ReferenceImages.from_images("noise", "test", noise(624, seed=10**6))


def extractor_for_benchmark() -> tuple[FeatureExtractor, str]:
    try:
        return load_extractor("medical-cnn"), "medical-cnn (committed weights)"
    except (WeightsError, ImportError) as exc:
        reason = str(exc).splitlines()[0]
        return NoiseProjection(), f"{NoiseProjection.id} (medical-cnn unavailable: {reason})"


def child(samples: int) -> None:
    """Run one evaluation and print its peak RSS as JSON on the last line of stdout."""
    torch.set_num_threads(1)  # the same thread pools at every size; peaks stay comparable
    extractor, description = extractor_for_benchmark()
    reference = reference_set()
    options = EvaluationOptions(
        extractor_id=extractor.id,
        num_samples=samples,
        batch_size=100,
        preprocess=PreprocessOptions(),
    )
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    clock = time.perf_counter()
    result = evaluate(noise, reference, options, extractor=extractor)
    seconds = time.perf_counter() - clock
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "samples": samples,
                "extractor": description,
                "reference": f"{reference.id} ({len(reference)} images)",
                "peak_rss_mib": peak_kib / 1024,
                "peak_rss_before_evaluate_mib": before_kib / 1024,
                "features_kept": result.features_kept,
                "fid_rs": result.fid_rs,
                "seconds": seconds,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return

    reports = []
    for samples in args.samples:
        completed = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", str(samples)],
            check=True,
            capture_output=True,
            text=True,
        )
        report = json.loads(completed.stdout.strip().splitlines()[-1])
        reports.append(report)
        print(
            f"{report['samples']:>6} samples: peak RSS {report['peak_rss_mib']:8.1f} MiB "
            f"(before evaluate {report['peak_rss_before_evaluate_mib']:.1f} MiB), "
            f"{report['features_kept']} features kept, FID {report['fid_rs']:.3f}, "
            f"{report['seconds']:.1f} s"
        )
    print(f"extractor: {reports[0]['extractor']}; reference: {reports[0]['reference']}")
    if len(reports) >= 2:
        ratio = reports[-1]["peak_rss_mib"] / reports[0]["peak_rss_mib"]
        verdict = "met" if ratio <= 1.2 else "NOT met"
        print(
            f"peak ratio {reports[-1]['samples']} / {reports[0]['samples']} samples: "
            f"{ratio:.3f} (goal <= 1.2: {verdict})"
        )


if __name__ == "__main__":
    main()
