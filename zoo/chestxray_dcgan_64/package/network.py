"""The DCGAN generator of zoo/chestxray-dcgan-64, its latent sampling and its output mapping.

This is the single definition of the network: the package's ``generate`` and the training recipe
(``zoo/chestxray_dcgan_64/train.py``) both import it from here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

LATENT_SIZE = 100
IMAGE_SIZE = 64
# The one safetensors metadata key: a JSON object with latent_size and generator_width.
WEIGHTS_METADATA_KEY = "generator"


class Generator(nn.Module):
    """Standard DCGAN generator: a latent (N, latent_size) to an image (N, 1, 64, 64) in [-1, 1].

    Four ConvTranspose-BatchNorm-ReLU blocks (4x4 -> 8x8 -> 16x16 -> 32x32) and a final
    ConvTranspose to one channel at 64x64 followed by Tanh.
    """

    def __init__(self, latent_size: int = LATENT_SIZE, width: int = 40, channels: int = 1) -> None:
        super().__init__()
        self.latent_size = latent_size
        w = width
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_size, w * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(w * 8),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(w * 8, w * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(w * 4),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(w * 4, w * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(w * 2),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(w * 2, w, 4, 2, 1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(w, channels, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map latents of shape (N, latent_size) or (N, latent_size, 1, 1) to images."""
        out: torch.Tensor = self.net(z.reshape(z.shape[0], self.latent_size, 1, 1))
        return out


def sample_latents(num_samples: int, seed: int, truncation: float = 1.0) -> torch.Tensor:
    """Draw ``num_samples`` latents from N(0, I) on the CPU with a generator seeded by ``seed``.

    Drawing on the CPU makes the latents, and hence the images, independent of the device the
    generator later runs on. ``truncation`` scales the latents towards the prior's mean (zero):
    1.0 samples the training prior unchanged, smaller values trade diversity for typicality,
    larger values (up to 2.0) widen the distribution.
    """
    rng = torch.Generator(device="cpu")
    rng.manual_seed(seed)
    z = torch.randn(num_samples, LATENT_SIZE, generator=rng, dtype=torch.float32)
    return z * truncation


def sample_latents_per_seed(seeds: Sequence[int], truncation: float = 1.0) -> torch.Tensor:
    """One latent per seed, each drawn on the CPU from its own generator seeded by that seed.

    Latent k depends on ``seeds[k]`` alone, so an image does not depend on the other seeds of
    its call: ``seeds=[s]`` gives the latent that ``sample_latents(1, s)`` gives.
    """
    latents = torch.empty(len(seeds), LATENT_SIZE, dtype=torch.float32)
    for index, seed in enumerate(seeds):
        latents[index] = sample_latents(1, seed)[0]
    return latents * truncation


def to_uint8(images: torch.Tensor) -> npt.NDArray[np.uint8]:
    """Map Tanh output in [-1, 1] of shape (N, 1, H, W) to uint8 (N, H, W), rounding to nearest."""
    scaled = ((images.float().squeeze(1) + 1.0) * 127.5).round().clamp(0.0, 255.0)
    result: npt.NDArray[np.uint8] = scaled.to(device="cpu", dtype=torch.uint8).numpy()
    return result
