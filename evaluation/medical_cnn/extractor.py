"""The ``medical-cnn`` feature extractor: the project's own CNN and its committed weights.

FID computed with these features is NOT comparable with published FID values, which use the
ImageNet Inception v3; ``comparable_with_published`` is False so that every report says so.
"""

from __future__ import annotations

from pathlib import Path

import torch

from evaluation.features import WeightsError, file_sha256, load_state_dict_file
from evaluation.medical_cnn.network import CLASS_NAMES, FEATURE_DIM, INPUT_SIZE, MedicalCnn

EXTRACTOR_ID = "medical-cnn"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights.safetensors"


class MedicalCnnExtractor:
    """Features of the medical CNN's 256-d feature layer, taken BEFORE its ReLU.

    Pre-ReLU values are used because units that the ReLU zeroes for a whole image set would give
    singular covariance matrices in the Fréchet distance; the classifier head sees the same layer
    after ReLU. The network runs in eval mode (BatchNorm running statistics, no dropout) under
    ``torch.inference_mode``, so features are deterministic for a given input and device.
    """

    id: str = EXTRACTOR_ID
    feature_dim: int = FEATURE_DIM
    input_size: int = INPUT_SIZE
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
            features = self.network.features(images)
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
