"""Custom Inception weights: a supported option whose numbers are never taken for standard FIDs.

The standard `inception-v3-fid` loads only pytorch-fid's file (`test_features.py`). Weights of
your own load under `inception-v3-custom-<sha8>`, and what is computed with them carries that id,
the weights' full sha256 and `comparable_with_published = False`. Random weights saved to a
temporary file stand in for a user's retrained network.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation.features import WeightsError, load_extractor
from evaluation.inception import FidInceptionExtractor, custom_inception_id, fid_inception_v3
from evaluation.preprocessing import PreprocessOptions
from evaluation.references import ReferenceImages
from evaluation.runner import EvaluationOptions, evaluate
from tests.evaluation.random_inception_weights import random_inception_state_dict

# The network is fully convolutional up to its global pool; small inputs keep the tests fast.
SIDE = 96


@pytest.fixture(autouse=True)
def _no_configured_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDIGAN_INCEPTION_WEIGHTS", raising=False)


@pytest.fixture(scope="module")
def custom_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("custom") / "my-inception.pth"
    torch.save(random_inception_state_dict(fid_inception_v3(), seed=7), path)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_custom_weights_load_under_an_id_that_names_them(custom_weights: Path) -> None:
    sha256 = _sha256(custom_weights)

    extractor = load_extractor(f"inception-v3-custom-{sha256[:8]}", weights_path=custom_weights)

    assert extractor.id == f"inception-v3-custom-{sha256[:8]}" == custom_inception_id(sha256)
    assert extractor.weights_sha256 == sha256
    assert extractor.comparable_with_published is False
    features = extractor.extract(torch.rand(2, 3, SIDE, SIDE))
    assert features.shape == (2, 2048)
    assert torch.isfinite(features).all()


def test_allow_custom_weights_gives_the_same_labelled_extractor(
    custom_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Configured through the environment, as for the standard weights.
    monkeypatch.setenv("MEDIGAN_INCEPTION_WEIGHTS", str(custom_weights))

    extractor = FidInceptionExtractor(allow_custom_weights=True)

    assert extractor.id == custom_inception_id(_sha256(custom_weights))
    assert not extractor.comparable_with_published
    assert extractor.weights_path == custom_weights


def test_the_standard_extractor_refuses_them_and_says_how_to_use_them(
    custom_weights: Path,
) -> None:
    sha256 = _sha256(custom_weights)

    with pytest.raises(WeightsError) as refused:
        load_extractor("inception-v3-fid", weights_path=custom_weights)

    message = str(refused.value)
    assert "starting with 6726825d" in message
    assert f"inception-v3-custom-{sha256[:8]}" in message
    assert "not comparable" in message


def test_a_custom_id_refuses_a_file_with_another_sha256(custom_weights: Path) -> None:
    sha256 = _sha256(custom_weights)
    other = "0" * 8 if not sha256.startswith("0" * 8) else "1" * 8

    with pytest.raises(WeightsError, match=rf"starting with {other}, the file has {sha256}"):
        load_extractor(f"inception-v3-custom-{other}", weights_path=custom_weights)


def test_a_custom_id_cannot_name_pytorch_fids_own_weights(custom_weights: Path) -> None:
    with pytest.raises(ValueError, match="names pytorch-fid's own weights: use 'inception-v3-fid'"):
        load_extractor("inception-v3-custom-6726825d", weights_path=custom_weights)


@pytest.mark.parametrize(
    "extractor_id", ["inception-v3-custom-", "inception-v3-custom-XYZ12345", "inception-v3-custom"]
)
def test_a_malformed_custom_id_is_an_unknown_extractor(extractor_id: str) -> None:
    with pytest.raises(ValueError, match=r"unknown feature extractor .*inception-v3-custom-<first"):
        load_extractor(extractor_id)


def _images(count: int, seed: int, brightness: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.normal(brightness, 25.0, (count, 1, 1)) + rng.normal(0.0, 20.0, (count, 16, 16))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def test_an_evaluation_with_custom_weights_records_them_as_not_comparable(
    custom_weights: Path, tmp_path: Path
) -> None:
    sha256 = _sha256(custom_weights)
    extractor_id = custom_inception_id(sha256)
    reference = ReferenceImages.from_images("noise", "test", _images(48, seed=1, brightness=100))
    options = EvaluationOptions(
        extractor_id=extractor_id,
        num_samples=32,
        batch_size=16,
        preprocess=PreprocessOptions(size=SIDE),
        fid_rr_splits=2,
        kid_subsets=4,
        kid_subset_size=16,
        max_kept_features=32,
        weights_path=custom_weights,
        cache_dir=tmp_path / "statistics",
        num_threads=1,
    )

    result = evaluate(lambda count, seed: _images(count, seed, brightness=140), reference, options)

    recorded = result.to_dict()
    assert recorded["extractor_id"] == extractor_id
    assert recorded["extractor_weights_sha256"] == sha256
    assert recorded["comparable_with_published"] is False
    assert result.fid_rs > 0
