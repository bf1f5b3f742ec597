"""Training recipe of zoo/chestxray-ddpm-32: a small DDPM on the Kermany chest X-ray train split.

One command, from the repository root::

    python -m zoo.chestxray_ddpm_32.train [--config config.json] [--out DIR] [--smoke]

The 64 px train images are downsampled to 32 px (Pillow Lanczos); the test split is never read.
The UNet learns to predict the noise added at a uniformly drawn timestep of a 1000-step cosine
schedule (MSE loss, Adam with linear warm-up, gradient clipping) and an exponential moving average
(EMA) of its weights is kept; the EMA weights are what the package ships. The run is seeded (the
data order, timesteps and noise of each epoch are derived from the seed), writes a checkpoint with
optimiser, EMA and RNG states after every epoch to ``--out`` (rerunning continues from it, and
raising ``epochs`` extends a finished run) and logs per-epoch losses to ``training_log.csv``. When
done it exports the package's ``weights.safetensors`` and ``card.json`` numbers and
``training_log.csv``, ``training_summary.json``, ``loss_curve.png`` and ``samples.png`` beside this
file. ``--smoke`` trains a few steps on a small subset into a temporary directory and exports a
complete package there instead, leaving the committed files alone.
"""

from __future__ import annotations

import argparse
import copy
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
import torch
from PIL import Image
from safetensors.torch import save_file

from zoo.chestxray_ddpm_32.package.network import (
    IMAGE_SIZE,
    TRAIN_TIMESTEPS,
    WEIGHTS_METADATA_KEY,
    UNet,
    alphas_cumprod,
    ddim_sample,
    sample_noise,
    to_uint8,
)

RECIPE_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = RECIPE_DIR / "package"
REPO_ROOT = RECIPE_DIR.parents[1]
RECIPE = "zoo/chestxray_ddpm_32/train.py"
COMMAND = "python -m zoo.chestxray_ddpm_32.train"
MODEL_ID = "zoo/chestxray-ddpm-32"
DATA_FILE = Path("data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz")
SMOKE_IMAGES = 128
SMOKE_EPOCHS = 2
SMOKE_SAMPLE_STEPS = 10
GRID_SIDE = 8
GRID_PAD = 2
PACKAGE_SOURCES = ("__init__.py", "network.py")
LOG_FIELDS = ("epoch", "steps", "loss", "learning_rate", "epoch_seconds", "wall_time_seconds")
# Hyper-parameters that may change between a checkpoint and a rerun without breaking the run.
RESUMABLE_CHANGES = frozenset({"epochs", "torch_threads", "sample_steps", "sample_seed"})


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyper-parameters of the recipe, read from ``config.json``."""

    seed: int = 20261
    width: int = 32
    blocks: int = 1
    groups: int = 8
    batch_size: int = 64
    learning_rate: float = 5e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    epochs: int = 8
    sample_steps: int = 50
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
        return cls(**raw)


def shared_dir() -> Path:
    """The shared folder: ``$MEDIGAN_SHARED_DIR`` if set, else ``<repo root>/../shared``."""
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def data_path() -> Path:
    """Where the 64 px Kermany chest X-ray archive is expected."""
    return shared_dir() / DATA_FILE


def load_train_images(path: Path) -> npt.NDArray[np.uint8]:
    """The train split at 32 px: uint8 (N, 32, 32), each 64 px image resized with Lanczos."""
    with np.load(path, allow_pickle=False) as archive:
        splits = archive["splits"]
        images = archive["images"][splits == "train"]
    size = (IMAGE_SIZE, IMAGE_SIZE)
    small = [
        np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
        for image in images
    ]
    return np.stack(small).astype(np.uint8)


def to_training_tensor(images: npt.NDArray[np.uint8]) -> torch.Tensor:
    """uint8 (N, H, W) to float32 (N, 1, H, W) scaled to [-1, 1]."""
    return torch.from_numpy(images).float().div(127.5).sub(1.0).unsqueeze(1)


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


def sample_grid(net: UNet, config: Config, steps: int) -> Image.Image:
    """The sample grid of ``net`` for the fixed seed, as the package would generate it."""
    with torch.inference_mode():
        images = to_uint8(
            ddim_sample(net, sample_noise(GRID_SIDE * GRID_SIDE, config.sample_seed), steps)
        )
    return grid_image(images)


def learning_rate(config: Config, step: int) -> float:
    """Linear warm-up to ``learning_rate`` over ``warmup_steps``, then constant."""
    return config.learning_rate * min(1.0, (step + 1) / max(config.warmup_steps, 1))


def write_log(path: Path, rows: Sequence[dict[str, float]]) -> None:
    """Write the per-epoch log as CSV."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
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
    step_losses: list[float] = dataclasses.field(default_factory=list)


