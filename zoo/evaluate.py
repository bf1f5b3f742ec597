"""The zoo's table of numbers: every zoo model and a trivial baseline, against its reference set.

    python -m zoo.evaluate [--samples 1000] [--extractor medical-cnn] [--write-readme]

For every ``zoo/*/package/card.json`` the package is imported by path (as the client does) and
called with the card's default generation arguments (as the hub's evaluation does). Each matching
held-out reference set (``evaluation.references``, the hub's sets and match rule) is
evaluated with ``evaluation.runner.evaluate``, and so is the trivial baseline of the issue's
acceptance 3: independent per-pixel Gaussian noise with the per-pixel mean and variance of the
reference data set's TRAINING split, at the model's output size and channels, clipped to uint8.
Both use the same options and the same extractor. The Markdown table is printed and, with
``--write-readme``, written into ``zoo/README.md`` between the marker comments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from evaluation.features import FeatureExtractor, load_extractor
from evaluation.references import (
    REFERENCE_SETS,
    ReferenceImages,
    ReferenceSetSpec,
    load_npz_split,
    reference_sets_fitting,
)
from evaluation.runner import EvaluationOptions, EvaluationResult, evaluate

ZOO_DIR = Path(__file__).resolve().parent
REPO_ROOT = ZOO_DIR.parent
README = ZOO_DIR / "README.md"
TABLE_START = "<!-- zoo-evaluation-table:start -->"
TABLE_END = "<!-- zoo-evaluation-table:end -->"
Generator = Callable[[int, int], np.ndarray[Any, Any]]


# The held-out reference sets, the same as the hub's (``manage.py reference_sets_load``).
REFERENCES = REFERENCE_SETS


@dataclass(frozen=True)
class Row:
    """One line of the table: a model and its baseline against one reference set."""

    model_id: str
    version: str
    reference_id: str
    model: EvaluationResult
    baseline: EvaluationResult

    @property
    def beats_baseline(self) -> bool:
        """Acceptance 3: the model's FID_rs is lower than the baseline's."""
        return self.model.fid_rs < self.baseline.fid_rs


def shared_dir() -> Path:
    """The shared folder: ``$MEDIGAN_SHARED_DIR`` if set, else ``<repo root>/../shared``."""
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def package_dirs(zoo_dir: Path = ZOO_DIR) -> list[Path]:
    """Every ``zoo/*/package`` directory with a ``card.json``, sorted by name."""
    return sorted(card.parent for card in zoo_dir.glob("*/package/card.json"))


def matching_references(card: dict[str, Any]) -> list[ReferenceSetSpec]:
    """The reference sets that fit the card's selection, by the hub's rule."""
    selection = card.get("selection") or {}
    return reference_sets_fitting(
        modality=selection.get("modality"), organ=selection.get("organ"), tags=selection.get("tags")
    )


def import_package(package_dir: Path) -> ModuleType:
    """Import the package in ``package_dir`` by path under a name of its own, as the client does."""
    name = f"zoo_evaluate_{package_dir.parent.name}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the package in {package_dir}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # relative imports inside the package need it registered
    spec.loader.exec_module(module)
    return module


def model_generator(package_dir: Path, card: dict[str, Any], device: str) -> Generator:
    """``(n, seed) -> images`` of the package with the card's default arguments, as the hub."""
    from medigan_catalog.validation import resolve_generation_arguments, validate_card

    arguments = resolve_generation_arguments(validate_card(card), {})
    entry_point = getattr(
        import_package(package_dir), card["runtime"].get("entry_point") or "generate"
    )

    def generate(num_samples: int, seed: int) -> np.ndarray[Any, Any]:
        images: np.ndarray[Any, Any] = entry_point(
            num_samples, seed=seed, device=device, **arguments
        )
        return images

    return generate


def training_images(
    spec: ReferenceSetSpec, height: int, width: int, channels: int, data_dir: Path
) -> npt.NDArray[np.uint8]:
    """The reference data set's training split at the given size and channels.

    The data set's own file at that size is used when there is one (BUSI has a 128 px file);
    otherwise the reference file's images are resized with Lanczos and converted with Pillow.
    """
    same_size = data_dir / spec.file.replace("_64.npz", f"_{height}.npz")
    source = same_size if height == width and same_size.is_file() else data_dir / spec.file
    images = load_npz_split(source, spec.train_split, id=spec.id).images
    have_channels = 1 if images.ndim == 3 else images.shape[3]
    if images.shape[1:3] == (height, width) and have_channels == channels:
        return images
    mode = "L" if channels == 1 else "RGB"
    converted = [
        np.asarray(
            Image.fromarray(image).convert(mode).resize((width, height), Image.Resampling.LANCZOS)
        )
        for image in images
    ]
    return np.stack(converted).astype(np.uint8)


def baseline_generator(images: npt.NDArray[np.uint8]) -> Generator:
    """Independent per-pixel Gaussian noise with the per-pixel mean and variance of ``images``."""
    pixels = images.astype(np.float64)
    mean = pixels.mean(axis=0)
    std = pixels.std(axis=0)

    def generate(num_samples: int, seed: int) -> np.ndarray[Any, Any]:
        noise = np.random.default_rng(seed).standard_normal((num_samples, *mean.shape))
        out: npt.NDArray[np.uint8] = np.clip(np.rint(mean + std * noise), 0, 255).astype(np.uint8)
        return out

    return generate


