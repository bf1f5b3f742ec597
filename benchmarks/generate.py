"""Throughput and memory of the client's generation pipeline (goals: c/b >= 1.0, RSS ratio <= 1.2,
per-sample-seed throughput within 15 % of batched).

Run from the repository root: `python benchmarks/generate.py [--samples 2000] [--repeats 3]
[--isolation inprocess process] [--memory-samples 1000 100000]`. The model is the zoo's 64 x 64
chest X-ray DCGAN (zoo/chestxray_dcgan_64/package, its card.json; no network, no cache). For each
isolation mode one runner is opened and warmed, then images per second are printed for

  (a) the model alone: `generate_batch` over the run's batches, nothing written,
  (b) the serial floor: per batch, `generate_batch`, then each PNG encoded and written in the same
      thread with the client's own PNG writer,
  (c) the client's `generate_from_package(format="png")` on that runner: writer threads,

with the same batches and seeds in all three (per-sample seeds where the runner takes them, as the
client does), each the median of `--repeats` rounds run in turn (a, b, c, a, b, c, ...) so that the
load of a shared machine falls on all three alike; then the ratio c / b. Where the package takes
per-sample seeds, each round also times

  (s) the model alone with batch seeds only (one seed per call, the batched figure),

in the same rounds, and the ratio a / s says what per-sample seeds cost (goal >= 0.85).

Memory comes first, before this process imports torch: the peak RSS of `generate_from_package`
(default isolation, a fresh runner) at each of `--memory-samples`, each in a fresh child process
that reports its own `ru_maxrss` (`getrusage(RUSAGE_SELF)`), the `ru_maxrss` of its own children
(`RUSAGE_CHILDREN`: the model's process when the runner is one) and `VmHWM` from /proc (which,
unlike `ru_maxrss`, does not start from the parent's peak at fork), and the ratio last / first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / "zoo" / "chestxray_dcgan_64" / "package"

# `python benchmarks/generate.py` puts benchmarks/ on the path, not the repository root.
sys.path.insert(0, str(REPO_ROOT))

from medigan_catalog.schema import Card, card_from_json  # noqa: E402
from medigan_client.batching import BatchPlan, plan_batches  # noqa: E402
from medigan_client.generate import GenerationOptions, generate_from_package  # noqa: E402
from medigan_client.outputs import PngWriter, RunProvenance  # noqa: E402
from medigan_client.runtime import GeneratedBatch, Runner, open_runner  # noqa: E402

ARGS: dict[str, object] = {"truncation": 1.0}


class BatchSeedsOnly:
    """A runner that hides per-sample seed support, so every call is one batched forward pass."""

    def __init__(self, runner: Runner):
        self.runner = runner
        self.isolation = runner.isolation
        self.supports_sample_seeds = False

    def generate_batch(self, num_samples: int, **kwargs: Any) -> GeneratedBatch:
        kwargs["sample_seeds"] = None
        return self.runner.generate_batch(num_samples, **kwargs)

    def close(self) -> None:
        self.runner.close()

    def __enter__(self) -> BatchSeedsOnly:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_card() -> Card:
    return card_from_json(json.loads((PACKAGE_DIR / "card.json").read_text(encoding="utf-8")))


def plans(runner: Runner, samples: int, batch_size: int) -> list[BatchPlan]:
    """The client's batches and seeds for samples [0, samples)."""
    per_sample = bool(runner.supports_sample_seeds)
    return list(plan_batches(0, batch_size, 0, samples, per_sample_seeds=per_sample))


def model_only(runner: Runner, samples: int, batch_size: int) -> float:
    """(a): seconds for the calls that make ``samples`` images."""
    clock = time.perf_counter()
    for plan in plans(runner, samples, batch_size):
        runner.generate_batch(
            plan.generate_count,
            seed=plan.batch_seed,
            device="cpu",
            args=ARGS,
            sample_seeds=plan.sample_seeds,
        )
    return time.perf_counter() - clock


