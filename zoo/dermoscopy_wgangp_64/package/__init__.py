"""v2 package of zoo/dermoscopy-wgangp-64: a conditional WGAN-GP for 64x64 RGB dermoscopy images.

``generate(num_samples, *, seed, device, condition, truncation)`` returns uint8 arrays of shape
(N, 64, 64, 3); ``condition`` is ``"not_melanoma"`` or ``"melanoma"``. The weights are read from
``weights.safetensors`` next to this file, never from the working directory, and the loaded
generator is cached per device for the life of the process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from medigan_client.package_support import check_sample_seeds, load_network

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


def load_generator(device: str = "cpu") -> Generator:
    """Return the generator on ``device`` in eval mode, loading it once per device."""
    return load_network(WEIGHTS_PATH, _build, device=device, metadata_key=WEIGHTS_METADATA_KEY)


def _build(shape: Mapping[str, Any]) -> Generator:
    return Generator(
        latent_size=int(shape.get("latent_size", LATENT_SIZE)),
        width=int(shape.get("generator_width", 16)),
    )


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

    ``condition`` selects the class: ``"not_melanoma"`` (nevus or seborrheic keratosis, the majority
    of the training set) or ``"melanoma"``. The latents are drawn on the CPU from N(0, I) with a
    ``torch.Generator`` seeded by ``seed``, so the same ``(num_samples, seed)`` gives the same
    images on every call and device (up to floating-point differences), and the two conditions share
    latents for a seed. ``seeds`` (one int per sample) replaces that draw: latent k then comes from
    its own generator seeded by ``seeds[k]`` and the network then runs over the whole call at once,
    so image k depends on ``seeds[k]`` alone, up to the float rounding of another batch (at most a
    grey level), not on the call or batch it is generated in (``seed`` is then unused).
    ``truncation`` (0.05 to 2.0) multiplies the latents: 1.0 samples the training prior, smaller
    values give more typical, less diverse images. ``device`` is ``"auto"``, ``"cpu"``,
    ``"cuda[:N]"`` or ``"mps"`` (the client's device rules).
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
    else:
        latents = sample_latents_per_seed(check_sample_seeds(seeds, num_samples), truncation)
    net = load_generator(device)
    target = next(net.parameters()).device
    label = CONDITIONS.index(condition)
    out = np.empty((num_samples, IMAGE_SIZE, IMAGE_SIZE, CHANNELS), dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, num_samples, _CHUNK):
            batch = latents[start : start + _CHUNK].to(target)
            labels = torch.full((batch.shape[0],), label, dtype=torch.long, device=target)
            out[start : start + batch.shape[0]] = to_uint8(net(batch, labels))
    return out
