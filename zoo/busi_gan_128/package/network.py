"""The generator of zoo/busi-gan-128, its latent sampling and its output mapping.

This is the single definition of the network: the package's ``generate`` and the training recipe
(``zoo/busi_gan_128/train.py``) both import it from here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

LATENT_SIZE = 100
IMAGE_SIZE = 128
# Channels of the 4x4, 8x8, 16x16, 32x32, 64x64 and 128x128 feature maps; the output has one.
DEFAULT_WIDTHS: tuple[int, ...] = (256, 128, 64, 32, 16, 8)
# The one safetensors metadata key: a JSON object with latent_size and generator_widths.
WEIGHTS_METADATA_KEY = "generator"


class Generator(nn.Module):
    """Upsample-and-convolve generator: a latent (N, latent_size) to a grey image (N, 1, 128, 128).

    A linear projection of the latent to a 4x4 map, then five blocks of nearest-neighbour 2x
    upsampling, 3x3 convolution, BatchNorm and ReLU (8x8 -> 128x128), and a final 3x3 convolution
    to one channel with Tanh. Resizing before a convolution instead of a stride-2 transposed
    convolution gives every output pixel the same number of kernel taps, which avoids the
    checkerboard texture of transposed convolutions; nearest-neighbour rather than bilinear
    resizing keeps the high frequencies that ultrasound speckle needs (a bilinear trial gave
    smooth, texture-free images that the discriminator rejected easily).
    """

    def __init__(
        self, latent_size: int = LATENT_SIZE, widths: tuple[int, ...] = DEFAULT_WIDTHS
    ) -> None:
        super().__init__()
        self.latent_size = latent_size
        self.base_width = widths[0]
        self.project = nn.Linear(latent_size, widths[0] * 4 * 4, bias=False)
        layers: list[nn.Module] = [nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
        for wide, narrow in itertools.pairwise(widths):
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(wide, narrow, 3, 1, 1, bias=False),
                nn.BatchNorm2d(narrow),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.Conv2d(widths[-1], 1, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map latents of shape (N, latent_size) to images in [-1, 1]."""
        base = self.project(z.reshape(z.shape[0], self.latent_size))
        out: torch.Tensor = self.net(base.reshape(-1, self.base_width, 4, 4))
        return out


def sample_latents(num_samples: int, seed: int, truncation: float = 1.0) -> torch.Tensor:
    """Draw ``num_samples`` latents from N(0, I) on the CPU with a generator seeded by ``seed``.

    Drawing on the CPU makes the latents, and hence the images, independent of the device the
    generator later runs on. ``truncation`` scales the latents towards the prior's mean (zero).
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
