"""The machinery every zoo training recipe shares, so that a recipe holds only its model.

A recipe (``zoo/<name>/train.py``) defines its networks, its training step and what its
summary reports; this module gives it the rest, the same for every model:

- the command: ``Recipe`` (model id, folders, data file, command), ``main`` and ``start``
  (``--config``, ``--out``, ``--smoke``, ``--epochs``, ``--device``, ``--export-dir``; the
  folders; the training data under ``shared_dir()``) and the run they describe, ``Invocation``
  (including a smoke run's image subset, ``Invocation.chosen``);
- settings and seeding: ``read_config`` (``config.json`` into the recipe's frozen dataclass,
  unknown keys refused), ``seed_everything``, ``epoch_order`` and the global RNG states a
  checkpoint carries;
- checkpoints and the log: ``RunState`` (the run's record), ``resume`` (refuses a checkpoint of
  other settings), ``save_checkpoint`` (atomic), ``RunState.close_epoch``, ``end_epoch`` and
  ``write_log`` (``training_log.csv``);
- adversarial training: ``Adversaries`` (two networks, their Adam optimisers and an optional
  moving average), ``gan_epoch`` and ``run_gan_epochs`` (non-saturating loss, optional
  differentiable augmentation), ``update_average``, ``init_dcgan_weights``;
- export: ``export_generator`` (BatchNorm recalibration, deterministic safetensors weights, the
  sample grid, the loss curve, the log, the summary and the card), or its parts for recipes that
  export otherwise: ``prepare_package_dir``, ``save_network_weights``, ``save_torch_weights``,
  ``save_numpy_weights``, ``recalibrate_batchnorm``, ``sample_in_eval_mode``, ``grid_image``,
  ``plot_gan_losses`` and ``write_record`` (``training_summary.json`` and the card's provenance).

torch is imported inside the functions that need it: the PCA recipe runs on numpy alone.
Nothing here draws random numbers unless its docstring says so, so moving a recipe's code
into these functions left the order of its random draws, and hence its weights, unchanged.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TypeVar, cast

import numpy as np
import numpy.typing as npt
from PIL import Image

if TYPE_CHECKING:
    import torch
    from _typeshed import DataclassInstance
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
GRID_SIDE = 8
GRID_PAD = 2
CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "training_log.csv"
SUMMARY_NAME = "training_summary.json"
WEIGHTS_NAME = "weights.safetensors"

if TYPE_CHECKING:

    class RecipeConfig(DataclassInstance, Protocol):
        """A recipe's frozen settings dataclass; every one has a seed."""

        @property
        def seed(self) -> int:
            """The seed of the run's random draws."""

    class GanConfig(RecipeConfig, Protocol):
        """The settings ``run_gan_epochs`` reads."""

        @property
        def epochs(self) -> int:
            """How many epochs the run trains in all."""

        @property
        def batch_size(self) -> int:
            """Images per step."""

        @property
        def latent_size(self) -> int:
            """The generator's latent size."""


ConfigT = TypeVar("ConfigT", bound="RecipeConfig")


class Stateful(Protocol):
    """What a checkpoint stores and restores: a network or an optimiser."""

    def state_dict(self) -> Any:
        """The object's state, as torch.save can write it."""

    def load_state_dict(self, state_dict: Any, /) -> Any:
        """Restore what ``state_dict`` returned."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What names one recipe: its folder under ``zoo/``, its model id and its training data."""

    recipe_dir: Path
    model_id: str
    # the training archive, relative to the shared folder
    data_file: Path
    # the package's source files, copied next to the weights a smoke run exports
    package_sources: tuple[str, ...] = ("__init__.py", "network.py")

    @classmethod
    def beside(
        cls,
        train_file: str,
        model_id: str,
        data_file: str,
        package_sources: tuple[str, ...] = ("__init__.py", "network.py"),
    ) -> Recipe:
        """The recipe whose ``train.py`` is ``train_file`` (pass ``__file__``)."""
        return cls(Path(train_file).resolve().parent, model_id, Path(data_file), package_sources)

    @property
    def name(self) -> str:
        """The folder's (and the Python package's) name, e.g. ``busi_gan_128``."""
        return self.recipe_dir.name

    @property
    def package_dir(self) -> Path:
        """The committed v2 package: card, code and weights."""
        return self.recipe_dir / "package"

    @property
    def recipe(self) -> str:
        """The recipe file relative to the repository root, as cards and summaries cite it."""
        return f"zoo/{self.name}/train.py"

    @property
    def command(self) -> str:
        """The command that runs the recipe from the repository root."""
        return f"python -m zoo.{self.name}.train"

    def data_path(self) -> Path:
        """Where the training archive is expected."""
        return shared_dir() / self.data_file

    def default_out_dir(self) -> Path:
        """Where a full run keeps its checkpoint (git-ignored)."""
        return REPO_ROOT / "var" / "zoo" / self.name


def shared_dir() -> Path:
    """The shared folder: ``$MEDIGAN_SHARED_DIR`` if set, else ``<repo root>/../shared``."""
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


# --- settings and the command line ---------------------------------------------------------