def evaluate_package(
    package_dir: Path,
    *,
    samples: int = 1000,
    extractor_id: str = "medical-cnn",
    device: str = "cpu",
    seed: int = 0,
    data_dir: Path | None = None,
    extractor: FeatureExtractor | None = None,
) -> list[Row]:
    """Evaluate one package and its baseline against every matching reference set."""
    data_dir = data_dir or shared_dir() / "data"
    card: dict[str, Any] = json.loads((package_dir / "card.json").read_text(encoding="utf-8"))
    extractor = extractor or load_extractor(extractor_id, device=device)
    options = EvaluationOptions(
        extractor_id=extractor_id, num_samples=samples, seed=seed, device=device
    )
    output = card["output"]
    height, width, channels = output["height"], output["width"], output.get("channels") or 1
    rows = []
    for spec in matching_references(card):
        reference: ReferenceImages = load_npz_split(data_dir / spec.file, spec.split, id=spec.id)
        generator = model_generator(package_dir, card, device)
        baseline = baseline_generator(training_images(spec, height, width, channels, data_dir))
        rows.append(
            Row(
                model_id=card["model_id"],
                version=card["version"],
                reference_id=spec.id,
                model=evaluate(generator, reference, options, extractor=extractor),
                baseline=evaluate(baseline, reference, options, extractor=extractor),
            )
        )
    return rows


def table_markdown(rows: Sequence[Row]) -> str:
    """The Markdown table of ``rows``."""
    header = (
        "| model | reference | extractor | samples | FID_rs | FID_rr | r_FID | KID | precision "
        "| recall | baseline FID_rs | beats baseline |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    lines = [
        f"| `{row.model_id}` | {row.reference_id} | {row.model.extractor_id} "
        f"| {row.model.num_generated} | {row.model.fid_rs:.2f} | {row.model.fid_rr_mean:.2f} "
        f"| {row.model.r_fid:.3f} | {row.model.kid_mean:.4f} | {row.model.precision:.3f} "
        f"| {row.model.recall:.3f} | {row.baseline.fid_rs:.2f} "
        f"| {'yes' if row.beats_baseline else 'no'} |"
        for row in rows
    ]
    return header + "\n".join(lines) + "\n"


def readme_with_table(readme: str, table: str, note: str) -> str:
    """``readme`` with the text between the table markers replaced by ``note`` and ``table``."""
    start, end = readme.find(TABLE_START), readme.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {TABLE_START} ... {TABLE_END} markers")
    return f"{readme[: start + len(TABLE_START)]}\n{note}\n\n{table}{readme[end:]}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m zoo.evaluate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--samples", type=int, default=1000, help="generated images per model")
    parser.add_argument("--extractor", default="medical-cnn", help="feature extractor id")
    parser.add_argument("--device", default="cpu", help="device for generation and features")
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed")
    parser.add_argument(
        "--write-readme", action="store_true", help=f"write the table into {README.name}"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate every zoo package; print the table and optionally write it into the README."""
    args = parse_args(argv)
    data_dir = shared_dir() / "data"
    if not data_dir.is_dir():
        print(f"no data sets at {data_dir}; set MEDIGAN_SHARED_DIR", file=sys.stderr)
        return 2
    extractor = load_extractor(args.extractor, device=args.device)
    rows: list[Row] = []
    failures: list[str] = []
    for package_dir in package_dirs():
        started = time.perf_counter()
        try:
            found = evaluate_package(
                package_dir,
                samples=args.samples,
                extractor_id=args.extractor,
                device=args.device,
                seed=args.seed,
                data_dir=data_dir,
                extractor=extractor,
            )
        except Exception as error:  # one broken package must not hide the others' numbers
            print(f"{package_dir.parent.name}: FAILED: {error!r}", file=sys.stderr, flush=True)
            reason = str(error).replace(f"{REPO_ROOT}/", "")
            failures.append(f"`{package_dir.parent.name}` ({type(error).__name__}: {reason})")
            continue
        for row in found:
            print(
                f"{row.model_id} vs {row.reference_id}: FID_rs {row.model.fid_rs:.2f}, "
                f"baseline {row.baseline.fid_rs:.2f} ({time.perf_counter() - started:.0f}s)",
                flush=True,
            )
        rows.extend(found)
    table = table_markdown(rows)
    print(table)
    if args.write_readme:
        note = (
            f"Computed {dt.date.today().isoformat()} by `python -m zoo.evaluate --samples "
            f"{args.samples} --extractor {args.extractor}` (seed {args.seed}, CPU). "
            + (
                "The medical-cnn numbers are FIDs in the feature space of the project's own "
                "small medical CNN: they rank models against each other and against the baseline, "
                "but are NOT comparable with published (Inception-v3) FID values."
                if args.extractor == "medical-cnn"
                else ""
            )
        )
        if failures:
            note += " Not evaluated (the package failed to load or generate): " + "; ".join(
                failures
            )
        README.write_text(
            readme_with_table(README.read_text(encoding="utf-8"), table, note), encoding="utf-8"
        )
        print(f"wrote the table into {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
