"""The Inception v3 feature extractors: the FID network of pytorch-fid, and RadImageNet's.

Both are written in plain torch, because torchvision does not import beside the project's torch,
with torchvision's module and parameter names (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.
running_mean`, ...), so the state dicts that the PyTorch FID ecosystem distributes load unchanged
with `strict=True`.

`inception-v3-fid` reproduces `pytorch_fid.inception.InceptionV3([3])` with `use_fid_inception=True`
(pytorch-fid 0.3.0), itself a port of the TensorFlow graph that defined FID:

- torchvision's `Inception3(num_classes=1008, aux_logits=False, transform_input=False)` layout; the
  1008-way `fc` exists only so that the weights file loads strictly, features are taken before it;
- every `BasicConv2d` is a bias-free convolution, batch norm with eps=0.001, ReLU;
- `Mixed_5b/5c/5d` (FIDInceptionA), `Mixed_6b..6e` (FIDInceptionC) and `Mixed_7b` (FIDInceptionE_1)
  pool their `branch_pool` input with a 3x3, stride 1, padding 1 average that does not count the
  padded zeros (`count_include_pad=False`, TensorFlow's SAME average pooling);
- `Mixed_7c` (FIDInceptionE_2) pools that branch with a 3x3 stride 1 padding 1 *max* pool, a quirk
  of the TensorFlow graph that every comparable FID keeps;
- `Mixed_6a` and `Mixed_7a` are torchvision's InceptionB and InceptionD unchanged;
- pool3 features: the 2048 channels after `Mixed_7c`, adaptive-average-pooled to 1x1;
- input: [0, 1] values scaled to [-1, 1] as `2 * x - 1` (after resizing, as pytorch-fid does);
- weights: `pt_inception-2015-12-05-6726825d.pth`, whose sha256 starts with `6726825d`.

`InceptionV3Network` is that graph with torchvision's names, the form weights load into. The
extractors run `InferenceInceptionV3`, the same function rearranged for speed on the CPU
(`benchmarks/features.py` measures it against pytorch-fid):

- every batch norm is folded into the convolution before it (inference uses running statistics,
  so `bn(conv(x))` is one convolution with scaled weights and a bias);
- the ReLU after it is fused into the convolution (oneDNN's post-op, through the
  `mkldnn::_convolution_pointwise` operator that torch's own compiler emits for CPU), so each of
  the 94 layers reads and writes its activations once instead of three times;
- activations are channels-last, oneDNN's native layout, so no layer reorders its input;
- the input scaling `2 * x - 1` is folded into the first convolution, which has no padding, so
  `conv(2x - 1) = conv_{2W}(x) - sum(W)` holds at every output pixel.

The rearranged arithmetic rounds differently, by about 1e-6 of the features' magnitude; the
equality tests against pytorch-fid in `tests/evaluation/reference/` bound the difference.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from evaluation.features import (
    CUSTOM_INCEPTION_PREFIX,
    WeightsError,
    check_weights_file,
    file_sha256,
    load_state_dict_file,
    resolve_weights_path,
)
from evaluation.inference import FusedConvReLU

__all__ = [
    "FidInceptionExtractor",
    "InceptionV3Network",
    "InferenceInceptionV3",
    "RadImageNetInceptionExtractor",
    "custom_inception_id",
    "fid_inception_v3",
    "radimagenet_inception_v3",
]


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001, TensorFlow's default), ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional.relu(self.bn(self.conv(x)))


def _average_pool_same(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's SAME average pooling divides by the number of real pixels under the window;
    # torchvision's default (count_include_pad=True) would darken every border pixel.
    return functional.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block (Mixed_5b/5c/5d): 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_average_pool_same(x))
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3(x)
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = functional.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch3x3dbl, branch_pool], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b..6e)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        branch7x7dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(branch7x7dbl))
        branch7x7dbl = self.branch7x7dbl_5(self.branch7x7dbl_4(branch7x7dbl))
        branch_pool = self.branch_pool(_average_pool_same(x))
        return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        branch7x7x3 = self.branch7x7x3_4(self.branch7x7x3_3(branch7x7x3))
        branch_pool = functional.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch7x7x3, branch_pool], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 convolutions (Mixed_7b, Mixed_7c).

    `max_pool` selects the FID graph's max pooling in the pooled branch of its last block;
    otherwise the branch averages as the other blocks do.
    """

    def __init__(self, in_channels: int, *, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat(
            [self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1
        )
        if self.max_pool:
            pooled = functional.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _average_pool_same(x)
        branch_pool = self.branch_pool(pooled)
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)


class InceptionV3Network(nn.Module):
    """Inception v3 up to its global average pool; `forward` returns (N, 2048) features.

    `num_classes` adds torchvision's final `fc` layer, unused by `forward`, for weights files that
    carry it; `last_block_max_pool` picks the FID graph's max pooling in `Mixed_7c`.
    """

    def __init__(self, *, last_block_max_pool: bool, num_classes: int | None) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=last_block_max_pool)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2048, num_classes) if num_classes is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_after_stem(self.Conv2d_1a_3x3(x))

    def forward_after_stem(self, x: torch.Tensor) -> torch.Tensor:
        """Features of the first convolution's output: every layer after `Conv2d_1a_3x3`."""
        x = self.maxpool1(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(x)))
        x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        x = self.Mixed_6a(x)
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        return torch.flatten(self.avgpool(x), 1)