def read_config(config_type: type[ConfigT], path: Path) -> ConfigT:
    """Read ``config.json`` into the recipe's dataclass.

    Unknown keys are an error so that typos do not pass silently; lists become tuples where the
    field's default is a tuple (JSON has no tuples, and frozen configs must stay hashable).
    """
    raw = json.loads(path.read_text(encoding="utf-8"))
    fields = {field.name: field for field in dataclasses.fields(config_type)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise SystemExit(f"{path}: unknown config keys {unknown}")
    for key, value in raw.items():
        if isinstance(value, list) and isinstance(fields[key].default, tuple):
            raw[key] = tuple(value)
    return config_type(**raw)


def parse_args(
    recipe: Recipe, argv: Sequence[str] | None, description: str | None, *, trains: bool = True
) -> argparse.Namespace:
    """The recipe's command line: ``--config``, ``--out``, ``--smoke``, ``--export-dir``, and
    for recipes that train in epochs (``trains``) also ``--epochs`` and ``--device``."""
    parser = argparse.ArgumentParser(
        prog=recipe.command, description=(description or "").split("\n\n")[0]
    )
    parser.add_argument("--config", type=Path, default=recipe.recipe_dir / "config.json")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"checkpoint and progress files (default: var/zoo/{recipe.name}, or a new "
        "temporary directory with --smoke)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a few steps on a small subset" if trains else "fit a small subset",
    )
    if trains:
        parser.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
        parser.add_argument(
            "--device", default="cpu", help="torch device to train on (default cpu)"
        )
    parser.add_argument(
        "--export-dir",
        type=Path,
        default=None,
        help="where the artifacts go (default: beside this file; with --smoke: --out)",
    )
    return parser.parse_args(argv)


def with_epochs(config: ConfigT, args: argparse.Namespace, smoke_epochs: int) -> ConfigT:
    """The config with ``epochs`` replaced: ``smoke_epochs`` for a smoke run, then ``--epochs``."""
    if args.smoke:
        config = dataclasses.replace(config, epochs=smoke_epochs)
    if args.epochs is not None:
        config = dataclasses.replace(config, epochs=args.epochs)
    return config


def output_dirs(recipe: Recipe, args: argparse.Namespace) -> tuple[Path, Path]:
    """The checkpoint folder (created) and the export folder of this invocation.

    Without ``--out`` a full run uses ``var/zoo/<name>`` and a smoke run a new temporary folder;
    a smoke run exports into its checkpoint folder, a full run beside ``train.py``.
    """
    if args.out is not None:
        out_dir: Path = args.out
    elif args.smoke:
        prefix = recipe.model_id.split("/", 1)[1] + "-smoke-"
        out_dir = Path(tempfile.mkdtemp(prefix=prefix))
    else:
        out_dir = recipe.default_out_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    export_dir: Path = args.export_dir or (out_dir if args.smoke else recipe.recipe_dir)
    return out_dir, export_dir


def training_data(recipe: Recipe) -> Path | None:
    """The training archive's path, or None (after saying so on stderr) when it is missing."""
    path = recipe.data_path()
    if not path.exists():
        print(f"training data not found at {path}; set MEDIGAN_SHARED_DIR", file=sys.stderr)
        return None
    return path


def smoke_subset(count: int, seed: int, size: int) -> npt.NDArray[np.int64]:
    """Sorted indices of the ``size`` images a smoke run trains on, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    chosen: npt.NDArray[np.int64] = np.sort(rng.choice(count, size, replace=False))
    return chosen


def modified_at(path: Path) -> dt.datetime:
    """When ``path`` was last written, in UTC: a finished run re-exported keeps its date."""
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)


@dataclasses.dataclass(frozen=True)
class Invocation(Generic[ConfigT]):
    """One run of a recipe as its command line asked for it."""

    config: ConfigT
    smoke: bool
    out_dir: Path
    export_dir: Path
    data_file: Path
    # the torch device to train on; None for recipes that do not train in epochs
    device_name: str | None

    @property
    def device(self) -> torch.device:
        """The torch device to train on."""
        import torch

        return torch.device(self.device_name or "cpu")

    @property
    def hardware(self) -> str:
        """The one-line description of this machine that the summary and the card record."""
        return hardware_description(None if self.device_name is None else self.device)

    def trained_at(self, checkpoint_name: str = CHECKPOINT_NAME) -> dt.datetime:
        """When the run's checkpoint was last written (a re-exported run keeps its date)."""
        return modified_at(self.out_dir / checkpoint_name)

    def announce(self, image_count: int) -> None:
        """Say what the run trains on and where it writes."""
        print(
            f"{image_count} training images, out {self.out_dir}, export {self.export_dir}",
            flush=True,
        )

    def chosen(self, count: int, smoke_size: int) -> npt.NDArray[np.int64]:
        """Indices of the ``count`` loaded images the run trains on, announced: all of them, or
        for a smoke run ``smoke_size`` drawn from the config's seed (``smoke_subset``)."""
        if self.smoke:
            indices = smoke_subset(count, self.config.seed, smoke_size)
        else:
            indices = np.arange(count, dtype=np.int64)
        self.announce(len(indices))
        return indices


