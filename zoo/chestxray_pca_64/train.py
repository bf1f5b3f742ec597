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
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from safetensors.numpy import save_file

from zoo.chestxray_pca_64.package import IMAGE_SIZE, WEIGHTS_METADATA_KEY

RECIPE_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = RECIPE_DIR / "package"
REPO_ROOT = RECIPE_DIR.parents[1]
RECIPE = "zoo/chestxray_pca_64/train.py"
COMMAND = "python -m zoo.chestxray_pca_64.train"
MODEL_ID = "zoo/chestxray-pca-64"
DATA_FILE = Path("data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz")
SMOKE_IMAGES = 256
GRID_SIDE = 8
GRID_PAD = 2
PACKAGE_SOURCES = ("__init__.py",)
LOG_FIELDS = ("component", "eigenvalue", "explained_variance_ratio", "cumulative_explained")


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
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SystemExit(f"{path}: unknown config keys {unknown}")
        return cls(**raw)


@dataclasses.dataclass(frozen=True)
class Decomposition:
    """The PCA of the training images: pixel mean, eigenvalues (descending), directions."""

    mean: npt.NDArray[np.float64]
    eigenvalues: npt.NDArray[np.float64]
    directions: npt.NDArray[np.float64]
    image_count: int
    data_sha256: str
    fit_seconds: float


def shared_dir() -> Path:
    """The shared folder: ``$MEDIGAN_SHARED_DIR`` if set, else ``<repo root>/../shared``."""
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def data_path() -> Path:
    """Where the 64 px Kermany chest X-ray archive is expected."""
    return shared_dir() / DATA_FILE


def load_train_images(path: Path) -> npt.NDArray[np.uint8]:
    """The train split of the archive as uint8 (N, 64, 64); the test split is never read."""
    with np.load(path, allow_pickle=False) as archive:
        splits = archive["splits"]
        images: npt.NDArray[np.uint8] = archive["images"][splits == "train"]
    return images


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def images_digest(images: npt.NDArray[np.uint8]) -> str:
    """Hex sha256 of the training pixels: a checkpoint is reused only for the same images."""
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def fit(images: npt.NDArray[np.uint8], out_dir: Path) -> Decomposition:
    """PCA of ``images`` by thin SVD, or the checkpointed one when it was fit on the same images."""
    digest = images_digest(images)
    checkpoint = out_dir / "decomposition.npz"
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


def grid_image(
    images: npt.NDArray[np.uint8], side: int = GRID_SIDE, pad: int = GRID_PAD
) -> Image.Image:
    """Tile ``side * side`` uint8 (N, H, W) images row by row with ``pad`` black pixels around."""
    height, width = images.shape[1:]
    canvas = np.zeros((side * (height + pad) + pad, side * (width + pad) + pad), dtype=np.uint8)
    for index, image in enumerate(images[: side * side]):
        row, col = divmod(index, side)
        top, left = pad + row * (height + pad), pad + col * (width + pad)
        canvas[top : top + height, left : left + width] = image
    return Image.fromarray(canvas, mode="L")


def write_log(path: Path, eigenvalues: npt.NDArray[np.float64]) -> None:
    """One row per principal component: eigenvalue, explained ratio and cumulative ratio."""
    ratios = eigenvalues / eigenvalues.sum()
    cumulative = np.cumsum(ratios)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(LOG_FIELDS)
        for index in range(int((eigenvalues > 0).sum())):
            writer.writerow(
                [
                    index + 1,
                    f"{eigenvalues[index]:.6g}",
                    f"{ratios[index]:.6g}",
                    f"{cumulative[index]:.6f}",
                ]
            )


def plot_explained_variance(path: Path, eigenvalues: npt.NDArray[np.float64], k: int) -> None:
    """Cumulative explained variance against the number of components, with k marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratios = eigenvalues / eigenvalues.sum()
    shown = min(len(ratios), max(4 * k, 400))
    cumulative = np.cumsum(ratios)[:shown]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    top.plot(np.arange(1, shown + 1), cumulative, color="tab:blue")
    top.axvline(k, color="tab:red", linestyle="--", label=f"k = {k} ({cumulative[k - 1]:.1%})")
    top.set_ylabel("cumulative explained variance")
    top.set_title(f"{MODEL_ID}: PCA of the Kermany chest X-ray train split")
    top.legend()
    bottom.semilogy(np.arange(1, shown + 1), ratios[:shown], color="tab:orange")
    bottom.axvline(k, color="tab:red", linestyle="--")
    bottom.set_xlabel("principal component")
    bottom.set_ylabel("explained variance ratio")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def cpu_model() -> str:
    """The CPU model name (Linux /proc/cpuinfo), else whatever platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def hardware_description() -> str:
    """A one-line description of the machine the fit ran on."""
    return (
        f"CPU {cpu_model()}; {os.cpu_count()} logical CPUs; {platform.system()} "
        f"{platform.release()} {platform.machine()}; Python {platform.python_version()}; "
        f"numpy {np.__version__}"
    )


