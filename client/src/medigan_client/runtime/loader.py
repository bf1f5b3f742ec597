"""Import a model package by path and call its generate function one batch at a time.

A package is imported from its own directory with :mod:`importlib` under a module name unique
to the release and the directory, so two releases (or two copies) load side by side, relative
imports inside the package work, and neither ``sys.path`` nor the working directory matters.
``v2`` packages are called as ``generate(num_samples, *, seed, device, **args)``;
``medigan-legacy`` packages through medigan's convention
``generate(model_file, num_samples, output_path, save_images=False, **custom)``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from medigan_catalog.schema import Card, RuntimeKind
from medigan_client.errors import BadRequestError, GenerationFailedError

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


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


def resolve_device(device: str) -> str:
    """Turn ``auto``/``cpu``/``cuda[:n]``/``mps`` into a device string that exists here.

    ``auto`` picks ``cuda`` when torch is installed and sees a GPU, else ``cpu``; torch is
    imported only for this question. Asking for a device that is not there is an error.
    """
    wanted = device.strip().lower()
    if wanted == "cpu":
        return "cpu"
    if wanted not in {"auto", "mps"} and not wanted.startswith("cuda"):
        raise BadRequestError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")
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


def _import_by_path(name: str, root: Path, card: Card) -> ModuleType:
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    spec = importlib.util.spec_from_file_location(
        name, root / "__init__.py", submodule_search_locations=[str(root)]
    )
    if spec is None or spec.loader is None:
        raise GenerationFailedError(f"cannot import the package of {card.release_id} at {root}")
    module = importlib.util.module_from_spec(spec)
    # Registered before executing so that ``from . import x`` inside the package resolves.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise GenerationFailedError(
            f"importing the package of {card.release_id} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _seed_globals(seed: int) -> None:
    # medigan packages draw from the global generators; seed the ones that are loaded.
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def _as_array(result: object, card: Card) -> np.ndarray:
    if isinstance(result, np.ndarray):
        return result
    detach = getattr(result, "detach", None)
    if callable(detach):  # a torch tensor, converted without importing torch here
        return np.asarray(detach().cpu().numpy())
    if isinstance(result, list | tuple):
        items = [_as_array(item, card) for item in result]
        if not items:
            return np.zeros((0,), dtype=np.uint8)
        shapes = {item.shape for item in items}
        if len(shapes) != 1:
            raise GenerationFailedError(
                f"the package of {card.release_id} returned samples of different shapes: "
                f"{sorted(str(s) for s in shapes)}"
            )
        return np.stack(items)
    raise GenerationFailedError(
        f"the package of {card.release_id} returned {type(result).__name__}, "
        "expected an array or a list of arrays"
    )


def _images_in(directory: Path) -> list[np.ndarray]:
    from PIL import Image

    files = sorted(
        p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES
    )
    images = []
    for path in files:
        with Image.open(path) as image:
            images.append(np.asarray(image))
    return images


@dataclass
class LoadedPackage:
    """A model package imported in this process, callable one batch at a time."""

    card: Card
    root: Path
    module: ModuleType
    entry: Callable[..., object]

    @property
    def kind(self) -> RuntimeKind:
        """The runtime convention the package follows."""
        return RuntimeKind(self.card.runtime.kind)

    def generate_batch(
        self, num_samples: int, *, seed: int, device: str, args: Mapping[str, object]
    ) -> np.ndarray:
        """Generate ``num_samples`` samples as one array (first axis = samples).

        ``args`` are the card's generation arguments, already typed and defaulted. Exceptions of
        the package become :class:`GenerationFailedError`.
        """
        try:
            if self.kind == RuntimeKind.V2:
                result = self.entry(num_samples, seed=seed, device=device, **dict(args))
                return _as_array(result, self.card)
            return self._generate_legacy(num_samples, seed=seed, args=args)
        except GenerationFailedError:
            raise
        except Exception as exc:
            raise GenerationFailedError(
                f"{self.card.release_id} failed to generate {num_samples} samples: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def legacy_model_file(self) -> Path:
        """The weights file medigan would pass as ``model_file`` (or the package directory).

        medigan names it ``<model_name><extension>`` inside the package; some packages use
        ``<package_name><extension>``; names are matched case-insensitively as a fallback.
        """
        execution = self.card.execution
        extension = execution.extension or ""
        stems = [execution.model_name, execution.package_name]
        names = [f"{stem}{extension}" for stem in stems if stem]
        for name in names:
            if (self.root / name).is_file():
                return self.root / name
        lowered = {n.lower() for n in names}
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and path.name.lower() in lowered:
                return path
        return self.root

    def _generate_legacy(
        self, num_samples: int, *, seed: int, args: Mapping[str, object]
    ) -> np.ndarray:
        _seed_globals(seed)
        with tempfile.TemporaryDirectory(prefix="medigan-legacy-") as output:
            result = self.entry(
                model_file=str(self.legacy_model_file()),
                num_samples=num_samples,
                output_path=output + "/",
                save_images=False,
                **dict(args),
            )
            if result is None:
                # Some medigan packages always save to output_path and return nothing.
                result = _images_in(Path(output))
            return _as_array(result, self.card)


def load_package(package_dir: Path, card: Card) -> LoadedPackage:
    """Import the package in ``package_dir`` (or its medigan sub-folder) for ``card``.

    Raises :class:`GenerationFailedError` when there is no ``__init__.py``, the import fails or
    the entry point named by ``card.runtime.entry_point`` is not a function.
    """
    root = locate_package_root(Path(package_dir), card)
    module = _import_by_path(module_name_for(card, root), root, card)
    entry_name = card.runtime.entry_point or "generate"
    entry = getattr(module, entry_name, None)
    if not callable(entry):
        raise GenerationFailedError(
            f"the package of {card.release_id} has no function {entry_name!r} in its __init__.py"
        )
    return LoadedPackage(card=card, root=root, module=module, entry=entry)
