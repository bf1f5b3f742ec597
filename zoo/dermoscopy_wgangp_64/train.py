"""Training recipe of zoo/dermoscopy-wgangp-64: a conditional WGAN-GP on the ISIC 2017 train split.

One command, from the repository root::

    python -m zoo.dermoscopy_wgangp_64.train [--config config.json] [--out DIR] [--smoke]

The generator is conditional on the melanoma label (an embedding concatenated to the latent); the
critic is a projection critic without normalisation layers, trained with the gradient penalty
(lambda 10), ``n_critic`` critic steps per generator step and Adam (0.0, 0.9). The recipe is seeded
(torch, numpy, random; the data order of each epoch is derived from the seed), writes a checkpoint
with optimiser and RNG states after every epoch to ``--out`` (rerunning continues from it, and
raising ``epochs`` extends a finished run), and logs per-epoch losses to ``training_log.csv``. When
training is done it exports the commit-ready artifacts: the package's ``weights.safetensors``
(generator only, BatchNorm statistics recalibrated) and ``card.json`` numbers, and
``training_log.csv``, ``training_summary.json``, ``loss_curve.png`` and ``samples.png`` beside this
file. ``--smoke`` trains a few steps on a small subset into a temporary directory and exports a
complete package there instead, leaving the committed files alone.
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

from zoo.dermoscopy_wgangp_64.package.network import (
    CONDITIONS,
    LATENT_SIZE,
    WEIGHTS_METADATA_KEY,
    Generator,
    sample_latents,
    to_uint8,
)

RECIPE_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = RECIPE_DIR / "package"
REPO_ROOT = RECIPE_DIR.parents[1]
RECIPE = "zoo/dermoscopy_wgangp_64/train.py"
COMMAND = "python -m zoo.dermoscopy_wgangp_64.train"
MODEL_ID = "zoo/dermoscopy-wgangp-64"
DATA_FILE = Path("data/dermoscopy-isic2017/dermoscopy_isic2017_64.npz")
SMOKE_IMAGES = 320  # five batches of 64: at least one generator step per epoch up to n_critic 5
SMOKE_EPOCHS = 2
SMOKE_RECALIBRATION_BATCHES = 4
GRID_SIDE = 8
GRID_PAD = 2
PACKAGE_SOURCES = ("__init__.py", "network.py")
LOG_FIELDS = (
    "epoch",
    "steps",
    "critic_steps",
    "loss_d",
    "loss_g",
    "wasserstein",
    "gradient_penalty",
    "epoch_seconds",
    "wall_time_seconds",
)
# Hyper-parameters that may change between a checkpoint and a rerun without breaking the run.
RESUMABLE_CHANGES = frozenset({"epochs", "torch_threads", "bn_recalibration_batches"})


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyper-parameters of the recipe, read from ``config.json``."""

    seed: int = 20262
    latent_size: int = LATENT_SIZE
    generator_width: int = 16
    critic_width: int = 16
    batch_size: int = 64
    learning_rate_g: float = 1e-4
    learning_rate_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.9
    n_critic: int = 1
    gradient_penalty_weight: float = 10.0
    drift_weight: float = 1e-3
    epochs: int = 30
    leaky_relu_slope: float = 0.2
    bn_recalibration_batches: int = 50
    sample_seed: int = 0
    torch_threads: int = 1

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