def export(
    decomposition: Decomposition,
    config: Config,
    *,
    data_file: Path,
    export_dir: Path,
    smoke: bool,
    trained_at: dt.datetime,
) -> dict[str, Any]:
    """Write the package weights, card numbers, log, summary, explained-variance plot and grid."""
    package_dir = export_dir / "package"
    package_dir.mkdir(parents=True, exist_ok=True)
    if package_dir.resolve() != PACKAGE_DIR:
        for name in PACKAGE_SOURCES:
            shutil.copyfile(PACKAGE_DIR / name, package_dir / name)
    k = choose_components(decomposition.eigenvalues, config)
    loadings, sigma = ppca_parameters(decomposition, k)
    explained = float(decomposition.eigenvalues[:k].sum() / decomposition.eigenvalues.sum())
    weights_path = package_dir / "weights.safetensors"
    save_file(
        {"mean": decomposition.mean.astype(np.float32), "loadings": loadings},
        str(weights_path),
        # One metadata key: several would be written in hash order and change the bytes.
        metadata={
            WEIGHTS_METADATA_KEY: json.dumps(
                {"model_id": MODEL_ID, "components": k, "sigma": sigma}, sort_keys=True
            )
        },
    )
    weights_path.chmod(0o644)

    card = json.loads((PACKAGE_DIR / "card.json").read_text(encoding="utf-8"))
    for argument in card["generation_arguments"]:
        if argument["name"] == "components":
            argument["default"] = argument["maximum"] = k
    card["execution"]["generate_method"]["args"]["custom"]["components"] = k
    card["execution"]["generate_method"]["input_latent_vector_size"] = k
    card["description"]["inputs"] = [
        f"{a['name']}: default={a['default']}, help={a['help']}"
        for a in card["generation_arguments"]
    ]
    hardware = hardware_description()
    card["provenance"]["training"] = {
        "hardware": hardware,
        "wall_time_seconds": round(decomposition.fit_seconds, 1),
        "epochs": 1,
        "steps": 1,
        "seed": config.seed,
        "recipe": RECIPE,
    }
    card["provenance"]["training_data"][0]["image_count"] = decomposition.image_count
    card["description"]["provided_after_epoch"] = 1
    card["description"]["trained_date"] = trained_at.strftime("%B %Y")
    (package_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")

    # The package caches its parameters per process: sample the exported file in a fresh import.
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        f"_pca_export_{os.getpid()}_{id(export_dir)}",
        package_dir / "__init__.py",
        submodule_search_locations=[str(package_dir)],
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    try:
        spec.loader.exec_module(module)
        samples = module.generate(GRID_SIDE * GRID_SIDE, seed=config.sample_seed)
    finally:
        del sys.modules[spec.name]
    grid_image(samples).save(export_dir / "samples.png")
    plot_explained_variance(export_dir / "loss_curve.png", decomposition.eigenvalues, k)
    write_log(export_dir / "training_log.csv", decomposition.eigenvalues)

    summary: dict[str, Any] = {
        "model_id": MODEL_ID,
        "recipe": RECIPE,
        "command": COMMAND + (" --smoke" if smoke else ""),
        "smoke": smoke,
        "seed": config.seed,
        "epochs": 1,
        "steps": 1,
        "image_count": decomposition.image_count,
        "wall_time_seconds": round(decomposition.fit_seconds, 1),
        "hardware": hardware,
        "trained_at": trained_at.isoformat(timespec="seconds"),
        "components": k,
        "explained_variance": round(explained, 6),
        "sigma": round(sigma, 6),
        "top_eigenvalue": round(float(decomposition.eigenvalues[0]), 3),
        "weights_file": "package/weights.safetensors",
        "weights_dtype": "float32",
        "weights_bytes": weights_path.stat().st_size,
        "weights_sha256": sha256_of(weights_path),
        "data": {"file": DATA_FILE.as_posix(), "sha256": sha256_of(data_file), "split": "train"},
        "config": dataclasses.asdict(config),
    }
    (export_dir / "training_summary.json").write_text(
        json.dumps(summary, indent=2) + "\n", encoding="utf-8"
    )
    return summary


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=RECIPE_DIR / "config.json")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="checkpoint (default: var/zoo/chestxray_pca_64, or a new temporary directory "
        "with --smoke)",
    )
    parser.add_argument("--smoke", action="store_true", help="fit a small subset")
    parser.add_argument(
        "--export-dir",
        type=Path,
        default=None,
        help="where the artifacts go (default: beside this file; with --smoke: --out)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the recipe; see the module docstring."""
    args = parse_args(argv)
    config = Config.from_json(args.config)
    if args.out is not None:
        out_dir = args.out
    elif args.smoke:
        out_dir = Path(tempfile.mkdtemp(prefix="chestxray-pca-64-smoke-"))
    else:
        out_dir = REPO_ROOT / "var" / "zoo" / "chestxray_pca_64"
    out_dir.mkdir(parents=True, exist_ok=True)
    export_dir = args.export_dir or (out_dir if args.smoke else RECIPE_DIR)

    data_file = data_path()
    if not data_file.exists():
        print(f"training data not found at {data_file}; set MEDIGAN_SHARED_DIR", file=sys.stderr)
        return 2
    images = load_train_images(data_file)
    if args.smoke:
        rng = np.random.default_rng(config.seed)
        images = images[np.sort(rng.choice(len(images), SMOKE_IMAGES, replace=False))]
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise SystemExit(f"expected {IMAGE_SIZE}x{IMAGE_SIZE} images, got {images.shape[1:]}")
    print(f"{len(images)} training images, out {out_dir}, export {export_dir}", flush=True)

    decomposition = fit(images, out_dir)
    summary = export(
        decomposition,
        config,
        data_file=data_file,
        export_dir=export_dir,
        smoke=args.smoke,
        trained_at=dt.datetime.fromtimestamp(
            (out_dir / "decomposition.npz").stat().st_mtime, dt.UTC
        ),
    )
    print(
        json.dumps(
            {
                k: summary[k]
                for k in ("components", "explained_variance", "sigma", "wall_time_seconds")
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
