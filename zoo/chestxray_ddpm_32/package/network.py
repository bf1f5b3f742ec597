"""The denoiser of zoo/chestxray-ddpm-32 (a compact UNet), its noise schedule and DDIM sampler.

Plain PyTorch, no other dependency, so the training recipe and the v2 package share one copy.
The model predicts the noise ``eps`` added to a clean image ``x0`` (scaled to [-1, 1]) at one
of ``TRAIN_TIMESTEPS`` timesteps of a cosine schedule (Nichol & Dhariwal 2021).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional

IMAGE_SIZE = 32
TRAIN_TIMESTEPS = 1000
WEIGHTS_METADATA_KEY = "zoo_chestxray_ddpm_32"
COSINE_OFFSET = 0.008
MAX_BETA = 0.999


def alphas_cumprod(timesteps: int = TRAIN_TIMESTEPS) -> torch.Tensor:
    """Cumulative products of (1 - beta_t) of the cosine schedule, float64, shape (timesteps,)."""
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=MAX_BETA)
    return torch.cumprod(1 - betas, dim=0)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (N,) as (N, dim), as in the Transformer."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice, with the time embedding added in between, and a skip path."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embed = nn.Linear(embed_dim, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip: nn.Module = (
            nn.Conv2d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Residual update of ``x`` (N, C, H, W) conditioned on ``embedding`` (N, E)."""
        h = self.conv1(functional.silu(self.norm1(x)))
        h = h + self.embed(embedding)[:, :, None, None]
        h = self.conv2(functional.silu(self.norm2(h)))
        out: torch.Tensor = h + self.skip(x)
        return out


class SelfAttention(nn.Module):
    """Single-head self-attention over the pixels of a feature map, with a residual."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, channels * 3, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over the H*W positions of ``x`` (N, C, H, W)."""
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(1)
        attended = functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )
        out: torch.Tensor = x + self.proj(attended.transpose(1, 2).reshape(n, c, h, w))
        return out


class UNet(nn.Module):
    """A two-resolution UNet (32 and 16 pixels) that predicts the noise of a noisy image.

    32 px: ``blocks`` ResBlocks of ``width`` channels; 16 px: ``blocks`` ResBlocks of ``2 * width``
    channels, a middle of ResBlock-attention-ResBlock; the decoder mirrors the encoder with one
    skip connection per ResBlock. The timestep enters every ResBlock through a sinusoidal
    embedding and a two-layer MLP.
    """

    def __init__(self, width: int = 32, blocks: int = 2, groups: int = 8) -> None:
        super().__init__()
        self.width = width
        embed_dim = width * 4
        wide = width * 2
        self.time_mlp = nn.Sequential(
            nn.Linear(width, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)
        )
        self.stem = nn.Conv2d(1, width, 3, padding=1)
        self.down_high = nn.ModuleList(
            [ResBlock(width, width, embed_dim, groups) for _ in range(blocks)]
        )
        self.downsample = nn.Conv2d(width, width, 3, stride=2, padding=1)
        self.down_low = nn.ModuleList(
            [ResBlock(width if i == 0 else wide, wide, embed_dim, groups) for i in range(blocks)]
        )
        self.mid1 = ResBlock(wide, wide, embed_dim, groups)
        self.mid_attention = SelfAttention(wide, groups)
        self.mid2 = ResBlock(wide, wide, embed_dim, groups)
        low_skips = [wide] * blocks
        high_skips = [width] * blocks
        self.up_low = nn.ModuleList(
            [ResBlock(wide + low_skips[-1 - i], wide, embed_dim, groups) for i in range(blocks)]
        )
        self.upsample = nn.Conv2d(wide, width, 3, padding=1)
        self.up_high = nn.ModuleList(
            [ResBlock(width + high_skips[-1 - i], width, embed_dim, groups) for i in range(blocks)]
        )
        self.head_norm = nn.GroupNorm(groups, width)
        self.head = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise (N, 1, 32, 32) for noisy images ``x`` at integer timesteps ``t``."""
        embedding = self.time_mlp(timestep_embedding(t, self.width))
        h = self.stem(x)
        skips: list[torch.Tensor] = []
        for block in self.down_high:
            h = block(h, embedding)
            skips.append(h)
        h = self.downsample(h)
        for block in self.down_low:
            h = block(h, embedding)
            skips.append(h)
        h = self.mid2(self.mid_attention(self.mid1(h, embedding)), embedding)
        for block in self.up_low:
            h = block(torch.cat([h, skips.pop()], dim=1), embedding)
        h = self.upsample(functional.interpolate(h, scale_factor=2.0, mode="nearest"))
        for block in self.up_high:
            h = block(torch.cat([h, skips.pop()], dim=1), embedding)
        out: torch.Tensor = self.head(functional.silu(self.head_norm(h)))
        return out


def sampling_timesteps(steps: int, timesteps: int = TRAIN_TIMESTEPS) -> list[int]:
    """The ``steps`` timesteps DDIM visits, evenly spaced from ``timesteps - 1`` down to 0."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be in [1, {timesteps}], got {steps}")
    spaced = np.linspace(timesteps - 1, 0, steps).round().astype(np.int64)
    return [int(t) for t in spaced]


