"""Training recipe of zoo/busi-gan-128: an upsample-and-convolve GAN on BUSI breast ultrasound.

One command, from the repository root::

    python -m zoo.busi_gan_128.train [--config config.json] [--out DIR] [--smoke] [--epochs N]

BUSI has no official split: the recipe trains on the 624 images that
``evaluation.references.busi_heldout_mask`` does not hold out (index % 5 != 0); the other 156 are
the hub's ``busi-heldout`` reference set and are never read. With so few images a GAN
discriminator memorises the training set, so every batch the discriminator sees, real or fake, in
its own step and in the generator's step, first goes through the same differentiable augmentation
(horizontal flip, brightness, contrast, translation and a small cutout: the idea of
"Differentiable Augmentation for Data-Efficient GAN Training", 2020, written here in plain
torch). The discriminator is a DCGAN discriminator with BatchNorm and no spectral
normalisation: a spectrally normalised one behind strong augmentation learnt nothing in the
first release (D(x) = D(G(z)) = 0.5 throughout). The generator resizes and convolves instead of
using transposed convolutions (no checkerboard texture), and an exponential moving average of
its weights is what the package ships.

The machinery shared by all zoo recipes (seeding, checkpoints with optimiser and RNG states after
every epoch to ``--out``, resuming, the log, the export of ``weights.safetensors``, card numbers,
``training_log.csv``, ``training_summary.json``, ``loss_curve.png`` and ``samples.png``) is in
``zoo/recipe.py``. ``--smoke`` trains a few steps on a small subset into a temporary directory and
exports a complete package there instead, leaving the committed files alone.
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
from torch.nn import functional

from evaluation.references import busi_heldout_mask
from zoo import recipe as common
from zoo.busi_gan_128.package.network import (
    IMAGE_SIZE,
    LATENT_SIZE,
    WEIGHTS_METADATA_KEY,
    Generator,
    sample_latents,
    to_uint8,
)

RECIPE = common.Recipe.beside(
    __file__, "zoo/busi-gan-128", "data/breast-ultrasound-busi/breast_ultrasound_busi_128.npz"
)
SMOKE_IMAGES = 64
SMOKE_EPOCHS = 2
# Hyper-parameters that may change between a checkpoint and a rerun without breaking the run.
RESUMABLE_CHANGES = frozenset(
    {"epochs", "torch_threads", "bn_recalibration_batches", "progress_every"}
)


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyper-parameters of the recipe, read from ``config.json``."""

    seed: int = 20264
    latent_size: int = LATENT_SIZE
    generator_widths: tuple[int, ...] = (256, 128, 64, 32, 16, 8)
    discriminator_widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    batch_size: int = 16
    learning_rate_g: float = 2e-4
    learning_rate_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    epochs: int = 200
    leaky_relu_slope: float = 0.2
    flip: bool = True
    translation_ratio: float = 0.125
    cutout_ratio: float = 0.25
    brightness: float = 0.5
    contrast: float = 0.5
    ema_decay: float = 0.999
    bn_recalibration_batches: int = 50
    sample_seed: int = 0
    progress_every: int = 10
    torch_threads: int = 1

    @classmethod
    def from_json(cls, path: Path) -> Config:
        """Read a config file (unknown keys are an error) and check it fits the package."""
        config = common.read_config(cls, path)
        if config.latent_size != LATENT_SIZE:
            raise SystemExit(f"latent_size must be {LATENT_SIZE}, the package's latent size")
        if 4 * 2 ** (len(config.generator_widths) - 1) != IMAGE_SIZE:
            raise SystemExit("generator_widths needs six entries (4x4 up to 128x128)")
        if 4 * 2 ** len(config.discriminator_widths) != IMAGE_SIZE:
            raise SystemExit("discriminator_widths needs five entries (64x64 down to 4x4)")
        return config


