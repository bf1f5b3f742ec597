"""medigan's ``ModelExecutor``: one model's package, ready to generate the way medigan did.

The package comes from the client's verified cache (or a local folder) instead of
``models/<model id>/`` below the working directory, and runs through the client's runtime
(:func:`medigan_client.runtime.open_runner`), so the working directory never matters. What
medigan's ``generate`` promised is kept:

* ``save_images=False`` returns the samples in memory: a list with one array per sample, or one
  tuple per sample ``(image, mask[, other][, label])`` for packages that return more than images;
* ``save_images=True`` writes files into ``output_path`` (default
  ``output/<model id>/<timestamp>/``) batch by batch, named ``batch_<k>_<file>`` as medigan
  named them, and returns ``None``;
* ``is_gen_function_returned=True`` returns a function that generates with the prepared
  arguments, which keyword arguments given to it override.

Batches and seeds are the client's (:mod:`medigan_client.batching`): with a seed, the samples
of ``generate(n, batch_size=b)`` are those of ``Client.generate(model, n, seed=..., batch_size=b)``
except that the last batch stops at ``n`` (a legacy package saves every sample it makes);
without a seed every call draws a fresh one, so repeated calls give new samples as medigan's did.
"""

from __future__ import annotations

import csv
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm  # type: ignore[import-untyped]

from medigan_catalog.medigan_compat import MEDIGAN_BASE_ARGUMENTS
from medigan_catalog.schema import Card, RuntimeKind
from medigan_client.batching import BatchPlan, generate_batches
from medigan_client.errors import BadRequestError
from medigan_client.generate import resolve_arguments, save_sample
from medigan_client.runtime import GeneratedBatch, Runner, open_runner
from medigan_client.runtime.loader import locate_package_root, resolve_device
from medigan_client.settings import ClientSettings

DEFAULT_OUTPUT_FOLDER = "output"
DEFAULT_BATCH_SIZE = 32
OUTPUT_PATH = "output_path"
SAVE_IMAGES = "save_images"
LABELS_FILE = "labels.csv"
# A legacy package's saved files are moved out of its batch folder under this prefix.
BATCH_PREFIX = "batch_"


@dataclass(frozen=True)
class ExecutionOptions:
    """How every executor of one ``Generators`` runs its package."""

    settings: ClientSettings
    isolation: str = "auto"
    device: str = "auto"
    seed: int | None = None
    progress: bool = True


def default_output_path(model_id: str) -> Path:
    """medigan's default output folder: ``output/<model id>/<time>/`` in the working directory."""
    return Path(DEFAULT_OUTPUT_FOLDER) / model_id / f"{time.time()}"


def medigan_samples(batch: GeneratedBatch) -> list[Any]:
    """A batch in medigan's in-memory shape: arrays, or ``(image, mask[, other...][, label])``.

    A mask slot is kept (``None``) when only other outputs exist, so positions stay medigan's;
    labels become plain Python values (``str``, ``int``, ``float``).
    """
    count = len(batch)
    if batch.masks is None and batch.labels is None and not batch.extras:
        return [batch.images[index] for index in range(count)]
    samples: list[Any] = []
    for index in range(count):
        parts: list[object] = [batch.images[index]]
        if batch.masks is not None or batch.extras:
            parts.append(None if batch.masks is None else batch.masks[index])
        parts.extend(array[index] for array in batch.extras.values())
        if batch.labels is not None:
            parts.append(plain_label(batch.labels[index]))
        samples.append(tuple(parts))
    return samples


def plain_label(label: object) -> object:
    """A label as a Python value: numpy scalars become ``int``/``float``/``str``."""
    if isinstance(label, np.ndarray) and label.ndim > 0:
        return label
    item = getattr(label, "item", None)
    return item() if callable(item) else label


