"""The convolutional VAE decoder of zoo/busi-vae-64, its prior sampling and its output mapping.

This is the single definition of the decoder: the package's ``generate`` and the training recipe
(``zoo/busi_vae_64/train.py``, which adds the encoder) both import it from here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

LATENT_SIZE = 128
IMAGE_SIZE = 64
# The one safetensors metadata key: a JSON object with latent_size and width.
WEIGHTS_METADATA_KEY = "decoder"
# The tensor in the weights file beside the decoder's: the per-pixel standard deviation (64, 64),
# in grey levels, of the Gaussian observation model p(x | z) = N(decoder mean, diag(std^2)).
OBSERVATION_STD_KEY = "observation_std"


class Decoder(nn.Module):
    """A latent (N, latent_size) to image logits (N, 1, 64, 64); ``sigmoid`` gives [0, 1] pixels.

    A linear layer to (8w, 4, 4), then three nearest-upsample + 3x3 Conv-BatchNorm-ReLU blocks
    (8 -> 16 -> 32 pixels; upsampling then convolving avoids the checkerboard pattern of
    transposed convolutions) and a 4x4 stride-2 transposed convolution to one channel at 64x64
    (a full-resolution 3x3 block would cost as much as the three others together on a CPU).
    """

    def __init__(self, latent_size: int = LATENT_SIZE, width: int = 32) -> None:
        super().__init__()
        self.latent_size = latent_size
        self.width = width
        w = width
        self.project = nn.Linear(latent_size, w * 8 * 4 * 4)
        blocks: list[nn.Module] = []
        for cin, cout in ((w * 8, w * 4), (w * 4, w * 2), (w * 2, w)):
            blocks += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        self.net = nn.Sequential(*blocks, nn.ConvTranspose2d(w, 1, 4, 2, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map latents (N, latent_size) to pixel logits (N, 1, 64, 64)."""
        hidden = torch.relu(self.project(z)).reshape(z.shape[0], self.width * 8, 4, 4)
        out: torch.Tensor = self.net(hidden)
        return out


def sample_latents(num_samples: int, seed: int, temperature: float = 1.0) -> torch.Tensor:
    """Draw ``num_samples`` latents from N(0, temperature^2 I) on the CPU, seeded by ``seed``.

    Drawing on the CPU makes the latents, and hence the images, independent of the device.
    """
    rng = torch.Generator(device="cpu")
    rng.manual_seed(seed)
    z = torch.randn(num_samples, LATENT_SIZE, generator=rng, dtype=torch.float32)
    return z * temperature


def sample_noise(num_samples: int, seed: int) -> torch.Tensor:
    """Standard normal pixel noise (N, 64, 64) for the observation model, drawn on the CPU.

    The generator is seeded by ``seed + 1`` (not ``seed``) so that the noise does not repeat the
    latent draw's random numbers.
    """
    rng = torch.Generator(device="cpu")
    rng.manual_seed(seed + 1)
    return torch.randn(num_samples, IMAGE_SIZE, IMAGE_SIZE, generator=rng, dtype=torch.float32)


def sample_per_seed(
    seeds: Sequence[int], temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents (N, latent) and standard normal pixel noise (N, 64, 64), one CPU generator per seed.

    Generator k, seeded by ``seeds[k]``, draws latent k and then noise k, so sample k depends on
    ``seeds[k]`` alone. ``temperature`` scales the latents as in ``sample_latents``.
    """
    latents = torch.empty(len(seeds), LATENT_SIZE, dtype=torch.float32)
    noise = torch.empty(len(seeds), IMAGE_SIZE, IMAGE_SIZE, dtype=torch.float32)
    for index, seed in enumerate(seeds):
        rng = torch.Generator(device="cpu")
        rng.manual_seed(seed)
        latents[index] = torch.randn(LATENT_SIZE, generator=rng, dtype=torch.float32)
        noise[index] = torch.randn(IMAGE_SIZE, IMAGE_SIZE, generator=rng, dtype=torch.float32)
    return latents * temperature, noise


def to_uint8(logits: torch.Tensor, noise: torch.Tensor | None = None) -> npt.NDArray[np.uint8]:
    """Map decoder logits (N, 1, H, W) to uint8 (N, H, W): 255 * sigmoid, plus noise, rounded.

    ``noise`` (N, H, W), in grey levels, is added before rounding and clipping: the observation
    model's draw around the decoder's mean image.
    """
    mean = torch.sigmoid(logits.float()).squeeze(1) * 255.0
    if noise is not None:
        mean = mean + noise.to(mean.device)
    scaled = mean.round().clamp(0.0, 255.0)
    result: npt.NDArray[np.uint8] = scaled.to(device="cpu", dtype=torch.uint8).numpy()
    return result
