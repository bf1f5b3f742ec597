"""What medigan-legacy packages expect from their surroundings, recreated around the cache.

medigan extracted each package into ``models/<model id>/`` below the user's working directory,
imported it from there and passed it ``model_file``, ``num_samples``, ``output_path`` and
``save_images`` plus its custom arguments, several of which are paths such as
``models/00003_CYCLEGAN_MMG_DENSITY_FULL/images``. Here the package lives in the client's cache
instead, so:

* custom arguments (strings, also inside lists) that start with ``models/<model id>/`` are
  rewritten to absolute paths inside the extracted package (:func:`resolve_legacy_paths`);
* the child process of ``process``/``venv`` isolation runs in a scratch directory that holds a
  ``models/<model id>`` link to the package, so paths written into a package's own code resolve
  too (:func:`link_models_folder`), and the user's working directory never matters;
* ``output_path`` and ``save_images`` stay the caller's to set: passed in a batch's ``args``
  they reach the package unchanged (:func:`split_legacy_options`), which is how medigan's
  ``Generators.generate(..., save_images=True)`` keeps writing files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from medigan_catalog.schema import Card
from medigan_client.errors import BadRequestError

MODELS_FOLDER = "models"
OUTPUT_PATH = "output_path"
SAVE_IMAGES = "save_images"


@dataclass(frozen=True)
class LegacyOptions:
    """medigan's base arguments that the caller may set: where to save, and whether to."""

    output_path: Path | None = None
    save_images: bool = False


def medigan_model_ids(card: Card) -> list[str]:
    """The names a medigan package may use for its own folder below ``models/``."""
    names = [card.name]
    if card.compat is not None:
        names.append(card.compat.medigan_id)
    if card.execution.package_name:
        names.append(card.execution.package_name)
    return list(dict.fromkeys(names))


def legacy_model_file(root: Path, card: Card) -> Path:
    """The weights file medigan would pass as ``model_file`` (or the package directory).

    medigan names it ``<model_name><extension>`` inside the package; some packages use
    ``<package_name><extension>``; names are matched case-insensitively as a fallback.
    """
    execution = card.execution
    extension = execution.extension or ""
    stems = [execution.model_name, execution.package_name]
    names = [f"{stem}{extension}" for stem in stems if stem]
    for name in names:
        if (root / name).is_file():
            return root / name
    lowered = {n.lower() for n in names}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name.lower() in lowered:
            return path
    return root


def resolve_legacy_paths(
    value: object, *, package_dir: Path, root: Path, model_ids: list[str]
) -> object:
    """``value`` with every ``models/<model id>/...`` string made absolute inside the package.

    ``models/<id>`` was medigan's extraction folder, which is ``package_dir`` here; when the
    path is missing there but exists below the package root (zips that wrap the package in a
    folder), the root is used. Lists and tuples are rewritten item by item; anything else is
    returned unchanged.
    """
    if isinstance(value, str):
        return _resolve_one(value, package_dir=package_dir, root=root, model_ids=model_ids)
    if isinstance(value, list | tuple):
        items = [
            resolve_legacy_paths(item, package_dir=package_dir, root=root, model_ids=model_ids)
            for item in value
        ]
        return items if isinstance(value, list) else tuple(items)
    return value


def _resolve_one(text: str, *, package_dir: Path, root: Path, model_ids: list[str]) -> str:
    normalised = text.replace("\\", "/")
    while normalised.startswith("./"):
        normalised = normalised[2:]
    for model_id in model_ids:
        prefix = f"{MODELS_FOLDER}/{model_id}"
        if normalised != prefix and not normalised.startswith(prefix + "/"):
            continue
        rest = normalised[len(prefix) :].strip("/")
        candidate = package_dir / rest if rest else package_dir
        if not candidate.exists() and rest and (root / rest).exists():
            candidate = root / rest
        resolved = str(candidate)
        # Keep a trailing separator: some packages concatenate file names onto folder paths.
        return resolved + os.sep if normalised.endswith("/") and rest else resolved
    return text


def split_legacy_options(
    args: Mapping[str, object],
) -> tuple[dict[str, object], LegacyOptions]:
    """Separate medigan's ``output_path``/``save_images`` from a legacy package's custom args.

    A relative ``output_path`` is taken relative to the caller's working directory (the child
    process runs elsewhere). ``save_images=True`` needs an ``output_path``.
    """
    custom = dict(args)
    raw_path = custom.pop(OUTPUT_PATH, None)
    raw_save = custom.pop(SAVE_IMAGES, False)
    if not isinstance(raw_save, bool):
        raise BadRequestError(f"save_images must be true or false, not {raw_save!r}")
    output_path: Path | None = None
    if raw_path is not None:
        if not isinstance(raw_path, str | os.PathLike) or not str(raw_path).strip():
            raise BadRequestError(f"output_path must be a folder path, not {raw_path!r}")
        output_path = Path(os.fspath(raw_path)).expanduser().absolute()
    if raw_save and output_path is None:
        raise BadRequestError("save_images=True needs an output_path to save the images into")
    return custom, LegacyOptions(output_path=output_path, save_images=raw_save)


def link_models_folder(workdir: Path, package_dir: Path, model_ids: list[str]) -> None:
    """Create ``workdir/models/<id>`` links to the package, as medigan's folder layout had."""
    models = workdir / MODELS_FOLDER
    models.mkdir(parents=True, exist_ok=True)
    for model_id in model_ids:
        link = models / model_id
        if link.exists() or link.is_symlink() or "/" in model_id or model_id in {".", ".."}:
            continue
        # Without symlink support the rewritten arguments still work; only hard-coded paths
        # inside a package's code would miss.
        with contextlib.suppress(OSError):
            link.symlink_to(package_dir, target_is_directory=True)