def start(
    recipe: Recipe,
    argv: Sequence[str] | None,
    description: str | None,
    read_settings: Callable[[Path], ConfigT],
    smoke_epochs: int | None,
) -> Invocation[ConfigT] | None:
    """Parse the command line, read the config and prepare the folders of one run.

    ``smoke_epochs`` is the epochs of a smoke run, or None for a recipe without epochs (no
    ``--epochs`` and ``--device`` options). Returns None, having said why on stderr, when the
    training data are missing.
    """
    args = parse_args(recipe, argv, description, trains=smoke_epochs is not None)
    config = read_settings(args.config)
    if smoke_epochs is not None:
        config = with_epochs(config, args, smoke_epochs)
    out_dir, export_dir = output_dirs(recipe, args)
    data_file = training_data(recipe)
    if data_file is None:
        return None
    return Invocation(
        config=config,
        smoke=bool(args.smoke),
        out_dir=out_dir,
        export_dir=export_dir,
        data_file=data_file,
        device_name=getattr(args, "device", None),
    )


def main(
    recipe: Recipe,
    argv: Sequence[str] | None,
    description: str | None,
    read_settings: Callable[[Path], ConfigT],
    smoke_epochs: int | None,
    train_and_export: Callable[[Invocation[ConfigT]], Mapping[str, Any]],
    reported: Sequence[str] = ("epochs", "steps", "wall_time_seconds"),
) -> int:
    """A recipe's command: ``start`` the run, ``train_and_export`` it, print the summary's
    ``reported`` entries; 2 when the training data are missing, else 0."""
    run = start(recipe, argv, description, read_settings, smoke_epochs)
    if run is None:
        return 2
    print_summary(train_and_export(run), reported)
    return 0


def print_summary(summary: Mapping[str, Any], keys: Iterable[str]) -> None:
    """Print the summary's ``keys`` as one JSON line, the recipe's last word."""
    print(json.dumps({key: summary[key] for key in keys}), flush=True)


# --- seeding --------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed python's random, numpy's global RNG and torch's global RNG."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_order(seed: int, epoch: int, count: int) -> npt.NDArray[np.int64]:
    """The order in which epoch ``epoch`` visits the images: a function of the seed alone."""
    order: npt.NDArray[np.int64] = np.random.default_rng([seed, epoch]).permutation(count)
    return order


def rng_states() -> dict[str, Any]:
    """The global RNG states in a form ``torch.load(weights_only=True)`` accepts."""
    import torch

    legacy = cast(tuple[str, npt.NDArray[np.uint32], int, int, float], np.random.get_state())
    name, key, pos, has_gauss, cached = legacy
    return {
        "python": random.getstate(),
        "numpy": (name, key.tolist(), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }


def set_rng_states(states: Mapping[str, Any]) -> None:
    """Restore what ``rng_states`` saved."""
    import torch

    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, key, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])


# --- checkpoints and the log ----------------------------------------------------------------


@dataclasses.dataclass
class RunState:
    """The run's record that a checkpoint carries besides networks, optimisers and RNG states.

    ``rows`` are the per-epoch log rows; ``step_losses`` the per-step losses the loss curve
    plots (one tuple per step). A recipe that counts more (a critic's steps) subclasses it with
    more int fields; every field is saved and restored.
    """

    epoch: int = 0
    step: int = 0
    wall_time_seconds: float = 0.0
    rows: list[dict[str, float]] = dataclasses.field(default_factory=list)
    step_losses: list[tuple[float, ...]] = dataclasses.field(default_factory=list)

    def to_checkpoint(self) -> dict[str, Any]:
        """The fields as checkpoint entries."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_checkpoint(cls, checkpoint: Mapping[str, Any]) -> Self:
        """The state ``to_checkpoint`` saved (fields it lacks keep their defaults)."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name not in checkpoint:
                continue
            saved = checkpoint[field.name]
            if field.name == "rows":
                values[field.name] = [dict(row) for row in saved]
            elif field.name == "step_losses":
                values[field.name] = [tuple(float(v) for v in losses) for losses in saved]
            elif field.name == "wall_time_seconds":
                values[field.name] = float(saved)
            else:
                values[field.name] = int(saved)
        return cls(**values)

    def close_epoch(
        self, epoch: int, epoch_seconds: float, values: Mapping[str, float]
    ) -> dict[str, float]:
        """Count the finished epoch in and append its log row (``values`` are its means)."""
        self.wall_time_seconds += epoch_seconds
        self.epoch = epoch
        row: dict[str, float] = {
            "epoch": epoch,
            "steps": self.step,
            **values,
            "epoch_seconds": epoch_seconds,
            "wall_time_seconds": self.wall_time_seconds,
        }
        self.rows.append(row)
        return row


StateT = TypeVar("StateT", bound=RunState)


def changed_settings(
    saved: Mapping[str, Any], current: Mapping[str, Any], resumable: Iterable[str]
) -> list[str]:
    """The settings, other than the ``resumable`` ones, in which ``current`` differs from
    ``saved`` (lists and tuples compare alike)."""
    allowed = frozenset(resumable)
    changed = []
    for key, value in current.items():
        before = saved.get(key)
        if isinstance(before, list):
            before = tuple(before)
        if key not in allowed and before != value:
            changed.append(key)
    return sorted(changed)