class ModelExecutor:
    """One model ready to generate: its medigan execution config and its package's runner.

    The attributes medigan's ``ModelExecutor`` had are filled from the model's ``execution``
    config; ``package_path`` is the extracted package in the client's cache (or the local
    folder of a model added with ``add_model_to_config``).
    """

    def __init__(
        self,
        model_id: str,
        card: Card,
        package_dir: Path,
        execution_config: Mapping[str, Any],
        options: ExecutionOptions,
    ):
        self.model_id = model_id
        self.card = card
        self.execution_config = dict(execution_config)
        self.options = options
        self.download_package = True
        self.install_dependencies = False
        generate_method = self.execution_config.get("generate_method")
        method = generate_method if isinstance(generate_method, dict) else {}
        self.image_size = self.execution_config.get("image_size")
        self.dependencies = self.execution_config.get("dependencies")
        self.model_name = self.execution_config.get("model_name")
        self.model_extension = self.execution_config.get("extension")
        self.package_name = self.execution_config.get("package_name")
        self.package_link = self.execution_config.get("package_link")
        self.generate_method_name: str = str(method.get("name") or card.runtime.entry_point)
        args = method.get("args")
        self.generate_method_args: dict[str, Any] = dict(args) if isinstance(args, dict) else {}
        self.generate_method_input_latent_vector_size = method.get("input_latent_vector_size")
        self.package_path = Path(package_dir)
        # Raises GenerationFailedError when the folder holds no package, as medigan's import did.
        self.package_root = locate_package_root(self.package_path, card)
        weights = f"{self.model_name or ''}{self.model_extension or ''}"
        self.serialised_model_file_path = (
            str(self.package_root / weights) if weights else str(self.package_root)
        )
        self._runner: Runner | None = None

    def __repr__(self) -> str:
        return (
            f"ModelExecutor(model_id={self.model_id}, name={self.model_name}, "
            f"package={self.package_name}, image_size={self.image_size}, "
            f"dependencies={self.dependencies}, path={self.package_path}, "
            f"generate_method={self.generate_method_name})"
        )

    @property
    def is_legacy(self) -> bool:
        """Whether the package follows medigan's ``generate(model_file, ...)`` convention."""
        return RuntimeKind(self.card.runtime.kind) is RuntimeKind.MEDIGAN_LEGACY

    def runner(self) -> Runner:
        """The package's runner, opened on first use and kept for later calls."""
        if self._runner is None:
            self._runner = open_runner(
                self.package_path,
                self.card,
                isolation=self.options.isolation,
                settings=self.options.settings,
            )
        return self._runner

    def close(self) -> None:
        """Release the package's runner (its child process, if any)."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def prepare_arguments(self, given: Mapping[str, object]) -> dict[str, object]:
        """The keyword arguments for the package, medigan's way.

        For a medigan-legacy package: the ``custom`` defaults of its config exactly as written,
        updated with ``given`` (any name passes, as in medigan); medigan's base arguments in
        ``given`` are dropped, since the executor sets them. For a v2 package: the card's
        arguments, typed and checked, with ``given`` applied.
        """
        extra = {k: v for k, v in given.items() if k not in MEDIGAN_BASE_ARGUMENTS}
        if not self.is_legacy:
            return resolve_arguments(self.card, extra)
        custom = self.generate_method_args.get("custom")
        prepared: dict[str, object] = (
            dict(custom) if isinstance(custom, dict) else resolve_arguments(self.card, {})
        )
        prepared.update(extra)
        return prepared

    def generate(
        self,
        num_samples: int = 20,
        output_path: str | os.PathLike[str] | None = None,
        save_images: bool = True,
        is_gen_function_returned: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        **kwargs: Any,
    ) -> Any:
        """Generate ``num_samples`` samples (see the module docstring), or return the function.

        ``batch_size`` is how many samples each call of the package makes; ``kwargs`` go to the
        package's generate function.
        """
        if is_gen_function_returned:
            return self.generate_function(
                num_samples=num_samples,
                output_path=output_path,
                save_images=save_images,
                batch_size=batch_size,
                **kwargs,
            )
        return self._run(num_samples, output_path, save_images, batch_size, kwargs)

    def generate_function(
        self,
        num_samples: int = 20,
        output_path: str | os.PathLike[str] | None = None,
        save_images: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
        **kwargs: Any,
    ) -> Callable[..., Any]:
        """``gen(**overrides)``: generates with these arguments, each override replacing one.

        Overrides may name ``num_samples``, ``output_path``, ``save_images`` or any package
        argument; the defaults stay as they were for the next call.
        """
        defaults: dict[str, Any] = {
            **self.prepare_arguments(kwargs),
            "model_file": self.serialised_model_file_path,
            "num_samples": num_samples,
            OUTPUT_PATH: output_path,
            SAVE_IMAGES: save_images,
        }

        def gen(**overrides: Any) -> Any:
            call = {**defaults, **overrides}
            call.pop("model_file", None)
            count = call.pop("num_samples")
            path = call.pop(OUTPUT_PATH)
            save = call.pop(SAVE_IMAGES)
            return self._run(count, path, bool(save), batch_size, call)

        return gen

    def generate_batches(
        self, num_samples: int, batch_size: int = DEFAULT_BATCH_SIZE, **kwargs: Any
    ) -> list[GeneratedBatch]:
        """The samples as the runtime's batches (images, masks, labels, extras)."""
        arguments = self.prepare_arguments(kwargs)
        return [batch for _, batch in self._batches(num_samples, batch_size, arguments)]

    def _run(
        self,
        num_samples: object,
        output_path: str | os.PathLike[str] | None,
        save_images: bool,
        batch_size: object,
        given: Mapping[str, object],
    ) -> Any:
        count = _count(num_samples, "num_samples", minimum=0)
        size = _count(batch_size, "batch_size", minimum=1)
        arguments = self.prepare_arguments(given)
        if not save_images:
            samples: list[Any] = []
            for _, batch in self._batches(count, size, arguments):
                samples.extend(medigan_samples(batch))
            return samples
        folder = (
            Path(output_path) if output_path is not None else default_output_path(self.model_id)
        )
        folder.mkdir(parents=True, exist_ok=True)
        folder = folder.resolve()
        if self.is_legacy:
            self._save_legacy(count, size, arguments, folder)
        else:
            for number, batch in self._batches(count, size, arguments):
                self._write_batch(batch, folder, number)
        return None

    def _batches(
        self,
        num_samples: int,
        batch_size: int,
        arguments: Mapping[str, object],
        *,
        folder: Path | None = None,
    ) -> Iterator[tuple[int, GeneratedBatch]]:
        """Each batch with its number; with ``folder`` a legacy package saves into a subfolder."""
        if num_samples == 0:
            return
        runner = self.runner()
        device = resolve_device(self.options.device)
        seed = self.options.seed if self.options.seed is not None else secrets.randbits(31)

        def batch_arguments(plan: BatchPlan) -> Mapping[str, object]:
            if folder is None:
                return arguments
            batch_folder = folder / f"{BATCH_PREFIX}{plan.grid_start // batch_size}"
            batch_folder.mkdir(parents=True, exist_ok=True)
            return {**arguments, OUTPUT_PATH: str(batch_folder), SAVE_IMAGES: True}

        with tqdm(
            total=num_samples,
            unit="img",
            desc=self.model_id,
            file=sys.stderr,
            disable=not self.options.progress,
        ) as bar:
            for plan, batch in generate_batches(
                runner,
                self.card,
                seed=seed,
                batch_size=batch_size,
                first=0,
                stop=num_samples,
                device=device,
                args=batch_arguments,
                # Only full batches and one remainder: a legacy package saves what it makes.
                whole_batches=False,
                # medigan never checked a package's output, and its cards describe it loosely
                # (image sizes as text, no dtype); the client's own v2 contract is checked.
                check=not self.is_legacy,
            ):
                bar.update(plan.count)
                yield plan.grid_start // batch_size, batch

    def _save_legacy(
        self, num_samples: int, batch_size: int, arguments: Mapping[str, object], folder: Path
    ) -> None:
        """Let the package save each batch in ``batch_<k>/``, then move its files up, as medigan."""
        for number, _ in self._batches(num_samples, batch_size, arguments, folder=folder):
            batch_folder = folder / f"{BATCH_PREFIX}{number}"
            for path in sorted(batch_folder.iterdir()):
                path.rename(folder / f"{BATCH_PREFIX}{number}_{path.name}")
            batch_folder.rmdir()

    def _write_batch(self, batch: GeneratedBatch, folder: Path, number: int) -> None:
        """Write a batch the package returned: images, masks and extras as files, labels as CSV."""
        labels: list[tuple[str, object]] = []
        for index in range(len(batch)):
            stem = f"{BATCH_PREFIX}{number}_{index}"
            written = save_sample(batch.images[index], self.card, folder / stem)
            if batch.masks is not None:
                save_sample(batch.masks[index], self.card, folder / f"{stem}_mask")
            for name, array in batch.extras.items():
                save_sample(array[index], self.card, folder / f"{stem}_{name}")
            if batch.labels is not None:
                labels.append((written.name, plain_label(batch.labels[index])))
        if labels:
            path = folder / LABELS_FILE
            is_new = not path.exists()
            with path.open("a", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                if is_new:
                    writer.writerow(["file", "label"])
                writer.writerows(labels)


def _count(value: object, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < minimum:
        raise BadRequestError(f"{name} must be an integer of at least {minimum}, not {value!r}")
    return int(value)