def train(
    config: Config,
    images: npt.NDArray[np.uint8],
    out_dir: Path,
    *,
    smoke: bool,
    device: torch.device,
) -> tuple[UNet, RunState]:
    """Train (or continue training) into ``out_dir``; return the EMA network and the record."""
    torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    net = UNet(config.width, config.blocks, config.groups).to(device)
    ema = copy.deepcopy(net).requires_grad_(False)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
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
        net.load_state_dict(checkpoint["net"])
        ema.load_state_dict(checkpoint["ema"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        state = RunState(
            epoch=int(checkpoint["epoch"]),
            step=int(checkpoint["step"]),
            wall_time_seconds=float(checkpoint["wall_time_seconds"]),
            rows=[dict(row) for row in checkpoint["rows"]],
            step_losses=[float(v) for v in checkpoint["step_losses"]],
        )
        print(f"resuming from {checkpoint_path} after epoch {state.epoch}", flush=True)

    data = to_training_tensor(images)
    abar = alphas_cumprod().float()
    batch = config.batch_size
    steps_per_epoch = len(data) // batch

    for epoch in range(state.epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        # Everything random in an epoch comes from this generator: resuming replays it exactly.
        rng = torch.Generator(device="cpu")
        rng.manual_seed(config.seed * 100_003 + epoch)
        order = torch.randperm(len(data), generator=rng)
        net.train()
        total = 0.0
        for index in range(steps_per_epoch):
            x0 = data[order[index * batch : (index + 1) * batch]]
            t = torch.randint(0, TRAIN_TIMESTEPS, (batch,), generator=rng)
            noise = torch.randn(x0.shape, generator=rng)
            a = abar[t][:, None, None, None]
            noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
            lr = learning_rate(config, state.step)
            for group in optimiser.param_groups:
                group["lr"] = lr
            loss = (net(noisy.to(device), t.to(device)) - noise.to(device)).pow(2).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            optimiser.step()
            # EMA with the usual warm-up of its decay, so the random initial weights fade out
            # within the first steps instead of lingering for 1 / (1 - ema_decay) of them.
            decay = min(config.ema_decay, (1 + state.step) / (10 + state.step))
            with torch.no_grad():
                for target, source in zip(ema.parameters(), net.parameters(), strict=True):
                    target.lerp_(source, 1.0 - decay)
            state.step += 1
            state.step_losses.append(loss.item())
            total += loss.item()

        epoch_seconds = time.perf_counter() - started
        state.wall_time_seconds += epoch_seconds
        state.epoch = epoch
        row: dict[str, float] = {
            "epoch": epoch,
            "steps": state.step,
            "loss": total / steps_per_epoch,
            "learning_rate": learning_rate(config, state.step - 1),
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
                "step_losses": state.step_losses,
                "net": net.state_dict(),
                "ema": ema.state_dict(),
                "optimiser": optimiser.state_dict(),
            },
            checkpoint_path,
        )
        write_log(out_dir / "training_log.csv", state.rows)
        print(
            f"epoch {epoch}/{config.epochs} steps {state.step} loss {row['loss']:.4f} "
            f"{epoch_seconds:.1f}s",
            flush=True,
        )
    ema.eval()
    return ema, state


def plot_losses(path: Path, state: RunState, steps_per_epoch: int) -> None:
    """Loss curve: per-step noise-prediction MSE (faint), a running mean and epoch means."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = np.asarray(state.step_losses, dtype=np.float64)
    steps = np.arange(1, len(losses) + 1)
    window = max(1, min(50, len(losses)))
    running = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, axis = plt.subplots(figsize=(8, 4.5))
    axis.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.7, label="step")
    axis.plot(steps[window - 1 :], running, color="tab:blue", label=f"mean of {window} steps")
    axis.plot(
        [row["epoch"] * steps_per_epoch for row in state.rows],
        [row["loss"] for row in state.rows],
        "o",
        color="tab:orange",
        label="epoch mean",
    )
    axis.set_yscale("log")
    axis.set_xlabel("optimiser step")
    axis.set_ylabel("noise-prediction MSE")
    axis.set_title(f"{MODEL_ID}: DDPM on Kermany chest X-ray train split (32 px)")
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def export(
    ema: UNet,
    state: RunState,
    config: Config,
    *,
    image_count: int,
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
    ema = ema.to("cpu")
    save_file(
        {name: t.detach().contiguous() for name, t in ema.state_dict().items()},
        str(weights_path),
        # One metadata key: several would be written in hash order and change the bytes.
        metadata={
            WEIGHTS_METADATA_KEY: json.dumps(
                {
                    "model_id": MODEL_ID,
                    "width": config.width,
                    "blocks": config.blocks,
                    "groups": config.groups,
                    "epochs": state.epoch,
                    "steps": state.step,
                },
                sort_keys=True,
            )
        },
    )
    weights_path.chmod(0o644)
    sample_steps = SMOKE_SAMPLE_STEPS if smoke else config.sample_steps
    sample_grid(ema, config, sample_steps).save(export_dir / "samples.png")
    plot_losses(export_dir / "loss_curve.png", state, state.step // max(state.epoch, 1))
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
        "final_epoch": {"loss": round(final["loss"], 6) if "loss" in final else None},
        "final_100_steps_loss": round(float(np.mean(state.step_losses[-100:])), 6)
        if state.step_losses
        else None,
        "parameters": sum(p.numel() for p in ema.parameters()),
        "weights_file": "package/weights.safetensors",
        "weights_dtype": "float32 (EMA of the trained weights)",
        "weights_bytes": weights_path.stat().st_size,
        "weights_sha256": sha256_of(weights_path),
        "sample_grid": {"sampler": "DDIM eta=0", "steps": sample_steps, "seed": config.sample_seed},
        "data": {
            "file": DATA_FILE.as_posix(),
            "sha256": sha256_of(data_file),
            "split": "train",
            "resize": "64 px to 32 px, Pillow Lanczos",
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
        help="checkpoint and log (default: var/zoo/chestxray_ddpm_32, or a new temporary "
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
        out_dir = Path(tempfile.mkdtemp(prefix="chestxray-ddpm-32-smoke-"))
    else:
        out_dir = REPO_ROOT / "var" / "zoo" / "chestxray_ddpm_32"
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
    ema, state = train(config, images, out_dir, smoke=args.smoke, device=device)
    summary = export(
        ema,
        state,
        config,
        image_count=len(images),
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
