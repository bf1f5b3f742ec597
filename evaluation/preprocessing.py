"""Preprocessing of images for feature extraction, as explicit options that every result records.

FID moves with choices that look like details, so none of them is implicit here:

- the resize filter. Generated and reference images rarely come at the network's input size, and
  the filter that brings them there changes FID by amounts comparable to the differences between
  models ("On Aliased Resizing and Surprising Subtleties in GAN Evaluation", 2022).
  "bilinear" is torch's `F.interpolate(mode="bilinear", align_corners=False)` on [0, 1] floats,
  without antialiasing: exactly what pytorch-fid does inside its network, so numbers computed with
  it are comparable with pytorch-fid's. "lanczos", "bicubic" and "nearest" are Pillow's filters on
  the uint8 image (Pillow's resize antialiases when it shrinks, torch's does not, and Pillow
  rounds back to uint8); clean-fid resizes this way (with bicubic) to avoid aliasing;
- grayscale -> 3 channels. The Inception networks take RGB; a grayscale image is fed as three
  identical channels, as PIL's `convert("RGB")` in pytorch-fid does;
- value normalisation (`normalise`). With it, each extractor maps [0, 1] to the value range its
  weights were trained on ([-1, 1] for the Inceptions); without it the network sees raw [0, 1]
  values, every activation shifts, and FIDs computed one way are not comparable with the other;
- per-image min-max stretching (`per_image_minmax`). The medigan paper's FID script stretches each
  image to its full intensity range before extraction when asked (`--normalize_images`,
  `cv2.normalize(NORM_MINMAX)`), and the paper reports FID with and without it (its Table 4):
  stretching removes differences in overall brightness and contrast that otherwise weigh on FID.
  This option reproduces that, after resizing and in floating point. Off by default.

Every option is part of `PreprocessOptions.key()`, so statistics cached under one setting are never
reused for another.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.nn import functional

from evaluation.features import FeatureExtractor
from evaluation.options import RESIZE_FILTERS, PreprocessOptions, ResizeFilter

__all__ = ["RESIZE_FILTERS", "PreprocessOptions", "ResizeFilter", "preprocess"]

_PILLOW_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}


def preprocess(
    images: np.ndarray[Any, Any], options: PreprocessOptions, extractor: FeatureExtractor
) -> torch.Tensor:
    """uint8 images (N, H, W) or (N, H, W, C), C in 1, 3, 4 -> float32 (N, 3, S, S) in [0, 1].

    S is `options.size` or the extractor's `input_size`. Images are resized to S x S whatever
    their aspect ratio, as pytorch-fid does. An alpha channel is dropped. Grayscale images get
    three identical channels with `grayscale_to_rgb`; without it they stay (N, 1, S, S), for
    extractors that take one channel (the Inception networks refuse it). The mapping to the
    extractor's value range is not done here but by `extractor.extract(batch, normalise=...)`.

    The batch is resized as a whole and comes back in channels-last memory format (its values
    and shape are those of any other layout): images arrive channels-last, (N, H, W, C), and the
    extractors compute channels-last, so no copy in between changes the layout twice.
    """
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise ValueError("preprocess takes a uint8 numpy array of images")
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4) or images.shape[0] == 0:
        raise ValueError(
            f"images must be (N, H, W) or (N, H, W, C) with N >= 1 and C in 1, 3, 4; "
            f"got {images.shape}"
        )
    if images.shape[-1] == 4:
        images = images[..., :3]
    size = options.size if options.size is not None else extractor.input_size

    batch = _resize(images, size, options.resize_filter)
    if options.per_image_minmax:
        low = batch.amin(dim=(1, 2, 3), keepdim=True)
        span = batch.amax(dim=(1, 2, 3), keepdim=True) - low
        # A constant image has no range to stretch; it maps to 0 as cv2's NORM_MINMAX maps it.
        batch = torch.where(span > 0, (batch - low) / span.clamp_min(1e-12), 0.0)
    if options.grayscale_to_rgb and batch.shape[1] == 1:
        batch = batch.expand(-1, 3, -1, -1)
    return batch.contiguous(memory_format=torch.channels_last)


def _resize(images: np.ndarray[Any, Any], size: int, resize_filter: ResizeFilter) -> torch.Tensor:
    # (N, H, W, C) uint8 -> (N, C, size, size) float32 in [0, 1]
    if resize_filter == "bilinear":
        # pytorch-fid: PIL image -> ToTensor (uint8 to float32, divided by 255) -> interpolate.
        # Same operations in the same order, so the same floats come out. The permuted view is
        # channels-last; conversion and interpolation keep that layout (with the same values).
        batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        batch = batch.to(torch.float32).div(255)
        if batch.shape[-2:] == (size, size):
            return batch
        return functional.interpolate(
            batch, size=(size, size), mode="bilinear", align_corners=False
        )
    resample = _PILLOW_FILTERS[resize_filter]
    out = np.empty((images.shape[0], size, size, images.shape[-1]), dtype=np.uint8)
    for index, image in enumerate(images):
        mode_image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        resized = np.asarray(mode_image.resize((size, size), resample=resample))
        out[index] = resized.reshape(size, size, images.shape[-1])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(torch.float32).div(255)