def fid_inception_v3() -> InceptionV3Network:
    """The FID Inception graph, randomly initialised; its keys are those of the FID weights file."""
    return InceptionV3Network(last_block_max_pool=True, num_classes=1008)


def radimagenet_inception_v3() -> InceptionV3Network:
    """Keras' InceptionV3 without its top, in torchvision's names, randomly initialised."""
    return InceptionV3Network(last_block_max_pool=False, num_classes=None)


class InferenceInceptionV3(nn.Module):
    """The function of a loaded `InceptionV3Network`, arranged for fast inference (module docs).

    Built from the network as it is when constructed: weights loaded later are not seen. The
    `fc` layer is left out; `forward(x, normalise=True)` equals `network(2 * x - 1)` up to
    rounding, `normalise=False` equals `network(x)`.
    """

    def __init__(self, network: InceptionV3Network) -> None:
        super().__init__()
        body = copy.deepcopy(network)
        body.fc = None
        layers = [
            (parent, name, child)
            for parent in body.modules()
            for name, child in parent.named_children()
            if isinstance(child, BasicConv2d)
        ]
        for parent, name, child in layers:
            setattr(parent, name, FusedConvReLU(child.conv, child.bn))
        self.body = body.eval()
        stem = network.Conv2d_1a_3x3
        self.stem_normalising = FusedConvReLU(
            stem.conv, stem.bn, input_scale=2.0, input_shift=-1.0
        ).eval()

    def forward(self, x: torch.Tensor, *, normalise: bool) -> torch.Tensor:
        # A no-op for the channels-last batches that `evaluation.preprocessing` makes.
        x = x.contiguous(memory_format=torch.channels_last)
        stem = self.stem_normalising if normalise else self.body.Conv2d_1a_3x3
        return self.body.forward_after_stem(stem(x))


def _load_weights(
    network: nn.Module, state: dict[str, torch.Tensor], path: Path, extractor_id: str
) -> None:
    expected = network.state_dict()
    # Batch norm's step counter plays no part in evaluation and converters often drop it.
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"weights file {path} does not fit feature extractor {extractor_id!r}: "
            f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys "
            f"{unexpected[:5]}"
        )
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(
            f"weights file {path} does not fit feature extractor {extractor_id!r}: {exc}"
        ) from exc


def _check_batch(batch: torch.Tensor, extractor_id: str) -> None:
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise ValueError(
            f"feature extractor {extractor_id!r} takes (N, 3, S, S) images, got "
            f"{tuple(batch.shape)}; preprocess grayscale images with grayscale_to_rgb=True"
        )


def _extract(
    network: InferenceInceptionV3,
    batch: torch.Tensor,
    device: torch.device,
    extractor_id: str,
    *,
    normalise: bool,
) -> torch.Tensor:
    _check_batch(batch, extractor_id)
    with torch.inference_mode():
        features: torch.Tensor = network(batch.to(device, torch.float32), normalise=normalise)
    return features.cpu()


