"""Throughput and memory of the client's generation pipeline (goals: c/b >= 1.0, RSS ratio <= 1.2,
per-sample-seed throughput within 15 % of batched), and the client against medigan 1.0.0.

Run from the repository root: `python benchmarks/generate.py [--samples 2000] [--repeats 3]
[--isolation inprocess process] [--memory-samples 1000 100000] [--medigan-samples 1000 5000]`
(an empty `--isolation`, `--memory-samples` or `--medigan-samples` skips that part). The model
is the zoo's 64 x 64 chest X-ray DCGAN (zoo/chestxray_dcgan_64/package, its card.json; no
network, no cache). For each isolation mode one runner is opened and warmed, then images per
second are printed for

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

Last, where medigan 1.0.0 is installed (run the script with `.venv-reference/bin/python`; the
client and catalogue are installed editable there, so every side uses that torch), medigan's
own `Generators.generate` against the client on medigan's DCGAN 128 x 128 template network
(goals: v2 >= 1.5x medigan, legacy >= 1.2x). The network (benchmarks/dcgan128/network.py) gets
random weights from a fixed seed and is written, in a temporary folder, as

  (a) a medigan-legacy package laid out as medigan extracts packages, models/<id>/<package>/
      with the template's generate(model_file, num_samples, output_path, save_images) and its
      500.pt, plus the global.json entry medigan's ConfigManager is given as a dict (offline),
  (b) a v2 package of the same weights (safetensors, loaded once by package_support).

For each torch thread count (`--medigan-threads`, default 1 2; OMP_NUM_THREADS of every
process) medigan runs in a child Python of this interpreter, warmed once and timed around
`Generators.generate(model_id, num_samples, output_path)` (save_images=True, its default: 32
samples a call, PNG files); our two paths are `generate_from_package` (what `Client.generate`
runs once the release is cached) on runners opened and warmed once, default isolation, PNG, at
`--batch-size-template` (default: the client's default for each, 16 for v2 and 32 for
medigan-legacy packages; `batching.default_batch_size`). For each of `--medigan-samples`
(default 1000; the full grid is `1000 5000`) the three run in turn `--medigan-repeats` times;
medians, img/s, ratios to medigan and the load are printed, with each path's CPU time per image
(medigan's process; the client's process and its model's), which the machine's other jobs move
far less than the wall clock.
"""

from __future__ import annotations

import argparse
import importlib.util
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / "zoo" / "chestxray_dcgan_64" / "package"
DCGAN128_SOURCES = Path(__file__).resolve().parent / "dcgan128"

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


# ---- medigan 1.0.0 against the client, on medigan's DCGAN 128 template -----------------------

MEDIGAN_ID = "00099_DCGAN_BENCHMARK_128"
MEDIGAN_PACKAGE = "DCGAN_BENCHMARK_128"
MEDIGAN_WEIGHTS = "500"  # the template's model_name: 500.pt
WEIGHTS_SEED = 20260


def medigan_entry() -> dict[str, Any]:
    """The ``global.json`` entry of the template package, as medigan's config holds it."""
    return {
        "execution": {
            "package_name": MEDIGAN_PACKAGE,
            "package_link": f"models/{MEDIGAN_ID}/{MEDIGAN_PACKAGE}.zip",  # never downloaded
            "model_name": MEDIGAN_WEIGHTS,
            "extension": ".pt",
            "image_size": [128, 128],
            "dependencies": ["numpy", "torch", "pillow"],
            "generate_method": {
                "name": "generate",
                "args": {
                    "base": ["model_file", "num_samples", "output_path", "save_images"],
                    "custom": {},
                },
            },
        },
        "selection": {"type": "DCGAN", "height": 128, "width": 128, "tags": ["benchmark"]},
        "description": {
            "title": "medigan's DCGAN 128 template, random weights",
            "version": "1.0.0",
        },
    }


