"""v2 package of zoo/busi-gan-128: a small GAN that generates 128x128 breast ultrasound images.

``generate(num_samples, *, seed, device, truncation, seeds)`` returns uint8 arrays of shape
(N, 128, 128). The weights are read from ``weights.safetensors`` next to this file, never from the
working directory, and the loaded generator is cached per device for the life of the process.
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
    DEFAULT_WIDTHS,
    IMAGE_SIZE,
    LATENT_SIZE,
    WEIGHTS_METADATA_KEY,
    Generator,
    sample_latents,
    sample_latents_per_seed,
    to_uint8,
)

__all__ = ["IMAGE_SIZE", "LATENT_SIZE", "WEIGHTS_PATH", "generate", "load_generator"]

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights.safetensors"
TRUNCATION_MIN = 0.05
TRUNCATION_MAX = 2.0
# The client owns batching; this only bounds activation memory when one call asks for many images.
_CHUNK = 128

_GENERATORS: dict[str, Generator] = {}
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


def load_generator(device: str = "cpu") -> Generator:
    """Return the generator on ``device`` in eval mode, loading it once per device."""
    resolved = _resolve_device(device)
    key = str(resolved)
    with _LOCK:
        cached = _GENERATORS.get(key)
        if cached is None:
            with safe_open(str(WEIGHTS_PATH), framework="pt") as handle:
                metadata = handle.metadata() or {}
            shape = json.loads(metadata.get(WEIGHTS_METADATA_KEY, "{}"))
            net = Generator(
                latent_size=int(shape.get("latent_size", LATENT_SIZE)),
                widths=tuple(int(w) for w in shape.get("generator_widths", DEFAULT_WIDTHS)),
            )
            net.load_state_dict(load_file(str(WEIGHTS_PATH), device="cpu"))
            net.requires_grad_(False)
            cached = net.to(resolved).eval()
            _GENERATORS[key] = cached
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
    truncation: float = 1.0,
    seeds: Sequence[int] | None = None,
) -> npt.NDArray[np.uint8]:
    """Generate ``num_samples`` breast ultrasound images as uint8 of shape (num_samples, 128, 128).

    The latents are drawn on the CPU from N(0, I) with a ``torch.Generator`` seeded by ``seed``,
    so the same ``(num_samples, seed)`` gives the same images on every call and on every device
    (up to floating-point differences between devices). ``seeds`` (one int per sample) replaces
    that draw: latent k then comes from its own generator seeded by ``seeds[k]`` and image k is
    computed alone, so it depends on ``seeds[k]`` alone, bit for bit, not on the call or batch it
    is generated in; ``seed`` is then unused.
    ``truncation`` (0.05 to 2.0) multiplies the latents: 1.0 samples the training prior, smaller
    values pull samples towards the average image (less diversity), larger values give more
    varied, less typical images. ``device`` is ``"cpu"``, ``"cuda"`` or ``"auto"``.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"num_samples must be a non-negative int, got {num_samples!r}")
    if not TRUNCATION_MIN <= truncation <= TRUNCATION_MAX:
        raise ValueError(
            f"truncation must be in [{TRUNCATION_MIN}, {TRUNCATION_MAX}], got {truncation!r}"
        )
    if seeds is None:
        latents = sample_latents(num_samples, seed, truncation)
        chunk = _CHUNK
    else:
        latents = sample_latents_per_seed(_check_seeds(seeds, num_samples), truncation)
        chunk = 1  # alone, an image's floating-point sums cannot depend on its batch
    net = load_generator(device)
    target = next(net.parameters()).device
    out = np.empty((num_samples, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, num_samples, chunk):
            batch = latents[start : start + chunk].to(target)
            out[start : start + batch.shape[0]] = to_uint8(net(batch))
    return out
