"""Training recipe of zoo/chestxray-cdcgan-64: a class-conditional DCGAN on Kermany chest X-rays.

The generator gets a learned NORMAL / PNEUMONIA embedding concatenated to its latent; the
discriminator gets the label as an extra constant input channel (-1 NORMAL, +1 PNEUMONIA); a first
run with a projection discriminator instead collapsed to one image per class within three epochs.
Real batches are drawn uniformly from the train split (so classes come at the data prior, 26 %
NORMAL / 74 % PNEUMONIA) and each fake of a step gets the label of the real image at the same batch
position, so generated labels follow the same prior.

One command, from the repository root::

    python -m zoo.chestxray_cdcgan_64.train [--config config.json] [--out DIR] [--smoke]

It is seeded (torch, numpy, random; the data order of each epoch is derived from the seed), writes
a checkpoint with optimiser and RNG states after every epoch to ``--out`` (rerunning continues from
it, and raising ``epochs`` extends a finished run), and logs per-epoch losses to
``training_log.csv``. When training is done it exports the commit-ready artifacts: the package's
``weights.safetensors`` (generator only, BatchNorm statistics recalibrated) and ``card.json``
numbers, and ``training_log.csv``, ``training_summary.json``, ``loss_curve.png`` and ``samples.png``
beside this file. ``--smoke`` trains a few steps on a small subset into a temporary directory and
exports a complete package there instead, leaving the committed files alone.
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
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from zoo.chestxray_cdcgan_64.package.network import (
    LATENT_SIZE,
    PNEUMONIA_PRIOR,
    WEIGHTS_METADATA_KEY,
    ConditionalGenerator,
    sample_labels,
    sample_latents,
    to_uint8,
)

RECIPE_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = RECIPE_DIR / "package"
REPO_ROOT = RECIPE_DIR.parents[1]
RECIPE = "zoo/chestxray_cdcgan_64/train.py"
COMMAND = "python -m zoo.chestxray_cdcgan_64.train"
MODEL_ID = "zoo/chestxray-cdcgan-64"
DATA_FILE = Path("data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz")
SMOKE_IMAGES = 256
SMOKE_EPOCHS = 2
SMOKE_RECALIBRATION_BATCHES = 4
GRID_SIDE = 8
GRID_PAD = 2
PACKAGE_SOURCES = ("__init__.py", "network.py")
LOG_FIELDS = (
    "epoch",
    "steps",
    "loss_d",
    "loss_g",
    "d_real",
    "d_fake",
    "epoch_seconds",
    "wall_time_seconds",
)
# Hyper-parameters that may change between a checkpoint and a rerun without breaking the run.
RESUMABLE_CHANGES = frozenset({"epochs", "torch_threads", "bn_recalibration_batches"})


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyper-parameters of the recipe, read from ``config.json``."""

    seed: int = 20260
    latent_size: int = LATENT_SIZE
    generator_width: int = 40
    discriminator_width: int = 40
    batch_size: int = 64
    learning_rate: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    epochs: int = 30
    leaky_relu_slope: float = 0.2
    init_std: float = 0.02
    bn_recalibration_batches: int = 100
    sample_seed: int = 0
    torch_threads: int = 2

    @classmethod
    def from_json(cls, path: Path) -> Config:
        """Read a config file; unknown keys are an error so that typos do not pass silently."""
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SystemExit(f"{path}: unknown config keys {unknown}")
        config = cls(**raw)
        if config.latent_size != LATENT_SIZE:
            raise SystemExit(f"latent_size must be {LATENT_SIZE}, the package's latent size")
        return config


