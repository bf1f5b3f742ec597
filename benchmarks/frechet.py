"""Speed of `frechet_distance` against the scipy `sqrtm` reference, at N = 10,000, d = 2048.

Run from the repository root: `python benchmarks/frechet.py [--samples N] [--dim D] [--repeats R]`.
Both methods run on the same statistics in the same process, alternating, `--repeats` times
each; the ratio of their median times is the number to read (goal: at least 5x), since absolute
times depend on the machine and on what else it runs. It also prints the relative difference of
the two values, which the unit tests bound by 1e-6.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# `python benchmarks/frechet.py` puts benchmarks/ on the path, not the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation.metrics import (
    FeatureStatistics,
    RunningStatistics,
    frechet_distance,
    frechet_distance_sqrtm,
)


def feature_statistics(
    rng: np.random.Generator, samples: int, dim: int, shift: float
) -> FeatureStatistics:
    """Statistics of `samples` correlated, non-negative features (pooled-activation-like)."""
    mixing = rng.standard_normal((dim, dim)) / math.sqrt(dim)
    running = RunningStatistics(dim)
    # In blocks: the statistics are what is benchmarked, not holding 10,000 x 2048 doubles.
    for start in range(0, samples, 1000):
        count = min(1000, samples - start)
        running.update(np.abs(rng.standard_normal((count, dim)) @ mixing + shift))
    return running.finalize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    clock = time.perf_counter()
    a = feature_statistics(rng, args.samples, args.dim, 0.0)
    b = feature_statistics(rng, args.samples, args.dim, 0.1)
    print(
        f"statistics of 2 x {args.samples} features, d = {args.dim}: "
        f"{time.perf_counter() - clock:.1f} s (not timed below)"
    )
    print(
        f"cpus: {os.cpu_count()}, load average before timing: "
        f"{', '.join(f'{value:.2f}' for value in os.getloadavg())}"
    )

    times: dict[str, list[float]] = {"frechet_distance": [], "frechet_distance_sqrtm": []}
    values: dict[str, float] = {}
    for repeat in range(args.repeats):
        # Alternate the order so that neither method always runs on a warmer (or busier) machine.
        order = [frechet_distance, frechet_distance_sqrtm]
        if repeat % 2:
            order.reverse()
        for method in order:
            clock = time.perf_counter()
            values[method.__name__] = method(a, b)
            times[method.__name__].append(time.perf_counter() - clock)

    for name, runs in times.items():
        runs_text = ", ".join(f"{run:.2f}" for run in runs)
        print(
            f"{name:24s} median {statistics.median(runs):7.2f} s  min {min(runs):7.2f} s  "
            f"runs [{runs_text}]  value {values[name]:.10f}"
        )
    fast = statistics.median(times["frechet_distance"])
    reference = statistics.median(times["frechet_distance_sqrtm"])
    relative = abs(values["frechet_distance"] - values["frechet_distance_sqrtm"]) / abs(
        values["frechet_distance_sqrtm"]
    )
    ratio = reference / fast
    min_ratio = min(times["frechet_distance_sqrtm"]) / min(times["frechet_distance"])
    print(
        f"speed-up (median sqrtm / median frechet_distance): {ratio:.1f}x "
        f"(goal >= 5x: {'met' if ratio >= 5 else 'NOT met'}); "
        f"min-time ratio {min_ratio:.1f}x"
    )
    print(f"relative difference of the values: {relative:.2e} (tests require <= 1e-6)")


if __name__ == "__main__":
    main()
