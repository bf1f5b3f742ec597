"""Inception feature extraction: ours (`inception-v3-fid`) against pytorch-fid's `InceptionV3`.

Run from the repository root in the reference environment, where pytorch-fid is installed, so
that both sides run on the same torch:

    PYTHONPATH=. .venv-reference/bin/python benchmarks/features.py [--images 96] [--repeats 3]

Both networks hold the same weights: the file named by `MEDIGAN_INCEPTION_WEIGHTS` when it is
set (pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`), else the random stand-in weights of
the equality tests (`tests/evaluation/random_inception_weights.py`, features of the real
network's magnitude), because the real file cannot be downloaded here; speed does not depend on
the values. The images are the first `--images` of the chest X-ray (grayscale) and dermoscopy
(RGB) 64 px sets of ../shared/data when present, else uniform noise of the same shapes.

Each side starts from the same uint8 arrays and ends with (N, 2048) float32 features:

- pytorch-fid: what its `get_activations` does per batch, without the PNG decoding: uint8 to
  [0, 1] floats (ToTensor's arithmetic, batched), grey to three channels (`convert("RGB")`), then
  `InceptionV3([3])`, which resizes to 299 with bilinear interpolation and scales to [-1, 1];
- ours: `evaluation.preprocessing.preprocess` then `FidInceptionExtractor.extract`, as
  `evaluation.runner` runs them.

Rounds alternate the sides (`--repeats`, at least 3) in one process with torch's thread pool at
`evaluation.threads.configured_threads()` (the CPUs available to the process, or
`MEDIGAN_TORCH_THREADS`) for both. It prints each side's median images per second, the median of
the per-round ratios ours / pytorch-fid, the largest absolute feature difference, and the load
average before and after. `--ablation` adds our network unfused in NCHW (the extractor before
this optimisation) and unfused in channels-last; `--sweep 8,16,32,64` measures our throughput at
those batch sizes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from evaluation.inception import FidInceptionExtractor, fid_inception_v3  # noqa: E402
from evaluation.preprocessing import PreprocessOptions, preprocess  # noqa: E402
from evaluation.threads import configured_threads  # noqa: E402

SHARED_DATA = Path(os.environ.get("MEDIGAN_SHARED_DIR", REPO_ROOT.parent / "shared")) / "data"
IMAGE_FILES = (
    "chest-xray-pneumonia/chest_xray_pneumonia_64.npz",
    "dermoscopy-isic2017/dermoscopy_isic2017_64.npz",
)

Side = Callable[[np.ndarray[Any, Any]], torch.Tensor]


def load_images(count: int) -> tuple[list[np.ndarray[Any, Any]], str]:
    """Half grayscale, half RGB 64 px images (batched per kind, as each set's images come)."""
    halves = [count // 2, count - count // 2]
    sets, sources = [], []
    for file, size, shape in zip(IMAGE_FILES, halves, [(64, 64), (64, 64, 3)], strict=True):
        path = SHARED_DATA / file
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                sets.append(np.ascontiguousarray(data["images"][:size]))
            sources.append(file)
        else:
            rng = np.random.default_rng(len(sets))
            sets.append(rng.integers(0, 256, size=(size, *shape), dtype=np.uint8))
            sources.append(f"noise {shape}")
    return sets, ", ".join(sources)


def weights_file(directory: Path) -> tuple[Path, str]:
    configured = os.environ.get(FidInceptionExtractor.ENV_VAR, "").strip()
    if configured:
        return Path(configured), f"{configured} (real weights)"
    from tests.evaluation.random_inception_weights import random_inception_state_dict

    path = directory / "pt_inception-random.pth"
    torch.save(random_inception_state_dict(fid_inception_v3(), seed=2015), path)
    return path, "random stand-in weights (seed 2015; the real file cannot be downloaded here)"


def pytorch_fid_side(path: Path, batch_size: int) -> Side:
    from pytorch_fid import inception as reference

    state = torch.load(path, map_location="cpu", weights_only=True)
    # pytorch-fid downloads its weights inside fid_inception_v3(); hand it the same file's.
    reference.load_state_dict_from_url = lambda *args, **kwargs: state
    model = reference.InceptionV3([3]).eval()  # use_fid_inception=True, resize, normalise

    def run(images: np.ndarray[Any, Any]) -> torch.Tensor:
        rows = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                chunk = images[start : start + batch_size]
                if chunk.ndim == 3:
                    chunk = np.repeat(chunk[..., np.newaxis], 3, axis=-1)
                batch = torch.from_numpy(chunk).permute(0, 3, 1, 2).contiguous()
                batch = batch.to(torch.float32).div(255)
                rows.append(model(batch)[0].squeeze(3).squeeze(2))
        return torch.cat(rows)

    return run


def our_side(extractor: FidInceptionExtractor, batch_size: int) -> Side:
    options = PreprocessOptions()

    def run(images: np.ndarray[Any, Any]) -> torch.Tensor:
        rows = []
        for start in range(0, len(images), batch_size):
            batch = preprocess(images[start : start + batch_size], options, extractor)
            rows.append(extractor.extract(batch))
        return torch.cat(rows)

    return run


def unfused_side(extractor: FidInceptionExtractor, batch_size: int, *, channels_last: bool) -> Side:
    """Our named network without the fused layers: the extractor as it was before (NCHW)."""
    network = extractor.network
    if channels_last:
        network = fid_inception_v3().eval()
        network.load_state_dict(extractor.network.state_dict())
        network = network.to(memory_format=torch.channels_last)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    options = PreprocessOptions()

    def run(images: np.ndarray[Any, Any]) -> torch.Tensor:
        rows = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                batch = preprocess(images[start : start + batch_size], options, extractor)
                rows.append(network(2 * batch.contiguous(memory_format=layout) - 1))
        return torch.cat(rows)

    return run


def time_side(side: Side, image_sets: list[np.ndarray[Any, Any]]) -> tuple[float, torch.Tensor]:
    started = time.perf_counter()
    features = torch.cat([side(images) for images in image_sets])
    return time.perf_counter() - started, features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="default: ours, 32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--sweep", default="", help="comma-separated batch sizes for ours")
    arguments = parser.parse_args()
    if arguments.repeats < 3:
        parser.error("--repeats must be at least 3")

    threads = configured_threads(arguments.threads)
    torch.set_num_threads(threads)
    image_sets, source = load_images(arguments.images)
    total = sum(len(images) for images in image_sets)
    with tempfile.TemporaryDirectory() as scratch:
        path, weights = weights_file(Path(scratch))
        extractor = FidInceptionExtractor(path, expected_sha256_prefix=None)
        batch_size = arguments.batch_size or extractor.batch_size
        sides: dict[str, Side] = {
            "pytorch-fid": pytorch_fid_side(path, batch_size),
            "ours": our_side(extractor, batch_size),
        }
        if arguments.ablation:
            sides["ours unfused NCHW"] = unfused_side(extractor, batch_size, channels_last=False)
            sides["ours unfused channels-last"] = unfused_side(
                extractor, batch_size, channels_last=True
            )
        print(
            f"torch {torch.__version__}, {threads} thread(s), batch {batch_size}, {total} images "
            f"({source}), {weights}"
        )
        print(f"load before: {os.getloadavg()}")
        for side in sides.values():  # warm-up: oneDNN primitive caches, allocator
            side(image_sets[0][:2])

        seconds: dict[str, list[float]] = {name: [] for name in sides}
        features: dict[str, torch.Tensor] = {}
        for _ in range(arguments.repeats):
            for name, side in sides.items():
                elapsed, out = time_side(side, image_sets)
                seconds[name].append(elapsed)
                features.setdefault(name, out)

        anchor = seconds["pytorch-fid"]
        for name, values in seconds.items():
            ratios = [base / value for base, value in zip(anchor, values, strict=True)]
            print(
                f"{name:>28}: {total / statistics.median(values):6.2f} img/s (median of "
                f"{len(values)}), ratio to pytorch-fid {statistics.median(ratios):.2f} "
                f"(rounds {', '.join(f'{ratio:.2f}' for ratio in ratios)})"
            )
        reference = features["pytorch-fid"]
        for name, out in features.items():
            if name != "pytorch-fid":
                difference = (out - reference).abs().max().item()
                print(f"{name:>28}: max abs feature difference {difference:.2e}")
        print(f"features: mean {reference.mean().item():.3f}, largest {reference.max().item():.2f}")

        if arguments.sweep:
            sizes = [int(value) for value in arguments.sweep.split(",")]
            sweep: dict[int, list[float]] = {size: [] for size in sizes}
            for _ in range(arguments.repeats):  # interleaved too: load drifts between rounds
                for size in sizes:
                    sweep[size].append(time_side(our_side(extractor, size), image_sets)[0])
            for size, times in sweep.items():
                print(f"ours at batch {size:>3}: {total / statistics.median(times):6.2f} img/s")
        print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
