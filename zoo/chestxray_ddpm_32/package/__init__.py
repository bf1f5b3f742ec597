"""v2 package of zoo/chestxray-ddpm-32: a small DDPM that generates 32x32 paediatric chest X-rays.

``generate(num_samples, *, seed, device, steps)`` returns uint8 arrays of shape (N, 32, 32). The
sampler is deterministic DDIM (eta = 0) over ``steps`` evenly spaced timesteps of the 1000-step
training schedule. The weights are read from ``weights.safetensors`` next to this file, never
from the working directory, and the loaded network is cached per device for the process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from medigan_client.package_support import check_sample_seeds
from medigan_client.package_support import load_network as load_cached_network

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


def load_network(device: str = "cpu") -> UNet:
    """The denoising UNet (EMA weights) on ``device`` in eval mode, loaded once per device."""
    return load_cached_network(
        WEIGHTS_PATH, _build, device=device, metadata_key=WEIGHTS_METADATA_KEY
    )


def _build(shape: Mapping[str, Any]) -> UNet:
    return UNet(
        width=int(shape.get("width", 32)),
        blocks=int(shape.get("blocks", 2)),
        groups=int(shape.get("groups", 8)),
    )


def generate(
    num_samples: int,
    *,
    seed: int,
    device: str = "cpu",
    steps: int = 50,
    seeds: Sequence[int] | None = None,
) -> npt.NDArray[np.uint8]:
    """Generate ``num_samples`` chest X-rays as a uint8 array of shape (num_samples, 32, 32).

    The starting noise is drawn on the CPU with a ``torch.Generator`` seeded by ``seed`` and DDIM
    (eta = 0) is deterministic, so the same ``(num_samples, seed, steps)`` gives the same images on
    every call (up to floating-point differences between devices). ``steps`` (10 to 1000) is the
    number of denoising network calls: more steps follow the trained diffusion more closely and cost
    proportionally more time; different step counts give different images for the same seed.
    ``seeds`` (one int per sample) replaces the draw from ``seed``: image k's noise then comes from
    its own generator seeded by ``seeds[k]`` and the network then runs over the whole call at once,
    so image k depends on ``seeds[k]`` alone, up to the float rounding of another batch (at most a
    grey level), not on the call or batch it is generated in. ``device`` is ``"auto"``, ``"cpu"``,
    ``"cuda[:N]"`` or ``"mps"`` (the client's device rules).
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"num_samples must be a non-negative int, got {num_samples!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not STEPS_MIN <= steps <= STEPS_MAX:
        raise ValueError(f"steps must be an int in [{STEPS_MIN}, {STEPS_MAX}], got {steps!r}")
    net = load_network(device)
    target = next(net.parameters()).device
    if seeds is None:
        noise = sample_noise(num_samples, seed)
    else:
        noise = sample_noise_per_seed(check_sample_seeds(seeds, num_samples))
    out = np.empty((num_samples, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, num_samples, _CHUNK):
            batch = noise[start : start + _CHUNK].to(target)
            out[start : start + batch.shape[0]] = to_uint8(ddim_sample(net, batch, steps))
    return out