def resume(
    out_dir: Path,
    state_type: type[StateT],
    *,
    config: DataclassInstance,
    smoke: bool,
    resumable: Iterable[str],
    parts: Mapping[str, Stateful],
    device: torch.device,
) -> StateT:
    """Load ``out_dir``'s checkpoint into ``parts`` and return its run state, if there is one.

    A checkpoint written with other settings (other than the ``resumable`` ones) or by the
    other kind of run (smoke or full) is refused. The global RNG states are restored when the
    checkpoint has them. Without a checkpoint a fresh ``state_type()`` is returned.
    """
    import torch

    path = out_dir / CHECKPOINT_NAME
    if not path.exists():
        return state_type()
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    changed = changed_settings(checkpoint["config"], dataclasses.asdict(config), resumable)
    if changed or checkpoint["smoke"] != smoke:
        raise SystemExit(
            f"{path} was written with other settings ({changed or 'smoke'}); "
            "use another --out or delete the checkpoint"
        )
    for name, part in parts.items():
        part.load_state_dict(checkpoint[name])
    if "rng" in checkpoint:
        set_rng_states(checkpoint["rng"])
    state = state_type.from_checkpoint(checkpoint)
    print(f"resuming from {path} after epoch {state.epoch}", flush=True)
    return state


def save_checkpoint(
    out_dir: Path,
    state: RunState,
    *,
    config: DataclassInstance,
    smoke: bool,
    parts: Mapping[str, Stateful],
    with_rng: bool = True,
) -> None:
    """Write ``checkpoint.pt`` atomically: settings, run state, ``parts`` and the RNG states.

    ``with_rng`` is off for recipes that draw every random number of an epoch from a generator
    seeded by the epoch, so that nothing global needs restoring.
    """
    payload: dict[str, Any] = {
        "config": dataclasses.asdict(config),
        "smoke": smoke,
        **state.to_checkpoint(),
        **{name: part.state_dict() for name, part in parts.items()},
    }
    if with_rng:
        payload["rng"] = rng_states()
    save_atomically(payload, out_dir / CHECKPOINT_NAME)


def save_atomically(payload: Mapping[str, Any], path: Path) -> None:
    """torch.save to a temporary file and rename it: an interrupted save leaves no half file."""
    import torch

    partial = path.with_suffix(path.suffix + ".partial")
    torch.save(dict(payload), partial)
    partial.replace(path)


