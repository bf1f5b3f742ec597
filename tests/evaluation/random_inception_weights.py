"""Random Inception weights with features of the real network's magnitude, for tests without them.

PyTorch's default initialisation shrinks activations towards zero over Inception's 94 layers, and
features that are all near zero make equality tests pass for the wrong reason. He-scaled
convolutions and batch norms near identity keep activations of order one. The batch norms at the
ends of the last block's branches, whose outputs are the features, are then scaled by
`feature_scale`, and the features scale with it exactly (ReLU and average pooling are positively
homogeneous). The default 0.1 gives features of mean ~0.3 (images) to ~0.5 (noise), at most a
few units, and FIDs between unlike image sets in the hundreds, as the real FID weights give;
unscaled, such FIDs reach ~20,000, and an absolute tolerance such as pytorch-fid equality's 1e-5
would then be ten times stricter than it is for the real network.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# The layers of Mixed_7c whose outputs are concatenated into the features.
FEATURE_LAYERS = tuple(
    f"Mixed_7c.{branch}.bn."
    for branch in (
        "branch1x1",
        "branch3x3_2a",
        "branch3x3_2b",
        "branch3x3dbl_3a",
        "branch3x3dbl_3b",
        "branch_pool",
    )
)


def random_inception_state_dict(
    network: nn.Module, seed: int, *, feature_scale: float = 0.1
) -> dict[str, torch.Tensor]:
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
        if name.startswith(FEATURE_LAYERS) and name.endswith(("bn.weight", "bn.bias")):
            state[name] = state[name] * feature_scale
    return state
