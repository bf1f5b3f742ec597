"""The ``medical-cnn`` feature extractor: the project's own CNN and its committed weights.

FID computed with these features is NOT comparable with published FID values, which use the
ImageNet Inception v3; ``comparable_with_published`` is False so that every report says so.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from evaluation.features import WeightsError, file_sha256, load_state_dict_file
from evaluation.inference import FusedConvReLU
from evaluation.medical_cnn.network import CLASS_NAMES, FEATURE_DIM, INPUT_SIZE, MedicalCnn

EXTRACTOR_ID = "medical-cnn"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights.safetensors"


class MedicalCnnExtractor:
    """Features of the medical CNN's 256-d feature layer, taken BEFORE its ReLU.

    Pre-ReLU values are used because units that the ReLU zeroes for a whole image set would give
    singular covariance matrices in the Fréchet distance; the classifier head sees the same layer
    after ReLU. The network runs in eval mode (BatchNorm running statistics, no dropout) under
    ``torch.inference_mode``, so features are deterministic for a given input and device.

    ``network`` is the trained module as its weights file describes it; features come from
    ``inference_body``, its convolution blocks with each batch norm folded into the convolution
    and the ReLU fused into it, channels-last (``evaluation.inference``): the same function,
    rounded differently by about 1e-6 of the features' magnitude, two to three times faster on
    the CPU.
    """

    id: str = EXTRACTOR_ID
    feature_dim: int = FEATURE_DIM
    input_size: int = INPUT_SIZE
    # At 64 pixels activations are small; throughput still grows up to a few hundred images.
    batch_size: int = 250
    comparable_with_published: bool = False
    class_names: tuple[str, ...] = CLASS_NAMES

    def __init__(self, weights_path: Path | None = None, device: str = "cpu") -> None:
        path = DEFAULT_WEIGHTS if weights_path is None else weights_path
        if not path.is_file():
            raise WeightsError(
                f"weights file for feature extractor {EXTRACTOR_ID!r} not found at {path}; the "
                "committed file is evaluation/medical_cnn/weights.safetensors (recipe: "
                "python -m evaluation.medical_cnn.train)"
            )
        self.weights_path = path
        self.weights_sha256: str = file_sha256(path)
        self.device = torch.device(device)
        state = load_state_dict_file(path, extractor_id=EXTRACTOR_ID)
        network = MedicalCnn()
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsError(
                f"weights file {path} does not fit the {EXTRACTOR_ID!r} network: {exc}"
            ) from exc
        self.network = network.to(self.device).eval()
        self.inference_body = _inference_body(self.network).to(self.device).eval()

    def _check(self, batch: torch.Tensor) -> None:
        expected = (3, self.input_size, self.input_size)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != expected:
            raise ValueError(
                f"{EXTRACTOR_ID} expects a batch of shape (N, {expected[0]}, {expected[1]}, "
                f"{expected[2]}), got {tuple(batch.shape)}"
            )

    def extract(self, batch: torch.Tensor, *, normalise: bool = True) -> torch.Tensor:
        """Pre-ReLU feature-layer activations (N, 256) float32 on the CPU.

        ``batch`` is float32 (N, 3, 64, 64) in [0, 1]. With ``normalise`` the per-channel mean and
        standard deviation of the training images (stored in the weights file) are applied first,
        as in training; without it the network sees the raw [0, 1] values.
        """
        self._check(batch)
        with torch.inference_mode():
            images = batch.to(device=self.device, dtype=torch.float32)
            if normalise:
                images = self.network.normalise(images)
            images = images.contiguous(memory_format=torch.channels_last)
            pooled = self.inference_body(images).mean(dim=(2, 3))
            features: torch.Tensor = self.network.feature(pooled)
        return features.to(device="cpu", dtype=torch.float32)

    def classify(self, batch: torch.Tensor) -> torch.Tensor:
        """Class logits (N, 7) over ``class_names`` for a normalisable [0, 1] batch, on the CPU.

        Not part of the extractor protocol: it lets tests and reports check what the features
        know (for example NORMAL vs PNEUMONIA on the held-out chest X-ray test split).
        """
        self._check(batch)
        with torch.inference_mode():
            images = self.network.normalise(batch.to(device=self.device, dtype=torch.float32))
            logits = self.network.classify(self.network.features(images))
        return logits.to(device="cpu", dtype=torch.float32)


def _inference_body(network: MedicalCnn) -> nn.Sequential:
    """`network.body` with each Conv-BN-ReLU block folded into one fused layer (then its pool)."""
    blocks: list[nn.Module] = []
    for block in network.body:
        if not isinstance(block, nn.Sequential):
            raise TypeError(f"unexpected block {type(block).__name__} in the medical CNN")
        conv, bn, _relu, *pool = block
        if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
            raise TypeError("a medical CNN block must start with Conv2d, BatchNorm2d, ReLU")
        blocks.append(nn.Sequential(FusedConvReLU(conv, bn), *pool))
    return nn.Sequential(*blocks)
