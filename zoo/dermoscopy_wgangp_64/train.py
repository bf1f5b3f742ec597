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
complete package there instead, leaving the committed files alone. The machinery shared by all
zoo recipes (checkpoints, log, export) is in ``zoo/recipe.py``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from zoo import recipe as common
from zoo.dermoscopy_wgangp_64.package.network import (
    CONDITIONS,
    LATENT_SIZE,
    WEIGHTS_METADATA_KEY,
    Generator,
    sample_latents,
    to_uint8,
)

RECIPE = common.Recipe.beside(
    __file__, "zoo/dermoscopy-wgangp-64", "data/dermoscopy-isic2017/dermoscopy_isic2017_64.npz"
)
SMOKE_IMAGES = 320  # five batches of 64: at least one generator step per epoch up to n_critic 5
SMOKE_EPOCHS = 2
CRITIC_LOSSES = ("loss_d", "loss_g", "wasserstein", "gradient_penalty")
LOG_FIELDS = (
    "epoch",
    "steps",
    "critic_steps",
    *CRITIC_LOSSES,
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
        """Read a config file (unknown keys are an error) and check it fits the package."""
        config = common.read_config(cls, path)
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


def grid_samples(generator: Generator, seed: int) -> npt.NDArray[np.uint8]:
    """The grid's 64 images: four rows not_melanoma, then four rows melanoma, same latents."""
    half = common.GRID_SIDE * common.GRID_SIDE // 2
    latents = sample_latents(half, seed)
    return np.concatenate(
        [
            common.sample_in_eval_mode(
                generator, [latents, torch.full((half,), label, dtype=torch.long)], to_uint8
            )
            for label in range(len(CONDITIONS))
        ]
    )


@dataclasses.dataclass
class CriticRunState(common.RunState):
    """The run's record, with the critic's steps counted apart from the generator's."""

    critic_steps: int = 0


def train(
    config: Config,
    images: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.int64],
    out_dir: Path,
    *,
    smoke: bool,
    device: torch.device,
) -> tuple[Generator, CriticRunState]:
    """Train (or continue training) into ``out_dir``; return the generator and the run's record."""
    torch.set_num_threads(config.torch_threads)
    common.seed_everything(config.seed)
    generator = Generator(latent_size=config.latent_size, width=config.generator_width)
    critic = Critic(config.critic_width, config.leaky_relu_slope)
    generator.apply(lambda module: common.init_dcgan_weights(module, transposed_only=True))
    adversaries = common.Adversaries.with_adam(
        generator,
        critic,
        device=device,
        learning_rates=(config.learning_rate_g, config.learning_rate_d),
        betas=(config.beta1, config.beta2),
        discriminator_name="critic",
    )
    opt_g, opt_d = adversaries.opt_g, adversaries.opt_d
    parts = adversaries.parts
    state = common.resume(
        out_dir,
        CriticRunState,
        config=config,
        smoke=smoke,
        resumable=RESUMABLE_CHANGES,
        parts=parts,
        device=device,
    )

    data = to_training_tensor(images)
    targets = torch.from_numpy(labels)
    batch = config.batch_size
    steps_per_epoch = len(data) // batch  # full batches only: the generator has BatchNorm

    for epoch in range(state.epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        order = torch.from_numpy(common.epoch_order(config.seed, epoch, len(data)))
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

        row = state.close_epoch(
            epoch,
            time.perf_counter() - started,
            {
                "critic_steps": state.critic_steps,
                "loss_d": sums["loss_d"] / steps_per_epoch,
                "loss_g": float(np.mean(g_losses)) if g_losses else math.nan,
                "wasserstein": sums["wasserstein"] / steps_per_epoch,
                "gradient_penalty": sums["gradient_penalty"] / steps_per_epoch,
            },
        )
        if not smoke and (epoch % 10 == 0 or epoch == config.epochs):
            common.grid_image(grid_samples(generator, config.sample_seed)).save(
                out_dir / f"samples_epoch_{epoch:03d}.png"
            )
        common.end_epoch(
            out_dir,
            state,
            config=config,
            smoke=smoke,
            parts=parts,
            log_fields=LOG_FIELDS,
            message=(
                f"epoch {epoch}/{config.epochs} steps {state.step} loss_d {row['loss_d']:.4f} "
                f"loss_g {row['loss_g']:.4f} W {row['wasserstein']:.4f} "
                f"GP {row['gradient_penalty']:.4f} {row['epoch_seconds']:.1f}s"
            ),
        )
    return generator, state


def draw_recalibration_batch(
    config: Config, melanoma_fraction: float, rng: torch.Generator
) -> list[torch.Tensor]:
    """Latents and labels (melanoma with the training set's fraction) of one training batch."""
    z = torch.randn(config.batch_size, config.latent_size, generator=rng)
    labels = (torch.rand(config.batch_size, generator=rng) < melanoma_fraction).long()
    return [z, labels]


def plot_losses(path: Path, state: common.RunState) -> None:
    """Loss curve: per-step critic and generator losses, and the Wasserstein estimate per epoch."""
    steps = np.arange(1, len(state.step_losses) + 1)
    losses = np.asarray(state.step_losses, dtype=np.float64).reshape(-1, 2)
    epoch_steps = [row["steps"] for row in state.rows]
    fig, (top, bottom) = common.pyplot_figure(2, (8, 6.5))
    top.plot(steps, losses[:, 0], color="tab:blue", alpha=0.25, linewidth=0.7)
    top.plot(steps, losses[:, 1], color="tab:orange", alpha=0.25, linewidth=0.7)
    top.plot(epoch_steps, [r["loss_d"] for r in state.rows], "-", color="tab:blue", label="critic")
    top.plot(
        epoch_steps, [r["loss_g"] for r in state.rows], "-", color="tab:orange", label="generator"
    )
    top.set_ylabel("WGAN-GP loss (steps faint, epochs bold)")
    top.legend()
    top.set_title(f"{RECIPE.model_id}: conditional WGAN-GP on ISIC 2017 train split")
    bottom.plot(
        epoch_steps, [r["wasserstein"] for r in state.rows], "-", label="E D(x) - E D(G(z))"
    )
    bottom.plot(
        epoch_steps, [r["gradient_penalty"] for r in state.rows], "-", label="gradient penalty"
    )
    bottom.set_xlabel("generator step")
    bottom.set_ylabel("critic estimate (epoch means)")
    bottom.legend()
    common.save_figure(fig, path)


def export(
    generator: Generator,
    state: CriticRunState,
    run: common.Invocation[Config],
    *,
    labels: npt.NDArray[np.int64],
) -> dict[str, Any]:
    """Write the package weights, card numbers, log, summary, loss curve and sample grid."""
    config = run.config
    melanoma_fraction = float(labels.mean())
    return common.export_generator(
        RECIPE,
        run,
        state,
        generator,
        draw_inputs=lambda rng: draw_recalibration_batch(config, melanoma_fraction, rng),
        metadata_key=WEIGHTS_METADATA_KEY,
        metadata={"latent_size": config.latent_size, "generator_width": config.generator_width},
        grid=lambda: grid_samples(generator, config.sample_seed),
        plot=lambda path: plot_losses(path, state),
        log_fields=LOG_FIELDS,
        counts={
            "critic_steps": state.critic_steps,
            "image_count": int(labels.shape[0]),
            "class_counts": {name: int((labels == i).sum()) for i, name in enumerate(CONDITIONS)},
        },
        final_keys=CRITIC_LOSSES,
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
