"""Training recipe of zoo/chestxray-pca-64: probabilistic PCA of the Kermany chest X-ray train set.

One command, from the repository root::

    python -m zoo.chestxray_pca_64.train [--config config.json] [--out DIR] [--smoke]

The fit is one thin SVD of the centred train images (numpy only; the test split is never read).
The number of kept components k is the smallest that explains ``variance_target`` of the pixel
variance, bounded to [``min_components``, ``max_components``]; the residual variance sigma^2 is
the mean of the discarded eigenvalues (maximum-likelihood PPCA, Tipping & Bishop 1999). The
decomposition is saved to ``--out`` as a checkpoint (``decomposition.npz``): rerunning with the
same data reuses it, so changing only k's bounds does not refit. The recipe writes the package's
``weights.safetensors`` and ``card.json`` numbers, and ``training_log.csv`` (one row per
component: eigenvalue and explained variance), ``training_summary.json``, ``loss_curve.png``
(the explained-variance curve; PCA has no loss) and ``samples.png`` beside this file.
``--smoke`` fits a small subset into a temporary directory and exports a complete package there.
The machinery shared by all zoo recipes (folders, log, export) is in ``zoo/recipe.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from zoo import recipe as common
from zoo.chestxray_pca_64.package import IMAGE_SIZE, WEIGHTS_METADATA_KEY

RECIPE = common.Recipe.beside(
    __file__,
    "zoo/chestxray-pca-64",
    "data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz",
    package_sources=("__init__.py",),
)
SMOKE_IMAGES = 256
LOG_FIELDS = ("component", "eigenvalue", "explained_variance_ratio", "cumulative_explained")
# The checkpoint: the SVD of the training images, reused by a rerun on the same images.
CHECKPOINT_NAME = "decomposition.npz"


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the recipe, read from ``config.json``."""

    seed: int = 20262
    variance_target: float = 0.95
    min_components: int = 100
    max_components: int = 200
    sample_seed: int = 0

    @classmethod
    def from_json(cls, path: Path) -> Config:
        """Read a config file; unknown keys are an error so that typos do not pass silently."""
        return common.read_config(cls, path)


@dataclasses.dataclass(frozen=True)
class Decomposition:
    """The PCA of the training images: pixel mean, eigenvalues (descending), directions."""

    mean: npt.NDArray[np.float64]
    eigenvalues: npt.NDArray[np.float64]
    directions: npt.NDArray[np.float64]
    image_count: int
    data_sha256: str
    fit_seconds: float


def load_train_images(path: Path) -> npt.NDArray[np.uint8]:
    """The train split of the archive as uint8 (N, 64, 64); the test split is never read."""
    with np.load(path, allow_pickle=False) as archive:
        splits = archive["splits"]
        images: npt.NDArray[np.uint8] = archive["images"][splits == "train"]
    return images


