"""Training recipe of the ``medical-cnn`` feature extractor: a compact CNN on three data sets.

One command, from the repository root::

    python -m evaluation.medical_cnn.train [--smoke] [--out DIR] [--epochs N]

The network classifies (data set, label) jointly into 7 classes (see ``network.CLASS_NAMES``) on
the TRAIN splits only of the shared 64 px archives: Kermany chest X-ray split "train", ISIC 2017
split "train" (its "val" and "test" stay untouched) and the BUSI images outside the held-out
reference split of ``evaluation.references.busi_heldout_mask`` (index % 5 == 0). Every tenth
image of each of those (in archive order) is carved off as a validation subset that is never
trained on; the held-out splits are never read.

It is seeded (each epoch's data order, augmentation and dropout derive from the seed and the epoch
number alone), writes a checkpoint after every epoch to ``--out`` (rerunning continues from it,
and raising ``--epochs`` extends a finished run, though the cosine learning-rate schedule then
follows the new length), and logs per-epoch loss and accuracy to ``training_log.csv``. At the end
it exports ``weights.safetensors``, ``training_log.csv`` and ``training_summary.json`` beside this
file; ``--smoke`` trains two short epochs on a small subset into a temporary directory and exports
there instead, leaving the committed files alone.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from safetensors.torch import save_file
from torch import nn

from evaluation.medical_cnn.network import (
    CLASS_NAMES,
    FEATURE_DIM,
    INPUT_SIZE,
    WEIGHTS_METADATA_KEY,
    MedicalCnn,
)
from evaluation.references import HELDOUT_MODULUS, busi_heldout_mask

RECIPE_DIR = Path(__file__).resolve().parent
REPO_ROOT = RECIPE_DIR.parents[1]
RECIPE = "evaluation/medical_cnn/train.py"
COMMAND = "python -m evaluation.medical_cnn.train"
EXTRACTOR_ID = "medical-cnn"
CHEST_FILE = Path("data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz")
BUSI_FILE = Path("data/breast-ultrasound-busi/breast_ultrasound_busi_64.npz")
ISIC_FILE = Path("data/dermoscopy-isic2017/dermoscopy_isic2017_64.npz")
# First class index of each data set in CLASS_NAMES; a data set's label is added to it.
CLASS_OFFSETS = {"chest-xray": 0, "busi": 2, "isic2017": 5}
# Every VAL_EVERY-th training image of each data set (in archive order) is validation only.
VAL_EVERY = 10
SMOKE_PER_CLASS = 24
SMOKE_EPOCHS = 2
SMOKE_BATCH_SIZE = 32
CROP_PADDING = 4
LOG_FIELDS = (
    "epoch",
    "steps",
    "learning_rate",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "val_balanced_accuracy",
    "epoch_seconds",
    "wall_time_seconds",
)
# Settings that may differ between a checkpoint and a rerun without breaking the run.
RESUMABLE_CHANGES = frozenset({"epochs", "torch_threads"})


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyper-parameters of the recipe."""

    seed: int = 20261
    epochs: int = 12
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    dropout: float = 0.3
    torch_threads: int = 2


@dataclasses.dataclass(frozen=True)
class LabelledImages:
    """uint8 RGB images (N, 64, 64, 3) with their joint class index (N,) into CLASS_NAMES."""

    images: npt.NDArray[np.uint8]
    classes: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.classes)

    def subset(self, index: npt.NDArray[np.int64] | npt.NDArray[np.bool_]) -> LabelledImages:
        """The rows selected by an index array or a boolean mask."""
        return LabelledImages(self.images[index], self.classes[index])

    def class_counts(self) -> dict[str, int]:
        """Number of images per class name."""
        counts = np.bincount(self.classes, minlength=len(CLASS_NAMES))
        return {name: int(count) for name, count in zip(CLASS_NAMES, counts, strict=True)}


def shared_dir() -> Path:
    """The shared folder: ``$MEDIGAN_SHARED_DIR`` if set, else ``<repo root>/../shared``."""
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def data_files(shared: Path) -> dict[str, Path]:
    """The three 64 px archives, by data set name (the keys of CLASS_OFFSETS)."""
    return {
        "chest-xray": shared / CHEST_FILE,
        "busi": shared / BUSI_FILE,
        "isic2017": shared / ISIC_FILE,
    }


