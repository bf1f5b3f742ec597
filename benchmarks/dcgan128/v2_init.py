"""A v2 package of medigan's DCGAN 128 template (the same network and weights as the legacy one).

``generate(num_samples, *, seed, device, seeds=None)`` returns (N, 128, 128) uint8. The network
is loaded once per process by ``medigan_client.package_support.load_network`` (eval mode, no
gradients, channels-last: see docs/runtimes.md) and run under ``torch.inference_mode()``; each
sample's latent comes from its own seed when ``seeds`` are given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medigan_client.package_support import check_sample_seeds, load_network

from .network import LATENT_SIZE, Generator, to_uint8

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights.safetensors"


def _build(shape: Mapping[str, Any]) -> Generator:
    return Generator()


def generate(
    num_samples: int, *, seed: int, device: str = "cpu", seeds: Sequence[int] | None = None
) -> np.ndarray:
    network = load_network(
        WEIGHTS_PATH, _build, device=device, metadata_key="network", channels_last=True
    )
    if seeds is None:
        generator = torch.Generator().manual_seed(seed)
        latents = torch.randn(num_samples, LATENT_SIZE, 1, 1, generator=generator)
    else:
        latents = torch.stack(
            [
                torch.randn(LATENT_SIZE, 1, 1, generator=torch.Generator().manual_seed(s))
                for s in check_sample_seeds(seeds, num_samples)
            ]
        )
    target = next(network.parameters()).device
    with torch.inference_mode():
        return to_uint8(network(latents.to(target)))