class Discriminator(nn.Module):
    """DCGAN discriminator: (N, 1, 128, 128) to one logit per image.

    Five stride-2 4x4 convolutions (128 -> 64 -> 32 -> 16 -> 8 -> 4 pixels), each followed by
    BatchNorm (except the first) and LeakyReLU, and a final 4x4 convolution to one logit.
    """

    def __init__(self, widths: tuple[int, ...], slope: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for index, (wide, narrow) in enumerate(zip((1, *widths[:-1]), widths, strict=True)):
            layers.append(nn.Conv2d(wide, narrow, 4, 2, 1, bias=index == 0))
            if index > 0:
                layers.append(nn.BatchNorm2d(narrow))
            layers.append(nn.LeakyReLU(slope, inplace=True))
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return one logit per image, shape (N,)."""
        out: torch.Tensor = self.net(x)
        return out.reshape(-1)


def diff_augment(x: torch.Tensor, config: Config) -> torch.Tensor:
    """Differentiable augmentation of a batch in [-1, 1]: flip, brightness, contrast, translation
    and cutout.

    Each image gets its own random parameters (drawn from torch's global RNG). Every operation is
    a differentiable function of ``x``, so the generator's gradient flows through it. Pixels
    shifted in by the translation and those under the cutout square are black (-1), the colour of
    the ultrasound background.
    """
    n, _, height, width = x.shape
    device = x.device
    if config.flip:
        flipped = torch.rand(n, 1, 1, 1, device=device) < 0.5
        x = torch.where(flipped, x.flip(3), x)
    x = x + (torch.rand(n, 1, 1, 1, device=device) - 0.5) * config.brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    scale = 1.0 + (torch.rand(n, 1, 1, 1, device=device) - 0.5) * 2.0 * config.contrast
    x = (x - mean) * scale + mean

    shift_h, shift_w = int(height * config.translation_ratio), int(width * config.translation_ratio)
    dy = torch.randint(-shift_h, shift_h + 1, (n, 1, 1), device=device)
    dx = torch.randint(-shift_w, shift_w + 1, (n, 1, 1), device=device)
    batch_index, rows, cols = torch.meshgrid(
        torch.arange(n, device=device),
        torch.arange(height, device=device),
        torch.arange(width, device=device),
        indexing="ij",
    )
    rows = (rows + dy + 1).clamp(0, height + 1)
    cols = (cols + dx + 1).clamp(0, width + 1)
    padded = functional.pad(x, [1, 1, 1, 1], value=-1.0)
    x = padded.permute(0, 2, 3, 1)[batch_index, rows, cols].permute(0, 3, 1, 2)

    cut_h, cut_w = int(height * config.cutout_ratio), int(width * config.cutout_ratio)
    top = torch.randint(0, height - cut_h + 1, (n, 1, 1), device=device)
    left = torch.randint(0, width - cut_w + 1, (n, 1, 1), device=device)
    ys = torch.arange(height, device=device).reshape(1, height, 1)
    xs = torch.arange(width, device=device).reshape(1, 1, width)
    inside = (ys >= top) & (ys < top + cut_h) & (xs >= left) & (xs < left + cut_w)
    keep = (~inside).unsqueeze(1).to(x.dtype)
    return x * keep - (1.0 - keep)


def load_train_images(path: Path) -> npt.NDArray[np.uint8]:
    """The images the reference set does not hold out, uint8 (624, 128, 128)."""
    with np.load(path, allow_pickle=False) as archive:
        all_images = archive["images"]
        images: npt.NDArray[np.uint8] = all_images[~busi_heldout_mask(all_images.shape[0])]
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
    """Train (or continue training) into ``out_dir``; return the averaged generator and the run's
    record."""
    torch.set_num_threads(config.torch_threads)
    common.seed_everything(config.seed)
    generator = Generator(latent_size=config.latent_size, widths=config.generator_widths)
    discriminator = Discriminator(config.discriminator_widths, config.leaky_relu_slope)
    generator.apply(common.init_dcgan_weights)
    discriminator.apply(common.init_dcgan_weights)
    adversaries = common.Adversaries.with_adam(
        generator,
        discriminator,
        device=device,
        learning_rates=(config.learning_rate_g, config.learning_rate_d),
        betas=(config.beta1, config.beta2),
        average=True,
    )
    average = adversaries.average
    assert isinstance(average, Generator)
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
        if smoke or (epoch % config.progress_every and epoch != config.epochs):
            return
        # the average with the running BatchNorm statistics of the trained generator
        average.load_state_dict({**average.state_dict(), **dict(generator.named_buffers())})
        common.grid_image(common.sample_in_eval_mode(average, [fixed_latents], to_uint8)).save(
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
        augment=lambda batch: diff_augment(batch, config),
        ema_decay=config.ema_decay,
        progress=progress,
    )
    return average, state


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
        metadata={
            "latent_size": config.latent_size,
            "generator_widths": list(config.generator_widths),
        },
        grid=lambda: common.sample_in_eval_mode(generator, [grid_latents], to_uint8),
        plot=lambda path: common.plot_gan_losses(
            path,
            state,
            title=f"{RECIPE.model_id}: GAN + DiffAugment on BUSI (624 non-held-out images)",
            loss_label="non-saturating GAN loss (steps faint)",
            real_label="mean D(aug(x)), real",
            fake_label="mean D(aug(G(z))), fake",
            marker="-",
        ),
        counts={"image_count": image_count},
        weights_dtype="float32 (moving average of the generator)",
        split="train (index % 5 != 0; busi_heldout_mask holds out the rest)",
    )


def train_and_export(run: common.Invocation[Config]) -> dict[str, Any]:
    """Train on the non-held-out images (a subset for a smoke run), then export."""
    images = load_train_images(run.data_file)
    images = images[run.chosen(len(images), SMOKE_IMAGES)]
    generator, state = train(run.config, images, run.out_dir, smoke=run.smoke, device=run.device)
    return export(generator, state, run, image_count=len(images))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the recipe; see the module docstring."""
    return common.main(RECIPE, argv, __doc__, Config.from_json, SMOKE_EPOCHS, train_and_export)


if __name__ == "__main__":
    raise SystemExit(main())
