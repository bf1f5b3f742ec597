"""Inference-only layers that the extractors share: convolution, batch norm and ReLU as one layer.

A network in eval mode normalises with fixed running statistics, so `relu(bn(conv(x)))` is one
convolution with rescaled weights and a bias, followed by a ReLU. On the CPU that ReLU runs
inside the convolution as a oneDNN post-op (the `mkldnn::_convolution_pointwise` operator that
torch's own compiler emits for CPU), so a layer reads and writes its activations once instead
of three times, in channels-last, oneDNN's native layout. `benchmarks/features.py` measures what
this is worth; the arithmetic rounds differently from the three separate layers, by about 1e-6
of the activations' magnitude.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

__all__ = ["FusedConvReLU", "pointwise_convolution_available"]


def pointwise_convolution_available() -> bool:
    """Whether this torch has oneDNN's fused convolution (every x86-64 and arm64 CPU wheel)."""
    try:
        torch.ops.mkldnn._convolution_pointwise.default  # noqa: B018 (a lookup that may raise)
    except (AttributeError, RuntimeError):
        return False
    return True


_POINTWISE_CONVOLUTION = pointwise_convolution_available()


class FusedConvReLU(nn.Module):
    """`relu(bn(conv(x)))` of a bias-free convolution and an eval-mode batch norm, as one layer.

    `input_scale` and `input_shift` fold an affine map of the input, `x -> scale * x + shift`,
    into the convolution too; that is exact only without padding (padded zeros would be shifted
    as well), so it is refused for a padded convolution. The folded tensors are non-persistent
    buffers: they follow `.to(device)` and stay out of state dicts.
    """

    weight: torch.Tensor
    bias: torch.Tensor

    def __init__(
        self,
        conv: nn.Conv2d,
        bn: nn.BatchNorm2d,
        *,
        input_scale: float = 1.0,
        input_shift: float = 0.0,
    ) -> None:
        super().__init__()
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError("a batch norm without running statistics cannot be folded")
        if not isinstance(conv.padding, tuple) or conv.groups != 1 or conv.bias is not None:
            raise ValueError("only an ungrouped, bias-free convolution with numeric padding folds")
        affine = input_scale != 1.0 or input_shift != 0.0
        if affine and any(conv.padding):
            raise ValueError("an input scaling folds only into a convolution without padding")
        with torch.no_grad():
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            weight = conv.weight * scale.reshape(-1, 1, 1, 1)
            bias = bn.bias - bn.running_mean * scale
            if affine:
                # conv_W(a * x + s) = conv_{a * W}(x) + s * sum(W), per output channel.
                bias = bias + input_shift * weight.sum(dim=(1, 2, 3))
                weight = weight * input_scale
        self.register_buffer(
            "weight", weight.contiguous(memory_format=torch.channels_last), persistent=False
        )
        self.register_buffer("bias", bias.contiguous(), persistent=False)
        self.stride = [int(value) for value in conv.stride]
        self.padding = [int(value) for value in conv.padding]
        self.dilation = [int(value) for value in conv.dilation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _POINTWISE_CONVOLUTION and x.device.type == "cpu" and not torch.is_grad_enabled():
            fused: torch.Tensor = torch.ops.mkldnn._convolution_pointwise(
                x,
                self.weight,
                self.bias,
                self.padding,
                self.stride,
                self.dilation,
                1,
                "relu",
                [],
                "",
            )
            return fused
        # Other devices, and autograd (which the fused operator lacks): the same folded layer.
        convolved = functional.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation
        )
        return functional.relu(convolved, inplace=True)
