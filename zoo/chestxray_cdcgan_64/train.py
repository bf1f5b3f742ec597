"""Training recipe of zoo/chestxray-cdcgan-64: a class-conditional DCGAN on Kermany chest X-rays.

The generator gets a learned NORMAL / PNEUMONIA embedding concatenated to its latent; the
discriminator gets the label as an extra constant input channel (-1 NORMAL, +1 PNEUMONIA); a first
run with a projection discriminator instead collapsed to one image per class within three epochs.
Real batches are drawn uniformly from the train split (so classes come at the data prior, 26 %
NORMAL / 74 % PNEUMONIA) and each fake of a step gets the label of the real image at the same batch
position, so generated labels follow the same prior.

One command, from the repository root::

    python -m zoo.chestxray_cdcgan_64.train [--config config.json] [--out DIR] [--smoke]

It trains like the unconditional recipe (``zoo/chestxray_dcgan_64/train.py``, whose config fields,
discriminator body and data scaling it uses): seeded (torch, numpy, random; the data order of each
epoch is derived from the seed), a checkpoint with optimiser and RNG states after every epoch to
``--out`` (rerunning continues from it, and raising ``epochs`` extends a finished run), per-epoch
losses in ``training_log.csv``. When training is done it exports the commit-ready artifacts: the
package's ``weights.safetensors`` (generator only, BatchNorm statistics recalibrated, float16) and
``card.json`` numbers, and ``training_log.csv``, ``training_summary.json``, ``loss_curve.png`` and
``samples.png`` beside this file. ``--smoke`` trains a few steps on a small subset into a temporary
directory and exports a complete package there instead, leaving the committed files alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from zoo import recipe as common
from zoo.chestxray_cdcgan_64.package.network import (
    PNEUMONIA_PRIOR,
    WEIGHTS_METADATA_KEY,
    ConditionalGenerator,
    sample_labels,
    sample_latents,
    to_uint8,
)
from zoo.chestxray_dcgan_64.train import Config, Discriminator, to_training_tensor

RECIPE = common.Recipe.beside(
    __file__, "zoo/chestxray-cdcgan-64", "data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz"
)
SMOKE_IMAGES = 256
SMOKE_EPOCHS = 2
# Hyper-parameters that may change between a checkpoint and a rerun without breaking the run.
RESUMABLE_CHANGES = frozenset({"epochs", "torch_threads", "bn_recalibration_batches"})


class ConditionalDiscriminator(nn.Module):
    """DCGAN discriminator conditioned by an extra input channel: image and label to one logit.

    The label enters as a second input channel, constant over the image: -1 for NORMAL, +1 for
    PNEUMONIA. Then the unconditional recipe's layers: Conv-LeakyReLU, three
    Conv-BatchNorm-LeakyReLU blocks (32 -> 16 -> 8 -> 4 pixels) and a final 4x4 convolution. It
    returns logits; the loss applies the sigmoid (BCEWithLogits).
    """

    def __init__(self, width: int, slope: float, channels: int = 1) -> None:
        super().__init__()
        self.net = Discriminator(width, slope, channels + 1).net

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Return one logit per image, shape (N,)."""
        plane = (labels.to(x.dtype) * 2.0 - 1.0).reshape(-1, 1, 1, 1).expand(-1, 1, *x.shape[2:])
        out: torch.Tensor = self.net(torch.cat([x, plane], dim=1))
        return out.reshape(-1)