class FidInceptionExtractor:
    """`inception-v3-fid`: pool3 features of the standard FID Inception v3 (see module docs).

    Weights come from `weights_path`, else from the path in `MEDIGAN_INCEPTION_WEIGHTS`; the file
    must be pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (its sha256 starts with
    `6726825d`), and any other file is refused with `WeightsError`.

    Custom weights (the same graph retrained or fine-tuned, e.g. on medical images) are loaded
    only when asked for: `allow_custom_weights=True`, or `with_custom_weights(sha8, ...)`, which
    `load_extractor("inception-v3-custom-<sha8>")` calls. A file other than pytorch-fid's then
    gives the extractor the id `inception-v3-custom-<first 8 hex digits of its sha256>` and
    `comparable_with_published = False`, so its numbers carry the weights in their extractor id
    and provenance, never mix with `inception-v3-fid` ones (leaderboards and `rank` group and
    filter by extractor id), and are labelled as not comparable with published FIDs. With
    pytorch-fid's own file the extractor is `inception-v3-fid` either way.

    `expected_sha256_prefix=None` (without `allow_custom_weights`) skips the check and keeps the
    standard id: only for the equality tests that load the same random weights into this network
    and into pytorch-fid's. `network` holds the weights as the file names them; `extract` runs
    `inference_network`, its fused form (module docs), which holds a second, folded copy of the
    convolution weights (about 90 MB).
    """

    ENV_VAR = "MEDIGAN_INCEPTION_WEIGHTS"
    EXPECTED_SHA256_PREFIX = "6726825d"
    STANDARD_ID = "inception-v3-fid"

    def __init__(
        self,
        weights_path: Path | None = None,
        device: str = "cpu",
        *,
        expected_sha256_prefix: str | None = EXPECTED_SHA256_PREFIX,
        allow_custom_weights: bool = False,
    ) -> None:
        self.id = self.STANDARD_ID
        self.feature_dim = 2048
        self.input_size = 299
        # Throughput levels off from 32 images (benchmarks/features.py); more only costs memory.
        self.batch_size = 32
        path = resolve_weights_path(weights_path, self.ENV_VAR, self.id)
        self.weights_sha256 = file_sha256(path)
        standard = self.weights_sha256.startswith(self.EXPECTED_SHA256_PREFIX)
        if allow_custom_weights and not standard:
            self.id = custom_inception_id(self.weights_sha256)
        pinned = expected_sha256_prefix
        if allow_custom_weights and pinned == self.EXPECTED_SHA256_PREFIX:
            pinned = None  # pytorch-fid's file or any other: the id says which
        if pinned is not None and not self.weights_sha256.startswith(pinned.lower()):
            hint = (
                ""
                if allow_custom_weights
                else "; to evaluate with other Inception weights, load them as custom weights "
                "(allow_custom_weights=True or extractor id inception-v3-custom-"
                f"{self.weights_sha256[:8]}): their numbers are labelled not comparable"
            )
            raise WeightsError(
                f"wrong weights file for feature extractor {self.id!r} at {path}: expected a "
                f"sha256 starting with {pinned.lower()}, the file has {self.weights_sha256}{hint}"
            )
        self.comparable_with_published = self.id == self.STANDARD_ID
        self.weights_path = path
        self.device = torch.device(device)
        self.network = fid_inception_v3()
        _load_weights(self.network, load_state_dict_file(path, extractor_id=self.id), path, self.id)
        self.network.to(self.device).eval()
        self.inference_network = InferenceInceptionV3(self.network)

    @classmethod
    def with_custom_weights(
        cls, sha256_prefix: str, weights_path: Path | None = None, device: str = "cpu"
    ) -> FidInceptionExtractor:
        """`inception-v3-custom-<sha256_prefix>`: custom weights pinned by their sha256's start.

        Refuses (`WeightsError`) a file whose sha256 does not start with `sha256_prefix`, and
        `ValueError` for pytorch-fid's own prefix: those weights are `inception-v3-fid`.
        """
        prefix = sha256_prefix.lower()
        if not _SHA256_PREFIX.fullmatch(prefix):
            raise ValueError(f"a sha256 prefix is 8 to 64 hex digits, got {sha256_prefix!r}")
        if cls.EXPECTED_SHA256_PREFIX.startswith(prefix[:8]):
            raise ValueError(
                f"{custom_inception_id(prefix)} names pytorch-fid's own weights: use "
                f"{cls.STANDARD_ID!r}"
            )
        return cls(weights_path, device, expected_sha256_prefix=prefix, allow_custom_weights=True)

    def extract(self, batch: torch.Tensor, *, normalise: bool = True) -> torch.Tensor:
        """(N, 2048) float32 pool3 features of a [0, 1] batch, scaled to [-1, 1] if `normalise`."""
        return _extract(self.inference_network, batch, self.device, self.id, normalise=normalise)


def custom_inception_id(weights_sha256: str) -> str:
    """The extractor id of the FID graph with custom weights: the weights' sha256 in 8 digits."""
    return f"{CUSTOM_INCEPTION_PREFIX}{weights_sha256[:8].lower()}"


