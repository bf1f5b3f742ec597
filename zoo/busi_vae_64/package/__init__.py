"""v2 package of zoo/busi-vae-64: a convolutional VAE that generates 64x64 breast ultrasound images.

``generate(num_samples, *, seed, device, temperature, observation_noise)`` decodes latents drawn
from the prior N(0, temperature^2 I) and returns uint8 arrays of shape (N, 64, 64): the decoder's
mean image plus, by default, a draw of the Gaussian observation model (per-pixel standard
deviation fitted on the training reconstructions). The weights (decoder and that standard
deviation) are read from ``weights.safetensors`` next to this file, never from the working
directory, and are cached per device for the life of the process.
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

_DECODERS: dict[str, Decoder] = {}
_OBSERVATION_STD: list[torch.Tensor] = []
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


def load_decoder(device: str = "cpu") -> Decoder:
    """Return the float32 decoder on ``device`` in eval mode, loading it once per device.

    The file stores float16 values; ``load_state_dict`` copies them into float32 parameters.
    """
    resolved = _resolve_device(device)
    key = str(resolved)
    with _LOCK:
        cached = _DECODERS.get(key)
        if cached is None:
            with safe_open(str(WEIGHTS_PATH), framework="pt") as handle:
                metadata = handle.metadata() or {}
            shape = json.loads(metadata.get(WEIGHTS_METADATA_KEY, "{}"))
            net = Decoder(
                latent_size=int(shape.get("latent_size", LATENT_SIZE)),
                width=int(shape.get("width", 32)),
            )
            tensors = load_file(str(WEIGHTS_PATH), device="cpu")
            tensors.pop(OBSERVATION_STD_KEY, None)
            net.load_state_dict(tensors)
            net.requires_grad_(False)
            cached = net.to(resolved).eval()
            _DECODERS[key] = cached
    return cached


def load_observation_std() -> torch.Tensor:
    """The observation model's per-pixel standard deviation (64, 64), float32 grey levels, CPU."""
    with _LOCK:
        if not _OBSERVATION_STD:
            std = load_file(str(WEIGHTS_PATH), device="cpu")[OBSERVATION_STD_KEY]
            _OBSERVATION_STD.append(std.float())
    return _OBSERVATION_STD[0]


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
    temperature: float = 1.0,
    observation_noise: bool = True,
    seeds: Sequence[int] | None = None,
) -> npt.NDArray[np.uint8]:
    """Generate ``num_samples`` breast ultrasound images as uint8 (num_samples, 64, 64).

    Latents are drawn on the CPU from N(0, I) with a ``torch.Generator`` seeded by ``seed`` and
    multiplied by ``temperature`` (0.1 to 2.0): 1.0 samples the VAE's prior, lower values give
    smoother, more average images, higher values more varied and less plausible ones. The same
    ``(num_samples, seed)`` gives the same images on every call and device (up to floating-point
    differences between devices). ``device`` is ``"cpu"``, ``"cuda"`` or ``"auto"``.

    With ``observation_noise`` (the default) each image is a draw of the full generative model
    p(x | z) = N(mean(z), diag(std^2)): Gaussian pixel noise, seeded by ``seed + 1``, times the
    per-pixel standard deviation of the training reconstructions' residuals is added to the
    decoder's mean image; the speckle-like texture of ultrasound lives in that term. Without it
    the images are the smooth (blurry) decoder means.

    ``seeds`` (one int per sample) replaces the draws from ``seed``: sample k's latent and then
    its pixel noise come from its own generator seeded by ``seeds[k]`` and image k is decoded
    alone, so it depends on ``seeds[k]`` alone, bit for bit, not on the call or batch it is
    generated in.
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
        chunk = _CHUNK
    else:
        latents, pixel_noise = sample_per_seed(_check_seeds(seeds, num_samples), temperature)
        chunk = 1  # alone, an image's floating-point sums cannot depend on its batch
    noise = None
    if observation_noise and pixel_noise is not None:
        noise = pixel_noise * load_observation_std()
    net = load_decoder(device)
    target = next(net.parameters()).device
    out = np.empty((num_samples, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, num_samples, chunk):
            batch = latents[start : start + chunk].to(target)
            extra = None if noise is None else noise[start : start + chunk]
            out[start : start + batch.shape[0]] = to_uint8(net(batch), extra)
    return out