def write_log(
    path: Path,
    fields: Sequence[str],
    rows: Iterable[Mapping[str, object]],
    float_format: str = ".6f",
) -> None:
    """Write log rows as CSV with the columns ``fields``; floats with ``float_format``."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    key: (format(value, float_format) if isinstance(value, float) else value)
                    for key, value in row.items()
                }
            )


# --- networks -------------------------------------------------------------------------------

GAN_LOSSES = ("loss_d", "loss_g", "d_real", "d_fake")
GAN_LOG_FIELDS = ("epoch", "steps", *GAN_LOSSES, "epoch_seconds", "wall_time_seconds")


def gan_epoch(
    state: RunState,
    *,
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    data: torch.Tensor,
    order: torch.Tensor,
    batch: int,
    latent_size: int,
    device: torch.device,
    labels: torch.Tensor | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    after_step: Callable[[], None] | None = None,
) -> dict[str, float]:
    """One epoch of the non-saturating GAN game; returns the epoch means of ``GAN_LOSSES``.

    Each step takes the next ``batch`` images of ``order`` (a last partial batch is dropped:
    BatchNorm wants full ones), draws latents from torch's global RNG, updates the
    discriminator on real and detached fake images, then the generator through the updated
    discriminator. With ``labels`` both networks get each image's label as a second input, and
    the fakes take the real batch's labels, so generated classes follow the data's. With
    ``augment`` every batch the discriminator sees, real or fake, in both updates, goes through
    it first (differentiable augmentation). ``after_step`` runs after each step's updates (to
    average the generator's weights, say). ``state`` counts the steps and keeps their losses.
    """
    import torch
    from torch import nn

    loss_fn = nn.BCEWithLogitsLoss()
    ones = torch.ones(batch, device=device)
    zeros = torch.zeros(batch, device=device)
    seen = augment if augment is not None else (lambda images: images)
    generator.train()
    discriminator.train()
    sums = dict.fromkeys(GAN_LOSSES, 0.0)
    steps = len(data) // batch
    for index in range(steps):
        chosen = order[index * batch : (index + 1) * batch]
        real = data[chosen].to(device)
        condition = [] if labels is None else [labels[chosen].to(device)]
        fake = generator(torch.randn(batch, latent_size).to(device), *condition)

        opt_d.zero_grad(set_to_none=True)
        logits_real = discriminator(seen(real), *condition)
        logits_fake = discriminator(seen(fake.detach()), *condition)
        loss_d = loss_fn(logits_real, ones) + loss_fn(logits_fake, zeros)
        loss_d.backward()
        opt_d.step()

        opt_g.zero_grad(set_to_none=True)
        loss_g = loss_fn(discriminator(seen(fake), *condition), ones)
        loss_g.backward()
        opt_g.step()

        state.step += 1
        state.step_losses.append((loss_d.item(), loss_g.item()))
        sums["loss_d"] += loss_d.item()
        sums["loss_g"] += loss_g.item()
        sums["d_real"] += torch.sigmoid(logits_real).mean().item()
        sums["d_fake"] += torch.sigmoid(logits_fake).mean().item()
        if after_step is not None:
            after_step()
    return {key: value / steps for key, value in sums.items()}


@dataclasses.dataclass
class Adversaries:
    """A GAN's two networks and their optimisers, as a run trains and checkpoints them.

    ``average`` is an exponential moving average of the generator's weights, for recipes that
    ship that instead of the last weights.
    """

    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    discriminator_name: str = "discriminator"
    average: nn.Module | None = None

    @classmethod
    def with_adam(
        cls,
        generator: nn.Module,
        discriminator: nn.Module,
        *,
        device: torch.device,
        learning_rates: tuple[float, float],
        betas: tuple[float, float],
        discriminator_name: str = "discriminator",
        average: bool = False,
    ) -> Adversaries:
        """Move both networks to ``device`` and give each an Adam optimiser (generator's learning
        rate first); with ``average`` also keep a moving average of the generator."""
        import copy

        import torch

        generator.to(device)
        discriminator.to(device)
        averaged = copy.deepcopy(generator).requires_grad_(False) if average else None
        rate_g, rate_d = learning_rates
        return cls(
            generator=generator,
            discriminator=discriminator,
            opt_g=torch.optim.Adam(generator.parameters(), lr=rate_g, betas=betas),
            opt_d=torch.optim.Adam(discriminator.parameters(), lr=rate_d, betas=betas),
            discriminator_name=discriminator_name,
            average=averaged,
        )

    @property
    def parts(self) -> dict[str, Stateful]:
        """What a checkpoint stores, by name."""
        parts: dict[str, Stateful] = {
            "generator": self.generator,
            self.discriminator_name: self.discriminator,
            "opt_g": self.opt_g,
            "opt_d": self.opt_d,
        }
        if self.average is not None:
            parts["average"] = self.average
        return parts


def run_gan_epochs(
    adversaries: Adversaries,
    state: RunState,
    *,
    config: GanConfig,
    data: torch.Tensor,
    out_dir: Path,
    smoke: bool,
    device: torch.device,
    log_fields: Sequence[str] = GAN_LOG_FIELDS,
    labels: torch.Tensor | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ema_decay: float = 0.999,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Train the epochs after ``state.epoch`` up to ``config.epochs`` with ``gan_epoch``.

    Each epoch visits ``data`` in ``epoch_order``; afterwards ``progress(epoch)`` may save a
    progress grid, and the checkpoint and the log are written. A moving average of the generator,
    if the adversaries keep one, is updated after every step with decay ``ema_decay``.
    """
    import torch

    after_step = None
    average = adversaries.average
    if average is not None:

        def after_step() -> None:
            # state.step was counted already: the first update uses step 0's decay
            update_average(average, adversaries.generator, ema_decay, state.step - 1)

    for epoch in range(state.epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        means = gan_epoch(
            state,
            generator=adversaries.generator,
            discriminator=adversaries.discriminator,
            opt_g=adversaries.opt_g,
            opt_d=adversaries.opt_d,
            data=data,
            order=torch.from_numpy(epoch_order(config.seed, epoch, len(data))),
            batch=config.batch_size,
            latent_size=config.latent_size,
            device=device,
            labels=labels,
            augment=augment,
            after_step=after_step,
        )
        row = state.close_epoch(epoch, time.perf_counter() - started, means)
        if progress is not None:
            progress(epoch)
        end_epoch(
            out_dir,
            state,
            config=config,
            smoke=smoke,
            parts=adversaries.parts,
            log_fields=log_fields,
            message=gan_epoch_message(row, config.epochs),
        )


def gan_epoch_message(row: Mapping[str, float], epochs: int) -> str:
    """The progress line of a GAN epoch's log ``row``."""
    return (
        f"epoch {row['epoch']}/{epochs} steps {row['steps']} loss_d {row['loss_d']:.4f} "
        f"loss_g {row['loss_g']:.4f} D(x) {row['d_real']:.3f} D(G(z)) {row['d_fake']:.3f} "
        f"{row['epoch_seconds']:.1f}s"
    )


def end_epoch(
    out_dir: Path,
    state: RunState,
    *,
    config: DataclassInstance,
    smoke: bool,
    parts: Mapping[str, Stateful],
    log_fields: Sequence[str],
    message: str,
    with_rng: bool = True,
) -> None:
    """After an epoch: write the checkpoint and the log, and print the progress ``message``."""
    save_checkpoint(out_dir, state, config=config, smoke=smoke, parts=parts, with_rng=with_rng)
    write_log(out_dir / LOG_NAME, log_fields, state.rows)
    print(message, flush=True)


def init_dcgan_weights(
    module: nn.Module, std: float = 0.02, *, transposed_only: bool = False
) -> None:
    """DCGAN initialisation: convolution and linear weights N(0, std), BatchNorm scale N(1, std)
    and shift 0.

    ``transposed_only`` leaves plain convolutions and linear layers at PyTorch's default
    initialisation.
    """
    from torch import nn

    weighted = (
        (nn.ConvTranspose2d,) if transposed_only else (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    )
    if isinstance(module, weighted):
        nn.init.normal_(module.weight, 0.0, std)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, std)
        nn.init.zeros_(module.bias)


def update_average(average: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """Move ``average``'s parameters towards ``model``'s: an exponential moving average (EMA).

    The decay warms up as min(decay, (1 + step) / (10 + step)), the usual schedule, so the random
    initial weights fade out within the first steps instead of lingering for 1 / (1 - decay) of
    them. Buffers (BatchNorm statistics) are not averaged; a recipe that ships BatchNorm
    recalibrates them on the averaged weights.
    """
    import torch

    rate = 1.0 - min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for target, source in zip(average.parameters(), model.parameters(), strict=True):
            target.lerp_(source, rate)


def recalibrate_batchnorm(
    network: nn.Module,
    batches: int,
    seed: int,
    draw_inputs: Callable[[torch.Generator], Sequence[torch.Tensor]],
) -> None:
    """Replace the BatchNorm running statistics by exact averages over fresh generated batches.

    During training the running statistics trail a moving network (momentum 0.1); the package
    runs in eval mode, so it gets statistics of the final weights, averaged over ``batches``
    batches in train mode. ``draw_inputs`` draws one batch of inputs (on the CPU) from a
    generator seeded by ``seed``, the batches the network saw in training.
    """
    import torch
    from torch import nn

    norms = [module for module in network.modules() if isinstance(module, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    rng = torch.Generator(device="cpu")
    rng.manual_seed(seed)
    device = next(network.parameters()).device
    network.train()
    with torch.inference_mode():
        for _ in range(batches):
            network(*(tensor.to(device) for tensor in draw_inputs(rng)))
    for norm in norms:
        norm.momentum = 0.1
    network.eval()


def sample_in_eval_mode(
    network: nn.Module,
    inputs: Sequence[torch.Tensor],
    to_uint8: Callable[[torch.Tensor], npt.NDArray[np.uint8]],
) -> npt.NDArray[np.uint8]:
    """``to_uint8(network(*inputs))`` in eval mode, as the package computes it; the network's
    mode is restored afterwards."""
    import torch

    was_training = network.training
    network.eval()
    device = next(network.parameters()).device
    with torch.inference_mode():
        images = to_uint8(network(*(tensor.to(device) for tensor in inputs)))
    network.train(was_training)
    return images


# --- export ---------------------------------------------------------------------------------


def prepare_package_dir(recipe: Recipe, export_dir: Path) -> Path:
    """``export_dir/package``, created; outside the committed package it gets the sources too."""
    package_dir = export_dir / "package"
    package_dir.mkdir(parents=True, exist_ok=True)
    if package_dir.resolve() != recipe.package_dir:
        for name in recipe.package_sources:
            shutil.copyfile(recipe.package_dir / name, package_dir / name)
    return package_dir


def save_torch_weights(
    tensors: Mapping[str, torch.Tensor], path: Path, metadata_key: str, metadata: object
) -> None:
    """Write ``tensors`` as safetensors with ``metadata`` as JSON under one key, readable by all.

    One metadata key: safetensors writes several in hash order, which would make the bytes (and
    the sha256 the hub pins) differ between identical runs.
    """
    from safetensors.torch import save_file

    save_file(
        dict(tensors), str(path), metadata={metadata_key: json.dumps(metadata, sort_keys=True)}
    )
    path.chmod(0o644)  # safetensors creates it owner-only; it is meant to be shared


def save_network_weights(
    network: nn.Module,
    path: Path,
    metadata_key: str,
    metadata: object,
    *,
    half: bool = False,
) -> dict[str, torch.Tensor]:
    """Write ``network``'s state (on the CPU) as the package weights; return the tensors.

    ``half`` stores floating-point tensors as float16, halving the file (the package computes in
    float32); the network then gets the rounded values too, so that what the recipe samples
    afterwards is exactly what ships.
    """
    tensors = {
        name: (t.half() if half and t.is_floating_point() else t).detach().to("cpu").contiguous()
        for name, t in network.state_dict().items()
    }
    if half:
        network.load_state_dict(tensors)
    save_torch_weights(tensors, path, metadata_key, metadata)
    return tensors


SMOKE_RECALIBRATION_BATCHES = 4


def export_generator(
    recipe: Recipe,
    run: Invocation[Any],
    state: RunState,
    generator: nn.Module,
    *,
    draw_inputs: Callable[[torch.Generator], Sequence[torch.Tensor]],
    metadata_key: str,
    metadata: Mapping[str, object],
    grid: Callable[[], npt.NDArray[np.uint8]],
    plot: Callable[[Path], None],
    counts: Mapping[str, object],
    log_fields: Sequence[str] = GAN_LOG_FIELDS,
    final_keys: Sequence[str] = GAN_LOSSES,
    weights_dtype: str = "float32",
    split: str = "train",
    half: bool = False,
    after_weights: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """Export a model whose package ships a BatchNorm generator; return the summary.

    The generator's BatchNorm statistics are recalibrated (``recalibrate_batchnorm`` over the
    config's ``bn_recalibration_batches``, a few for a smoke run, inputs from ``draw_inputs``
    seeded by the config's seed + 1), its weights written with ``metadata`` (plus the model id
    and the epochs), then the sample ``grid``, the loss curve (``plot``), the log, the summary
    (``counts``; the final epoch's ``final_keys`` and the generator's parameter count as results)
    and the card.
    """
    package_dir = prepare_package_dir(recipe, run.export_dir)
    batches = SMOKE_RECALIBRATION_BATCHES if run.smoke else run.config.bn_recalibration_batches
    recalibrate_batchnorm(generator, batches, run.config.seed + 1, draw_inputs)
    save_network_weights(
        generator,
        package_dir / WEIGHTS_NAME,
        metadata_key,
        {"model_id": recipe.model_id, **metadata, "epochs": state.epoch},
        half=half,
    )
    grid_image(grid()).save(run.export_dir / "samples.png")
    plot(run.export_dir / "loss_curve.png")
    write_log(run.export_dir / LOG_NAME, log_fields, state.rows)
    return write_record(
        recipe,
        run,
        state,
        package_dir=package_dir,
        counts=counts,
        results={
            "final_epoch": final_means(state.rows, final_keys),
            "generator_parameters": sum(p.numel() for p in generator.parameters()),
        },
        weights_dtype=weights_dtype,
        split=split,
        after_weights=after_weights,
    )


def save_numpy_weights(
    arrays: Mapping[str, npt.NDArray[Any]], path: Path, metadata_key: str, metadata: object
) -> None:
    """``save_torch_weights`` for numpy arrays."""
    from safetensors.numpy import save_file

    save_file(
        dict(arrays), str(path), metadata={metadata_key: json.dumps(metadata, sort_keys=True)}
    )
    path.chmod(0o644)


def cpu_model() -> str:
    """The CPU model name (Linux /proc/cpuinfo), else whatever platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def hardware_description(device: torch.device | None) -> str:
    """A one-line description of the machine a run used; ``None`` for a numpy-only fit."""
    machine = (
        f"{os.cpu_count()} logical CPUs; {platform.system()} {platform.release()} "
        f"{platform.machine()}; Python {platform.python_version()}"
    )
    if device is None:
        return f"CPU {cpu_model()}; {machine}; numpy {np.__version__}"
    import torch

    if device.type == "cuda":
        accelerator = f"GPU {torch.cuda.get_device_name(device)}"
    else:
        accelerator = f"CPU {cpu_model()}, {torch.get_num_threads()} torch threads"
    return f"{accelerator}; {machine}; torch {torch.__version__}"


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
    """Tile ``side * side`` uint8 images, grey (N, H, W) or RGB (N, H, W, 3), row by row with
    ``pad`` black pixels around."""
    height, width = images.shape[1:3]
    canvas = np.zeros(
        (side * (height + pad) + pad, side * (width + pad) + pad, *images.shape[3:]), dtype=np.uint8
    )
    for index, image in enumerate(images[: side * side]):
        row, col = divmod(index, side)
        top, left = pad + row * (height + pad), pad + col * (width + pad)
        canvas[top : top + height, left : left + width] = image
    return Image.fromarray(canvas, mode="RGB" if images.ndim == 4 else "L")


def pyplot_figure(rows: int, figsize: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    """A matplotlib figure (Agg backend, no display needed) with ``rows`` stacked axes that
    share the x axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=figsize, sharex=True, squeeze=False)
    return fig, [axis for (axis,) in axes]


def save_figure(fig: Figure, path: Path) -> None:
    """Write the figure as PNG at 100 dpi and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_gan_losses(
    path: Path,
    state: RunState,
    *,
    title: str,
    loss_label: str = "BCE loss (steps faint, epoch means bold)",
    real_label: str = "mean D(x), real",
    fake_label: str = "mean D(G(z)), fake",
    marker: str = "o-",
) -> None:
    """Loss curve of a GAN whose log rows carry loss_d, loss_g, d_real and d_fake: per-step
    (faint) and per-epoch losses on top, the discriminator's mean outputs below."""
    steps = np.arange(1, len(state.step_losses) + 1)
    losses = np.asarray(state.step_losses, dtype=np.float64).reshape(-1, 2)
    steps_per_epoch = state.step // max(state.epoch, 1)
    epoch_steps = [row["epoch"] * steps_per_epoch for row in state.rows]
    fig, (top, bottom) = pyplot_figure(2, (8, 6.5))
    top.plot(steps, losses[:, 0], color="tab:blue", alpha=0.25, linewidth=0.7)
    top.plot(steps, losses[:, 1], color="tab:orange", alpha=0.25, linewidth=0.7)
    top.plot(
        epoch_steps, [r["loss_d"] for r in state.rows], marker, color="tab:blue", label="D loss"
    )
    top.plot(
        epoch_steps, [r["loss_g"] for r in state.rows], marker, color="tab:orange", label="G loss"
    )
    top.set_ylabel(loss_label)
    top.legend()
    top.set_title(title)
    bottom.plot(epoch_steps, [r["d_real"] for r in state.rows], marker, label=real_label)
    bottom.plot(epoch_steps, [r["d_fake"] for r in state.rows], marker, label=fake_label)
    bottom.set_ylim(0.0, 1.0)
    bottom.set_xlabel("generator step")
    bottom.set_ylabel("discriminator output")
    bottom.legend()
    save_figure(fig, path)


def summary_head(
    recipe: Recipe,
    *,
    smoke: bool,
    seed: int,
    epochs: int,
    steps: int,
    counts: Mapping[str, object],
    wall_time_seconds: float,
    hardware: str,
    trained_at: dt.datetime,
) -> dict[str, Any]:
    """The first entries of ``training_summary.json``, the same in every recipe; ``counts``
    (image count, class counts, ...) go between the steps and the wall time."""
    return {
        "model_id": recipe.model_id,
        "recipe": recipe.recipe,
        "command": recipe.command + (" --smoke" if smoke else ""),
        "smoke": smoke,
        "seed": seed,
        "epochs": epochs,
        "steps": steps,
        **counts,
        "wall_time_seconds": round(wall_time_seconds, 1),
        "hardware": hardware,
        "trained_at": trained_at.isoformat(timespec="seconds"),
    }


def final_means(rows: Sequence[Mapping[str, float]], keys: Iterable[str]) -> dict[str, Any]:
    """The last log row's ``keys``, rounded to 6 decimals (None where there is no row)."""
    final = rows[-1] if rows else {}
    return {key: round(final[key], 6) if key in final else None for key in keys}


def weights_record(path: Path, dtype: str) -> dict[str, Any]:
    """The summary's entries about the package weights file."""
    return {
        "weights_file": f"package/{path.name}",
        "weights_dtype": dtype,
        "weights_bytes": path.stat().st_size,
        "weights_sha256": sha256_of(path),
    }


def data_record(recipe: Recipe, data_file: Path, split: str, **more: str) -> dict[str, str]:
    """The summary's entry about the training archive: file, sha256, split and ``more``."""
    return {
        "file": recipe.data_file.as_posix(),
        "sha256": sha256_of(data_file),
        "split": split,
        **more,
    }


def write_json(path: Path, data: object) -> None:
    """Write ``data`` as indented JSON with a final newline."""
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_card(package_dir: Path) -> dict[str, Any]:
    """The card of the package in ``package_dir``."""
    card: dict[str, Any] = json.loads((package_dir / "card.json").read_text(encoding="utf-8"))
    return card


def record_provenance(
    card: dict[str, Any], summary: Mapping[str, Any], trained_at: dt.datetime
) -> None:
    """Write the run's numbers from its ``summary`` into the card's provenance and description."""
    card["provenance"]["training"] = {
        "hardware": summary["hardware"],
        "wall_time_seconds": summary["wall_time_seconds"],
        "epochs": summary["epochs"],
        "steps": summary["steps"],
        "seed": summary["seed"],
        "recipe": summary["recipe"],
    }
    card["provenance"]["training_data"][0]["image_count"] = summary["image_count"]
    card["description"]["provided_after_epoch"] = summary["epochs"]
    card["description"]["trained_date"] = trained_at.strftime("%B %Y")


def write_record(
    recipe: Recipe,
    run: Invocation[Any],
    state: RunState,
    *,
    package_dir: Path,
    counts: Mapping[str, object],
    results: Mapping[str, object],
    weights_dtype: str,
    split: str,
    after_weights: Mapping[str, object] | None = None,
    data_notes: Mapping[str, str] | None = None,
    card: dict[str, Any] | None = None,
    checkpoint_name: str = CHECKPOINT_NAME,
) -> dict[str, Any]:
    """Write ``training_summary.json`` and the exported card for the run ``state``; return the
    summary.

    The summary is the common head (``counts`` after the steps), the recipe's ``results``, the
    weights file's entries, ``after_weights``, the training data and the config. ``card`` is a
    version of the committed card the recipe has already edited, if any; the training date is
    that of the checkpoint ``checkpoint_name``.
    """
    trained_at = run.trained_at(checkpoint_name)
    summary: dict[str, Any] = {
        **summary_head(
            recipe,
            smoke=run.smoke,
            seed=run.config.seed,
            epochs=state.epoch,
            steps=state.step,
            counts=counts,
            wall_time_seconds=state.wall_time_seconds,
            hardware=run.hardware,
            trained_at=trained_at,
        ),
        **results,
        **weights_record(package_dir / WEIGHTS_NAME, weights_dtype),
        **(after_weights or {}),
        "data": data_record(recipe, run.data_file, split, **(data_notes or {})),
        "config": dataclasses.asdict(run.config),
    }
    write_card_and_summary(
        recipe,
        package_dir=package_dir,
        export_dir=run.export_dir,
        summary=summary,
        trained_at=trained_at,
        card=card,
    )
    return summary


def write_card_and_summary(
    recipe: Recipe,
    *,
    package_dir: Path,
    export_dir: Path,
    summary: Mapping[str, Any],
    trained_at: dt.datetime,
    card: dict[str, Any] | None = None,
) -> None:
    """Write ``training_summary.json`` and the exported card with the run's provenance.

    ``card`` is the committed card, or a version of it the recipe has already edited.
    """
    write_json(export_dir / SUMMARY_NAME, summary)
    card = read_card(recipe.package_dir) if card is None else card
    record_provenance(card, summary, trained_at)
    write_json(package_dir / "card.json", card)
