"""Training recipe of zoo/busi-vae-64: a convolutional VAE on BUSI breast ultrasound, 64 px.

One command, from the repository root::

    python -m zoo.busi_vae_64.train [--config config.json] [--out DIR] [--smoke]

BUSI has no official split: the recipe trains on the 624 images that
``evaluation.references.busi_heldout_mask`` does not hold out (index % 5 != 0); the 156 held-out
images are the hub's reference set and are never read for training. Because the set is small,
every batch is augmented (random horizontal flip, random shift of up to ``max_shift`` pixels with
edge replication). The loss is the per-image negative ELBO with a KL warm-up: summed pixel
binary cross-entropy (pixels in [0, 1] as Bernoulli means) plus ``beta`` times the summed KL
divergence, ``beta`` rising linearly from 0 to ``beta_max`` over the first ``warmup_epochs``.

It is seeded (torch, numpy, random; the data order and the augmentation of each epoch are derived
from the seed), writes a checkpoint with optimiser and RNG states after every epoch to ``--out``
(rerunning continues from it, and raising ``epochs`` extends a finished run) and logs per-epoch
losses to ``training_log.csv``. When training is done it exports the package's
``weights.safetensors`` (decoder only, float16) and ``card.json`` numbers, and
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
from torch.nn import functional

from zoo.busi_vae_64.package.network import (
    LATENT_SIZE,
    OBSERVATION_STD_KEY,
    WEIGHTS_METADATA_KEY,
    Decoder,
    sample_latents,
    sample_noise,
    to_uint8,
)

RECIPE_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = RECIPE_DIR / "package"
REPO_ROOT = RECIPE_DIR.parents[1]
RECIPE = "zoo/busi_vae_64/train.py"
COMMAND = "python -m zoo.busi_vae_64.train"
MODEL_ID = "zoo/busi-vae-64"
DATA_FILE = Path("data/breast-ultrasound-busi/breast_ultrasound_busi_64.npz")
# One image in five (index % 5 == 0) is held out, as evaluation.references.busi_heldout_mask.
HELDOUT_MODULUS = 5
SMOKE_IMAGES = 96
SMOKE_EPOCHS = 2
GRID_SIDE = 8
GRID_PAD = 2
PACKAGE_SOURCES = ("__init__.py", "network.py")
LOG_FIELDS = (
    "epoch",
    "steps",
    "beta",
    "loss",
    "reconstruction",
    "kl",
    "epoch_seconds",
    "wall_time_seconds",
)
# Hyper-parameters that may change between a checkpoint and a rerun without breaking the run.
RESUMABLE_CHANGES = frozenset({"epochs", "torch_threads"})


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyper-parameters of the recipe, read from ``config.json``."""

    seed: int = 20262
    latent_size: int = LATENT_SIZE
    width: int = 32
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 30
    beta_max: float = 1.0
    warmup_epochs: int = 10
    max_shift: int = 4
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

    def beta(self, epoch: int) -> float:
        """KL weight of epoch ``epoch`` (1-based): linear warm-up from beta_max / warmup_epochs."""
        if self.warmup_epochs <= 0:
            return self.beta_max
        return self.beta_max * min(1.0, epoch / self.warmup_epochs)


