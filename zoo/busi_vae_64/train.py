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
complete package there instead, leaving the committed files alone. The machinery shared by all
zoo recipes (checkpoints, log, export) is in ``zoo/recipe.py``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional

from zoo import recipe as common
from zoo.busi_vae_64.package.network import (
    LATENT_SIZE,
    OBSERVATION_STD_KEY,
    WEIGHTS_METADATA_KEY,
    Decoder,
    sample_latents,
    sample_noise,
    to_uint8,
)

RECIPE = common.Recipe.beside(
    __file__, "zoo/busi-vae-64", "data/breast-ultrasound-busi/breast_ultrasound_busi_64.npz"
)
# One image in five (index % 5 == 0) is held out, as evaluation.references.busi_heldout_mask.
HELDOUT_MODULUS = 5
SMOKE_IMAGES = 96
SMOKE_EPOCHS = 2
VAE_LOSSES = ("beta", "loss", "reconstruction", "kl")
LOG_FIELDS = ("epoch", "steps", *VAE_LOSSES, "epoch_seconds", "wall_time_seconds")
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
        """Read a config file (unknown keys are an error) and check it fits the package."""
        config = common.read_config(cls, path)
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


def load_train_images(path: Path) -> npt.NDArray[np.uint8]:
    """The 624 training images (index % 5 != 0) as uint8 (N, 64, 64); the rest stay held out."""
    with np.load(path, allow_pickle=False) as archive:
        all_images = np.asarray(archive["images"])
    keep = np.arange(len(all_images)) % HELDOUT_MODULUS != 0
    images: npt.NDArray[np.uint8] = np.ascontiguousarray(all_images[keep])
    return images


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


def sample(
    decoder: Decoder, latents: torch.Tensor, noise: torch.Tensor | None = None
) -> npt.NDArray[np.uint8]:
    """Images of ``decoder`` in eval mode for ``latents``, as the package would return them."""
    return common.sample_in_eval_mode(decoder, [latents], lambda logits: to_uint8(logits, noise))


def train(
    config: Config,
    images: npt.NDArray[np.uint8],
    out_dir: Path,
    *,
    smoke: bool,
    device: torch.device,
) -> tuple[Encoder, Decoder, common.RunState]:
    """Train (or continue training) into ``out_dir``; return both networks and the run's record."""
    torch.set_num_threads(config.torch_threads)
    common.seed_everything(config.seed)
    encoder = Encoder(config.latent_size, config.width).to(device)
    decoder = Decoder(config.latent_size, config.width).to(device)
    parameters = [*encoder.parameters(), *decoder.parameters()]
    optimiser = torch.optim.Adam(
        parameters, lr=config.learning_rate, weight_decay=config.weight_decay
    )
    parts: dict[str, common.Stateful] = {
        "encoder": encoder,
        "decoder": decoder,
        "optimiser": optimiser,
    }
    state = common.resume(
        out_dir,
        common.RunState,
        config=config,
        smoke=smoke,
        resumable=RESUMABLE_CHANGES,
        parts=parts,
        device=device,
    )

    data = torch.from_numpy(images).float().div(255.0).unsqueeze(1)
    fixed_latents = sample_latents(common.GRID_SIDE * common.GRID_SIDE, config.sample_seed)
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

        row = state.close_epoch(
            epoch,
            time.perf_counter() - started,
            {"beta": beta, **{key: value / steps_per_epoch for key, value in sums.items()}},
        )
        if epoch % 5 == 0 or epoch == config.epochs:
            common.grid_image(sample(decoder, fixed_latents)).save(
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
                f"epoch {epoch}/{config.epochs} steps {state.step} beta {beta:.3f} "
                f"loss {row['loss']:.1f} reconstruction {row['reconstruction']:.1f} "
                f"kl {row['kl']:.1f} {row['epoch_seconds']:.1f}s"
            ),
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