class Critic(nn.Module):
    """Projection critic: RGB (N, 3, 64, 64) and label (N,) to one unbounded score per image.

    Four stride-2 Conv-LeakyReLU blocks (64 -> 32 -> 16 -> 8 -> 4 pixels), no normalisation (the
    gradient penalty is per sample, which BatchNorm would break). The score is a linear function
    of the 4x4 features plus their inner product with an embedding of the label (Miyato and
    Koyama's projection discriminator).
    """

    def __init__(self, width: int, slope: float) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1),
            nn.LeakyReLU(slope, inplace=True),
            nn.Conv2d(w, w * 2, 4, 2, 1),
            nn.LeakyReLU(slope, inplace=True),
            nn.Conv2d(w * 2, w * 4, 4, 2, 1),
            nn.LeakyReLU(slope, inplace=True),
            nn.Conv2d(w * 4, w * 8, 4, 2, 1),
            nn.LeakyReLU(slope, inplace=True),
        )
        features = w * 8 * 4 * 4
        self.linear = nn.Linear(features, 1)
        self.projection = nn.Embedding(len(CONDITIONS), features)
        nn.init.normal_(self.projection.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Return one score per image, shape (N,)."""
        h = self.net(x).flatten(1)
        out: torch.Tensor = self.linear(h).squeeze(1) + (self.projection(labels) * h).sum(dim=1)
        return out


def gradient_penalty(
    critic: Critic, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Gulrajani et al.'s penalty: (||grad D(x_hat)|| - 1)^2 on real/fake interpolates."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mixed = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    scores = critic(mixed, labels)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    penalty: torch.Tensor = ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()
    return penalty


def shared_dir() -> Path:
    """The shared folder: ``$MEDIGAN_SHARED_DIR`` if set, else ``<repo root>/../shared``."""
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def data_path() -> Path:
    """Where the 64 px ISIC 2017 archive is expected."""
    return shared_dir() / DATA_FILE


def load_train_images(path: Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The train split as uint8 (N, 64, 64, 3) and labels (N,); val and test are never read."""
    with np.load(path, allow_pickle=False) as archive:
        train = archive["splits"] == "train"
        images: npt.NDArray[np.uint8] = archive["images"][train]
        labels: npt.NDArray[np.int64] = archive["labels"][train].astype(np.int64)
    if not set(np.unique(labels).tolist()) <= set(range(len(CONDITIONS))):
        raise SystemExit(f"{path}: unexpected train labels {np.unique(labels)}")
    return images, labels


def to_training_tensor(images: npt.NDArray[np.uint8]) -> torch.Tensor:
    """uint8 (N, H, W, 3) to float32 (N, 3, H, W) scaled to [-1, 1], the range of the Tanh."""
    return torch.from_numpy(images).float().div(127.5).sub(1.0).permute(0, 3, 1, 2).contiguous()


def seed_everything(seed: int) -> None:
    """Seed python's random, numpy's global RNG and torch's global RNG."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def init_generator_weights(module: nn.Module) -> None:
    """DCGAN initialisation: ConvTranspose weights N(0, 0.02), BatchNorm scale N(1, 0.02)."""
    if isinstance(module, nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
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


def grid_image(
    images: npt.NDArray[np.uint8], side: int = GRID_SIDE, pad: int = GRID_PAD
) -> Image.Image:
    """Tile ``side * side`` uint8 (N, H, W, 3) images row by row with ``pad`` black pixels."""
    height, width = images.shape[1:3]
    canvas = np.zeros((side * (height + pad) + pad, side * (width + pad) + pad, 3), dtype=np.uint8)
    for index, image in enumerate(images[: side * side]):
        row, col = divmod(index, side)
        top, left = pad + row * (height + pad), pad + col * (width + pad)
        canvas[top : top + height, left : left + width] = image
    return Image.fromarray(canvas, mode="RGB")


def grid_samples(generator: Generator, seed: int) -> npt.NDArray[np.uint8]:
    """The grid's 64 images: four rows not_melanoma, then four rows melanoma, same latents."""
    half = GRID_SIDE * GRID_SIDE // 2
    latents = sample_latents(half, seed)
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    parts = []
    with torch.inference_mode():
        for label in range(len(CONDITIONS)):
            labels = torch.full((half,), label, dtype=torch.long, device=device)
            parts.append(to_uint8(generator(latents.to(device), labels)))
    generator.train(was_training)
    return np.concatenate(parts)


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
    critic_steps: int = 0
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
) -> tuple[Generator, RunState]:
    """Train (or continue training) into ``out_dir``; return the generator and the run's record."""
    torch.set_num_threads(config.torch_threads)
    seed_everything(config.seed)
    generator = Generator(latent_size=config.latent_size, width=config.generator_width)
    critic = Critic(config.critic_width, config.leaky_relu_slope)
    generator.apply(init_generator_weights)
    generator.to(device)
    critic.to(device)
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.learning_rate_g, betas=betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=config.learning_rate_d, betas=betas)
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
        critic.load_state_dict(checkpoint["critic"])
        opt_g.load_state_dict(checkpoint["opt_g"])
        opt_d.load_state_dict(checkpoint["opt_d"])
        set_rng_states(checkpoint["rng"])
        state = RunState(
            epoch=int(checkpoint["epoch"]),
            step=int(checkpoint["step"]),
            critic_steps=int(checkpoint["critic_steps"]),
            wall_time_seconds=float(checkpoint["wall_time_seconds"]),
            rows=[dict(row) for row in checkpoint["rows"]],
            step_losses=[(float(d), float(g)) for d, g in checkpoint["step_losses"]],
        )
        print(f"resuming from {checkpoint_path} after epoch {state.epoch}", flush=True)

    data = to_training_tensor(images)
    targets = torch.from_numpy(labels)
    batch = config.batch_size
    steps_per_epoch = len(data) // batch  # full batches only: the generator has BatchNorm

    for epoch in range(state.epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        order = torch.from_numpy(epoch_order(config.seed, epoch, len(data)))
        generator.train()
        critic.train()
        sums = dict.fromkeys(("loss_d", "wasserstein", "gradient_penalty"), 0.0)
        g_losses: list[float] = []
        for index in range(steps_per_epoch):
            chosen = order[index * batch : (index + 1) * batch]
            real = data[chosen].to(device)
            cond = targets[chosen].to(device)
            with torch.no_grad():
                fake = generator(torch.randn(batch, config.latent_size).to(device), cond)

            opt_d.zero_grad(set_to_none=True)
            score_real = critic(real, cond)
            score_fake = critic(fake, cond)
            penalty = gradient_penalty(critic, real, fake, cond)
            wasserstein = score_real.mean() - score_fake.mean()
            loss_d = (
                -wasserstein
                + config.gradient_penalty_weight * penalty
                + config.drift_weight * (score_real**2).mean()
            )
            loss_d.backward()
            opt_d.step()
            state.critic_steps += 1
            sums["loss_d"] += loss_d.item()
            sums["wasserstein"] += wasserstein.item()
            sums["gradient_penalty"] += penalty.item()

            if state.critic_steps % config.n_critic == 0:
                # generator labels follow the data's class frequencies: those of this batch
                opt_g.zero_grad(set_to_none=True)
                fake = generator(torch.randn(batch, config.latent_size).to(device), cond)
                loss_g = -critic(fake, cond).mean()
                loss_g.backward()
                opt_g.step()
                state.step += 1
                g_losses.append(loss_g.item())
                state.step_losses.append((loss_d.item(), loss_g.item()))

        epoch_seconds = time.perf_counter() - started
        state.wall_time_seconds += epoch_seconds
        state.epoch = epoch
        row: dict[str, float] = {
            "epoch": epoch,
            "steps": state.step,
            "critic_steps": state.critic_steps,
            "loss_d": sums["loss_d"] / steps_per_epoch,
            "loss_g": float(np.mean(g_losses)) if g_losses else math.nan,
            "wasserstein": sums["wasserstein"] / steps_per_epoch,
            "gradient_penalty": sums["gradient_penalty"] / steps_per_epoch,
            "epoch_seconds": epoch_seconds,
            "wall_time_seconds": state.wall_time_seconds,
        }
        state.rows.append(row)
        if not smoke and (epoch % 10 == 0 or epoch == config.epochs):
            grid_image(grid_samples(generator, config.sample_seed)).save(
                out_dir / f"samples_epoch_{epoch:03d}.png"
            )
        save_atomically(
            {
                "config": dataclasses.asdict(config),
                "smoke": smoke,
                "epoch": state.epoch,
                "step": state.step,
                "critic_steps": state.critic_steps,
                "wall_time_seconds": state.wall_time_seconds,
                "rows": state.rows,
                "step_losses": state.step_losses,
                "generator": generator.state_dict(),
                "critic": critic.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "rng": rng_states(),
            },
            checkpoint_path,
        )
        write_log(out_dir / "training_log.csv", state.rows)
        print(
            f"epoch {epoch}/{config.epochs} steps {state.step} loss_d {row['loss_d']:.4f} "
            f"loss_g {row['loss_g']:.4f} W {row['wasserstein']:.4f} "
            f"GP {row['gradient_penalty']:.4f} {epoch_seconds:.1f}s",
            flush=True,
        )
    return generator, state


def recalibrate_batchnorm(
    generator: Generator, config: Config, batches: int, melanoma_fraction: float
) -> None:
    """Replace the BatchNorm running statistics by exact averages over fresh generated batches.

    The running statistics trail a moving generator during training; the package runs in eval
    mode, so it gets statistics of the final weights, averaged over ``batches`` batches of the
    training batch size whose labels are drawn with the training set's melanoma fraction (the
    batches the generator saw in training).
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
            z = torch.randn(config.batch_size, config.latent_size, generator=rng)
            labels = (torch.rand(config.batch_size, generator=rng) < melanoma_fraction).long()
            generator(z.to(device), labels.to(device))
    for norm in norms:
        norm.momentum = 0.1
    generator.eval()


def plot_losses(path: Path, state: RunState) -> None:
    """Loss curve: per-step critic and generator losses, and the Wasserstein estimate per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(state.step_losses) + 1)
    losses = np.asarray(state.step_losses, dtype=np.float64).reshape(-1, 2)
    epoch_steps = [row["steps"] for row in state.rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    top.plot(steps, losses[:, 0], color="tab:blue", alpha=0.25, linewidth=0.7)
    top.plot(steps, losses[:, 1], color="tab:orange", alpha=0.25, linewidth=0.7)
    top.plot(epoch_steps, [r["loss_d"] for r in state.rows], "-", color="tab:blue", label="critic")
    top.plot(
        epoch_steps, [r["loss_g"] for r in state.rows], "-", color="tab:orange", label="generator"
    )
    top.set_ylabel("WGAN-GP loss (steps faint, epochs bold)")
    top.legend()
    top.set_title(f"{MODEL_ID}: conditional WGAN-GP on ISIC 2017 train split")
    bottom.plot(
        epoch_steps, [r["wasserstein"] for r in state.rows], "-", label="E D(x) - E D(G(z))"
    )
    bottom.plot(
        epoch_steps, [r["gradient_penalty"] for r in state.rows], "-", label="gradient penalty"
    )
    bottom.set_xlabel("generator step")
    bottom.set_ylabel("critic estimate (epoch means)")
    bottom.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def export(
    generator: Generator,
    state: RunState,
    config: Config,
    *,
    labels: npt.NDArray[np.int64],
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
    recalibrate_batchnorm(generator, config, batches, float(labels.mean()))
    weights_path = package_dir / "weights.safetensors"
    tensors = {
        name: t.detach().to("cpu").contiguous() for name, t in generator.state_dict().items()
    }
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
    grid_image(grid_samples(generator, config.sample_seed)).save(export_dir / "samples.png")
    plot_losses(export_dir / "loss_curve.png", state)
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
        "critic_steps": state.critic_steps,
        "image_count": int(labels.shape[0]),
        "class_counts": {name: int((labels == i).sum()) for i, name in enumerate(CONDITIONS)},
        "wall_time_seconds": round(state.wall_time_seconds, 1),
        "hardware": hardware,
        "trained_at": trained_at.isoformat(timespec="seconds"),
        "final_epoch": {
            key: round(final[key], 6) if key in final else None
            for key in ("loss_d", "loss_g", "wasserstein", "gradient_penalty")
        },
        "generator_parameters": sum(p.numel() for p in generator.parameters()),
        "weights_file": "package/weights.safetensors",
        "weights_dtype": "float32",
        "weights_bytes": weights_path.stat().st_size,
        "weights_sha256": sha256_of(weights_path),
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
    card["provenance"]["training_data"][0]["image_count"] = summary["image_count"]
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
        help="checkpoint and per-epoch grids (default: var/zoo/dermoscopy_wgangp_64, or a new "
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
        out_dir = Path(tempfile.mkdtemp(prefix="dermoscopy-wgangp-64-smoke-"))
    else:
        out_dir = REPO_ROOT / "var" / "zoo" / "dermoscopy_wgangp_64"
    out_dir.mkdir(parents=True, exist_ok=True)
    export_dir = args.export_dir or (out_dir if args.smoke else RECIPE_DIR)

    data_file = data_path()
    if not data_file.exists():
        print(f"training data not found at {data_file}; set MEDIGAN_SHARED_DIR", file=sys.stderr)
        return 2
    images, labels = load_train_images(data_file)
    if args.smoke:
        rng = np.random.default_rng(config.seed)
        chosen = np.sort(rng.choice(len(images), SMOKE_IMAGES, replace=False))
        images, labels = images[chosen], labels[chosen]
    print(f"{len(images)} training images, out {out_dir}, export {export_dir}", flush=True)

    device = torch.device(args.device)
    generator, state = train(config, images, labels, out_dir, smoke=args.smoke, device=device)
    summary = export(
        generator,
        state,
        config,
        labels=labels,
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