def v2_card_document() -> dict[str, Any]:
    """The card of the v2 package of the same network."""
    return {
        "schema_version": "1.0",
        "model_id": "benchmark/dcgan-128",
        "version": "1.0.0",
        "runtime": {
            "kind": "v2",
            "entry_point": "generate",
            "python_requires": ">=3.11",
            "dependencies": ["torch", "numpy", "safetensors"],
        },
        "generation_arguments": [],
        "output": {
            "height": 128,
            "width": 128,
            "depth": None,
            "channels": 1,
            "dtype": "uint8",
            "value_range": [0, 255],
        },
        "artifacts": [],
        "provenance": {"licence": "MIT", "dois": [], "training_data": []},
    }


@dataclass(frozen=True)
class TemplatePackages:
    """Where the benchmark wrote medigan's layout and the two packages of the same weights."""

    medigan_workdir: Path  # holds models/<id>/<package>/, as medigan extracts packages
    legacy_dir: Path
    v2_dir: Path


def write_template_packages(root: Path) -> TemplatePackages:
    """The template network with random weights (fixed seed) as a legacy and a v2 package."""
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(DCGAN128_SOURCES))
    try:
        from network import Generator  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(DCGAN128_SOURCES))
    torch.manual_seed(WEIGHTS_SEED)
    state = {name: tensor.contiguous() for name, tensor in Generator().state_dict().items()}
    legacy_dir = root / "medigan" / "models" / MEDIGAN_ID / MEDIGAN_PACKAGE
    v2_dir = root / "v2"
    for folder, init in ((legacy_dir, "legacy_init.py"), (v2_dir, "v2_init.py")):
        folder.mkdir(parents=True)
        shutil.copyfile(DCGAN128_SOURCES / init, folder / "__init__.py")
        shutil.copyfile(DCGAN128_SOURCES / "network.py", folder / "network.py")
    torch.save({"generator": state}, legacy_dir / f"{MEDIGAN_WEIGHTS}.pt")
    save_file(state, str(v2_dir / "weights.safetensors"))
    return TemplatePackages(root / "medigan", legacy_dir, v2_dir)


def template_cards() -> tuple[Card, Card]:
    """(legacy card, v2 card): the legacy one imported from the medigan entry as the hub does."""
    from medigan_catalog.medigan_compat import card_from_medigan_entry

    legacy, _ = card_from_medigan_entry(MEDIGAN_ID, medigan_entry())
    return legacy, card_from_json(v2_card_document())


def medigan_child(workdir: Path, threads: int) -> None:
    """Serve medigan 1.0.0's ``Generators.generate``: one ``<samples> <output dir>`` a line.

    medigan imports, at import time, modules that generating never uses and that are not
    installed beside it: matplotlib (its visualiser), PyGithub (its contributor) and
    ``pkg_resources`` (gone from setuptools 81). The first two get empty stand-ins; the last a
    ``require`` that checks the model's dependencies with importlib.metadata, as medigan's
    dependency check does. Everything ``generate`` runs is medigan's own code.
    """
    import importlib.metadata
    import types

    import torch

    torch.set_num_threads(threads)
    stand_in = types.ModuleType("pkg_resources")

    def require(requirements: list[str]) -> None:
        for name in requirements:
            importlib.metadata.version(name)

    stand_in.require = require  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = stand_in
    for name in ("matplotlib", "matplotlib.pyplot", "matplotlib.widgets", "github"):
        module = types.ModuleType(name)
        module.__getattr__ = lambda attribute: None  # type: ignore[method-assign]
        sys.modules[name] = module
    os.chdir(workdir)
    sys.path.insert(0, str(workdir))  # medigan imports packages as models.<id>.<package>
    from medigan import Generators  # type: ignore[import-not-found]
    from medigan.config_manager import ConfigManager  # type: ignore[import-not-found]

    generators = Generators(config_manager=ConfigManager(config_dict={MEDIGAN_ID: medigan_entry()}))
    warm = Path(tempfile.mkdtemp(prefix="medigan-bench-warm-"))
    generators.generate(model_id=MEDIGAN_ID, num_samples=32, output_path=str(warm))
    shutil.rmtree(warm)
    print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        samples, output = line.split(maxsplit=1)
        clock, cpu = time.perf_counter(), own_cpu_seconds()
        generators.generate(
            model_id=MEDIGAN_ID, num_samples=int(samples), output_path=output.strip()
        )
        seconds, cpu = time.perf_counter() - clock, own_cpu_seconds() - cpu
        files = sum(1 for path in Path(output.strip()).iterdir() if path.suffix == ".png")
        print(json.dumps({"seconds": seconds, "cpu": cpu, "files": files}), flush=True)


