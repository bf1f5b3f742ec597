"""Random Inception weights that keep activations of order one, for tests without the real files.

PyTorch's default initialisation shrinks activations towards zero over Inception's 94 layers, and
features that are all near zero make equality tests pass for the wrong reason. He-scaled
convolutions and batch norms near identity keep features of order one.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def random_inception_state_dict(network: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """A random state dict with `network`'s keys and shapes, reproducible from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for name, tensor in network.state_dict().items():
        shape = tensor.shape
        if name.endswith("conv.weight"):
            std = math.sqrt(2.0 / shape[1:].numel())
            state[name] = torch.randn(shape, generator=generator) * std
        elif name.endswith(("bn.weight", "bn.running_var")):
            state[name] = 0.5 + torch.rand(shape, generator=generator)
        elif name.endswith(("bn.bias", "bn.running_mean")):
            state[name] = 0.1 * torch.randn(shape, generator=generator)
        elif name.startswith("fc."):
            state[name] = 0.01 * torch.randn(shape, generator=generator)
        else:  # batch norm step counters
            state[name] = tensor.clone()
    return state
