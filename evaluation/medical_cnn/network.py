"""The compact CNN behind the ``medical-cnn`` feature extractor: layers, classes, input scaling.

This is the single definition of the network: the training recipe (``train.py``) and the extractor
(``extractor.py``) both import it from here, so the weights file always matches the code reading it.
"""

from __future__ import annotations

import torch
from torch import nn

INPUT_SIZE = 64
FEATURE_DIM = 256
# The one safetensors metadata key: a JSON object describing the network and its training run.
WEIGHTS_METADATA_KEY = "medical_cnn"
# The joint (data set, label) classes, in the order of the classifier's outputs.
CLASS_NAMES: tuple[str, ...] = (
    "chest-xray NORMAL",
    "chest-xray PNEUMONIA",
    "busi benign",
    "busi malignant",
    "busi normal",
    "isic2017 non-melanoma",
    "isic2017 melanoma",
)
WIDTHS: tuple[int, ...] = (32, 64, 128, 256, 256)


def conv_block(in_channels: int, out_channels: int, *, pool: bool) -> nn.Sequential:
    """3x3 convolution, BatchNorm, ReLU and (optionally) a 2x2 max pool."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class MedicalCnn(nn.Module):
    """A five-block CNN on (N, 3, 64, 64) images: features (N, 256) and 7 class logits.

    Blocks of Conv3x3-BN-ReLU with widths 32, 64, 128, 256, 256; the first four end in a 2x2 max
    pool (64 -> 32 -> 16 -> 8 -> 4 pixels), the fifth works at 4x4. A global average pool gives
    256 values, a linear layer maps them to the 256-d feature layer, then ReLU, dropout and a
    linear classifier over ``CLASS_NAMES``.

    ``input_mean`` and ``input_std`` are buffers (so they travel in the weights file): the
    per-channel mean and standard deviation of the training images in [0, 1], which ``normalise``
    subtracts and divides by.
    """

    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        in_channels = 3
        for index, width in enumerate(WIDTHS):
            blocks.append(conv_block(in_channels, width, pool=index < len(WIDTHS) - 1))
            in_channels = width
        self.body = nn.Sequential(*blocks)
        self.feature = nn.Linear(in_channels, FEATURE_DIM)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(FEATURE_DIM, len(CLASS_NAMES))
        self.register_buffer("input_mean", torch.full((3,), 0.5))
        self.register_buffer("input_std", torch.full((3,), 0.25))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Scale [0, 1] images by the training set's per-channel mean and standard deviation."""
        mean = self.get_buffer("input_mean").reshape(1, 3, 1, 1)
        std = self.get_buffer("input_std").reshape(1, 3, 1, 1)
        return (images - mean) / std

    def features(self, normalised: torch.Tensor) -> torch.Tensor:
        """The feature layer (N, FEATURE_DIM) before its ReLU, for already normalised images."""
        pooled = self.body(normalised).mean(dim=(2, 3))
        out: torch.Tensor = self.feature(pooled)
        return out

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits (N, len(CLASS_NAMES)) from the pre-ReLU feature layer."""
        out: torch.Tensor = self.classifier(self.dropout(torch.relu(features)))
        return out

    def forward(self, normalised: torch.Tensor) -> torch.Tensor:
        """Class logits for already normalised images (N, 3, 64, 64)."""
        return self.classify(self.features(normalised))
