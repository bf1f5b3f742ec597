"""medigan's DCGAN 128 x 128 template network (templates/examples in medigan's repository).

Five transposed convolutions, each followed by batch norm and ReLU, double a 4 x 4 map from a
100-d latent up to 64 x 64 with 1024, 512, 256, 128 and 64 channels; a last transposed
convolution to one channel and tanh make the 128 x 128 image. The layer sizes are the
template's (nz 100, ngf 64, no biases); the conditional embedding it also defines is never used
by its unconditional ``generate`` and is left out. Written for the benchmark, not copied.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

LATENT_SIZE = 100
WIDTH = 64
IMAGE_SIZE = 128


def _up(inputs: int, outputs: int, *, first: bool = False) -> list[nn.Module]:
    stride, padding = (1, 0) if first else (2, 1)
    return [
        nn.ConvTranspose2d(inputs, outputs, 4, stride, padding, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    ]


class Generator(nn.Module):
    """latent (N, 100, 1, 1) -> image (N, 1, 128, 128) in [-1, 1]."""

    def __init__(self, latent_size: int = LATENT_SIZE, width: int = WIDTH):
        super().__init__()
        self.main = nn.Sequential(
            *_up(latent_size, width * 16, first=True),
            *_up(width * 16, width * 8),
            *_up(width * 8, width * 4),
            *_up(width * 4, width * 2),
            *_up(width * 2, width),
            nn.ConvTranspose2d(width, 1, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.main(latents)  # type: ignore[no-any-return]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 1, H, W) in [-1, 1] -> (N, H, W) uint8."""
    scaled = ((images[:, 0].float() + 1.0) * 127.5).round_().clamp_(0, 255)
    return scaled.to(torch.uint8).cpu().numpy()
