"""v2 package of zoo/chestxray-pca-64: probabilistic PCA of 64x64 paediatric chest X-rays.

A Gaussian latent model in plain numpy (no deep learning framework): an image is
``mean + W z + sigma * e`` with ``z ~ N(0, I_k)`` and ``e ~ N(0, I_4096)``, where
``W = V_k diag(sqrt(lambda_i - sigma^2))`` holds the top-k principal directions ``V_k`` of the
training images scaled by their eigenvalues ``lambda_i`` and ``sigma^2`` is the mean eigenvalue of
the discarded directions: Tipping & Bishop's maximum-likelihood PPCA. The per-direction variance
of the samples is then exactly ``lambda_i`` and the rest of the training variance is spread
isotropically. ``generate(num_samples, *, seed, device, components, temperature)`` returns uint8
arrays of shape (N, 64, 64); the parameters are read from ``weights.safetensors`` next to this
file, never from the working directory.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from safetensors import safe_open
from safetensors.numpy import load_file

from medigan_client.package_support import check_device_name, check_sample_seeds

__all__ = [
    "IMAGE_SIZE",
    "TEMPERATURE_MAX",
    "TEMPERATURE_MIN",
    "WEIGHTS_METADATA_KEY",
    "WEIGHTS_PATH",
    "Model",
    "generate",
    "load_model",
]

IMAGE_SIZE = 64
WEIGHTS_PATH = Path(__file__).resolve().parent / "weights.safetensors"
WEIGHTS_METADATA_KEY = "zoo_chestxray_pca_64"
TEMPERATURE_MIN = 0.1
TEMPERATURE_MAX = 2.0
# Bounds the (chunk, 4096) float64 work arrays when one call asks for many images.
_CHUNK = 1000

_MODEL: list[Model] = []
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Model:
    """The PPCA parameters: pixel mean (4096,), scaled directions W (k, 4096) and sigma."""

    mean: npt.NDArray[np.float64]
    loadings: npt.NDArray[np.float64]
    sigma: float

    @property
    def components(self) -> int:
        """k, the number of principal directions the model keeps."""
        return int(self.loadings.shape[0])


def load_model() -> Model:
    """Read the parameters from ``weights.safetensors`` once per process."""
    with _LOCK:
        if not _MODEL:
            tensors = load_file(str(WEIGHTS_PATH))
            with safe_open(str(WEIGHTS_PATH), framework="numpy") as handle:
                metadata = json.loads((handle.metadata() or {})[WEIGHTS_METADATA_KEY])
            _MODEL.append(
                Model(
                    mean=tensors["mean"].astype(np.float64),
                    loadings=tensors["loadings"].astype(np.float64),
                    sigma=float(metadata["sigma"]),
                )
            )
    return _MODEL[0]


def generate(
    num_samples: int,
    *,
    seed: int,
    device: str = "cpu",
    components: int | None = None,
    temperature: float = 1.0,
    seeds: Sequence[int] | None = None,
) -> npt.NDArray[np.uint8]:
    """Generate ``num_samples`` chest X-rays as a uint8 array of shape (num_samples, 64, 64).

    ``z`` and the residual noise are drawn from ``numpy.random.default_rng(seed)``, so the same
    arguments give the same images on every machine. ``components`` (1 to k; None means all k)
    keeps only the leading principal directions: fewer components give smoother, more average
    images (the residual noise is kept). ``temperature`` (0.1 to 2.0) multiplies the standard
    deviation of the whole sample around the mean image: below 1.0 is closer to the average
    X-ray, above 1.0 more varied and less typical. ``device`` is accepted for the v2 contract
    (any device the client accepts); the model runs in numpy on the CPU.

    ``seeds`` (one int per sample) replaces the draw from ``seed``: image k's ``z`` and residual
    noise then come from ``numpy.random.default_rng(seeds[k])`` and the images are computed
    together, so image k depends on ``seeds[k]`` alone, up to the float rounding of another batch
    (at most a grey level), not on the call it is generated in.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"num_samples must be a non-negative int, got {num_samples!r}")
    check_device_name(device)
    model = load_model()
    used = model.components if components is None else components
    if isinstance(used, bool) or not isinstance(used, int) or not 1 <= used <= model.components:
        raise ValueError(f"components must be an int in [1, {model.components}], got {used!r}")
    if not TEMPERATURE_MIN <= temperature <= TEMPERATURE_MAX:
        raise ValueError(
            f"temperature must be in [{TEMPERATURE_MIN}, {TEMPERATURE_MAX}], got {temperature!r}"
        )
    listed = None if seeds is None else check_sample_seeds(seeds, num_samples)
    rng = np.random.default_rng(seed)
    pixels = IMAGE_SIZE * IMAGE_SIZE
    out = np.empty((num_samples, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for start in range(0, num_samples, _CHUNK):
        count = min(_CHUNK, num_samples - start)
        if listed is None:
            # Always draw all k latents, so that `components` truncates the same draw.
            z = rng.standard_normal((count, model.components))
            noise = rng.standard_normal((count, pixels))
        else:
            # Each sample's draws from its own generator, in the order one sample alone draws
            # them; the matrix product then runs over the whole chunk at once.
            z = np.empty((count, model.components))
            noise = np.empty((count, pixels))
            for row, sample_seed in enumerate(listed[start : start + count]):
                own = np.random.default_rng(sample_seed)
                z[row] = own.standard_normal(model.components)
                noise[row] = own.standard_normal(pixels)
        images = model.mean + temperature * (
            z[:, :used] @ model.loadings[:used] + model.sigma * noise
        )
        out[start : start + count] = (
            np.clip(np.rint(images), 0, 255).astype(np.uint8).reshape(count, IMAGE_SIZE, IMAGE_SIZE)
        )
    return out
