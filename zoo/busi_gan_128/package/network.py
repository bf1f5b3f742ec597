"""The DCGAN generator of zoo/busi-gan-128, its latent sampling and its output mapping.

This is the single definition of the network: the package's ``generate`` and the training recipe
(``zoo/busi_gan_128/train.py``) both import it from here.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

LATENT_SIZE = 100
IMAGE_SIZE = 128
# Channels of the 4x4, 8x8, 16x16, 32x32 and 64x64 feature maps; the 128x128 output has one.
DEFAULT_WIDTHS: tuple[int, ...] = (192, 128, 64, 32, 16)
# The one safetensors metadata key: a JSON object with latent_size and generator_widths.
WEIGHTS_METADATA_KEY = "generator"


class Generator(nn.Module):
    """DCGAN-style generator: a latent (N, latent_size) to a grey image (N, 1, 128, 128).

    A ConvTranspose from the latent to 4x4, four stride-2 ConvTranspose-BatchNorm-ReLU blocks
    (8x8 -> 64x64) and a final stride-2 ConvTranspose to one channel at 128x128 with Tanh. The
    widths are about half those of a textbook 128 px DCGAN (and narrower at the top), sized for a
    training set of a few hundred images.
    """

    def __init__(
        self, latent_size: int = LATENT_SIZE, widths: tuple[int, ...] = DEFAULT_WIDTHS
    ) -> None:
        super().__init__()
        self.latent_size = latent_size
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_size, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        for wide, narrow in itertools.pairwise(widths):
            layers += [
                nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False),
                nn.BatchNorm2d(narrow),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], 1, 4, 2, 1, bias=True), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map latents of shape (N, latent_size) or (N, latent_size, 1, 1) to images."""
        out: torch.Tensor = self.net(z.reshape(z.shape[0], self.latent_size, 1, 1))
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


def to_uint8(images: torch.Tensor) -> npt.NDArray[np.uint8]:
    """Map Tanh output in [-1, 1] of shape (N, 1, H, W) to uint8 (N, H, W), rounding to nearest."""
    scaled = ((images.float().squeeze(1) + 1.0) * 127.5).round().clamp(0.0, 255.0)
    result: npt.NDArray[np.uint8] = scaled.to(device="cpu", dtype=torch.uint8).numpy()
    return result