def to_rgb(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """uint8 (N, H, W) grayscale or (N, H, W, 3) RGB to (N, H, W, 3); gray is replicated."""
    if images.ndim == 3:
        rgb: npt.NDArray[np.uint8] = np.repeat(images[..., None], 3, axis=-1)
        return rgb
    return images


def load_training_images(files: dict[str, Path]) -> dict[str, LabelledImages]:
    """The training images of each data set; the held-out splits are masked out before copying."""
    result: dict[str, LabelledImages] = {}
    for name, path in files.items():
        with np.load(path, allow_pickle=False) as archive:
            splits = archive["splits"]
            keep = ~busi_heldout_mask(len(splits)) if name == "busi" else splits == "train"
            images = to_rgb(archive["images"][keep])
            labels = archive["labels"][keep].astype(np.int64)
        if labels.min() < 0:
            raise ValueError(f"{path}: unlabelled images in the training split")
        result[name] = LabelledImages(images, labels + CLASS_OFFSETS[name])
    return result


def split_validation(
    per_dataset: dict[str, LabelledImages],
) -> tuple[LabelledImages, LabelledImages]:
    """Concatenate the data sets into (train, validation): every VAL_EVERY-th image validates."""
    train_parts: list[LabelledImages] = []
    val_parts: list[LabelledImages] = []
    for part in per_dataset.values():
        is_val = np.arange(len(part)) % VAL_EVERY == 0
        train_parts.append(part.subset(~is_val))
        val_parts.append(part.subset(is_val))
    return concatenate(train_parts), concatenate(val_parts)


def concatenate(parts: Sequence[LabelledImages]) -> LabelledImages:
    """One LabelledImages from several."""
    return LabelledImages(
        np.concatenate([p.images for p in parts]), np.concatenate([p.classes for p in parts])
    )


def smoke_subset(data: LabelledImages, per_class: int, seed: int) -> LabelledImages:
    """At most ``per_class`` images of each class, drawn with ``seed``, in archive order."""
    rng = np.random.default_rng(seed)
    chosen: list[npt.NDArray[np.int64]] = []
    for label in range(len(CLASS_NAMES)):
        rows = np.flatnonzero(data.classes == label)
        chosen.append(rng.choice(rows, min(per_class, len(rows)), replace=False))
    return data.subset(np.sort(np.concatenate(chosen)))


def to_tensor(images: npt.NDArray[np.uint8]) -> torch.Tensor:
    """uint8 (N, H, W, 3) to float32 (N, 3, H, W) in [0, 1]: the extractor's input convention."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)


def channel_statistics(images: npt.NDArray[np.uint8]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of uint8 (N, H, W, 3) images scaled to [0, 1]."""
    pixels = images.reshape(-1, 3).astype(np.float64) / 255.0
    mean = torch.from_numpy(pixels.mean(axis=0)).float()
    std = torch.from_numpy(pixels.std(axis=0)).float()
    return mean, std


def class_weights(classes: npt.NDArray[np.int64]) -> torch.Tensor:
    """Inverse-frequency loss weights N / (K * n_c): every class weighs the same in the loss."""
    counts = np.bincount(classes, minlength=len(CLASS_NAMES)).astype(np.float64)
    weights = len(classes) / (len(CLASS_NAMES) * np.maximum(counts, 1.0))
    return torch.from_numpy(weights).float()


def augment(batch: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and random crops of the reflect-padded image (shifts of <= 4 px).

    Light on purpose: the extractor should see the images as they are, only not memorise exact
    pixel positions.
    """
    count, _, height, width = batch.shape
    flip = torch.rand(count, generator=rng) < 0.5
    batch = torch.where(flip.reshape(-1, 1, 1, 1), batch.flip(3), batch)
    padded = nn.functional.pad(batch, (CROP_PADDING,) * 4, mode="reflect")
    offsets = torch.randint(0, 2 * CROP_PADDING + 1, (count, 2), generator=rng)
    return torch.stack(
        [
            padded[i, :, top : top + height, left : left + width]
            for i, (top, left) in enumerate(offsets.tolist())
        ]
    )


def learning_rate(config: Config, step: int, total_steps: int) -> float:
    """Cosine decay from ``config.learning_rate`` to zero, after a short linear warm-up.

    The warm-up is the first 3 % of the steps; computing the rate from the step alone keeps
    resumed runs on the same schedule without saving a scheduler.
    """
    warmup = max(1, round(0.03 * total_steps))
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))


def evaluate(
    model: MedicalCnn, data: LabelledImages, weights: torch.Tensor, batch_size: int = 256
) -> dict[str, Any]:
    """Weighted loss, accuracy, balanced and per-class accuracy of ``model`` on ``data``."""
    model.eval()
    predictions: list[torch.Tensor] = []
    loss_sum = 0.0
    weight_sum = 0.0
    targets = torch.from_numpy(data.classes)
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            images = to_tensor(data.images[start : start + batch_size])
            target = targets[start : start + batch_size]
            logits = model(model.normalise(images))
            losses = nn.functional.cross_entropy(logits, target, reduction="none")
            loss_sum += float((losses * weights[target]).sum())
            weight_sum += float(weights[target].sum())
            predictions.append(logits.argmax(dim=1))
    predicted = torch.cat(predictions)
    correct = predicted == targets
    per_class: dict[str, float | None] = {}
    for label, name in enumerate(CLASS_NAMES):
        rows = targets == label
        per_class[name] = round(float(correct[rows].float().mean()), 4) if rows.any() else None
    present = [value for value in per_class.values() if value is not None]
    return {
        "loss": loss_sum / weight_sum,
        "accuracy": float(correct.float().mean()),
        "balanced_accuracy": float(np.mean(present)),
        "per_class_accuracy": per_class,
    }


def hardware_description() -> str:
    """A one-line description of the CPU machine the run used, from platform and torch."""
    model_name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    return (
        f"CPU {model_name}, {torch.get_num_threads()} torch threads; {os.cpu_count()} logical "
        f"CPUs; {platform.system()} {platform.release()} {platform.machine()}; "
        f"Python {platform.python_version()}; torch {torch.__version__}"
    )


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_log(path: Path, rows: Sequence[dict[str, float]]) -> None:
    """Write the per-epoch log as CSV."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    key: (f"{value:.6f}" if isinstance(value, float) else value)
                    for key, value in row.items()
                }
            )


