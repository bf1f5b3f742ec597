"""v2 package of zoo/chestxray-cdcgan-64: a class-conditional DCGAN for 64x64 chest X-rays.

``generate(num_samples, *, seed, device, condition, truncation)`` returns uint8 arrays of shape
(N, 64, 64); ``condition`` is ``"normal"``, ``"pneumonia"`` or ``"random"`` (each label drawn with
the train split's prior, 74 % PNEUMONIA). The weights are read from ``weights.safetensors`` next to
this file, never from the working directory, and the loaded generator is cached per device.
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
    CLASS_NAMES,
    IMAGE_SIZE,
    LATENT_SIZE,
    WEIGHTS_METADATA_KEY,
    ConditionalGenerator,
    sample_inputs_per_seed,
    sample_labels,
    sample_latents,
    to_uint8,
)

__all__ = ["CONDITIONS", "IMAGE_SIZE", "LATENT_SIZE", "WEIGHTS_PATH", "generate", "load_generator"]

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights.safetensors"
CONDITIONS: tuple[str, ...] = (*CLASS_NAMES, "random")
TRUNCATION_MIN = 0.05
TRUNCATION_MAX = 2.0
# The client owns batching; this only bounds activation memory when one call asks for many images.
_CHUNK = 256

_GENERATORS: dict[str, ConditionalGenerator] = {}
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


def load_generator(device: str = "cpu") -> ConditionalGenerator:
    """Return the float32 generator on ``device`` in eval mode, loading it once per device.

    The file stores float16 values; ``load_state_dict`` copies them into float32 parameters.
    """
    resolved = _resolve_device(device)
    key = str(resolved)
    with _LOCK:
        cached = _GENERATORS.get(key)
        if cached is None:
            with safe_open(str(WEIGHTS_PATH), framework="pt") as handle:
                metadata = handle.metadata() or {}
            shape = json.loads(metadata.get(WEIGHTS_METADATA_KEY, "{}"))
            net = ConditionalGenerator(
                latent_size=int(shape.get("latent_size", LATENT_SIZE)),
                width=int(shape.get("generator_width", 40)),
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
    condition: str = "random",
    truncation: float = 1.0,
    seeds: Sequence[int] | None = None,
) -> npt.NDArray[np.uint8]:
    """Generate ``num_samples`` chest X-rays of one class as uint8 (num_samples, 64, 64).

    ``condition`` picks the class: ``"normal"``, ``"pneumonia"``, or ``"random"`` (each image's
    class drawn independently, PNEUMONIA with the train split's share 3875/5216). Latents are drawn
    on the CPU from N(0, I) with a ``torch.Generator`` seeded by ``seed``, so the same
    ``(num_samples, seed)`` gives the same latents for every condition and device: ``"normal"``
    and ``"pneumonia"`` with one seed are paired images. ``truncation`` (0.05 to 2.0) multiplies
    the latents: below 1.0 less diverse, more typical images. ``seeds`` (one int per sample)
    replaces the draws from ``seed``: sample k's latent (and, for ``"random"``, its class) then
    come from its own generator seeded by ``seeds[k]`` and image k is computed alone, so it
    depends on ``seeds[k]`` alone, bit for bit, not on the call or batch it is generated in.
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
        labels = sample_labels(num_samples, seed, condition)
        chunk = _CHUNK
    else:
        listed = _check_seeds(seeds, num_samples)
        latents, labels = sample_inputs_per_seed(listed, condition, truncation)
        chunk = 1  # alone, an image's floating-point sums cannot depend on its batch
    net = load_generator(device)
    target = next(net.parameters()).device
    out = np.empty((num_samples, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, num_samples, chunk):
            stop = start + chunk
            images = net(latents[start:stop].to(target), labels[start:stop].to(target))
            out[start : start + images.shape[0]] = to_uint8(images)
    return out
