"""v2 package of zoo/dermoscopy-wgangp-64: a conditional WGAN-GP for 64x64 RGB dermoscopy images.

``generate(num_samples, *, seed, device, condition, truncation)`` returns uint8 arrays of shape
(N, 64, 64, 3); ``condition`` is ``"not_melanoma"`` or ``"melanoma"``. The weights are read from
``weights.safetensors`` next to this file, never from the working directory, and the loaded
generator is cached per device for the life of the process.
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
    CHANNELS,
    CONDITIONS,
    IMAGE_SIZE,
    LATENT_SIZE,
    WEIGHTS_METADATA_KEY,
    Generator,
    sample_latents,
    sample_latents_per_seed,
    to_uint8,
)

__all__ = ["CONDITIONS", "IMAGE_SIZE", "LATENT_SIZE", "WEIGHTS_PATH", "generate", "load_generator"]

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights.safetensors"
TRUNCATION_MIN = 0.05
TRUNCATION_MAX = 2.0
# The client owns batching; this only bounds activation memory when one call asks for many images.
_CHUNK = 256

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
                width=int(shape.get("generator_width", 16)),
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
    condition: str = "not_melanoma",
    truncation: float = 1.0,
    seeds: Sequence[int] | None = None,
) -> npt.NDArray[np.uint8]:
    """Generate ``num_samples`` dermoscopy images as uint8 of shape (num_samples, 64, 64, 3).

    ``condition`` selects the class: ``"not_melanoma"`` (nevus or seborrheic keratosis, the
    majority of the training set) or ``"melanoma"``. The latents are drawn on the CPU from N(0, I)
    with a ``torch.Generator`` seeded by ``seed``, so the same ``(num_samples, seed)`` gives the
    same images on every call and device (up to floating-point differences), and the two
    conditions share latents for a seed. ``seeds`` (one int per sample) replaces that draw:
    latent k then comes from its own generator seeded by ``seeds[k]`` and image k is computed
    alone, so it depends on ``seeds[k]`` alone, bit for bit, not on the call or batch it is
    generated in (``seed`` is then unused). ``truncation`` (0.05 to 2.0) multiplies the latents:
    1.0 samples the training prior, smaller values give more typical, less diverse images.
    ``device`` is ``"cpu"``, ``"cuda"`` or ``"auto"``.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"num_samples must be a non-negative int, got {num_samples!r}")
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {list(CONDITIONS)}, got {condition!r}")
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
    label = CONDITIONS.index(condition)
    out = np.empty((num_samples, IMAGE_SIZE, IMAGE_SIZE, CHANNELS), dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, num_samples, chunk):
            batch = latents[start : start + chunk].to(target)
            labels = torch.full((batch.shape[0],), label, dtype=torch.long, device=target)
            out[start : start + batch.shape[0]] = to_uint8(net(batch, labels))
    return out