def serial_floor(runner: Runner, card: Card, samples: int, batch_size: int, out: Path) -> float:
    """(b): seconds for each call, then each PNG encoded and written, in one thread."""
    writer = PngWriter(card, RunProvenance(model_id=card.model_id, version=card.version))
    clock = time.perf_counter()
    for plan in plans(runner, samples, batch_size):
        batch = runner.generate_batch(
            plan.generate_count,
            seed=plan.batch_seed,
            device="cpu",
            args=ARGS,
            sample_seeds=plan.sample_seeds,
        )
        for position in range(plan.count):
            index = plan.first + position
            record: dict[str, object] = {
                "index": index,
                "batch_seed": plan.batch_seed,
                "batch_start": plan.grid_start,
                "batch_size": batch_size,
                "args": ARGS,
            }
            sample_seed = plan.sample_seed(position)
            if sample_seed is not None:
                record["sample_seed"] = sample_seed
            writer.write(batch.images[position], out / f"{index:06d}", record)
    return time.perf_counter() - clock


def client_pipeline(
    card: Card,
    samples: int,
    batch_size: int,
    out: Path,
    *,
    workers: int | None = None,
    runner: Runner | None = None,
) -> float:
    """(c): seconds for the client's generate writing PNGs through its writer threads."""
    clock = time.perf_counter()
    generate_from_package(
        card,
        PACKAGE_DIR,
        samples,
        out,
        GenerationOptions(
            batch_size=batch_size, device="cpu", args=ARGS, progress=False, workers=workers
        ),
        runner=runner,
    )
    return time.perf_counter() - clock