class Encoder(nn.Module):
    """An image (N, 1, 64, 64) in [0, 1] to the posterior's mean and log-variance (N, latent).

    Four stride-2 4x4 Conv-BatchNorm-LeakyReLU blocks (64 -> 32 -> 16 -> 8 -> 4 pixels) and two
    linear heads. Used in training only; the package ships the decoder.
    """

    def __init__(self, latent_size: int, width: int) -> None:
        super().__init__()
        w = width
        layers: list[nn.Module] = []
        for cin, cout in ((1, w), (w, w * 2), (w * 2, w * 4), (w * 4, w * 8)):
            layers += [
                nn.Conv2d(cin, cout, 4, 2, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.mean = nn.Linear(w * 8 * 4 * 4, latent_size)
        self.log_variance = nn.Linear(w * 8 * 4 * 4, latent_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (mean, log-variance) of q(z | x)."""
        hidden = self.net(x)
        return self.mean(hidden), self.log_variance(hidden).clamp(-12.0, 8.0)


def shared_dir() -> Path:
    """The shared folder: ``$MEDIGAN_SHARED_DIR`` if set, else ``<repo root>/../shared``."""
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def data_path() -> Path:
    """Where the 64 px BUSI archive is expected."""
    return shared_dir() / DATA_FILE


def load_train_images(path: Path) -> npt.NDArray[np.uint8]:
    """The 624 training images (index % 5 != 0) as uint8 (N, 64, 64); the rest stay held out."""
    with np.load(path, allow_pickle=False) as archive:
        all_images = np.asarray(archive["images"])
    keep = np.arange(len(all_images)) % HELDOUT_MODULUS != 0
    images: npt.NDArray[np.uint8] = np.ascontiguousarray(all_images[keep])
    return images


def seed_everything(seed: int) -> None:
    """Seed python's random, numpy's global RNG and torch's global RNG."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def augment(batch: torch.Tensor, rng: np.random.Generator, max_shift: int) -> torch.Tensor:
    """Random horizontal flip and random integer shift (edge-replicated) of each image."""
    out = torch.empty_like(batch)
    size = batch.shape[-1]
    padded = functional.pad(batch, (max_shift,) * 4, mode="replicate")
    for index in range(batch.shape[0]):
        dy, dx = (int(v) for v in rng.integers(0, 2 * max_shift + 1, size=2))
        image = padded[index, :, dy : dy + size, dx : dx + size]
        out[index] = image.flip(-1) if rng.random() < 0.5 else image
    return out


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


def cpu_model() -> str:
    """The CPU model name (Linux /proc/cpuinfo), else whatever platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


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
    """Tile ``side * side`` uint8 (N, H, W) images row by row with ``pad`` black pixels around."""
    height, width = images.shape[1:]
    canvas = np.zeros((side * (height + pad) + pad, side * (width + pad) + pad), dtype=np.uint8)
    for index, image in enumerate(images[: side * side]):
        row, col = divmod(index, side)
        top, left = pad + row * (height + pad), pad + col * (width + pad)
        canvas[top : top + height, left : left + width] = image
    return Image.fromarray(canvas, mode="L")


def sample(
    decoder: Decoder, latents: torch.Tensor, noise: torch.Tensor | None = None
) -> npt.NDArray[np.uint8]:
    """Images of ``decoder`` in eval mode for ``latents``, as the package would return them."""
    was_training = decoder.training
    decoder.eval()
    device = next(decoder.parameters()).device
    with torch.inference_mode():
        images = to_uint8(decoder(latents.to(device)), noise)
    decoder.train(was_training)
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
    """What a checkpoint carries besides the networks and the optimiser."""

    epoch: int = 0
    step: int = 0
    wall_time_seconds: float = 0.0
    rows: list[dict[str, float]] = dataclasses.field(default_factory=list)


def train(
    config: Config,
    images: npt.NDArray[np.uint8],
    out_dir: Path,
    *,
    smoke: bool,
    device: torch.device,
) -> tuple[Encoder, Decoder, RunState]:
    """Train (or continue training) into ``out_dir``; return both networks and the run's record."""
    torch.set_num_threads(config.torch_threads)
    seed_everything(config.seed)
    encoder = Encoder(config.latent_size, config.width).to(device)
    decoder = Decoder(config.latent_size, config.width).to(device)
    parameters = [*encoder.parameters(), *decoder.parameters()]
    optimiser = torch.optim.Adam(
        parameters, lr=config.learning_rate, weight_decay=config.weight_decay
    )
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
        encoder.load_state_dict(checkpoint["encoder"])
        decoder.load_state_dict(checkpoint["decoder"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        set_rng_states(checkpoint["rng"])
        state = RunState(
            epoch=int(checkpoint["epoch"]),
            step=int(checkpoint["step"]),
            wall_time_seconds=float(checkpoint["wall_time_seconds"]),
            rows=[dict(row) for row in checkpoint["rows"]],
        )
        print(f"resuming from {checkpoint_path} after epoch {state.epoch}", flush=True)

    data = torch.from_numpy(images).float().div(255.0).unsqueeze(1)
    fixed_latents = sample_latents(GRID_SIDE * GRID_SIDE, config.sample_seed)
    batch = config.batch_size
    steps_per_epoch = len(data) // batch  # drop the last partial batch: BatchNorm wants full ones

    for epoch in range(state.epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        rng = np.random.default_rng([config.seed, epoch])
        order = torch.from_numpy(rng.permutation(len(data)))
        beta = config.beta(epoch)
        encoder.train()
        decoder.train()
        sums = dict.fromkeys(("loss", "reconstruction", "kl"), 0.0)
        for index in range(steps_per_epoch):
            real = augment(data[order[index * batch : (index + 1) * batch]], rng, config.max_shift)
            real = real.to(device)
            mean, log_variance = encoder(real)
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
            logits = decoder(z)
            # per-image sums, averaged over the batch: the negative ELBO in nats per image
            reconstruction = functional.binary_cross_entropy_with_logits(
                logits, real, reduction="sum"
            ) / len(real)
            kl = 0.5 * (mean.pow(2) + log_variance.exp() - 1.0 - log_variance).sum() / len(real)
            loss = reconstruction + beta * kl
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            state.step += 1
            sums["loss"] += loss.item()
            sums["reconstruction"] += reconstruction.item()
            sums["kl"] += kl.item()

        epoch_seconds = time.perf_counter() - started
        state.wall_time_seconds += epoch_seconds
        state.epoch = epoch
        row: dict[str, float] = {"epoch": epoch, "steps": state.step, "beta": beta}
        row.update({key: value / steps_per_epoch for key, value in sums.items()})
        row["epoch_seconds"] = epoch_seconds
        row["wall_time_seconds"] = state.wall_time_seconds
        state.rows.append(row)

        if epoch % 5 == 0 or epoch == config.epochs:
            grid_image(sample(decoder, fixed_latents)).save(
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
                "encoder": encoder.state_dict(),
                "decoder": decoder.state_dict(),
                "optimiser": optimiser.state_dict(),
                "rng": rng_states(),
            },
            checkpoint_path,
        )
        write_log(out_dir / "training_log.csv", state.rows)
        print(
            f"epoch {epoch}/{config.epochs} steps {state.step} beta {beta:.3f} "
            f"loss {row['loss']:.1f} reconstruction {row['reconstruction']:.1f} "
            f"kl {row['kl']:.1f} {epoch_seconds:.1f}s",
            flush=True,
        )
    return encoder, decoder, state


def observation_std(
    encoder: Encoder, decoder: Decoder, images: npt.NDArray[np.uint8]
) -> torch.Tensor:
    """Per-pixel standard deviation (64, 64), in grey levels, of the training residuals.

    Each training image (not augmented) is encoded to its posterior mean and decoded; the
    residual image minus decoder mean, over all training images, gives the maximum-likelihood
    standard deviation of a Gaussian observation model around the decoder's mean.
    """
    encoder.eval()
    decoder.eval()
    device = next(decoder.parameters()).device
    residuals = []
    with torch.inference_mode():
        for start in range(0, len(images), 128):
            real = torch.from_numpy(images[start : start + 128]).float()
            mean, _ = encoder(real.div(255.0).unsqueeze(1).to(device))
            decoded = torch.sigmoid(decoder(mean)).squeeze(1).cpu() * 255.0
            residuals.append(real - decoded)
    stacked = torch.cat(residuals)
    std: torch.Tensor = stacked.pow(2).mean(dim=0).sqrt()
    return std


def plot_losses(path: Path, state: RunState) -> None:
    """Loss curve: reconstruction and KL per epoch, and the KL weight beta."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in state.rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    top.plot(epochs, [r["reconstruction"] for r in state.rows], label="reconstruction (BCE)")
    top.plot(epochs, [r["loss"] for r in state.rows], label="loss = reconstruction + beta KL")
    top.set_ylabel("nats per image (epoch mean)")
    top.legend()
    top.set_title(f"{MODEL_ID}: convolutional VAE on BUSI (624 non-held-out images)")
    bottom.plot(
        epochs, [r["kl"] for r in state.rows], color="tab:green", label="KL(q(z|x) || p(z))"
    )
    bottom.set_ylabel("KL, nats per image")
    bottom.set_xlabel("epoch")
    twin = bottom.twinx()
    twin.plot(epochs, [r["beta"] for r in state.rows], color="tab:gray", linestyle="--")
    twin.set_ylabel("beta (dashed)")
    bottom.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def export(
    encoder: Encoder,
    decoder: Decoder,
    state: RunState,
    config: Config,
    *,
    images: npt.NDArray[np.uint8],
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
    weights_path = package_dir / "weights.safetensors"
    # float16 storage halves the file; the package computes in float32.
    tensors = {
        name: (t.half() if t.is_floating_point() else t).detach().to("cpu").contiguous()
        for name, t in decoder.state_dict().items()
    }
    decoder.load_state_dict(tensors)  # the grid below then shows exactly the shipped weights
    std = observation_std(encoder, decoder, images)
    tensors[OBSERVATION_STD_KEY] = std.contiguous()
    save_file(
        tensors,
        str(weights_path),
        # One metadata key: several would be written in hash order, making the bytes unstable.
        metadata={
            WEIGHTS_METADATA_KEY: json.dumps(
                {
                    "model_id": MODEL_ID,
                    "latent_size": config.latent_size,
                    "width": config.width,
                    "epochs": state.epoch,
                },
                sort_keys=True,
            )
        },
    )
    weights_path.chmod(0o644)  # safetensors creates it owner-only; it is meant to be shared
    count = GRID_SIDE * GRID_SIDE
    latents = sample_latents(count, config.sample_seed)
    noise = sample_noise(count, config.sample_seed) * std
    grid_image(sample(decoder, latents, noise)).save(export_dir / "samples.png")
    grid_image(sample(decoder, latents)).save(export_dir / "samples_mean.png")
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
        "image_count": len(images),
        "observation_std_mean": round(float(std.mean()), 3),
        "wall_time_seconds": round(state.wall_time_seconds, 1),
        "hardware": hardware,
        "trained_at": trained_at.isoformat(timespec="seconds"),
        "final_epoch": {
            key: round(final[key], 6) if key in final else None
            for key in ("beta", "loss", "reconstruction", "kl")
        },
        "decoder_parameters": sum(p.numel() for p in decoder.parameters()),
        "weights_file": "package/weights.safetensors",
        "weights_dtype": "float16",
        "weights_bytes": weights_path.stat().st_size,
        "weights_sha256": sha256_of(weights_path),
        "data": {
            "file": DATA_FILE.as_posix(),
            "sha256": sha256_of(data_file),
            "split": "all minus held-out (index % 5 != 0)",
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
    card["provenance"]["training_data"][0]["image_count"] = len(images)
    card["description"]["provided_after_epoch"] = state.epoch
    card["description"]["trained_date"] = trained_at.strftime("%B %Y")
    (package_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return summary


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=COMMAND, description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=RECIPE_DIR / "config.json")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="checkpoint and sample grids (default: var/zoo/busi_vae_64, or a new temporary "
        "directory with --smoke)",
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
        out_dir = Path(tempfile.mkdtemp(prefix="busi-vae-64-smoke-"))
    else:
        out_dir = REPO_ROOT / "var" / "zoo" / "busi_vae_64"
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
    print(f"{len(images)} training images, out {out_dir}, export {export_dir}", flush=True)

    device = torch.device(args.device)
    encoder, decoder, state = train(config, images, out_dir, smoke=args.smoke, device=device)
    summary = export(
        encoder,
        decoder,
        state,
        config,
        images=images,
        data_file=data_file,
        device=device,
        export_dir=export_dir,
        smoke=args.smoke,
        trained_at=dt.datetime.fromtimestamp((out_dir / "checkpoint.pt").stat().st_mtime, dt.UTC),
    )
    print(json.dumps({k: summary[k] for k in ("epochs", "steps", "wall_time_seconds")}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