def save_atomically(payload: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file and rename it: an interrupted save leaves no half file."""
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save(payload, partial)
    partial.replace(path)


@dataclasses.dataclass
class RunState:
    """What a checkpoint carries besides the network and the optimiser."""

    epoch: int = 0
    step: int = 0
    wall_time_seconds: float = 0.0
    rows: list[dict[str, float]] = dataclasses.field(default_factory=list)
    validation: dict[str, Any] = dataclasses.field(default_factory=dict)


def train(
    config: Config,
    train_set: LabelledImages,
    val_set: LabelledImages,
    out_dir: Path,
    *,
    smoke: bool,
) -> tuple[MedicalCnn, RunState]:
    """Train (or continue training) into ``out_dir``; return the network and the run's record."""
    torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    model = MedicalCnn(dropout=config.dropout)
    mean, std = channel_statistics(train_set.images)
    model.get_buffer("input_mean").copy_(mean)
    model.get_buffer("input_std").copy_(std)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    state = RunState()

    checkpoint_path = out_dir / "checkpoint.pt"
    if checkpoint_path.exists():
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        saved = dict(checkpoint["config"])
        current = dataclasses.asdict(config)
        changed = sorted(
            k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k]
        )
        if changed or checkpoint["smoke"] != smoke:
            raise SystemExit(
                f"{checkpoint_path} was written with other settings ({changed or 'smoke'}); "
                "use another --out or delete the checkpoint"
            )
        model.load_state_dict(checkpoint["model"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        state = RunState(
            epoch=int(checkpoint["epoch"]),
            step=int(checkpoint["step"]),
            wall_time_seconds=float(checkpoint["wall_time_seconds"]),
            rows=[dict(row) for row in checkpoint["rows"]],
            validation=dict(checkpoint["validation"]),
        )
        print(f"resuming from {checkpoint_path} after epoch {state.epoch}", flush=True)

    weights = class_weights(train_set.classes)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    targets = torch.from_numpy(train_set.classes)
    batch = config.batch_size
    steps_per_epoch = len(train_set) // batch  # drop the last partial batch: BatchNorm wants full
    total_steps = steps_per_epoch * config.epochs

    for epoch in range(state.epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        # Order, augmentation and dropout of an epoch depend on (seed, epoch) only: resumable.
        torch.manual_seed(config.seed * 1000 + epoch)
        rng = torch.Generator().manual_seed(config.seed * 1000 + epoch)
        order = torch.randperm(len(train_set), generator=rng)
        model.train()
        loss_sum = 0.0
        correct = 0
        for index in range(steps_per_epoch):
            rows = order[index * batch : (index + 1) * batch]
            images = augment(to_tensor(train_set.images[rows.numpy()]), rng)
            target = targets[rows]
            rate = learning_rate(config, state.step, total_steps)
            for group in optimiser.param_groups:
                group["lr"] = rate
            optimiser.zero_grad(set_to_none=True)
            logits = model(model.normalise(images))
            loss = loss_fn(logits, target)
            loss.backward()
            optimiser.step()
            state.step += 1
            loss_sum += loss.item()
            correct += int((logits.argmax(dim=1) == target).sum())

        validation = evaluate(model, val_set, weights)
        epoch_seconds = time.perf_counter() - started
        state.wall_time_seconds += epoch_seconds
        state.epoch = epoch
        state.validation = validation
        row: dict[str, float] = {
            "epoch": epoch,
            "steps": state.step,
            "learning_rate": rate,
            "train_loss": loss_sum / steps_per_epoch,
            "train_accuracy": correct / (steps_per_epoch * batch),
            "val_loss": validation["loss"],
            "val_accuracy": validation["accuracy"],
            "val_balanced_accuracy": validation["balanced_accuracy"],
            "epoch_seconds": epoch_seconds,
            "wall_time_seconds": state.wall_time_seconds,
        }
        state.rows.append(row)
        save_atomically(
            {
                "config": dataclasses.asdict(config),
                "smoke": smoke,
                "epoch": state.epoch,
                "step": state.step,
                "wall_time_seconds": state.wall_time_seconds,
                "rows": state.rows,
                "validation": state.validation,
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
            },
            checkpoint_path,
        )
        write_log(out_dir / "training_log.csv", state.rows)
        print(
            f"epoch {epoch}/{config.epochs} train loss {row['train_loss']:.4f} "
            f"acc {row['train_accuracy']:.3f} | val loss {row['val_loss']:.4f} "
            f"acc {row['val_accuracy']:.3f} balanced {row['val_balanced_accuracy']:.3f} "
            f"| {epoch_seconds:.1f}s",
            flush=True,
        )
    model.eval()
    return model, state


def export(
    model: MedicalCnn,
    state: RunState,
    config: Config,
    *,
    train_set: LabelledImages,
    val_set: LabelledImages,
    files: dict[str, Path],
    export_dir: Path,
    smoke: bool,
    trained_at: dt.datetime,
) -> dict[str, Any]:
    """Write ``weights.safetensors``, ``training_log.csv`` and ``training_summary.json``."""
    export_dir.mkdir(parents=True, exist_ok=True)
    weights_path = export_dir / "weights.safetensors"
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
    save_file(
        tensors,
        str(weights_path),
        # One metadata key: safetensors writes several in hash order, which would make the bytes
        # (and so the weights_sha256 every evaluation records) differ between identical runs.
        metadata={
            WEIGHTS_METADATA_KEY: json.dumps(
                {
                    "extractor_id": EXTRACTOR_ID,
                    "classes": list(CLASS_NAMES),
                    "feature_dim": FEATURE_DIM,
                    "input_size": INPUT_SIZE,
                    "epochs": state.epoch,
                    "seed": config.seed,
                },
                sort_keys=True,
            )
        },
    )
    weights_path.chmod(0o644)  # safetensors creates it owner-only; it is meant to be shared
    write_log(export_dir / "training_log.csv", state.rows)

    final = state.rows[-1] if state.rows else {}
    summary: dict[str, Any] = {
        "extractor_id": EXTRACTOR_ID,
        "recipe": RECIPE,
        "command": COMMAND + (" --smoke" if smoke else ""),
        "smoke": smoke,
        "seed": config.seed,
        "epochs": state.epoch,
        "steps": state.step,
        "wall_time_seconds": round(state.wall_time_seconds, 1),
        "hardware": hardware_description(),
        "trained_at": trained_at.isoformat(timespec="seconds"),
        "train_counts": train_set.class_counts(),
        "validation_counts": val_set.class_counts(),
        "validation_rule": f"every {VAL_EVERY}th training image of each data set, archive order",
        "final_epoch": {
            key: round(final[key], 6) if key in final else None
            for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
        },
        "validation": {
            "accuracy": round(state.validation.get("accuracy", float("nan")), 4),
            "balanced_accuracy": round(state.validation.get("balanced_accuracy", float("nan")), 4),
            "per_class_accuracy": state.validation.get("per_class_accuracy", {}),
        },
        "parameters": sum(p.numel() for p in model.parameters()),
        "feature_dim": FEATURE_DIM,
        "input_size": INPUT_SIZE,
        "input_mean": [round(v, 6) for v in model.get_buffer("input_mean").tolist()],
        "input_std": [round(v, 6) for v in model.get_buffer("input_std").tolist()],
        "weights_file": "weights.safetensors",
        "weights_dtype": "float32",
        "weights_bytes": weights_path.stat().st_size,
        "weights_sha256": sha256_of(weights_path),
        "data": {
            name: {
                "file": path.relative_to(path.parents[2]).as_posix(),
                "sha256": sha256_of(path),
                "split": (
                    f"all minus index % {HELDOUT_MODULUS} == 0" if name == "busi" else "train"
                ),
            }
            for name, path in files.items()
        },
        "config": dataclasses.asdict(config),
    }
    (export_dir / "training_summary.json").write_text(
        json.dumps(summary, indent=2) + "\n", encoding="utf-8"
    )
    return summary


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="checkpoint and log (default: var/evaluation/medical_cnn, or a new temporary "
        "directory with --smoke)",
    )
    parser.add_argument("--smoke", action="store_true", help="two short epochs on a small subset")
    parser.add_argument("--epochs", type=int, default=None, help="override the default epochs")
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
    config = Config()
    if args.smoke:
        config = dataclasses.replace(config, epochs=SMOKE_EPOCHS, batch_size=SMOKE_BATCH_SIZE)
    if args.epochs is not None:
        config = dataclasses.replace(config, epochs=args.epochs)
    if args.out is not None:
        out_dir = args.out
    elif args.smoke:
        out_dir = Path(tempfile.mkdtemp(prefix="medical-cnn-smoke-"))
    else:
        out_dir = REPO_ROOT / "var" / "evaluation" / "medical_cnn"
    out_dir.mkdir(parents=True, exist_ok=True)
    export_dir = args.export_dir or (out_dir if args.smoke else RECIPE_DIR)

    files = data_files(shared_dir())
    missing = [str(path) for path in files.values() if not path.exists()]
    if missing:
        print(f"training data not found: {missing}; set MEDIGAN_SHARED_DIR", file=sys.stderr)
        return 2
    train_set, val_set = split_validation(load_training_images(files))
    if args.smoke:
        train_set = smoke_subset(train_set, SMOKE_PER_CLASS, config.seed)
        val_set = smoke_subset(val_set, SMOKE_PER_CLASS // 2, config.seed)
    print(
        f"{len(train_set)} training and {len(val_set)} validation images, out {out_dir}, "
        f"export {export_dir}",
        flush=True,
    )

    model, state = train(config, train_set, val_set, out_dir, smoke=args.smoke)
    summary = export(
        model,
        state,
        config,
        train_set=train_set,
        val_set=val_set,
        files=files,
        export_dir=export_dir,
        smoke=args.smoke,
        # when the last epoch was saved, so that re-exporting a finished run keeps its date
        trained_at=dt.datetime.fromtimestamp((out_dir / "checkpoint.pt").stat().st_mtime, dt.UTC),
    )
    print(json.dumps({k: summary[k] for k in ("epochs", "steps", "wall_time_seconds")}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