_SHA256_PREFIX = re.compile(r"[0-9a-f]{8,64}")


class RadImageNetInceptionExtractor:
    """`radimagenet-inception`: 2048-d global-average-pooled features of RadImageNet InceptionV3.

    RadImageNet publishes Keras weights (`RadImageNet-InceptionV3_notop.h5`); this extractor loads
    a PyTorch state dict converted from them, from `weights_path` or the path in
    `MEDIGAN_RADIMAGENET_WEIGHTS` (a `torch.save` file or `.safetensors`). As the file is your own
    conversion, its sha256 must be pinned: `expected_sha256` or `MEDIGAN_RADIMAGENET_SHA256` (the
    full hex digest, or a prefix of at least 8 hex digits); without a pin, or with another file,
    loading is refused with `WeightsError`.

    Expected state dict: torchvision's `Inception3(aux_logits=False)` key names without `fc.*`,
    i.e. for each of the 94 `BasicConv2d` modules (`Conv2d_1a_3x3`, ..., `Mixed_7c.branch_pool`)
    the keys `<name>.conv.weight` (out, in, kh, kw), `<name>.bn.weight`, `<name>.bn.bias`,
    `<name>.bn.running_mean`, `<name>.bn.running_var` (and optionally `.bn.num_batches_tracked`).
    Keras creates its conv2d/batch_normalization layers in the same order as torchvision registers
    these modules, so the i-th Keras `conv2d*` kernel, transposed from (kh, kw, in, out) to
    (out, in, kh, kw), is the i-th `.conv.weight`; its batch norm's `beta`, `moving_mean` and
    `moving_variance` are `.bn.bias`, `.bn.running_mean`, `.bn.running_var`; `.bn.weight` is all
    ones, because Keras' InceptionV3 builds its batch norms with `scale=False`.

    The network follows the Keras graph the weights were trained in: TensorFlow's SAME average
    pooling (padding not counted) in every pooled branch, average (not max) pooling in `Mixed_7c`,
    batch norm eps 0.001.

    Input scaling, a choice recorded here because it changes every number: with `normalise`, [0, 1]
    becomes [-1, 1] (`2 * x - 1`), which is what Keras' `inception_v3.preprocess_input` does and
    what the medigan paper's RadImageNet FID script fed this network. RadImageNet's own fine-tuning
    code used Keras' caffe-style ImageNet mean subtraction instead; the [-1, 1] choice keeps our
    numbers next to the medigan paper's. `input_size` is 224, the size RadImageNet was trained at
    and the medigan paper evaluated at.
    """

    ENV_VAR = "MEDIGAN_RADIMAGENET_WEIGHTS"
    SHA256_ENV_VAR = "MEDIGAN_RADIMAGENET_SHA256"

    def __init__(
        self,
        weights_path: Path | None = None,
        device: str = "cpu",
        *,
        expected_sha256: str | None = None,
    ) -> None:
        self.id = "radimagenet-inception"
        self.feature_dim = 2048
        self.input_size = 224
        self.batch_size = 32
        self.comparable_with_published = True
        path = resolve_weights_path(weights_path, self.ENV_VAR, self.id)
        pinned = (expected_sha256 or os.environ.get(self.SHA256_ENV_VAR, "")).strip().lower()
        if not pinned:
            raise WeightsError(
                f"the RadImageNet weights at {path} are not pinned: pass expected_sha256=... or "
                f"set {self.SHA256_ENV_VAR} to the sha256 of the converted weights file"
            )
        if not _SHA256_PREFIX.fullmatch(pinned):
            raise WeightsError(
                f"{self.SHA256_ENV_VAR} / expected_sha256 must be 8 to 64 hex digits, "
                f"got {pinned!r}"
            )
        self.weights_sha256 = check_weights_file(
            path, expected_sha256_prefix=pinned, extractor_id=self.id
        )
        self.weights_path = path
        self.device = torch.device(device)
        self.network = radimagenet_inception_v3()
        _load_weights(self.network, load_state_dict_file(path, extractor_id=self.id), path, self.id)
        self.network.to(self.device).eval()
        self.inference_network = InferenceInceptionV3(self.network)

    def extract(self, batch: torch.Tensor, *, normalise: bool = True) -> torch.Tensor:
        """(N, 2048) float32 features of a [0, 1] batch, scaled to [-1, 1] if `normalise`."""
        return _extract(self.inference_network, batch, self.device, self.id, normalise=normalise)
