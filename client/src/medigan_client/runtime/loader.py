"""Import a model package by path and call its generate function one batch at a time.

A package is imported from its own directory with :mod:`importlib` under a module name unique
to the release and the directory, so two releases (or two copies) load side by side, relative
imports inside the package work, and neither ``sys.path`` nor the working directory matters.
``v2`` packages are called as ``generate(num_samples, *, seed, device, **args)``;
``medigan-legacy`` packages through medigan's convention
``generate(model_file, num_samples, output_path, save_images=False, **custom)``. Importing,
seeding, calling and reading the results are :mod:`.worker`'s functions, the same that a child
process runs, so the ``inprocess`` mode behaves like the others; a failure of the package reads
the same in every mode too (:mod:`.failures`: its short form in the message, the full traceback
in ``GenerationFailedError.traceback``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from medigan_catalog.schema import Card, RuntimeKind
from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.runtime.base import GeneratedBatch
from medigan_client.runtime.batches import batch_from_output, prepare_batch
from medigan_client.runtime.failures import PackageFailure, describe_exception
from medigan_client.runtime.legacy import legacy_model_file
from medigan_client.runtime.worker import (
    PackageSpec,
    accepts_sample_seeds,
    call_package,
    import_package,
)


def locate_package_root(package_dir: Path, card: Card) -> Path:
    """The directory holding the package's ``__init__.py``.

    Our packages have it at the top; medigan's zips often wrap the package in a folder named
    after ``execution.package_name``, or in a single top-level folder.
    """
    package_dir = package_dir.resolve()
    if (package_dir / "__init__.py").is_file():
        return package_dir
    package_name = card.execution.package_name
    if package_name and (package_dir / package_name / "__init__.py").is_file():
        return package_dir / package_name
    children = [
        p for p in package_dir.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
    ]
    if len(children) == 1 and (children[0] / "__init__.py").is_file():
        return children[0]
    raise GenerationFailedError(
        f"the package of {card.release_id} in {package_dir} has no __init__.py"
    )


def module_name_for(card: Card, root: Path) -> str:
    """A module name unique to the release and the directory it is loaded from."""
    digest = hashlib.sha256(f"{card.release_id}\0{root}".encode()).hexdigest()[:16]
    return f"_medigan_package_{digest}"


def device_name(device: str) -> str:
    """``device`` spelled the client's way (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).

    Only the name is checked, not whether the device is there: :func:`resolve_device` does that.
    """
    wanted = device.strip().lower()
    if wanted in {"auto", "cpu", "cuda", "mps"} or re.fullmatch(r"cuda:\d+", wanted):
        return wanted
    raise BadRequestError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")


def resolve_device(device: str) -> str:
    """Turn ``auto``/``cpu``/``cuda[:n]``/``mps`` into a device string that exists here.

    ``auto`` picks ``cuda`` when torch is installed and sees a GPU, else ``cpu``; torch is
    imported only for this question. Asking for a device that is not there is an error.
    """
    wanted = device_name(device)
    if wanted == "cpu":
        return "cpu"
    if importlib.util.find_spec("torch") is None:
        if wanted == "auto":
            return "cpu"
        raise BadRequestError(f"device {device!r} needs torch, which is not installed")
    import torch

    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "mps":
        if torch.backends.mps.is_available():
            return "mps"
        raise BadRequestError("device 'mps' requested but torch.backends.mps is not available")
    if not torch.cuda.is_available():
        raise BadRequestError(f"device {device!r} requested but torch.cuda.is_available() is False")
    return wanted


def _import_by_path(spec: PackageSpec, card: Card, package_dir: Path) -> ModuleType:
    try:
        return import_package(spec)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        failure = describe_exception(exc, (package_dir, spec.root))
        raise GenerationFailedError(
            import_failure_message(card, failure),
            detail={"isolation": "inprocess", "traceback": failure.traceback},
            traceback=failure.traceback,
        ) from exc


def package_spec(card: Card, root: Path) -> PackageSpec:
    """The plain description of the package that :mod:`.worker` imports and calls."""
    kind = RuntimeKind(card.runtime.kind)
    return PackageSpec(
        root=str(root),
        module_name=module_name_for(card, root),
        kind=kind.value,
        entry_point=card.runtime.entry_point or "generate",
        model_file=(
            str(legacy_model_file(root, card)) if kind is RuntimeKind.MEDIGAN_LEGACY else None
        ),
        label=f"the package of {card.release_id}",
    )


def import_failure_message(card: Card, failure: PackageFailure) -> str:
    """How a failed import of the package reads, in every isolation mode."""
    return f"importing the package of {card.release_id} failed: {failure.message}"


def failure_message(card: Card, num_samples: int, failure: PackageFailure) -> str:
    """How a failed call of the package reads, in every isolation mode."""
    return f"{card.release_id} failed to generate {num_samples} samples: {failure.message}"


@dataclass
class LoadedPackage:
    """A model package imported in this process, callable one batch at a time."""

    card: Card
    root: Path
    module: ModuleType
    entry: Callable[..., object]
    package_dir: Path | None = None

    @property
    def kind(self) -> RuntimeKind:
        """The runtime convention the package follows."""
        return RuntimeKind(self.card.runtime.kind)

    @property
    def spec(self) -> PackageSpec:
        """The package as plain values (what a child process is told to import)."""
        return package_spec(self.card, self.root)

    @property
    def supports_sample_seeds(self) -> bool:
        """Whether the entry point takes one seed per sample (a keyword ``seeds``)."""
        return accepts_sample_seeds(self.entry, self.kind.value)

    def generate(
        self,
        num_samples: int,
        *,
        seed: int,
        device: str,
        args: Mapping[str, object],
        sample_seeds: Sequence[int] | None = None,
    ) -> GeneratedBatch:
        """Generate one batch with everything the package returned (images, masks, labels...).

        ``args`` are the card's generation arguments, already typed and defaulted; for
        medigan-legacy packages they may also carry ``output_path`` and ``save_images`` (see
        :mod:`.legacy`). Exceptions of the package become :class:`GenerationFailedError`.
        """
        spec = self.spec
        with prepare_batch(
            self.card,
            package_dir=self.package_dir or self.root,
            root=self.root,
            num_samples=num_samples,
            seed=seed,
            device=device,
            args=args,
            sample_seeds=sample_seeds,
        ) as request:
            try:
                output = call_package(self.entry, spec, request)
            except (KeyboardInterrupt, GenerationFailedError):
                raise
            except BaseException as exc:  # SystemExit too: a package must not end the caller
                failure = describe_exception(exc, (self.package_dir or self.root, self.root))
                raise GenerationFailedError(
                    failure_message(self.card, num_samples, failure),
                    detail={"isolation": "inprocess", "traceback": failure.traceback},
                    traceback=failure.traceback,
                ) from exc
            return batch_from_output(output, self.card.release_id, request)

    def generate_batch(
        self, num_samples: int, *, seed: int, device: str, args: Mapping[str, object]
    ) -> np.ndarray:
        """Generate ``num_samples`` samples as one array of images (first axis = samples)."""
        return self.generate(num_samples, seed=seed, device=device, args=args).images

    def legacy_model_file(self) -> Path:
        """The weights file medigan would pass as ``model_file`` (or the package directory)."""
        return legacy_model_file(self.root, self.card)


def load_package(package_dir: Path, card: Card) -> LoadedPackage:
    """Import the package in ``package_dir`` (or its medigan sub-folder) for ``card``.

    Raises :class:`GenerationFailedError` when there is no ``__init__.py``, the import fails or
    the entry point named by ``card.runtime.entry_point`` is not a function.
    """
    root = locate_package_root(Path(package_dir), card)
    module = _import_by_path(package_spec(card, root), card, Path(package_dir))
    entry_name = card.runtime.entry_point or "generate"
    entry = getattr(module, entry_name, None)
    if not callable(entry):
        raise GenerationFailedError(
            f"the package of {card.release_id} has no function {entry_name!r} in its __init__.py"
        )
    return LoadedPackage(
        card=card, root=root, module=module, entry=entry, package_dir=Path(package_dir).resolve()
    )
