"""v2 package of zoo/chestxray-ddpm-32: a small DDPM that generates 32x32 paediatric chest X-rays.

``generate(num_samples, *, seed, device, steps)`` returns uint8 arrays of shape (N, 32, 32). The
sampler is deterministic DDIM (eta = 0) over ``steps`` evenly spaced timesteps of the 1000-step
training schedule. The weights are read from ``weights.safetensors`` next to this file, never
from the working directory, and the loaded network is cached per device for the process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from .network import (
    IMAGE_SIZE,
    TRAIN_TIMESTEPS,
    WEIGHTS_METADATA_KEY,
    UNet,
    ddim_sample,
    sample_noise,
    sample_noise_per_seed,
    to_uint8,
)

__all__ = ["IMAGE_SIZE", "STEPS_MAX", "STEPS_MIN", "WEIGHTS_PATH", "generate", "load_network"]

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights.safetensors"
STEPS_MIN = 10
STEPS_MAX = TRAIN_TIMESTEPS
# The client owns batching; this only bounds activation memory when one call asks for many images.
_CHUNK = 500

_NETWORKS: dict[str, UNet] = {}
_LOCK = threading.Lock()


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    expected = f"device must be 'cpu', 'cuda[:index]' or 'auto', got {device!r}"
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(expected) from error
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(expected)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for but CUDA is not available")
    if str(resolved) == "cuda":  # no index: pin the current one so the cache key is stable
        resolved = torch.device("cuda", torch.cuda.current_device())
    return resolved


def load_network(device: str = "cpu") -> UNet:
    """The denoising UNet (EMA weights) on ``device`` in eval mode, loaded once per device."""
    resolved = _resolve_device(device)
    key = str(resolved)
    with _LOCK:
        cached = _NETWORKS.get(key)
        if cached is None:
            with safe_open(str(WEIGHTS_PATH), framework="pt") as handle:
                metadata = handle.metadata() or {}
            shape = json.loads(metadata.get(WEIGHTS_METADATA_KEY, "{}"))
            net = UNet(
                width=int(shape.get("width", 32)),
                blocks=int(shape.get("blocks", 2)),
                groups=int(shape.get("groups", 8)),
            )
            net.load_state_dict(load_file(str(WEIGHTS_PATH), device="cpu"))
            net.requires_grad_(False)
            cached = net.to(resolved).eval()
            _NETWORKS[key] = cached
    return cached


def _check_seeds(seeds: Sequence[int], num_samples: int) -> list[int]:
    listed = list(seeds)
    if len(listed) != num_samples or any(
        isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**63 for v in listed
    ):
        raise ValueError(f"seeds must be {num_samples} ints in [0, 2**63), one per sample")
    return listed


def generate(
    num_samples: int,
    *,
    seed: int,
    device: str = "cpu",
    steps: int = 50,
    seeds: Sequence[int] | None = None,
) -> npt.NDArray[np.uint8]:
    """Generate ``num_samples`` chest X-rays as a uint8 array of shape (num_samples, 32, 32).

    The starting noise is drawn on the CPU with a ``torch.Generator`` seeded by ``seed`` and
    DDIM (eta = 0) is deterministic, so the same ``(num_samples, seed, steps)`` gives the same
    images on every call (up to floating-point differences between devices). ``steps``
    (10 to 1000) is the number of denoising network calls: more steps follow the trained
    diffusion more closely and cost proportionally more time; different step counts give
    different images for the same seed. ``seeds`` (one int per sample) replaces the draw from
    ``seed``: image k's noise then comes from its own generator seeded by ``seeds[k]`` and the
    image is computed alone, so it depends on ``seeds[k]`` alone, bit for bit, not on the call or
    batch it is generated in. ``device`` is ``"cpu"``, ``"cuda"`` or ``"auto"``.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"num_samples must be a non-negative int, got {num_samples!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not STEPS_MIN <= steps <= STEPS_MAX:
        raise ValueError(f"steps must be an int in [{STEPS_MIN}, {STEPS_MAX}], got {steps!r}")
    net = load_network(device)
    target = next(net.parameters()).device
    if seeds is None:
        noise = sample_noise(num_samples, seed)
        chunk = _CHUNK
    else:
        noise = sample_noise_per_seed(_check_seeds(seeds, num_samples))
        chunk = 1  # alone, an image's floating-point sums cannot depend on its batch
    out = np.empty((num_samples, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, num_samples, chunk):
            batch = noise[start : start + chunk].to(target)
            out[start : start + batch.shape[0]] = to_uint8(ddim_sample(net, batch, steps))
    return out