def plot_losses(path: Path, state: common.RunState) -> None:
    """Loss curve: reconstruction and KL per epoch, and the KL weight beta."""
    epochs = [row["epoch"] for row in state.rows]
    fig, (top, bottom) = common.pyplot_figure(2, (8, 6.5))
    top.plot(epochs, [r["reconstruction"] for r in state.rows], label="reconstruction (BCE)")
    top.plot(epochs, [r["loss"] for r in state.rows], label="loss = reconstruction + beta KL")
    top.set_ylabel("nats per image (epoch mean)")
    top.legend()
    top.set_title(f"{RECIPE.model_id}: convolutional VAE on BUSI (624 non-held-out images)")
    bottom.plot(
        epochs, [r["kl"] for r in state.rows], color="tab:green", label="KL(q(z|x) || p(z))"
    )
    bottom.set_ylabel("KL, nats per image")
    bottom.set_xlabel("epoch")
    twin = bottom.twinx()
    twin.plot(epochs, [r["beta"] for r in state.rows], color="tab:gray", linestyle="--")
    twin.set_ylabel("beta (dashed)")
    bottom.legend(loc="upper right")
    common.save_figure(fig, path)


def export(
    encoder: Encoder,
    decoder: Decoder,
    state: common.RunState,
    run: common.Invocation[Config],
    *,
    images: npt.NDArray[np.uint8],
) -> dict[str, Any]:
    """Write the package weights, card numbers, log, summary, loss curve and sample grid."""
    config = run.config
    package_dir = common.prepare_package_dir(RECIPE, run.export_dir)
    # float16 storage halves the file; the package computes in float32.
    tensors = {
        name: (t.half() if t.is_floating_point() else t).detach().to("cpu").contiguous()
        for name, t in decoder.state_dict().items()
    }
    decoder.load_state_dict(tensors)  # the grid below then shows exactly the shipped weights
    std = observation_std(encoder, decoder, images)
    tensors[OBSERVATION_STD_KEY] = std.contiguous()
    common.save_torch_weights(
        tensors,
        package_dir / common.WEIGHTS_NAME,
        WEIGHTS_METADATA_KEY,
        {
            "model_id": RECIPE.model_id,
            "latent_size": config.latent_size,
            "width": config.width,
            "epochs": state.epoch,
        },
    )
    count = common.GRID_SIDE * common.GRID_SIDE
    latents = sample_latents(count, config.sample_seed)
    noise = sample_noise(count, config.sample_seed) * std
    common.grid_image(sample(decoder, latents, noise)).save(run.export_dir / "samples.png")
    common.grid_image(sample(decoder, latents)).save(run.export_dir / "samples_mean.png")
    plot_losses(run.export_dir / "loss_curve.png", state)
    common.write_log(run.export_dir / common.LOG_NAME, LOG_FIELDS, state.rows)
    return common.write_record(
        RECIPE,
        run,
        state,
        package_dir=package_dir,
        counts={
            "image_count": len(images),
            "observation_std_mean": round(float(std.mean()), 3),
        },
        results={
            "final_epoch": common.final_means(state.rows, VAE_LOSSES),
            "decoder_parameters": sum(p.numel() for p in decoder.parameters()),
        },
        weights_dtype="float16",
        split="all minus held-out (index % 5 != 0)",
    )


def train_and_export(run: common.Invocation[Config]) -> dict[str, Any]:
    """Train on the non-held-out images (a subset for a smoke run), then export."""
    images = load_train_images(run.data_file)
    images = images[run.chosen(len(images), SMOKE_IMAGES)]
    encoder, decoder, state = train(
        run.config, images, run.out_dir, smoke=run.smoke, device=run.device
    )
    return export(encoder, decoder, state, run, images=images)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the recipe; see the module docstring."""
    return common.main(RECIPE, argv, __doc__, Config.from_json, SMOKE_EPOCHS, train_and_export)


if __name__ == "__main__":
    raise SystemExit(main())
