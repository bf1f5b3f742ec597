"""Preprocessing options and what each one does to the tensor an extractor receives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional

from evaluation.preprocessing import PreprocessOptions, preprocess


class SizedExtractor:
    """Stands in for a network: preprocessing reads only the input size."""

    id = "test-extractor"
    weights_sha256 = "0" * 64
    feature_dim = 4
    comparable_with_published = False
    batch_size = 8

    def __init__(self, input_size: int) -> None:
        self.input_size = input_size

    def extract(self, batch: torch.Tensor, *, normalise: bool = True) -> torch.Tensor:
        return batch.mean(dim=(2, 3))


EXTRACTOR = SizedExtractor(input_size=48)


def _images(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def test_output_is_float32_rgb_in_unit_range_at_the_extractor_size() -> None:
    batch = preprocess(_images(5, 20, 30, 3), PreprocessOptions(), EXTRACTOR)
    assert batch.shape == (5, 3, 48, 48)
    assert batch.dtype == torch.float32
    assert batch.min().item() >= 0.0 and batch.max().item() <= 1.0


def test_explicit_size_overrides_the_extractor_size() -> None:
    batch = preprocess(_images(2, 20, 20), PreprocessOptions(size=31), EXTRACTOR)
    assert batch.shape == (2, 3, 31, 31)


def test_bilinear_is_torch_interpolate_on_unit_floats_as_pytorch_fid_does() -> None:
    images = _images(3, 40, 25, 3)
    expected = functional.interpolate(
        torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255),
        size=(48, 48),
        mode="bilinear",
        align_corners=False,
    )
    assert torch.equal(preprocess(images, PreprocessOptions(), EXTRACTOR), expected)


@pytest.mark.parametrize(
    ("shape", "options"),
    [
        ((3, 40, 25, 3), PreprocessOptions()),
        ((3, 40, 25), PreprocessOptions()),
        ((2, 48, 48, 4), PreprocessOptions()),
        ((3, 40, 25), PreprocessOptions(resize_filter="lanczos", per_image_minmax=True)),
    ],
)
def test_batches_come_channels_last_with_the_values_of_a_plain_layout(
    shape: tuple[int, ...], options: PreprocessOptions
) -> None:
    images = _images(*shape)
    batch = preprocess(images, options, EXTRACTOR)
    # The layout the extractors compute in; the values are those of the same steps in NCHW.
    assert batch.is_contiguous(memory_format=torch.channels_last)
    plain = torch.from_numpy(np.ascontiguousarray(images.reshape(*shape[:3], -1)[..., :3]))
    plain = plain.permute(0, 3, 1, 2).contiguous().float().div(255)
    if options.resize_filter == "bilinear":
        expected = functional.interpolate(
            plain, size=(48, 48), mode="bilinear", align_corners=False
        ).expand(-1, 3, -1, -1)
        assert torch.equal(batch, expected)
    else:
        assert batch.shape == (shape[0], 3, 48, 48)
        assert torch.equal(batch[:, 0], batch[:, 2])


def test_lanczos_is_pillows_filter_and_differs_from_bilinear() -> None:
    images = _images(2, 100, 100, 3)
    lanczos = preprocess(images, PreprocessOptions(resize_filter="lanczos"), EXTRACTOR)
    bilinear = preprocess(images, PreprocessOptions(resize_filter="bilinear"), EXTRACTOR)
    pillow = np.array(Image.fromarray(images[1]).resize((48, 48), Image.Resampling.LANCZOS))
    assert torch.equal(lanczos[1], torch.from_numpy(pillow).permute(2, 0, 1).float().div(255))
    assert lanczos.shape == bilinear.shape
    # Shrinking noise: Pillow antialiases, torch's bilinear does not, so the spread differs a lot.
    assert (lanczos - bilinear).abs().max().item() > 0.1
    assert lanczos.std().item() < bilinear.std().item()


def test_nearest_upscaling_by_an_integer_factor_repeats_pixels() -> None:
    images = _images(1, 12, 12)
    batch = preprocess(images, PreprocessOptions(resize_filter="nearest", size=48), EXTRACTOR)
    repeated = np.repeat(np.repeat(images[0], 4, axis=0), 4, axis=1)
    assert torch.equal(batch[0, 0], torch.from_numpy(repeated).float().div(255))


@pytest.mark.parametrize("shape", [(2, 16, 16), (2, 16, 16, 1)])
@pytest.mark.parametrize("resize_filter", ["bilinear", "bicubic"])
def test_grayscale_becomes_three_identical_channels(
    shape: tuple[int, ...], resize_filter: str
) -> None:
    options = PreprocessOptions.from_dict({"resize_filter": resize_filter})
    batch = preprocess(_images(*shape), options, EXTRACTOR)
    assert batch.shape == (2, 3, 48, 48)
    assert torch.equal(batch[:, 0], batch[:, 1])
    assert torch.equal(batch[:, 0], batch[:, 2])


def test_grayscale_stays_one_channel_without_conversion() -> None:
    batch = preprocess(_images(2, 16, 16), PreprocessOptions(grayscale_to_rgb=False), EXTRACTOR)
    assert batch.shape == (2, 1, 48, 48)


def test_alpha_is_dropped() -> None:
    rgba = _images(1, 48, 48, 4)
    batch = preprocess(rgba, PreprocessOptions(), EXTRACTOR)
    assert torch.equal(batch, preprocess(rgba[..., :3].copy(), PreprocessOptions(), EXTRACTOR))


def test_per_image_minmax_stretches_each_image_to_the_full_range() -> None:
    dim = np.full((2, 48, 48), 100, dtype=np.uint8)
    dim[0, :, 24:] = 140  # low contrast
    batch = preprocess(dim, PreprocessOptions(per_image_minmax=True), EXTRACTOR)
    assert batch[0].min().item() == 0.0 and batch[0].max().item() == 1.0
    assert torch.equal(batch[1], torch.zeros(3, 48, 48))  # constant image: nothing to stretch
    plain = preprocess(dim, PreprocessOptions(), EXTRACTOR)
    assert plain[0].max().item() == pytest.approx(140 / 255)


def test_normalise_is_left_to_the_extractor() -> None:
    # The same [0, 1] tensor either way: the extractor maps it to its own range, or not.
    images = _images(2, 20, 20, 3)
    on = preprocess(images, PreprocessOptions(normalise=True), EXTRACTOR)
    off = preprocess(images, PreprocessOptions(normalise=False), EXTRACTOR)
    assert torch.equal(on, off)


def test_images_that_are_not_uint8_are_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        preprocess(np.zeros((1, 8, 8), dtype=np.float32), PreprocessOptions(), EXTRACTOR)
    with pytest.raises(ValueError, match="C in 1, 3, 4"):
        preprocess(np.zeros((1, 8, 8, 2), dtype=np.uint8), PreprocessOptions(), EXTRACTOR)


def test_options_round_trip_through_a_dict() -> None:
    options = PreprocessOptions(resize_filter="lanczos", size=299, normalise=False)
    data = options.to_dict()
    assert data == {
        "resize_filter": "lanczos",
        "size": 299,
        "grayscale_to_rgb": True,
        "normalise": False,
        "per_image_minmax": False,
    }
    assert PreprocessOptions.from_dict(data) == options
    assert PreprocessOptions.from_dict({}) == PreprocessOptions()


def test_invalid_options_are_refused() -> None:
    with pytest.raises(ValueError, match="resize_filter must be one of"):
        PreprocessOptions.from_dict({"resize_filter": "area"})
    with pytest.raises(ValueError, match="size must be a positive integer"):
        PreprocessOptions(size=0)
    with pytest.raises(ValueError, match="unknown preprocessing options: antialias"):
        PreprocessOptions.from_dict({"antialias": True})


def test_key_is_stable_and_tells_options_apart() -> None:
    assert PreprocessOptions().key() == (
        "filter=bilinear;size=auto;gray2rgb=1;normalise=1;minmax=0"
    )
    resolved = PreprocessOptions().resolve(EXTRACTOR)
    assert resolved.key() == "filter=bilinear;size=48;gray2rgb=1;normalise=1;minmax=0"
    variants = [
        PreprocessOptions(resize_filter="lanczos"),
        PreprocessOptions(size=299),
        PreprocessOptions(grayscale_to_rgb=False),
        PreprocessOptions(normalise=False),
        PreprocessOptions(per_image_minmax=True),
    ]
    keys = {options.key() for options in [PreprocessOptions(), *variants]}
    assert len(keys) == 6
