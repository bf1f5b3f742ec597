"""v2 package of zoo/busi-vae-64: a convolutional VAE that generates 64x64 breast ultrasound images.

``generate(num_samples, *, seed, device, temperature, observation_noise)`` decodes latents drawn
from the prior N(0, temperature^2 I) and returns uint8 arrays of shape (N, 64, 64): the decoder's
mean image plus, by default, a draw of the Gaussian observation model (per-pixel standard
deviation fitted on the training reconstructions). The weights (decoder and that standard
deviation) are read from ``weights.safetensors`` next to this file, never from the working
directory, and are cached per device for the life of the process.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from safetensors.torch import load_file

from medigan_client.package_support import check_sample_seeds, load_network

from .network import (
    IMAGE_SIZE,
    LATENT_SIZE,
    OBSERVATION_STD_KEY,
    WEIGHTS_METADATA_KEY,
    Decoder,
    sample_latents,
    sample_noise,
    sample_per_seed,
    to_uint8,
)

__all__ = [
    "IMAGE_SIZE",
    "LATENT_SIZE",
    "WEIGHTS_PATH",
    "generate",
    "load_decoder",
    "load_observation_std",
]

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights.safetensors"
TEMPERATURE_MIN = 0.1
TEMPERATURE_MAX = 2.0
# The client owns batching; this only bounds activation memory when one call asks for many images.
_CHUNK = 256

_OBSERVATION_STD: list[torch.Tensor] = []
_LOCK = threading.Lock()


def load_decoder(device: str = "cpu") -> Decoder:
    """Return the float32 decoder on ``device`` in eval mode, loading it once per device.

    The file stores float16 values; ``load_state_dict`` copies them into float32 parameters.
    """
    return load_network(
        WEIGHTS_PATH,
        _build,
        device=device,
        metadata_key=WEIGHTS_METADATA_KEY,
        exclude=(OBSERVATION_STD_KEY,),
    )


def _build(shape: Mapping[str, Any]) -> Decoder:
    return Decoder(
        latent_size=int(shape.get("latent_size", LATENT_SIZE)),
        width=int(shape.get("width", 32)),
    )


def load_observation_std() -> torch.Tensor:
    """The observation model's per-pixel standard deviation (64, 64), float32 grey levels, CPU."""
    with _LOCK:
        if not _OBSERVATION_STD:
            std = load_file(str(WEIGHTS_PATH), device="cpu")[OBSERVATION_STD_KEY]
            _OBSERVATION_STD.append(std.float())
    return _OBSERVATION_STD[0]


def generate(
    num_samples: int,
    *,
    seed: int,
    device: str = "cpu",
    temperature: float = 1.0,
    observation_noise: bool = True,
    seeds: Sequence[int] | None = None,
) -> npt.NDArray[np.uint8]:
    """Generate ``num_samples`` breast ultrasound images as uint8 (num_samples, 64, 64).

    Latents are drawn on the CPU from N(0, I) with a ``torch.Generator`` seeded by ``seed`` and
    multiplied by ``temperature`` (0.1 to 2.0): 1.0 samples the VAE's prior, lower values give
    smoother, more average images, higher values more varied and less plausible ones. The same
    ``(num_samples, seed)`` gives the same images on every call and device (up to floating-point
    differences between devices). ``device`` is ``"auto"``, ``"cpu"``, ``"cuda[:N]"`` or ``"mps"``
    (the client's device rules).

    With ``observation_noise`` (the default) each image is a draw of the full generative model
    p(x | z) = N(mean(z), diag(std^2)): Gaussian pixel noise, seeded by ``seed + 1``, times the
    per-pixel standard deviation of the training reconstructions' residuals is added to the
    decoder's mean image; the speckle-like texture of ultrasound lives in that term. Without it the
    images are the smooth (blurry) decoder means.

    ``seeds`` (one int per sample) replaces the draws from ``seed``: sample k's latent and then its
    pixel noise come from its own generator seeded by ``seeds[k]`` and the network then runs over
    the whole call at once, so image k depends on ``seeds[k]`` alone, up to the float rounding of
    another batch (at most a grey level), not on the call or batch it is generated in.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"num_samples must be a non-negative int, got {num_samples!r}")
    if not TEMPERATURE_MIN <= temperature <= TEMPERATURE_MAX:
        raise ValueError(
            f"temperature must be in [{TEMPERATURE_MIN}, {TEMPERATURE_MAX}], got {temperature!r}"
        )
    if seeds is None:
        latents = sample_latents(num_samples, seed, temperature)
        pixel_noise = sample_noise(num_samples, seed) if observation_noise else None
    else:
        latents, pixel_noise = sample_per_seed(check_sample_seeds(seeds, num_samples), temperature)
    noise = None
    if observation_noise and pixel_noise is not None:
        noise = pixel_noise * load_observation_std()
    net = load_decoder(device)
    target = next(net.parameters()).device
    out = np.empty((num_samples, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, num_samples, _CHUNK):
            batch = latents[start : start + _CHUNK].to(target)
            extra = None if noise is None else noise[start : start + _CHUNK]
            out[start : start + batch.shape[0]] = to_uint8(net(batch), extra)
    return out
