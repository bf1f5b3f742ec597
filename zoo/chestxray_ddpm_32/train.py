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
complete package there instead, leaving the committed files alone. The machinery shared by all
zoo recipes (checkpoints, log, export) is in ``zoo/recipe.py``.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image

from zoo import recipe as common
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

RECIPE = common.Recipe.beside(
    __file__, "zoo/chestxray-ddpm-32", "data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz"
)
SMOKE_IMAGES = 128
SMOKE_EPOCHS = 2
SMOKE_SAMPLE_STEPS = 10
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
        return common.read_config(cls, path)


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


def sample_grid(net: UNet, config: Config, steps: int) -> Image.Image:
    """The sample grid of ``net`` for the fixed seed, as the package would generate it."""
    noise = sample_noise(common.GRID_SIDE * common.GRID_SIDE, config.sample_seed)
    with torch.inference_mode():
        images = to_uint8(ddim_sample(net, noise, steps))
    return common.grid_image(images)


def learning_rate(config: Config, step: int) -> float:
    """Linear warm-up to ``learning_rate`` over ``warmup_steps``, then constant."""
    return config.learning_rate * min(1.0, (step + 1) / max(config.warmup_steps, 1))


def train(
    config: Config,
    images: npt.NDArray[np.uint8],
    out_dir: Path,
    *,
    smoke: bool,
    device: torch.device,
) -> tuple[UNet, common.RunState]:
    """Train (or continue training) into ``out_dir``; return the EMA network and the record."""
    torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    net = UNet(config.width, config.blocks, config.groups).to(device)
    ema = copy.deepcopy(net).requires_grad_(False)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    parts: dict[str, common.Stateful] = {"net": net, "ema": ema, "optimiser": optimiser}
    state = common.resume(
        out_dir,
        common.RunState,
        config=config,
        smoke=smoke,
        resumable=RESUMABLE_CHANGES,
        parts=parts,
        device=device,
    )

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
            common.update_average(ema, net, config.ema_decay, state.step)
            state.step += 1
            state.step_losses.append((loss.item(),))
            total += loss.item()

        row = state.close_epoch(
            epoch,
            time.perf_counter() - started,
            {
                "loss": total / steps_per_epoch,
                "learning_rate": learning_rate(config, state.step - 1),
            },
        )
        common.end_epoch(
            out_dir,
            state,
            config=config,
            smoke=smoke,
            parts=parts,
            log_fields=LOG_FIELDS,
            message=(
                f"epoch {epoch}/{config.epochs} steps {state.step} loss {row['loss']:.4f} "
                f"{row['epoch_seconds']:.1f}s"
            ),
            with_rng=False,
        )
    ema.eval()
    return ema, state


def plot_losses(path: Path, state: common.RunState, steps_per_epoch: int) -> None:
    """Loss curve: per-step noise-prediction MSE (faint), a running mean and epoch means."""
    losses = np.asarray([loss for (loss,) in state.step_losses], dtype=np.float64)
    steps = np.arange(1, len(losses) + 1)
    window = max(1, min(50, len(losses)))
    running = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, (axis,) = common.pyplot_figure(1, (8, 4.5))
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
    axis.set_title(f"{RECIPE.model_id}: DDPM on Kermany chest X-ray train split (32 px)")
    axis.legend()
    common.save_figure(fig, path)


def export(
    ema: UNet,
    state: common.RunState,
    run: common.Invocation[Config],
    *,
    image_count: int,
) -> dict[str, Any]:
    """Write the package weights, card numbers, log, summary, loss curve and sample grid."""
    config = run.config
    package_dir = common.prepare_package_dir(RECIPE, run.export_dir)
    ema = ema.to("cpu")
    common.save_network_weights(
        ema,
        package_dir / common.WEIGHTS_NAME,
        WEIGHTS_METADATA_KEY,
        {
            "model_id": RECIPE.model_id,
            "width": config.width,
            "blocks": config.blocks,
            "groups": config.groups,
            "epochs": state.epoch,
            "steps": state.step,
        },
    )
    sample_steps = SMOKE_SAMPLE_STEPS if run.smoke else config.sample_steps
    sample_grid(ema, config, sample_steps).save(run.export_dir / "samples.png")
    plot_losses(run.export_dir / "loss_curve.png", state, state.step // max(state.epoch, 1))
    common.write_log(run.export_dir / common.LOG_NAME, LOG_FIELDS, state.rows, ".6g")
    losses = [loss for (loss,) in state.step_losses]
    return common.write_record(
        RECIPE,
        run,
        state,
        package_dir=package_dir,
        counts={"image_count": image_count},
        results={
            "final_epoch": common.final_means(state.rows, ("loss",)),
            "final_100_steps_loss": round(float(np.mean(losses[-100:])), 6) if losses else None,
            "parameters": sum(p.numel() for p in ema.parameters()),
        },
        weights_dtype="float32 (EMA of the trained weights)",
        after_weights={
            "sample_grid": {
                "sampler": "DDIM eta=0",
                "steps": sample_steps,
                "seed": config.sample_seed,
            }
        },
        split="train",
        data_notes={"resize": "64 px to 32 px, Pillow Lanczos"},
    )


def train_and_export(run: common.Invocation[Config]) -> dict[str, Any]:
    """Train on the train split at 32 px (a subset for a smoke run), then export."""
    images = load_train_images(run.data_file)
    images = images[run.chosen(len(images), SMOKE_IMAGES)]
    ema, state = train(run.config, images, run.out_dir, smoke=run.smoke, device=run.device)
    return export(ema, state, run, image_count=len(images))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the recipe; see the module docstring."""
    return common.main(RECIPE, argv, __doc__, Config.from_json, SMOKE_EPOCHS, train_and_export)


if __name__ == "__main__":
    raise SystemExit(main())