class MediganProcess:
    """medigan 1.0.0 in a child Python of this interpreter, warmed once, timed per run."""

    def __init__(self, workdir: Path, threads: int):
        environment = dict(
            os.environ,
            OMP_NUM_THREADS=str(threads),
            MKL_NUM_THREADS=str(threads),
            TQDM_DISABLE="1",  # medigan's progress bars
        )
        command = [sys.executable, str(Path(__file__).resolve()), "--medigan-child", str(workdir)]
        self.process = subprocess.Popen(
            [*command, "--torch-threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )
        self.ready = self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"medigan's process exited with {self.process.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, samples: int, out: Path) -> tuple[float, float]:
        """(wall seconds, CPU seconds of medigan's process) of one run."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{samples} {out}\n")
        self.process.stdin.flush()
        answer = self._answer()
        if answer["files"] != samples:
            raise SystemExit(f"medigan wrote {answer['files']} PNG files, not {samples}")
        return float(answer["seconds"]), float(answer["cpu"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def compare_with_medigan(options: argparse.Namespace) -> None:
    """medigan 1.0.0, our v2 path and our legacy path on the template: the grid of cells."""
    if importlib.util.find_spec("medigan") is None:
        raise SystemExit(
            "medigan 1.0.0 is not installed here: run this script with .venv-reference/bin/python "
            "(make .venv-reference/.installed .venv-reference/.medigan-installed)"
        )
    import torch

    root = Path(tempfile.mkdtemp(prefix="medigan-bench-template-"))
    try:
        packages = write_template_packages(root)
        legacy_card, v2_card = template_cards()
        print(
            f"medigan comparison: torch {torch.__version__} on all sides (this interpreter, "
            f"{sys.executable}); client batch size "
            f"{options.batch_size_template or 'default (v2 16, legacy 32)'}, medigan's 32",
            flush=True,
        )
        for threads in options.medigan_threads:
            run_cells(options, packages, legacy_card, v2_card, threads)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_cells(
    options: argparse.Namespace,
    packages: TemplatePackages,
    legacy_card: Card,
    v2_card: Card,
    threads: int,
) -> None:
    """One torch thread count: open the three once, then each sample count in rounds."""
    saved = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    clock = time.perf_counter()
    medigan = MediganProcess(packages.medigan_workdir, threads)
    started = {"medigan": time.perf_counter() - clock}
    runners: dict[str, tuple[Card, Path, Runner]] = {}
    try:
        for name, card, folder in (
            ("v2", v2_card, packages.v2_dir),
            ("legacy", legacy_card, packages.legacy_dir),
        ):
            clock = time.perf_counter()
            runner = open_runner(folder, card)
            runners[name] = (card, folder, runner)
            timed_client_run(
                card, folder, runner, options.batch_size_template or 32, options.batch_size_template
            )
            started[name] = time.perf_counter() - clock
        isolation = runners["v2"][2].isolation
        print(
            f"{threads} torch thread(s), client isolation {isolation}; ready after "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in started.items()),
            flush=True,
        )
        for samples in options.medigan_samples:
            timings: dict[str, list[tuple[float, float]]] = {"medigan": [], "v2": [], "legacy": []}
            for _ in range(options.medigan_repeats):
                out = Path(tempfile.mkdtemp(prefix="medigan-bench-medigan-"))
                try:
                    timings["medigan"].append(medigan.run(samples, out))
                finally:
                    shutil.rmtree(out, ignore_errors=True)
                for name, (card, folder, runner) in runners.items():
                    timings[name].append(
                        timed_client_run(card, folder, runner, samples, options.batch_size_template)
                    )
            report_cell(samples, threads, timings)
    finally:
        medigan.close()
        for _card, _folder, runner in runners.values():
            runner.close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def own_cpu_seconds() -> float:
    """User and system CPU seconds of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_cpu_seconds(runner: Runner) -> float:
    """CPU seconds of the runner's model process so far (0 where there is none or no /proc)."""
    pid = getattr(runner, "pid", None)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # utime and stime, fields 14 and 15 of proc(5), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_client_run(
    card: Card, folder: Path, runner: Runner, samples: int, batch_size: int | None
) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and the model's) of the client's generate."""
    out = Path(tempfile.mkdtemp(prefix="medigan-bench-client-"))
    try:
        cpu = own_cpu_seconds() + child_cpu_seconds(runner)
        clock = time.perf_counter()
        generate_from_package(
            card,
            folder,
            samples,
            out,
            GenerationOptions(batch_size=batch_size, device="cpu", progress=False),
            runner=runner,
        )
        seconds = time.perf_counter() - clock
        cpu = own_cpu_seconds() + child_cpu_seconds(runner) - cpu
        files = sum(1 for path in out.iterdir() if path.suffix == ".png")
        if files != samples:
            raise SystemExit(f"the client wrote {files} PNG files, not {samples}")
        return seconds, cpu
    finally:
        shutil.rmtree(out, ignore_errors=True)


def report_cell(samples: int, threads: int, timings: dict[str, list[tuple[float, float]]]) -> None:
    """Wall-clock medians and ratios; CPU ms per image (all processes of a path) beside them.

    On a shared machine the wall clock carries the other jobs' load; the CPU time per image
    (medigan's process; the client's process and its model's) says how much work each does.
    """
    wall = {name: statistics.median(w for w, _ in values) for name, values in timings.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in timings.items()}
    print(f"  {samples} samples, {threads} thread(s):")
    for name, seconds in wall.items():
        rounds = ", ".join(f"{samples / w:.1f}" for w, _ in timings[name])
        print(
            f"    {name:8s} {samples / seconds:7.1f} img/s  {seconds:7.2f} s  "
            f"x{wall['medigan'] / seconds:.2f} vs medigan; CPU {1000 * cpu[name] / samples:5.1f} "
            f"ms/img, x{cpu['medigan'] / cpu[name]:.2f}   (rounds, img/s: {rounds})"
        )
    print(f"    now: {load()}", flush=True)


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
    parser.add_argument(
        "--medigan-samples",
        type=int,
        nargs="*",
        default=[1000] if importlib.util.find_spec("medigan") else [],
        help="sample counts of the medigan 1.0.0 comparison (default 1000 where medigan is "
        "installed, none elsewhere; the full grid is 1000 5000)",
    )
    parser.add_argument("--medigan-threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--medigan-repeats", type=int, default=3)
    parser.add_argument(
        "--batch-size-template",
        type=int,
        default=None,
        help="the client's batch size there (default: the client's default per runtime)",
    )
    parser.add_argument("--medigan-child", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.memory_child is not None:
        memory_child(options.memory_child, options)
        return
    if options.medigan_child is not None:
        medigan_child(options.medigan_child, options.torch_threads or 1)
        return
    if options.torch_threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(options.torch_threads)  # children inherit it
    print(f"start: {load()}", flush=True)
    if options.memory_samples:
        measure_memory(options)
    if options.isolation and options.samples > 0:
        measure_throughput(options)
    if options.medigan_samples:
        compare_with_medigan(options)
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