def load_train_images(path: Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The train split as uint8 images (N, 64, 64) and int64 labels (0 NORMAL, 1 PNEUMONIA).

    The test split is never read.
    """
    with np.load(path, allow_pickle=False) as archive:
        train = archive["splits"] == "train"
        images: npt.NDArray[np.uint8] = archive["images"][train]
        labels: npt.NDArray[np.int64] = archive["labels"][train].astype(np.int64)
    return images, labels


def grid_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and labels of the sample grid: the same 32 latents as "normal" then "pneumonia".

    The top four rows are what ``generate(32, seed=seed, condition="normal")`` returns and the
    bottom four ``condition="pneumonia"``, so each image sits four rows above its counterpart.
    """
    half = common.GRID_SIDE * common.GRID_SIDE // 2
    latents = sample_latents(half, seed)
    normal, pneumonia = sample_labels(half, seed, "normal"), sample_labels(half, seed, "pneumonia")
    labels = torch.cat([normal, pneumonia])
    return torch.cat([latents, latents]), labels


def train(
    config: Config,
    images: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.int64],
    out_dir: Path,
    *,
    smoke: bool,
    device: torch.device,
) -> tuple[ConditionalGenerator, common.RunState]:
    """Train (or continue training) into ``out_dir``; return the generator and the run's record.

    The generator's class embedding keeps PyTorch's N(0, 1) initialisation, the scale of the
    latent it is concatenated to; convolutions and BatchNorm get the DCGAN initialisation.
    """
    torch.set_num_threads(config.torch_threads)
    common.seed_everything(config.seed)
    generator = ConditionalGenerator(latent_size=config.latent_size, width=config.generator_width)
    discriminator = ConditionalDiscriminator(config.discriminator_width, config.leaky_relu_slope)
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
    fixed_inputs = grid_inputs(config.sample_seed)

    def progress(epoch: int) -> None:
        common.grid_image(common.sample_in_eval_mode(generator, fixed_inputs, to_uint8)).save(
            out_dir / f"samples_epoch_{epoch:03d}.png"
        )

    # fakes take the real batch's labels: generated classes follow the data prior
    common.run_gan_epochs(
        adversaries,
        state,
        config=config,
        data=to_training_tensor(images),
        labels=torch.from_numpy(labels),
        out_dir=out_dir,
        smoke=smoke,
        device=device,
        progress=progress,
    )
    return generator, state


def draw_recalibration_batch(config: Config, rng: torch.Generator) -> list[torch.Tensor]:
    """Latents and labels (PNEUMONIA with the train split's prior) of one training-size batch."""
    latents = torch.randn(config.batch_size, config.latent_size, generator=rng)
    labels = (torch.rand(config.batch_size, generator=rng) < PNEUMONIA_PRIOR).long()
    return [latents, labels]


def export(
    generator: ConditionalGenerator,
    state: common.RunState,
    run: common.Invocation[Config],
    *,
    labels: npt.NDArray[np.int64],
) -> dict[str, Any]:
    """Write the package weights (float16: 3.2 MB instead of 6.4 MB; the package computes in
    float32), card numbers, log, summary, loss curve and sample grid."""
    config = run.config
    return common.export_generator(
        RECIPE,
        run,
        state,
        generator,
        draw_inputs=lambda rng: draw_recalibration_batch(config, rng),
        metadata_key=WEIGHTS_METADATA_KEY,
        metadata={"latent_size": config.latent_size, "generator_width": config.generator_width},
        half=True,
        grid=lambda: common.sample_in_eval_mode(
            generator, grid_inputs(config.sample_seed), to_uint8
        ),
        plot=lambda path: common.plot_gan_losses(
            path,
            state,
            title=f"{RECIPE.model_id}: conditional DCGAN on Kermany chest X-ray train split",
        ),
        counts={"image_count": len(labels)},
        weights_dtype="float16",
        after_weights={
            "class_counts": {
                "normal": int((labels == 0).sum()),
                "pneumonia": int((labels == 1).sum()),
            }
        },
    )


def train_and_export(run: common.Invocation[Config]) -> dict[str, Any]:
    """Train on the train split (a subset for a smoke run), then export."""
    images, labels = load_train_images(run.data_file)
    chosen = run.chosen(len(images), SMOKE_IMAGES)
    images, labels = images[chosen], labels[chosen]
    generator, state = train(
        run.config, images, labels, run.out_dir, smoke=run.smoke, device=run.device
    )
    return export(generator, state, run, labels=labels)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the recipe; see the module docstring."""
    return common.main(RECIPE, argv, __doc__, Config.from_json, SMOKE_EPOCHS, train_and_export)


if __name__ == "__main__":
    raise SystemExit(main())