class Discriminator(nn.Module):
    """DCGAN discriminator conditioned by an extra input channel: image and label to one logit.

    The label enters as a second input channel, constant over the image: -1 for NORMAL, +1 for
    PNEUMONIA. Then Conv-LeakyReLU, three Conv-BatchNorm-LeakyReLU blocks (32 -> 16 -> 8 -> 4
    pixels) and a final 4x4 convolution. It returns logits; the loss applies the sigmoid
    (BCEWithLogits).
    """

    def __init__(self, width: int, slope: float, channels: int = 1) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(channels + 1, w, 4, 2, 1, bias=False),
            nn.LeakyReLU(slope, inplace=True),
            nn.Conv2d(w, w * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(w * 2),
            nn.LeakyReLU(slope, inplace=True),
            nn.Conv2d(w * 2, w * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(w * 4),
            nn.LeakyReLU(slope, inplace=True),
            nn.Conv2d(w * 4, w * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(w * 8),
            nn.LeakyReLU(slope, inplace=True),
            nn.Conv2d(w * 8, 1, 4, 1, 0, bias=False),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Return one logit per image, shape (N,)."""
        plane = (labels.to(x.dtype) * 2.0 - 1.0).reshape(-1, 1, 1, 1).expand(-1, 1, *x.shape[2:])
        out: torch.Tensor = self.net(torch.cat([x, plane], dim=1))
        return out.reshape(-1)


def shared_dir() -> Path:
    """The shared folder: ``$MEDIGAN_SHARED_DIR`` if set, else ``<repo root>/../shared``."""
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def data_path() -> Path:
    """Where the 64 px Kermany chest X-ray archive is expected."""
    return shared_dir() / DATA_FILE


def load_train_images(path: Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The train split as uint8 images (N, 64, 64) and int64 labels (0 NORMAL, 1 PNEUMONIA).

    The test split is never read.
    """
    with np.load(path, allow_pickle=False) as archive:
        train = archive["splits"] == "train"
        images: npt.NDArray[np.uint8] = archive["images"][train]
        labels: npt.NDArray[np.int64] = archive["labels"][train].astype(np.int64)
    return images, labels


def to_training_tensor(images: npt.NDArray[np.uint8]) -> torch.Tensor:
    """uint8 (N, H, W) to float32 (N, 1, H, W) scaled to [-1, 1], the range of the Tanh output."""
    return torch.from_numpy(images).float().div(127.5).sub(1.0).unsqueeze(1)


def seed_everything(seed: int) -> None:
    """Seed python's random, numpy's global RNG and torch's global RNG."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def init_weights(module: nn.Module, std: float) -> None:
    """DCGAN initialisation: convolutions N(0, std), BatchNorm scale N(1, std) and shift 0.

    The generator's class embedding keeps PyTorch's N(0, 1), the scale of the latent it is
    concatenated to.
    """
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, std)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, std)
        nn.init.zeros_(module.bias)


def epoch_order(seed: int, epoch: int, count: int) -> npt.NDArray[np.int64]:
    """The order in which epoch ``epoch`` visits the images: a function of the seed alone."""
    order: npt.NDArray[np.int64] = np.random.default_rng([seed, epoch]).permutation(count)
    return order


def rng_states() -> dict[str, Any]:
    """The global RNG states in a form ``torch.load(weights_only=True)`` accepts."""
    legacy = cast(tuple[str, npt.NDArray[np.uint32], int, int, float], np.random.get_state())
    name, key, pos, has_gauss, cached = legacy
    return {
        "python": random.getstate(),
        "numpy": (name, key.tolist(), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what ``rng_states`` saved."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, key, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])


def hardware_description(device: torch.device) -> str:
    """A one-line description of the machine the run used, from platform and torch."""
    if device.type == "cuda":
        accelerator = f"GPU {torch.cuda.get_device_name(device)}"
    else:
        accelerator = f"CPU {cpu_model()}, {torch.get_num_threads()} torch threads"
    return (
        f"{accelerator}; {os.cpu_count()} logical CPUs; {platform.system()} {platform.release()} "
        f"{platform.machine()}; Python {platform.python_version()}; torch {torch.__version__}"
    )


def cpu_model() -> str:
    """The CPU model name (Linux /proc/cpuinfo), else whatever platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def grid_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and labels of the sample grid: the same 32 latents as "normal" then "pneumonia".

    The top four rows are what ``generate(32, seed=seed, condition="normal")`` returns and the
    bottom four ``condition="pneumonia"``, so each image sits four rows above its counterpart.
    """
    half = GRID_SIDE * GRID_SIDE // 2
    latents = sample_latents(half, seed)
    normal, pneumonia = sample_labels(half, seed, "normal"), sample_labels(half, seed, "pneumonia")
    labels = torch.cat([normal, pneumonia])
    return torch.cat([latents, latents]), labels


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


def sample(
    generator: ConditionalGenerator, latents: torch.Tensor, labels: torch.Tensor
) -> npt.NDArray[np.uint8]:
    """Images of ``generator`` in eval mode for ``latents``, as the package would return them."""
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    with torch.inference_mode():
        images = to_uint8(generator(latents.to(device), labels.to(device)))
    generator.train(was_training)
    return images


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
    """What a checkpoint carries besides the networks and optimisers."""

    epoch: int = 0
    step: int = 0
    wall_time_seconds: float = 0.0
    rows: list[dict[str, float]] = dataclasses.field(default_factory=list)
    step_losses: list[tuple[float, float]] = dataclasses.field(default_factory=list)


def train(
    config: Config,
    images: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.int64],
    out_dir: Path,
    *,
    smoke: bool,
    device: torch.device,
) -> tuple[ConditionalGenerator, RunState]:
    """Train (or continue training) into ``out_dir``; return the generator and the run's record."""
    torch.set_num_threads(config.torch_threads)
    seed_everything(config.seed)
    generator = ConditionalGenerator(latent_size=config.latent_size, width=config.generator_width)
    discriminator = Discriminator(config.discriminator_width, config.leaky_relu_slope)
    generator.apply(lambda module: init_weights(module, config.init_std))
    discriminator.apply(lambda module: init_weights(module, config.init_std))
    generator.to(device)
    discriminator.to(device)
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.learning_rate, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.learning_rate, betas=betas)
    state = RunState()

    checkpoint_path = out_dir / "checkpoint.pt"
    if checkpoint_path.exists():
        checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=True)
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
        generator.load_state_dict(checkpoint["generator"])
        discriminator.load_state_dict(checkpoint["discriminator"])
        opt_g.load_state_dict(checkpoint["opt_g"])
        opt_d.load_state_dict(checkpoint["opt_d"])
        set_rng_states(checkpoint["rng"])
        state = RunState(
            epoch=int(checkpoint["epoch"]),
            step=int(checkpoint["step"]),
            wall_time_seconds=float(checkpoint["wall_time_seconds"]),
            rows=[dict(row) for row in checkpoint["rows"]],
            step_losses=[(float(d), float(g)) for d, g in checkpoint["step_losses"]],
        )
        print(f"resuming from {checkpoint_path} after epoch {state.epoch}", flush=True)

    data = to_training_tensor(images)
    targets = torch.from_numpy(labels)
    fixed_latents, fixed_labels = grid_inputs(config.sample_seed)
    loss_fn = nn.BCEWithLogitsLoss()
    batch = config.batch_size
    ones = torch.ones(batch, device=device)
    zeros = torch.zeros(batch, device=device)
    steps_per_epoch = len(data) // batch  # drop the last partial batch: BatchNorm wants full ones

    for epoch in range(state.epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        order = torch.from_numpy(epoch_order(config.seed, epoch, len(data)))
        generator.train()
        discriminator.train()
        sums = dict.fromkeys(("loss_d", "loss_g", "d_real", "d_fake"), 0.0)
        for index in range(steps_per_epoch):
            chosen = order[index * batch : (index + 1) * batch]
            real = data[chosen].to(device)
            # fakes take the real batch's labels: generated classes follow the data prior
            label = targets[chosen].to(device)
            fake = generator(torch.randn(batch, config.latent_size).to(device), label)

            opt_d.zero_grad(set_to_none=True)
            logits_real = discriminator(real, label)
            logits_fake = discriminator(fake.detach(), label)
            loss_d = loss_fn(logits_real, ones) + loss_fn(logits_fake, zeros)
            loss_d.backward()
            opt_d.step()

            opt_g.zero_grad(set_to_none=True)
            loss_g = loss_fn(discriminator(fake, label), ones)
            loss_g.backward()
            opt_g.step()

            state.step += 1
            state.step_losses.append((loss_d.item(), loss_g.item()))
            sums["loss_d"] += loss_d.item()
            sums["loss_g"] += loss_g.item()
            sums["d_real"] += torch.sigmoid(logits_real).mean().item()
            sums["d_fake"] += torch.sigmoid(logits_fake).mean().item()

        epoch_seconds = time.perf_counter() - started
        state.wall_time_seconds += epoch_seconds
        state.epoch = epoch
        row: dict[str, float] = {"epoch": epoch, "steps": state.step}
        row.update({key: value / steps_per_epoch for key, value in sums.items()})
        row["epoch_seconds"] = epoch_seconds
        row["wall_time_seconds"] = state.wall_time_seconds
        state.rows.append(row)

        grid_image(sample(generator, fixed_latents, fixed_labels)).save(
            out_dir / f"samples_epoch_{epoch:03d}.png"
        )
        save_atomically(
            {
                "config": dataclasses.asdict(config),
                "smoke": smoke,
                "epoch": state.epoch,
                "step": state.step,
                "wall_time_seconds": state.wall_time_seconds,
                "rows": state.rows,
                "step_losses": state.step_losses,
                "generator": generator.state_dict(),
                "discriminator": discriminator.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "rng": rng_states(),
            },
            checkpoint_path,
        )
        write_log(out_dir / "training_log.csv", state.rows)
        print(
            f"epoch {epoch}/{config.epochs} steps {state.step} loss_d {row['loss_d']:.4f} "
            f"loss_g {row['loss_g']:.4f} D(x) {row['d_real']:.3f} D(G(z)) {row['d_fake']:.3f} "
            f"{epoch_seconds:.1f}s",
            flush=True,
        )
    return generator, state


def recalibrate_batchnorm(generator: ConditionalGenerator, config: Config, batches: int) -> None:
    """Replace the BatchNorm running statistics by exact averages over fresh generated batches.

    During training the running statistics trail a moving generator (momentum 0.1); the package
    runs in eval mode, so it gets statistics of the final weights, averaged over ``batches``
    batches of the training batch size (the same statistics train mode would see).
    """
    norms = [module for module in generator.modules() if isinstance(module, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    rng = torch.Generator(device="cpu")
    rng.manual_seed(config.seed + 1)
    device = next(generator.parameters()).device
    generator.train()
    with torch.inference_mode():
        for _ in range(batches):
            latents = torch.randn(config.batch_size, config.latent_size, generator=rng)
            labels = (torch.rand(config.batch_size, generator=rng) < PNEUMONIA_PRIOR).long()
            generator(latents.to(device), labels.to(device))
    for norm in norms:
        norm.momentum = 0.1
    generator.eval()


def plot_losses(path: Path, state: RunState, steps_per_epoch: int) -> None:
    """Loss curve: per-step and per-epoch losses, and the discriminator's mean outputs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(state.step_losses) + 1)
    losses = np.asarray(state.step_losses, dtype=np.float64).reshape(-1, 2)
    epoch_steps = [row["epoch"] * steps_per_epoch for row in state.rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    top.plot(steps, losses[:, 0], color="tab:blue", alpha=0.25, linewidth=0.7)
    top.plot(steps, losses[:, 1], color="tab:orange", alpha=0.25, linewidth=0.7)
    top.plot(epoch_steps, [r["loss_d"] for r in state.rows], "o-", color="tab:blue", label="D loss")
    top.plot(
        epoch_steps, [r["loss_g"] for r in state.rows], "o-", color="tab:orange", label="G loss"
    )
    top.set_ylabel("BCE loss (steps faint, epoch means bold)")
    top.legend()
    top.set_title(f"{MODEL_ID}: conditional DCGAN on Kermany chest X-ray train split")
    bottom.plot(epoch_steps, [r["d_real"] for r in state.rows], "o-", label="mean D(x), real")
    bottom.plot(epoch_steps, [r["d_fake"] for r in state.rows], "o-", label="mean D(G(z)), fake")
    bottom.set_ylim(0.0, 1.0)
    bottom.set_xlabel("generator step")
    bottom.set_ylabel("discriminator output")
    bottom.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def export(
    generator: ConditionalGenerator,
    state: RunState,
    config: Config,
    *,
    image_count: int,
    class_counts: tuple[int, int],
    data_file: Path,
    device: torch.device,
    export_dir: Path,
    smoke: bool,
    trained_at: dt.datetime,
) -> dict[str, Any]:
    """Write the package weights, card numbers, log, summary, loss curve and sample grid."""
    package_dir = export_dir / "package"
    package_dir.mkdir(parents=True, exist_ok=True)
    if package_dir.resolve() != PACKAGE_DIR:
        for name in PACKAGE_SOURCES:
            shutil.copyfile(PACKAGE_DIR / name, package_dir / name)
    batches = SMOKE_RECALIBRATION_BATCHES if smoke else config.bn_recalibration_batches
    recalibrate_batchnorm(generator, config, batches)
    weights_path = package_dir / "weights.safetensors"
    # float16 storage halves the file (3.2 MB instead of 6.4 MB); the package computes in float32.
    tensors = {
        name: (t.half() if t.is_floating_point() else t).detach().to("cpu").contiguous()
        for name, t in generator.state_dict().items()
    }
    generator.load_state_dict(tensors)  # the grid below then shows exactly the shipped weights
    save_file(
        tensors,
        str(weights_path),
        # One metadata key: safetensors writes several in hash order, which would make the bytes
        # (and the sha256 the hub pins) differ between identical runs.
        metadata={
            WEIGHTS_METADATA_KEY: json.dumps(
                {
                    "model_id": MODEL_ID,
                    "latent_size": config.latent_size,
                    "generator_width": config.generator_width,
                    "epochs": state.epoch,
                },
                sort_keys=True,
            )
        },
    )
    weights_path.chmod(0o644)  # safetensors creates it owner-only; it is meant to be shared
    grid_image(sample(generator, *grid_inputs(config.sample_seed))).save(export_dir / "samples.png")
    steps_per_epoch = state.step // max(state.epoch, 1)
    plot_losses(export_dir / "loss_curve.png", state, steps_per_epoch)
    write_log(export_dir / "training_log.csv", state.rows)

    hardware = hardware_description(device)
    final = state.rows[-1] if state.rows else {}
    summary: dict[str, Any] = {
        "model_id": MODEL_ID,
        "recipe": RECIPE,
        "command": COMMAND + (" --smoke" if smoke else ""),
        "smoke": smoke,
        "seed": config.seed,
        "epochs": state.epoch,
        "steps": state.step,
        "image_count": image_count,
        "wall_time_seconds": round(state.wall_time_seconds, 1),
        "hardware": hardware,
        "trained_at": trained_at.isoformat(timespec="seconds"),
        "final_epoch": {
            key: round(final[key], 6) if key in final else None
            for key in ("loss_d", "loss_g", "d_real", "d_fake")
        },
        "generator_parameters": sum(p.numel() for p in generator.parameters()),
        "weights_file": "package/weights.safetensors",
        "weights_dtype": "float16",
        "weights_bytes": weights_path.stat().st_size,
        "weights_sha256": sha256_of(weights_path),
        "class_counts": {"normal": class_counts[0], "pneumonia": class_counts[1]},
        "data": {
            "file": DATA_FILE.as_posix(),
            "sha256": sha256_of(data_file),
            "split": "train",
        },
        "config": dataclasses.asdict(config),
    }
    (export_dir / "training_summary.json").write_text(
        json.dumps(summary, indent=2) + "\n", encoding="utf-8"
    )

    card = json.loads((PACKAGE_DIR / "card.json").read_text(encoding="utf-8"))
    card["provenance"]["training"] = {
        "hardware": hardware,
        "wall_time_seconds": summary["wall_time_seconds"],
        "epochs": state.epoch,
        "steps": state.step,
        "seed": config.seed,
        "recipe": RECIPE,
    }
    card["provenance"]["training_data"][0]["image_count"] = image_count
    card["description"]["provided_after_epoch"] = state.epoch
    card["description"]["trained_date"] = trained_at.strftime("%B %Y")
    (package_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return summary


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=RECIPE_DIR / "config.json")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="checkpoint and per-epoch grids (default: var/zoo/chestxray_cdcgan_64, or a new "
        "temporary directory with --smoke)",
    )
    parser.add_argument("--smoke", action="store_true", help="a few steps on a small subset")
    parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    parser.add_argument("--device", default="cpu", help="torch device to train on (default cpu)")
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
    if args.smoke:
        config = dataclasses.replace(config, epochs=SMOKE_EPOCHS)
    if args.epochs is not None:
        config = dataclasses.replace(config, epochs=args.epochs)
    if args.out is not None:
        out_dir = args.out
    elif args.smoke:
        out_dir = Path(tempfile.mkdtemp(prefix="chestxray-cdcgan-64-smoke-"))
    else:
        out_dir = REPO_ROOT / "var" / "zoo" / "chestxray_cdcgan_64"
    out_dir.mkdir(parents=True, exist_ok=True)
    export_dir = args.export_dir or (out_dir if args.smoke else RECIPE_DIR)

    data_file = data_path()
    if not data_file.exists():
        print(f"training data not found at {data_file}; set MEDIGAN_SHARED_DIR", file=sys.stderr)
        return 2
    images, labels = load_train_images(data_file)
    if args.smoke:
        rng = np.random.default_rng(config.seed)
        subset = np.sort(rng.choice(len(images), SMOKE_IMAGES, replace=False))
        images, labels = images[subset], labels[subset]
    print(f"{len(images)} training images, out {out_dir}, export {export_dir}", flush=True)

    device = torch.device(args.device)
    generator, state = train(config, images, labels, out_dir, smoke=args.smoke, device=device)
    summary = export(
        generator,
        state,
        config,
        image_count=len(images),
        class_counts=(int((labels == 0).sum()), int((labels == 1).sum())),
        data_file=data_file,
        device=device,
        export_dir=export_dir,
        smoke=args.smoke,
        # when the last epoch was saved, so that re-exporting a finished run keeps its date
        trained_at=dt.datetime.fromtimestamp((out_dir / "checkpoint.pt").stat().st_mtime, dt.UTC),
    )
    print(json.dumps({k: summary[k] for k in ("epochs", "steps", "wall_time_seconds")}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
