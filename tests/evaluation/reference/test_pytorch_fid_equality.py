"""`inception-v3-fid` against pytorch-fid 0.3.0, with the same random weights loaded into both.

The real FID weights cannot be downloaded here, so a random state dict, written in our module
names, is what pytorch-fid's `fid_inception_v3()` loads in place of its download (strictly, so the
key names are proven equal too) and what our extractor loads from a file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip(
    "pytorch_fid",
    reason="pytorch-fid and torchvision live only in .venv-reference: make test-reference",
)

import numpy as np
import torch
from PIL import Image
from pytorch_fid import fid_score
from pytorch_fid import inception as reference_inception
from torchvision.transforms import ToTensor

from evaluation.inception import FidInceptionExtractor, fid_inception_v3
from evaluation.metrics import FeatureStatistics, frechet_distance
from evaluation.preprocessing import PreprocessOptions, preprocess


@pytest.fixture
def extractor(random_weights: Path) -> FidInceptionExtractor:
    return FidInceptionExtractor(random_weights, expected_sha256_prefix=None)


def test_module_names_equal_pytorch_fid_fid_inception(
    reference_loads_random_weights: None,
) -> None:
    reference_keys = list(reference_inception.fid_inception_v3().state_dict())
    assert list(fid_inception_v3().state_dict()) == reference_keys


def test_features_equal_pytorch_fid(
    reference_loads_random_weights: None, extractor: FidInceptionExtractor
) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(4, 64, 48, 3), dtype=np.uint8)  # not square, not 299
    gray = rng.integers(0, 256, size=(2, 64, 48), dtype=np.uint8)

    model = reference_inception.InceptionV3([3]).eval()  # use_fid_inception=True by default
    to_tensor = ToTensor()
    for images in (rgb, gray):
        reference_batch = torch.stack(
            [to_tensor(Image.fromarray(image).convert("RGB")) for image in images]
        )
        with torch.no_grad():
            reference = model(reference_batch)[0].squeeze(3).squeeze(2)

        ours = extractor.extract(preprocess(images, PreprocessOptions(), extractor))

        assert ours.shape == reference.shape == (len(images), 2048)
        assert reference.std() > 0.05  # the comparison is between features, not near-zeros
        max_abs_diff = (ours - reference).abs().max().item()
        print(f"max abs feature difference vs pytorch-fid: {max_abs_diff:.3e}")
        assert max_abs_diff <= 1e-5


def _write_folders(root: Path, count: int) -> tuple[Path, Path]:
    # Two visibly different distributions, one grayscale and one RGB, to exercise conversion too.
    rng = np.random.default_rng(1)
    gray_dir, rgb_dir = root / "gray", root / "rgb"
    gray_dir.mkdir()
    rgb_dir.mkdir()
    ramp = np.linspace(0, 160, 64)[np.newaxis, :]
    for index in range(count):
        gray = ramp + rng.normal(0, 40, size=(64, 64)) + rng.uniform(0, 60)
        Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8), mode="L").save(
            gray_dir / f"{index:03d}.png"
        )
        rgb = rng.integers(60, 256, size=(64, 64, 3), dtype=np.uint8)
        Image.fromarray(rgb, mode="RGB").save(rgb_dir / f"{index:03d}.png")
    return gray_dir, rgb_dir


def _folder_statistics(
    folder: Path, extractor: FidInceptionExtractor, batch_size: int
) -> FeatureStatistics:
    # Read as the hub reads reference images: a grayscale PNG stays one channel until preprocess.
    images = np.stack([np.asarray(Image.open(path)) for path in sorted(folder.glob("*.png"))])
    options = PreprocessOptions(resize_filter="bilinear", normalise=True)
    features = torch.cat(
        [
            extractor.extract(preprocess(images[start : start + batch_size], options, extractor))
            for start in range(0, len(images), batch_size)
        ]
    )
    return FeatureStatistics.from_features(features.double().numpy())


def test_fid_of_two_folders_equals_pytorch_fid_score(
    reference_loads_random_weights: None, extractor: FidInceptionExtractor, tmp_path: Path
) -> None:
    gray_dir, rgb_dir = _write_folders(tmp_path, count=64)

    reference = fid_score.calculate_fid_given_paths(
        [str(gray_dir), str(rgb_dir)], batch_size=32, device="cpu", dims=2048, num_workers=0
    )
    ours = frechet_distance(
        _folder_statistics(gray_dir, extractor, batch_size=32),
        _folder_statistics(rgb_dir, extractor, batch_size=32),
    )

    relative = abs(ours - reference) / abs(reference)
    print(f"FID pytorch-fid {reference:.6f}, ours {ours:.6f}, relative difference {relative:.3e}")
    assert reference > 1.0
    assert relative <= 1e-4
