"""Feature extractors behind one protocol: the registry, and the weights checks they all share.

An FID number means nothing without the network that produced its features, so every extractor
names itself with a stable id and the sha256 of the exact weights file it loaded; both go into the
evaluation record and into every statistics cache key.

The networks are imported lazily: `load_extractor("inception-v3-fid")` never imports the medical
CNN, and this module works before any particular network module exists.

Besides the registered ids, `inception-v3-custom-<sha8>` names the FID Inception graph with weights
of your own whose sha256 starts with those 8 hex digits: the id says which weights, so two such
numbers are compared only when they came from the same file, and never with `inception-v3-fid`'s
(`evaluation.inception.FidInceptionExtractor`, `docs/evaluation.md`).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    # torch is imported where a network is built or weights are read, not here: the hub imports
    # the registry ids on every request path and must not load torch for that.
    import torch

__all__ = [
    "CUSTOM_INCEPTION_PREFIX",
    "EXTRACTOR_IDS",
    "FeatureExtractor",
    "WeightsError",
    "check_weights_file",
    "file_sha256",
    "load_extractor",
    "load_state_dict_file",
    "resolve_weights_path",
]


class FeatureExtractor(Protocol):
    """What the metric code needs from a network that turns images into feature vectors."""

    id: str
    """Stable registry id: "inception-v3-fid", "radimagenet-inception" or "medical-cnn", or
    "inception-v3-custom-<sha8>" for the FID graph with custom weights (never comparable)."""
    weights_sha256: str
    """Full sha256 (hex) of the weights file actually loaded."""
    feature_dim: int
    input_size: int
    """Side that preprocessing resizes to when the options name no size."""
    batch_size: int
    """How many images `extract` is given at once by the runner: measured to be near the
    extractor's best throughput on a CPU while bounding the memory of its activations."""
    comparable_with_published: bool
    """False where numbers must be labelled as not comparable with published FID values."""

    def extract(self, batch: torch.Tensor, *, normalise: bool = True) -> torch.Tensor:
        """Features of a preprocessed batch.

        `batch` is float32 (N, 3, S, S) with values in [0, 1], as `evaluation.preprocessing`
        makes it. With `normalise` the extractor first maps [0, 1] to the value range its weights
        were trained on; without it the network sees the raw [0, 1] values (the recorded option
        `PreprocessOptions.normalise`). Returns (N, feature_dim) float32 or float64 on the CPU.
        """
        ...


class WeightsError(Exception):
    """A weights file is missing, is not the file that was expected, or does not fit the network."""


# id -> "module:attribute" of a class whose constructor is (weights_path=None, device="cpu").
_REGISTRY: dict[str, str] = {
    "inception-v3-fid": "evaluation.inception:FidInceptionExtractor",
    "radimagenet-inception": "evaluation.inception:RadImageNetInceptionExtractor",
    "medical-cnn": "evaluation.medical_cnn.extractor:MedicalCnnExtractor",
}

EXTRACTOR_IDS: tuple[str, ...] = tuple(_REGISTRY)

CUSTOM_INCEPTION_PREFIX = "inception-v3-custom-"
"""Followed by the first 8 hex digits of the weights' sha256: the FID graph with custom weights."""
_CUSTOM_INCEPTION_ID = re.compile(rf"{CUSTOM_INCEPTION_PREFIX}(?P<sha8>[0-9a-f]{{8}})")


def load_extractor(
    extractor_id: str, *, weights_path: Path | None = None, device: str = "cpu"
) -> FeatureExtractor:
    """Build the extractor registered as `extractor_id`, its weights loaded and checked.

    `weights_path` overrides the extractor's own default (an environment variable for the
    Inception networks, the committed file for the medical CNN). `inception-v3-custom-<sha8>`
    loads custom Inception weights whose sha256 starts with `<sha8>` (module docs). Raises
    `WeightsError` when the weights are missing or wrong, `ValueError` for an unknown id.
    """
    custom = _CUSTOM_INCEPTION_ID.fullmatch(extractor_id)
    if custom is not None:
        from evaluation.inception import FidInceptionExtractor

        return FidInceptionExtractor.with_custom_weights(
            custom["sha8"], weights_path=weights_path, device=device
        )
    try:
        target = _REGISTRY[extractor_id]
    except KeyError:
        known = ", ".join(EXTRACTOR_IDS)
        raise ValueError(
            f"unknown feature extractor {extractor_id!r}; known: {known}, or "
            f"{CUSTOM_INCEPTION_PREFIX}<first 8 hex digits of your weights' sha256>"
        ) from None
    module_name, _, attribute = target.partition(":")
    factory = cast(
        "Callable[..., FeatureExtractor]",
        getattr(importlib.import_module(module_name), attribute),
    )
    return factory(weights_path=weights_path, device=device)


def resolve_weights_path(weights_path: Path | None, env_var: str, extractor_id: str) -> Path:
    """The weights file to load: the argument if given, else the path named by `env_var`.

    Raises `WeightsError` saying where to put the file when neither names one, or when the file
    named does not exist.
    """
    if weights_path is None:
        configured = os.environ.get(env_var, "").strip()
        if not configured:
            raise WeightsError(
                f"no weights configured for feature extractor {extractor_id!r}: "
                f"pass weights_path=... or set {env_var} to the path of the weights file"
            )
        weights_path = Path(configured)
    if not weights_path.is_file():
        raise WeightsError(
            f"weights file for feature extractor {extractor_id!r} not found at {weights_path}: "
            f"put the file there, or point weights_path / {env_var} at it"
        )
    return weights_path


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so that large weights files need little memory."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_weights_file(path: Path, *, expected_sha256_prefix: str | None, extractor_id: str) -> str:
    """Return the file's sha256, refusing it with `WeightsError` unless it starts as expected.

    `expected_sha256_prefix=None` skips the comparison (tests that load random weights).
    """
    actual = file_sha256(path)
    if expected_sha256_prefix is not None and not actual.startswith(expected_sha256_prefix.lower()):
        raise WeightsError(
            f"wrong weights file for feature extractor {extractor_id!r} at {path}: expected a "
            f"sha256 starting with {expected_sha256_prefix.lower()}, the file has {actual}"
        )
    return actual


def load_state_dict_file(path: Path, *, extractor_id: str) -> dict[str, torch.Tensor]:
    """Read a state dict of tensors from a `.safetensors` file or a `torch.save` pickle.

    Pickles are read with `weights_only=True`, so a weights file cannot run code.
    """
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: object = load_file(str(path))
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"cannot read weights for feature extractor {extractor_id!r} from {path}: {exc}"
        ) from exc
    if not isinstance(loaded, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
    ):
        raise WeightsError(
            f"weights file {path} for feature extractor {extractor_id!r} does not hold a state "
            "dict (a mapping of parameter names to tensors)"
        )
    return dict(cast("Mapping[str, torch.Tensor]", loaded))