def high_water_mib() -> float:
    """VmHWM of this process in MiB (0 where /proc is missing)."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return 0.0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def memory_child(samples: int, options: argparse.Namespace) -> None:
    """Generate ``samples`` PNGs once (fresh runner) and print peaks as JSON on the last line."""
    card = load_card()
    out = Path(tempfile.mkdtemp(prefix="medigan-bench-memory-"))
    try:
        with open_runner(PACKAGE_DIR, card) as opened:
            runner = cast(Runner, BatchSeedsOnly(opened)) if options.batch_seeds else opened
            isolation = opened.isolation
            seconds = client_pipeline(
                card, samples, options.batch_size, out, workers=options.workers, runner=runner
            )
        # Read before anything else touches the 100,000 files: pathlib's glob and shutil.rmtree
        # list a whole directory in memory, which is the benchmark's cost, not generate's.
        peaks = {
            # KiB on Linux.
            "self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "hwm_mib": high_water_mib(),
        }
        files = 0
        with os.scandir(out) as entries:
            files = sum(1 for entry in entries if entry.name.endswith(".png"))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(
        json.dumps(
            {
                "samples": samples,
                "files": files,
                "isolation": isolation,
                **peaks,
                "seconds": seconds,
            }
        )
    )


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def measure_memory(options: argparse.Namespace) -> None:
    reports = []
    flags = ["--batch-size", str(options.batch_size)]
    flags += ["--batch-seeds"] if options.batch_seeds else []
    flags += ["--workers", str(options.workers)] if options.workers else []
    for samples in options.memory_samples:
        command = [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(samples)]
        completed = subprocess.run(command + flags, check=True, capture_output=True, text=True)
        report = json.loads(completed.stdout.strip().splitlines()[-1])
        reports.append(report)
        print(
            f"{samples:>7} samples: client process peak RSS {report['self_mib']:7.1f} MiB "
            f"(VmHWM {report['hwm_mib']:.1f}), its model process {report['children_mib']:.1f} "
            f"MiB; {report['files']} files, {samples / report['seconds']:.0f} img/s "
            f"(isolation {report['isolation']})",
            flush=True,
        )
    parent_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"  (RUSAGE_CHILDREN of this process, the maximum of all above: {parent_children:.1f})")
    if len(reports) >= 2:
        first, last = reports[0], reports[-1]
        for key, name in (("self_mib", "client process"), ("children_mib", "model process")):
            if first[key] > 0:
                ratio = last[key] / first[key]
                verdict = "met" if ratio <= 1.2 else "NOT met"
                print(
                    f"peak RSS ratio {last['samples']} / {first['samples']} samples, {name}: "
                    f"{ratio:.3f} (goal <= 1.2: {verdict})"
                )


def measure_throughput(options: argparse.Namespace) -> None:
    import torch

    if options.torch_threads is not None:
        torch.set_num_threads(options.torch_threads)
    card = load_card()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads in this process")
    names = {
        "a": "(a) model alone",
        "b": "(b) model + serial PNG (floor)",
        "c": "(c) client generate, PNG",
        "s": "(s) model alone, batch seeds",
    }
    for isolation in options.isolation:
        timings: dict[str, list[float]] = {"a": [], "b": [], "c": [], "s": []}
        clock = time.perf_counter()
        with open_runner(PACKAGE_DIR, card, isolation=isolation) as opened:
            runner = cast(Runner, BatchSeedsOnly(opened)) if options.batch_seeds else opened
            model_only(runner, options.batch_size, options.batch_size)  # load the weights
            started = time.perf_counter() - clock
            # The batched figure, measured in the same rounds where the runner seeds each sample.
            batched = cast(Runner, BatchSeedsOnly(opened)) if runner.supports_sample_seeds else None
            for _ in range(options.repeats):
                timings["a"].append(model_only(runner, options.samples, options.batch_size))
                if batched is not None:
                    timings["s"].append(model_only(batched, options.samples, options.batch_size))
                for key in ("b", "c"):
                    out = Path(tempfile.mkdtemp(prefix=f"medigan-bench-{key}-"))
                    try:
                        if key == "b":
                            seconds = serial_floor(
                                runner, card, options.samples, options.batch_size, out
                            )
                        else:
                            seconds = client_pipeline(
                                card,
                                options.samples,
                                options.batch_size,
                                out,
                                workers=options.workers,
                                runner=runner,
                            )
                    finally:
                        shutil.rmtree(out, ignore_errors=True)
                    timings[key].append(seconds)
            seeds = "per-sample seeds" if runner.supports_sample_seeds else "batch seeds"
        print(
            f"isolation {isolation} ({seeds}; runner ready after {started:.1f} s), "
            f"{options.samples} images, batch size {options.batch_size}:"
        )
        rates = {
            key: options.samples / statistics.median(values)
            for key, values in timings.items()
            if values
        }
        for key, name in names.items():
            if key not in rates:
                continue
            rounds = ", ".join(f"{options.samples / s:.0f}" for s in timings[key])
            print(f"  {name:32s} {rates[key]:7.0f} img/s   (rounds: {rounds})")
        ratio = rates["c"] / rates["b"]
        verdict = "met" if ratio >= 1.0 else "NOT met"
        print(
            f"  c / b = {ratio:.3f} (goal >= 1.0: {verdict}); c / a = {rates['c'] / rates['a']:.3f}"
        )
        if "s" in rates:
            seeds_ratio = rates["a"] / rates["s"]
            verdict = "met" if seeds_ratio >= 0.85 else "NOT met"
            print(
                f"  per-sample seeds / batched = {seeds_ratio:.3f} "
                f"(goal >= 0.85, within 15 %: {verdict})"
            )
        print(f"  now: {load()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000, help="images per throughput round")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="writer threads of (c)")
    parser.add_argument(
        "--isolation", nargs="*", default=["inprocess", "process"], help="runtimes to measure"
    )
    parser.add_argument(
        "--batch-seeds",
        action="store_true",
        help="hide the package's per-sample seeds: one batched forward pass per call",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch threads here and OMP_NUM_THREADS of model processes (default: torch's)",
    )
    parser.add_argument("--memory-samples", type=int, nargs="*", default=[1000, 100_000])
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.memory_child is not None:
        memory_child(options.memory_child, options)
        return
    if options.torch_threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(options.torch_threads)  # children inherit it
    print(f"start: {load()}", flush=True)
    if options.memory_samples:
        measure_memory(options)
    if options.isolation and options.samples > 0:
        measure_throughput(options)
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