def ddim_sample(net: UNet, noise: torch.Tensor, steps: int) -> torch.Tensor:
    """Deterministic DDIM (eta = 0, Song et al. 2021) from ``noise`` in ``steps`` model calls.

    At each visited timestep the predicted clean image is clipped to [-1, 1] and the sample
    moves to the next (lower) visited timestep along the predicted noise; the last step returns
    the clipped clean-image prediction. Returns images in [-1, 1], shape of ``noise``.
    """
    abar = alphas_cumprod().to(noise.device)
    visited = sampling_timesteps(steps)
    x = noise.double()
    x0 = x
    for index, t in enumerate(visited):
        batch_t = torch.full((x.shape[0],), t, device=noise.device, dtype=torch.long)
        eps = net(x.float(), batch_t).double()
        x0 = ((x - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()).clamp(-1.0, 1.0)
        if index + 1 == len(visited):
            break
        nxt = abar[visited[index + 1]]
        eps = (x - abar[t].sqrt() * x0) / (1 - abar[t]).sqrt()  # consistent with the clip
        x = nxt.sqrt() * x0 + (1 - nxt).sqrt() * eps
    return x0.float()


def sample_noise(num_samples: int, seed: int) -> torch.Tensor:
    """The starting noise N(0, I), (N, 1, 32, 32), drawn on the CPU from a generator seeded by
    ``seed`` so that a seed gives the same images on every call and device."""
    rng = torch.Generator(device="cpu")
    rng.manual_seed(seed)
    return torch.randn(num_samples, 1, IMAGE_SIZE, IMAGE_SIZE, generator=rng)


def sample_noise_per_seed(seeds: Sequence[int]) -> torch.Tensor:
    """Starting noise (N, 1, 32, 32), image k's drawn on the CPU from a generator seeded by
    ``seeds[k]`` alone: ``seeds=[s]`` gives what ``sample_noise(1, s)`` gives."""
    noise = torch.empty(len(seeds), 1, IMAGE_SIZE, IMAGE_SIZE)
    for index, seed in enumerate(seeds):
        noise[index] = sample_noise(1, seed)[0]
    return noise


def to_uint8(images: torch.Tensor) -> npt.NDArray[np.uint8]:
    """Model-range images (N, 1, H, W) in [-1, 1] to uint8 (N, H, W), rounding to nearest."""
    scaled = ((images.detach().float().cpu()[:, 0] + 1.0) * 127.5).round().clamp(0, 255)
    out: npt.NDArray[np.uint8] = scaled.to(torch.uint8).numpy()
    return out
