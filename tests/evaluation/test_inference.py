"""The fused inference layer: the same function as convolution, batch norm and ReLU, and faster."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evaluation.inference import FusedConvReLU, pointwise_convolution_available


def _layers(padding: int | tuple[int, int], seed: int = 0) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    generator = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(6, 8, 3, stride=2, padding=padding, bias=False)
    bn = nn.BatchNorm2d(8, eps=0.001)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * 0.3)
        bn.weight.copy_(0.5 + torch.rand(8, generator=generator))
        bn.bias.copy_(0.2 * torch.randn(8, generator=generator))
        assert bn.running_mean is not None and bn.running_var is not None
        bn.running_mean.copy_(0.2 * torch.randn(8, generator=generator))
        bn.running_var.copy_(0.5 + torch.rand(8, generator=generator))
    return conv.eval(), bn.eval()


def _unfused(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = torch.relu(bn(conv(x)))
    return out


def test_this_torch_has_the_fused_cpu_operator() -> None:
    # Every x86-64 CPU wheel has oneDNN; without it the layer would still be right, but slower.
    assert pointwise_convolution_available()


@pytest.mark.parametrize("padding", [0, 1, (0, 1)])
def test_fused_layer_equals_convolution_batch_norm_relu(padding: int | tuple[int, int]) -> None:
    conv, bn = _layers(padding)
    fused = FusedConvReLU(conv, bn)
    x = torch.randn(3, 6, 17, 13, generator=torch.Generator().manual_seed(1))
    expected = _unfused(conv, bn, x)

    with torch.inference_mode():
        fast = fused(x.contiguous(memory_format=torch.channels_last))
        plain_layout = fused(x)
    with torch.enable_grad():
        # Grad mode: the fallback (plain convolution with the folded weights, then ReLU).
        fallback = fused(x)

    assert (expected == 0).any() and (expected > 0).any()  # the ReLU cuts somewhere
    for out in (fast, plain_layout, fallback):
        assert out.shape == expected.shape
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert fast.is_contiguous(memory_format=torch.channels_last)
    assert "weight" not in fused.state_dict()  # folded tensors stay out of state dicts


def test_an_input_scaling_folds_into_an_unpadded_convolution() -> None:
    conv, bn = _layers(padding=0, seed=2)
    fused = FusedConvReLU(conv, bn, input_scale=2.0, input_shift=-1.0)
    x = torch.rand(2, 6, 15, 15, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        out = fused(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, _unfused(conv, bn, 2 * x - 1), rtol=1e-5, atol=1e-6)


def test_an_input_scaling_is_refused_for_a_padded_convolution() -> None:
    # Padded zeros are not scaled inputs: folding would shift them too.
    conv, bn = _layers(padding=1)
    with pytest.raises(ValueError, match="without padding"):
        FusedConvReLU(conv, bn, input_scale=2.0, input_shift=-1.0)


def test_a_batch_norm_without_running_statistics_is_refused() -> None:
    conv, _ = _layers(padding=1)
    with pytest.raises(ValueError, match="running statistics"):
        FusedConvReLU(conv, nn.BatchNorm2d(8, track_running_stats=False))