def images_digest(images: npt.NDArray[np.uint8]) -> str:
    """Hex sha256 of the training pixels: a checkpoint is reused only for the same images."""
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def fit(images: npt.NDArray[np.uint8], out_dir: Path) -> Decomposition:
    """PCA of ``images`` by thin SVD, or the checkpointed one when it was fit on the same images."""
    digest = images_digest(images)
    checkpoint = out_dir / CHECKPOINT_NAME
    if checkpoint.exists():
        with np.load(checkpoint, allow_pickle=False) as saved:
            if str(saved["data_sha256"]) == digest:
                print(f"resuming from {checkpoint}", flush=True)
                return Decomposition(
                    mean=saved["mean"],
                    eigenvalues=saved["eigenvalues"],
                    directions=saved["directions"],
                    image_count=int(saved["image_count"]),
                    data_sha256=digest,
                    fit_seconds=float(saved["fit_seconds"]),
                )
        raise SystemExit(f"{checkpoint} was fit on other images; use another --out")
    started = time.perf_counter()
    flat = images.reshape(len(images), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    _, singular, vt = np.linalg.svd(flat - mean, full_matrices=False)
    eigenvalues = singular**2 / (len(images) - 1)
    # SVD signs are arbitrary; fix them (largest-magnitude entry positive) so refits agree.
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
    directions = vt * signs[:, None]
    decomposition = Decomposition(
        mean=mean,
        eigenvalues=eigenvalues,
        directions=directions,
        image_count=len(images),
        data_sha256=digest,
        fit_seconds=time.perf_counter() - started,
    )
    partial = out_dir / "decomposition.partial.npz"
    np.savez(
        partial,
        mean=mean,
        eigenvalues=eigenvalues,
        directions=directions,
        image_count=np.int64(len(images)),
        data_sha256=np.str_(digest),
        fit_seconds=np.float64(decomposition.fit_seconds),
    )
    partial.replace(checkpoint)
    return decomposition


def choose_components(eigenvalues: npt.NDArray[np.float64], config: Config) -> int:
    """Smallest k explaining ``variance_target``, bounded to the config's range and the rank."""
    cumulative = np.cumsum(eigenvalues) / eigenvalues.sum()
    k = int(np.searchsorted(cumulative, config.variance_target) + 1)
    rank = int((eigenvalues > eigenvalues[0] * 1e-12).sum())
    return max(1, min(max(k, config.min_components), config.max_components, rank - 1))


def ppca_parameters(decomposition: Decomposition, k: int) -> tuple[npt.NDArray[np.float32], float]:
    """The ML-PPCA loadings W (k, D) = diag(sqrt(lambda_i - sigma^2)) V_k and sigma."""
    pixels = decomposition.mean.size
    rest = decomposition.eigenvalues[k:]
    # D - k directions are discarded; with fewer images than pixels most of them have zero variance.
    sigma2 = float(rest.sum() / (pixels - k))
    scale = np.sqrt(np.maximum(decomposition.eigenvalues[:k] - sigma2, 0.0))
    loadings = (decomposition.directions[:k] * scale[:, None]).astype(np.float32)
    return loadings, float(np.sqrt(sigma2))


def write_log(path: Path, eigenvalues: npt.NDArray[np.float64]) -> None:
    """One row per principal component: eigenvalue, explained ratio and cumulative ratio."""
    ratios = eigenvalues / eigenvalues.sum()
    cumulative = np.cumsum(ratios)
    common.write_log(
        path,
        LOG_FIELDS,
        (
            {
                "component": index + 1,
                "eigenvalue": f"{eigenvalues[index]:.6g}",
                "explained_variance_ratio": f"{ratios[index]:.6g}",
                "cumulative_explained": f"{cumulative[index]:.6f}",
            }
            for index in range(int((eigenvalues > 0).sum()))
        ),
    )


def plot_explained_variance(path: Path, eigenvalues: npt.NDArray[np.float64], k: int) -> None:
    """Cumulative explained variance against the number of components, with k marked."""
    ratios = eigenvalues / eigenvalues.sum()
    shown = min(len(ratios), max(4 * k, 400))
    cumulative = np.cumsum(ratios)[:shown]
    fig, (top, bottom) = common.pyplot_figure(2, (8, 6.5))
    top.plot(np.arange(1, shown + 1), cumulative, color="tab:blue")
    top.axvline(k, color="tab:red", linestyle="--", label=f"k = {k} ({cumulative[k - 1]:.1%})")
    top.set_ylabel("cumulative explained variance")
    top.set_title(f"{RECIPE.model_id}: PCA of the Kermany chest X-ray train split")
    top.legend()
    bottom.semilogy(np.arange(1, shown + 1), ratios[:shown], color="tab:orange")
    bottom.axvline(k, color="tab:red", linestyle="--")
    bottom.set_xlabel("principal component")
    bottom.set_ylabel("explained variance ratio")
    common.save_figure(fig, path)


def sample_exported(package_dir: Path, seed: int) -> npt.NDArray[np.uint8]:
    """The grid's images, generated by the exported package in a fresh import.

    The package caches its parameters per process, so the committed one may be loaded already.
    """
    spec = importlib.util.spec_from_file_location(
        f"_pca_export_{os.getpid()}_{id(package_dir)}",
        package_dir / "__init__.py",
        submodule_search_locations=[str(package_dir)],
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    try:
        spec.loader.exec_module(module)
        samples: npt.NDArray[np.uint8] = module.generate(
            common.GRID_SIDE * common.GRID_SIDE, seed=seed
        )
    finally:
        del sys.modules[spec.name]
    return samples


def export(decomposition: Decomposition, run: common.Invocation[Config]) -> dict[str, Any]:
    """Write the package weights, card numbers, log, summary, explained-variance plot and grid."""
    config = run.config
    package_dir = common.prepare_package_dir(RECIPE, run.export_dir)
    k = choose_components(decomposition.eigenvalues, config)
    loadings, sigma = ppca_parameters(decomposition, k)
    explained = float(decomposition.eigenvalues[:k].sum() / decomposition.eigenvalues.sum())
    common.save_numpy_weights(
        {"mean": decomposition.mean.astype(np.float32), "loadings": loadings},
        package_dir / common.WEIGHTS_NAME,
        WEIGHTS_METADATA_KEY,
        {"model_id": RECIPE.model_id, "components": k, "sigma": sigma},
    )
    card = common.read_card(RECIPE.package_dir)
    for argument in card["generation_arguments"]:
        if argument["name"] == "components":
            argument["default"] = argument["maximum"] = k
    card["execution"]["generate_method"]["args"]["custom"]["components"] = k
    card["execution"]["generate_method"]["input_latent_vector_size"] = k
    card["description"]["inputs"] = [
        f"{a['name']}: default={a['default']}, help={a['help']}"
        for a in card["generation_arguments"]
    ]
    summary = common.write_record(
        RECIPE,
        run,
        # one fit: one epoch of one step
        common.RunState(epoch=1, step=1, wall_time_seconds=decomposition.fit_seconds),
        package_dir=package_dir,
        counts={"image_count": decomposition.image_count},
        results={
            "components": k,
            "explained_variance": round(explained, 6),
            "sigma": round(sigma, 6),
            "top_eigenvalue": round(float(decomposition.eigenvalues[0]), 3),
        },
        weights_dtype="float32",
        split="train",
        card=card,
        checkpoint_name=CHECKPOINT_NAME,
    )
    common.grid_image(sample_exported(package_dir, config.sample_seed)).save(
        run.export_dir / "samples.png"
    )
    plot_explained_variance(run.export_dir / "loss_curve.png", decomposition.eigenvalues, k)
    write_log(run.export_dir / common.LOG_NAME, decomposition.eigenvalues)
    return summary


def fit_and_export(run: common.Invocation[Config]) -> dict[str, Any]:
    """Fit the train split (a subset for a smoke run), then export."""
    images = load_train_images(run.data_file)
    images = images[run.chosen(len(images), SMOKE_IMAGES)]
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise SystemExit(f"expected {IMAGE_SIZE}x{IMAGE_SIZE} images, got {images.shape[1:]}")
    return export(fit(images, run.out_dir), run)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the recipe; see the module docstring."""
    return common.main(
        RECIPE,
        argv,
        __doc__,
        Config.from_json,
        None,
        fit_and_export,
        ("components", "explained_variance", "sigma", "wall_time_seconds"),
    )


if __name__ == "__main__":
    raise SystemExit(main())
