"""Training recipe of zoo/chestxray-dcgan-64: a DCGAN on the Kermany chest X-ray train split.

One command, from the repository root::

    python -m zoo.chestxray_dcgan_64.train [--config config.json] [--out DIR] [--smoke]

It is seeded (torch, numpy, random; the data order of each epoch is derived from the seed), writes
a checkpoint with optimiser and RNG states after every epoch to ``--out`` (rerunning continues from
it, and raising ``epochs`` extends a finished run), and logs per-epoch losses to
``training_log.csv``. When training is done it exports the commit-ready artifacts: the package's
``weights.safetensors`` (generator only, BatchNorm statistics recalibrated) and ``card.json``
numbers, and ``training_log.csv``, ``training_summary.json``, ``loss_curve.png`` and ``samples.png``
beside this file. ``--smoke`` trains a few steps on a small subset into a temporary directory and
exports a complete package there instead, leaving the committed files alone. The machinery shared
by all zoo recipes (checkpoints, log, export) is in ``zoo/recipe.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from zoo import recipe as common
from zoo.chestxray_dcgan_64.package.network import (
    LATENT_SIZE,
    WEIGHTS_METADATA_KEY,
    Generator,
    sample_latents,
    to_uint8,
)

RECIPE = common.Recipe.beside(
    __file__, "zoo/chestxray-dcgan-64", "data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz"
)
SMOKE_IMAGES = 256
SMOKE_EPOCHS = 2
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
        """Read a config file (unknown keys are an error) and check it fits the package."""
        config = common.read_config(cls, path)
        if config.latent_size != LATENT_SIZE:
            raise SystemExit(f"latent_size must be {LATENT_SIZE}, the package's latent size")
        return config


class Discriminator(nn.Module):
    """Standard DCGAN discriminator: (N, 1, 64, 64) to one logit per image.

    Conv-LeakyReLU, then three Conv-BatchNorm-LeakyReLU blocks (32 -> 16 -> 8 -> 4 pixels) and a
    final 4x4 convolution. It returns logits; the loss applies the sigmoid (BCEWithLogits).
    """

    def __init__(self, width: int, slope: float, channels: int = 1) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(channels, w, 4, 2, 1, bias=False),
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return one logit per image, shape (N,)."""
        out: torch.Tensor = self.net(x)
        return out.reshape(-1)


def load_train_images(path: Path) -> npt.NDArray[np.uint8]:
    """The train split of the archive as uint8 (N, 64, 64); the test split is never read."""
    with np.load(path, allow_pickle=False) as archive:
        splits = archive["splits"]
        images: npt.NDArray[np.uint8] = archive["images"][splits == "train"]
    return images


def to_training_tensor(images: npt.NDArray[np.uint8]) -> torch.Tensor:
    """uint8 (N, H, W) to float32 (N, 1, H, W) scaled to [-1, 1], the range of the Tanh output."""
    return torch.from_numpy(images).float().div(127.5).sub(1.0).unsqueeze(1)


def train(
    config: Config,
    images: npt.NDArray[np.uint8],
    out_dir: Path,
    *,
    smoke: bool,
    device: torch.device,
) -> tuple[Generator, common.RunState]:
    """Train (or continue training) into ``out_dir``; return the generator and the run's record."""
    torch.set_num_threads(config.torch_threads)
    common.seed_everything(config.seed)
    generator = Generator(latent_size=config.latent_size, width=config.generator_width)
    discriminator = Discriminator(config.discriminator_width, config.leaky_relu_slope)
    generator.apply(lambda module: common.init_dcgan_weights(module, config.init_std))
    discriminator.apply(lambda module: common.init_dcgan_weights(module, config.init_std))
    adversaries = common.Adversaries.with_adam(
        generator,
        discriminator,
        device=device,
        learning_rates=(config.learning_rate, config.learning_rate),
        betas=(config.beta1, config.beta2),
    )
    state = common.resume(
        out_dir,
        common.RunState,
        config=config,
        smoke=smoke,
        resumable=RESUMABLE_CHANGES,
        parts=adversaries.parts,
        device=device,
    )
    fixed_latents = sample_latents(common.GRID_SIDE * common.GRID_SIDE, config.sample_seed)

    def progress(epoch: int) -> None:
        common.grid_image(common.sample_in_eval_mode(generator, [fixed_latents], to_uint8)).save(
            out_dir / f"samples_epoch_{epoch:03d}.png"
        )

    common.run_gan_epochs(
        adversaries,
        state,
        config=config,
        data=to_training_tensor(images),
        out_dir=out_dir,
        smoke=smoke,
        device=device,
        progress=progress,
    )
    return generator, state


def export(
    generator: Generator,
    state: common.RunState,
    run: common.Invocation[Config],
    *,
    image_count: int,
) -> dict[str, Any]:
    """Write the package weights, card numbers, log, summary, loss curve and sample grid."""
    config = run.config
    grid_latents = sample_latents(common.GRID_SIDE * common.GRID_SIDE, config.sample_seed)
    return common.export_generator(
        RECIPE,
        run,
        state,
        generator,
        draw_inputs=lambda rng: [torch.randn(config.batch_size, config.latent_size, generator=rng)],
        metadata_key=WEIGHTS_METADATA_KEY,
        metadata={"latent_size": config.latent_size, "generator_width": config.generator_width},
        grid=lambda: common.sample_in_eval_mode(generator, [grid_latents], to_uint8),
        plot=lambda path: common.plot_gan_losses(
            path,
            state,
            title=f"{RECIPE.model_id}: DCGAN on Kermany chest X-ray train split",
        ),
        counts={"image_count": image_count},
    )


def train_and_export(run: common.Invocation[Config]) -> dict[str, Any]:
    """Train on the train split (a subset for a smoke run), then export."""
    images = load_train_images(run.data_file)
    images = images[run.chosen(len(images), SMOKE_IMAGES)]
    generator, state = train(run.config, images, run.out_dir, smoke=run.smoke, device=run.device)
    return export(generator, state, run, image_count=len(images))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the recipe; see the module docstring."""
    return common.main(RECIPE, argv, __doc__, Config.from_json, SMOKE_EPOCHS, train_and_export)


if __name__ == "__main__":
    raise SystemExit(main())
