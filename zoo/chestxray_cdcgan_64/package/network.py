"""The class-conditional DCGAN generator of zoo/chestxray-cdcgan-64, its latents and output mapping.

This is the single definition of the network: the package's ``generate`` and the training recipe
(``zoo/chestxray_cdcgan_64/train.py``) both import it from here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

LATENT_SIZE = 100
IMAGE_SIZE = 64
EMBEDDING_SIZE = 16
NUM_CLASSES = 2
# Labels as stored in the training archive: 0 = NORMAL, 1 = PNEUMONIA.
CLASS_NAMES: tuple[str, ...] = ("normal", "pneumonia")
# Share of PNEUMONIA among the 5216 train images (3875 / 5216): the prior of condition "random".
PNEUMONIA_PRIOR = 3875 / 5216
# The one safetensors metadata key: a JSON object with latent_size and generator_width.
WEIGHTS_METADATA_KEY = "generator"


class ConditionalGenerator(nn.Module):
    """DCGAN generator with a learned class embedding concatenated to the latent.

    Input: latents (N, latent_size) and labels (N,) in {0, 1}. The label embedding (16 values) is
    appended to the latent, then four ConvTranspose-BatchNorm-ReLU blocks (4x4 -> 8x8 -> 16x16 ->
    32x32) and a final ConvTranspose to one channel at 64x64 followed by Tanh.
    """

    def __init__(self, latent_size: int = LATENT_SIZE, width: int = 40) -> None:
        super().__init__()
        self.latent_size = latent_size
        self.embedding = nn.Embedding(NUM_CLASSES, EMBEDDING_SIZE)
        w = width
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_size + EMBEDDING_SIZE, w * 8, 4, 1, 0, bias=False),
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
            nn.ConvTranspose2d(w, 1, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Map latents (N, latent_size) and labels (N,) to images (N, 1, 64, 64) in [-1, 1]."""
        joint = torch.cat([z.reshape(z.shape[0], self.latent_size), self.embedding(labels)], 1)
        out: torch.Tensor = self.net(joint.reshape(z.shape[0], -1, 1, 1))
        return out


def sample_latents(num_samples: int, seed: int, truncation: float = 1.0) -> torch.Tensor:
    """Draw ``num_samples`` latents from N(0, I) on the CPU with a generator seeded by ``seed``.

    Drawing on the CPU makes the latents, and hence the images, independent of the device.
    ``truncation`` scales the latents towards zero (below 1.0) or away from it (above 1.0).
    """
    rng = torch.Generator(device="cpu")
    rng.manual_seed(seed)
    z = torch.randn(num_samples, LATENT_SIZE, generator=rng, dtype=torch.float32)
    return z * truncation


def sample_labels(num_samples: int, seed: int, condition: str) -> torch.Tensor:
    """Class labels (N,) int64 for ``condition``: all 0, all 1, or drawn with the training prior.

    ``"random"`` draws each label independently as PNEUMONIA with probability
    ``PNEUMONIA_PRIOR`` from a CPU generator seeded by ``seed + 1`` (not ``seed``, so that the
    label draw does not repeat the latent draw's random numbers).
    """
    if condition == "random":
        rng = torch.Generator(device="cpu")
        rng.manual_seed(seed + 1)
        return (torch.rand(num_samples, generator=rng) < PNEUMONIA_PRIOR).long()
    return torch.full((num_samples,), CLASS_NAMES.index(condition), dtype=torch.long)


def sample_inputs_per_seed(
    seeds: Sequence[int], condition: str, truncation: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents (N, latent) and labels (N,) with one CPU generator per seed.

    Generator k, seeded by ``seeds[k]``, draws latent k and then, for ``"random"``, label k
    (PNEUMONIA with probability ``PNEUMONIA_PRIOR``), so sample k depends on ``seeds[k]`` alone.
    ``truncation`` scales the latents as in ``sample_latents``.
    """
    latents = torch.empty(len(seeds), LATENT_SIZE, dtype=torch.float32)
    labels = sample_labels(len(seeds), 0, "normal" if condition == "random" else condition)
    for index, seed in enumerate(seeds):
        rng = torch.Generator(device="cpu")
        rng.manual_seed(seed)
        latents[index] = torch.randn(LATENT_SIZE, generator=rng, dtype=torch.float32)
        if condition == "random":
            labels[index] = int(torch.rand(1, generator=rng).item() < PNEUMONIA_PRIOR)
    return latents * truncation, labels


def to_uint8(images: torch.Tensor) -> npt.NDArray[np.uint8]:
    """Map Tanh output in [-1, 1] of shape (N, 1, H, W) to uint8 (N, H, W), rounding to nearest."""
    scaled = ((images.float().squeeze(1) + 1.0) * 127.5).round().clamp(0.0, 255.0)
    result: npt.NDArray[np.uint8] = scaled.to(device="cpu", dtype=torch.uint8).numpy()
    return result
