"""v2 package of zoo/chestxray-dcgan-64: a DCGAN that generates 64x64 paediatric chest X-rays.

``generate(num_samples, *, seed, device, truncation)`` returns uint8 arrays of shape (N, 64, 64).
The weights are read from ``weights.safetensors`` next to this file, never from the working
directory, and the loaded generator is cached per device for the life of the process.
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
_CHUNK = 256


def load_generator(device: str = "cpu") -> Generator:
    """Return the generator on ``device`` in eval mode, loading it once per device."""
    return load_network(WEIGHTS_PATH, _build, device=device, metadata_key=WEIGHTS_METADATA_KEY)


def _build(shape: Mapping[str, Any]) -> Generator:
    return Generator(
        latent_size=int(shape.get("latent_size", LATENT_SIZE)),
        width=int(shape.get("generator_width", 40)),
    )


def generate(
    num_samples: int,
    *,
    seed: int,
    device: str = "cpu",
    truncation: float = 1.0,
    latent_vectors: npt.ArrayLike | None = None,
    seeds: Sequence[int] | None = None,
) -> npt.NDArray[np.uint8]:
    """Generate ``num_samples`` chest X-rays as a uint8 array of shape (num_samples, 64, 64).

    The latents are drawn on the CPU from N(0, I) with a ``torch.Generator`` seeded by ``seed``, so
    the same ``(num_samples, seed)`` gives the same images on every call and on every device (up to
    floating-point differences between devices). ``truncation`` (0.05 to 2.0) multiplies the
    latents: 1.0 samples the training prior, smaller values pull samples towards the average X-ray
    (less diversity), larger values give more varied, less typical images. ``latent_vectors`` (shape
    (num_samples, 100)) replaces the random draw; ``truncation`` still multiplies it and ``seed`` is
    then unused. ``seeds`` (one int per sample) replaces the draw instead: latent k then comes from
    its own generator seeded by ``seeds[k]`` and the network then runs over the whole call at once,
    so image k depends on ``seeds[k]`` alone, up to the float rounding of another batch (at most a
    grey level), not on the call or batch it is generated in (``seed`` is then unused). ``device``
    is ``"auto"``, ``"cpu"``, ``"cuda[:N]"`` or ``"mps"`` (the client's device rules).
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"num_samples must be a non-negative int, got {num_samples!r}")
    if not TRUNCATION_MIN <= truncation <= TRUNCATION_MAX:
        raise ValueError(
            f"truncation must be in [{TRUNCATION_MIN}, {TRUNCATION_MAX}], got {truncation!r}"
        )
    if latent_vectors is not None and seeds is not None:
        raise ValueError("give latent_vectors or seeds, not both")
    if seeds is not None:
        latents = sample_latents_per_seed(check_sample_seeds(seeds, num_samples), truncation)
    elif latent_vectors is None:
        latents = sample_latents(num_samples, seed, truncation)
    else:
        given = np.asarray(latent_vectors, dtype=np.float32)
        if given.shape[0] != num_samples or given.size != num_samples * LATENT_SIZE:
            raise ValueError(
                f"latent_vectors must have shape ({num_samples}, {LATENT_SIZE}), got {given.shape}"
            )
        latents = torch.from_numpy(given.reshape(num_samples, LATENT_SIZE).copy()) * truncation
    net = load_generator(device)
    target = next(net.parameters()).device
    out = np.empty((num_samples, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, num_samples, _CHUNK):
            batch = latents[start : start + _CHUNK].to(target)
            out[start : start + batch.shape[0]] = to_uint8(net(batch))
    return out
