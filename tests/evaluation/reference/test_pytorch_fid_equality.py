"""`inception-v3-fid` against pytorch-fid 0.3.0, with the same random weights loaded into both.

The real FID weights cannot be downloaded here, so a random state dict, written in our module
names, is what pytorch-fid's `fid_inception_v3()` loads in place of its download (strictly, so the
key names are proven equal too) and what our extractor loads from a file. Its features have the
magnitude of the real network's (`tests/evaluation/random_inception_weights.py`), so the bound
of 1e-5 on the largest absolute difference means here what it means with the real weights.

Our side runs exactly as an evaluation runs it: `preprocess` (channels-last batches) and
`extract` (the fused, channels-last network of `InferenceInceptionV3`, oneDNN's fused
convolution), at the extractor's batch size and at others, on one thread and on two.
"""

from __future__ import annotations

import os
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

from evaluation.inception import FidInceptionExtractor, InferenceInceptionV3, fid_inception_v3
from evaluation.inference import FusedConvReLU, pointwise_convolution_available
from evaluation.metrics import FeatureStatistics, frechet_distance
from evaluation.preprocessing import PreprocessOptions, preprocess
from evaluation.threads import torch_threads

MAX_ABS_DIFFERENCE = 1e-5
SHARED_DATA = Path(os.environ.get("MEDIGAN_SHARED_DIR", Path(__file__).parents[4] / "shared"))


@pytest.fixture
def extractor(random_weights: Path) -> FidInceptionExtractor:
    return FidInceptionExtractor(random_weights, expected_sha256_prefix=None)


def test_module_names_equal_pytorch_fid_fid_inception(
    reference_loads_random_weights: None,
) -> None:
    reference_keys = list(reference_inception.fid_inception_v3().state_dict())
    assert list(fid_inception_v3().state_dict()) == reference_keys


def _pytorch_fid_features(model: torch.nn.Module, images: np.ndarray) -> torch.Tensor:
    # pytorch-fid's own path: PIL image, convert("RGB"), ToTensor, then its network resizes
    # (bilinear) and scales to [-1, 1] inside `forward`.
    to_tensor = ToTensor()
    batch = torch.stack([to_tensor(Image.fromarray(image).convert("RGB")) for image in images])
    with torch.no_grad():
        features: torch.Tensor = model(batch)[0].squeeze(3).squeeze(2)
    return features


def _our_features(
    extractor: FidInceptionExtractor, images: np.ndarray, batch_size: int
) -> torch.Tensor:
    rows = []
    for start in range(0, len(images), batch_size):
        batch = preprocess(images[start : start + batch_size], PreprocessOptions(), extractor)
        assert batch.is_contiguous(memory_format=torch.channels_last)
        rows.append(extractor.extract(batch))
    return torch.cat(rows)


def _test_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    images = {
        "rgb noise 64x48": rng.integers(0, 256, size=(5, 64, 48, 3), dtype=np.uint8),
        "gray noise 64x48": rng.integers(0, 256, size=(3, 64, 48), dtype=np.uint8),
    }
    # Real images where the shared data sets are (a fresh clone may lack them).
    for name, file in (
        ("dermoscopy 64 RGB", "dermoscopy-isic2017/dermoscopy_isic2017_64.npz"),
        ("chest x-ray 64 gray", "chest-xray-pneumonia/chest_xray_pneumonia_64.npz"),
    ):
        path = SHARED_DATA / "data" / file
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                images[name] = np.asarray(data["images"][:24])
    return images


def test_the_fast_path_is_what_extraction_runs(extractor: FidInceptionExtractor) -> None:
    # The equality below is only worth something if it covers the code evaluations run.
    assert pointwise_convolution_available()
    assert isinstance(extractor.inference_network, InferenceInceptionV3)
    fused = [m for m in extractor.inference_network.modules() if isinstance(m, FusedConvReLU)]
    assert len(fused) == 95
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in fused)


def test_features_equal_pytorch_fid(
    reference_loads_random_weights: None, extractor: FidInceptionExtractor
) -> None:
    model = reference_inception.InceptionV3([3]).eval()  # use_fid_inception=True by default
    for name, images in _test_images().items():
        reference = _pytorch_fid_features(model, images)
        # The features have the real network's magnitude, so 1e-5 is a real network's bound.
        assert 0.01 < reference.mean() < 2.0 and reference.max() < 20.0
        assert reference.std() > 0.01  # features, not near-zeros
        for threads in (1, 2):
            for batch_size in sorted({extractor.batch_size, 7}):
                with torch_threads(threads):
                    ours = _our_features(extractor, images, batch_size)
                assert ours.shape == reference.shape == (len(images), 2048)
                difference = (ours - reference).abs().max().item()
                print(
                    f"{name}, {threads} thread(s), batch {batch_size}: max abs difference "
                    f"{difference:.2e} (largest feature {reference.max().item():.2f})"
                )
                assert difference <= MAX_ABS_DIFFERENCE


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
