"""v2 package of zoo/chestxray-cdcgan-64: a class-conditional DCGAN for 64x64 chest X-rays.

``generate(num_samples, *, seed, device, condition, truncation)`` returns uint8 arrays of shape
(N, 64, 64); ``condition`` is ``"normal"``, ``"pneumonia"`` or ``"random"`` (each label drawn with
the train split's prior, 74 % PNEUMONIA). The weights are read from ``weights.safetensors`` next to
this file, never from the working directory, and the loaded generator is cached per device.
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


def load_generator(device: str = "cpu") -> ConditionalGenerator:
    """Return the float32 generator on ``device`` in eval mode, loading it once per device.

    The file stores float16 values; ``load_state_dict`` copies them into float32 parameters.
    """
    return load_network(WEIGHTS_PATH, _build, device=device, metadata_key=WEIGHTS_METADATA_KEY)


def _build(shape: Mapping[str, Any]) -> ConditionalGenerator:
    return ConditionalGenerator(
        latent_size=int(shape.get("latent_size", LATENT_SIZE)),
        width=int(shape.get("generator_width", 40)),
    )


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
    ``(num_samples, seed)`` gives the same latents for every condition and device: ``"normal"`` and
    ``"pneumonia"`` with one seed are paired images. ``truncation`` (0.05 to 2.0) multiplies the
    latents: below 1.0 less diverse, more typical images. ``seeds`` (one int per sample) replaces
    the draws from ``seed``: sample k's latent (and, for ``"random"``, its class) then come from its
    own generator seeded by ``seeds[k]`` and the network then runs over the whole call at once, so
    image k depends on ``seeds[k]`` alone, up to the float rounding of another batch (at most a grey
    level), not on the call or batch it is generated in. ``device`` is ``"auto"``, ``"cpu"``,
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
        labels = sample_labels(num_samples, seed, condition)
    else:
        listed = check_sample_seeds(seeds, num_samples)
        latents, labels = sample_inputs_per_seed(listed, condition, truncation)
    net = load_generator(device)
    target = next(net.parameters()).device
    out = np.empty((num_samples, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, num_samples, _CHUNK):
            stop = start + _CHUNK
            images = net(latents[start:stop].to(target), labels[start:stop].to(target))
            out[start : start + images.shape[0]] = to_uint8(images)
    return out
