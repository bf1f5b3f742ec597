"""One batch on the caller's side: the request a runner sends and the batch it gets back.

:func:`prepare_batch` checks a ``generate_batch`` call and turns it into the plain
:class:`~.worker.BatchRequest` every runner hands to a package (for medigan-legacy packages
with paths rewritten and an ``output_path`` chosen); :func:`batch_from_output` turns what the
package produced into a :class:`~.base.GeneratedBatch`, reading back images a legacy package
only saved to disk.

Files a legacy package saved into the scratch ``output_path`` the runner chose are kept, not
only read: the batch is then a :class:`SavedFilesBatch` that names, per sample, the PNG file
the package wrote, so that ``generate`` moves that file into its output (adding its provenance
text, see :meth:`medigan_client.outputs.PngWriter.adopt`) instead of encoding the pixels again.
The pixels are still read once, for the card's checks and for every caller that wants arrays.
Files nobody adopts are removed with the last batch that refers to them.
"""

from __future__ import annotations

import operator
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medigan_catalog.schema import Card, RuntimeKind
from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.runtime.base import GeneratedBatch
from medigan_client.runtime.legacy import (
    medigan_model_ids,
    resolve_legacy_paths,
    split_legacy_options,
)
from medigan_client.runtime.worker import (
    EXTRA_PREFIX,
    IMAGES,
    LABELS,
    MASKS,
    BatchRequest,
    PackageOutput,
    PackageOutputError,
    as_array,
    checked,
)

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
_DIGITS = re.compile(r"(\d+)")
# PNG modes whose pixels the client's PNG writer would write back unchanged (8 bits a sample):
# files in these modes can be adopted as they are. Others (16-bit, palette, 1-bit) are encoded
# again, as the writer converts their pixels.
ADOPTABLE_PNG_MODES = frozenset({"L", "RGB", "RGBA"})


class SavedFolder:
    """A folder of saved files, removed once no batch refers to this object any more."""

    def __init__(self, path: Path):
        self.path = path
        self._finalizer = weakref.finalize(self, shutil.rmtree, path, True)


@dataclass(frozen=True)
class SavedFiles:
    """Per sample, the PNG file a legacy package saved, or ``None`` where it must be encoded."""

    images: tuple[Path | None, ...]
    masks: tuple[Path | None, ...] | None
    folder: SavedFolder


@dataclass(frozen=True)
class SavedFilesBatch(GeneratedBatch):
    """A batch whose images (and masks) a legacy package saved as files (see the module)."""

    saved: SavedFiles | None = None

    def select(self, start: int, stop: int | None = None) -> SavedFilesBatch:
        """The samples ``start:stop``, their files with them."""
        window = slice(start, stop)
        selected = super().select(start, stop)
        saved = self.saved
        if saved is not None:
            saved = SavedFiles(
                images=saved.images[window],
                masks=None if saved.masks is None else saved.masks[window],
                folder=saved.folder,
            )
        return SavedFilesBatch(
            images=selected.images,
            masks=selected.masks,
            labels=selected.labels,
            extras=selected.extras,
            saved=saved,
        )


def plain_value(value: object) -> object:
    """``value`` as JSON would carry it: tuples become lists, paths become strings."""
    if isinstance(value, list | tuple):
        return [plain_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): plain_value(item) for key, item in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


@contextmanager
def prepare_batch(
    card: Card,
    *,
    package_dir: Path,
    root: Path,
    num_samples: int,
    seed: int,
    device: str,
    args: Mapping[str, object],
    sample_seeds: Sequence[int] | None,
    scratch: Path | None = None,
) -> Iterator[BatchRequest]:
    """The request for one batch; a scratch ``output_path`` made for it is removed afterwards.

    ``scratch`` is where that folder goes (a fresh temporary directory when ``None``).
    """
    try:
        count = operator.index(num_samples)
    except TypeError:
        count = 0
    if isinstance(num_samples, bool) or count < 1:
        raise BadRequestError(f"num_samples must be a positive integer, not {num_samples!r}")
    num_samples = count
    seeds: list[int] | None = None
    if sample_seeds is not None:
        seeds = [int(s) for s in sample_seeds]
        if len(seeds) != num_samples:
            raise BadRequestError(
                f"sample_seeds has {len(seeds)} seeds for a batch of {num_samples} samples"
            )
    plain_args = {str(key): plain_value(value) for key, value in args.items()}
    if RuntimeKind(card.runtime.kind) is not RuntimeKind.MEDIGAN_LEGACY:
        yield BatchRequest(
            num_samples=num_samples,
            seed=seed,
            device=device,
            args=plain_args,
            sample_seeds=seeds,
        )
        return
    custom, options = split_legacy_options(plain_args)
    ids = medigan_model_ids(card)
    custom = {
        name: resolve_legacy_paths(value, package_dir=package_dir, root=root, model_ids=ids)
        for name, value in custom.items()
    }
    made: Path | None = None
    output_path = options.output_path
    if output_path is None:
        made = Path(tempfile.mkdtemp(prefix="legacy-output-", dir=scratch))
        output_path = made
    try:
        yield BatchRequest(
            num_samples=num_samples,
            seed=seed,
            device=device,
            args=custom,
            output_path=str(output_path),
            save_images=options.save_images,
            scratch_output=made is not None,
        )
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def batch_from_output(
    output: PackageOutput, label: str, request: BatchRequest | None = None
) -> GeneratedBatch:
    """The batch of a package's output (its arrays, or the files it saved).

    When ``request`` gave the package a scratch ``output_path``, the files it saved there are
    moved into a folder of their own and kept with the batch (a :class:`SavedFilesBatch`).
    """
    keep = request is not None and request.scratch_output and not output.arrays
    try:
        if output.arrays:
            arrays = checked(dict(output.arrays))
        elif keep:
            return _keep_saved_files(output.files, request)
        else:
            arrays = read_saved_files(output.files)
    except PackageOutputError as exc:
        raise GenerationFailedError(f"{label}: the package {exc}") from exc
    except (OSError, ValueError) as exc:
        raise GenerationFailedError(
            f"{label}: the images the package saved cannot be read: {exc}"
        ) from exc
    return GeneratedBatch(
        images=arrays[IMAGES],
        masks=arrays.get(MASKS),
        labels=arrays.get(LABELS),
        extras=_extras(arrays),
    )


def _extras(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        name.removeprefix(EXTRA_PREFIX): array
        for name, array in arrays.items()
        if name.startswith(EXTRA_PREFIX)
    }


def _keep_saved_files(paths: Sequence[str], request: BatchRequest | None) -> SavedFilesBatch:
    """Read the saved files for the batch, and move them out of the scratch ``output_path``."""
    images, masks = _split_saved(paths)
    scratch = Path(request.output_path).parent if request and request.output_path else None
    folder = SavedFolder(Path(tempfile.mkdtemp(prefix="legacy-saved-", dir=scratch)))
    kept_images = [
        _read_and_keep(Path(p), folder.path / f"{n:06d}.png") for n, p in enumerate(images)
    ]
    kept_masks = [
        _read_and_keep(Path(p), folder.path / f"{n:06d}_mask.png") for n, p in enumerate(masks)
    ]
    arrays = {IMAGES: as_array([array for array, _ in kept_images], "saved images")}
    if kept_masks:
        arrays[MASKS] = as_array([array for array, _ in kept_masks], "saved masks")
    checked(arrays)
    return SavedFilesBatch(
        images=arrays[IMAGES],
        masks=arrays.get(MASKS),
        saved=SavedFiles(
            images=tuple(path for _, path in kept_images),
            masks=tuple(path for _, path in kept_masks) if kept_masks else None,
            folder=folder,
        ),
    )


def _read_and_keep(path: Path, kept: Path) -> tuple[np.ndarray, Path | None]:
    """The file's pixels, and ``kept`` (where it was moved) when the writer may adopt it.

    A name of the runner's own, as packages may save the same name in several subfolders.
    """
    if path.suffix.lower() != ".png":
        return _read_file(path), None
    from PIL import Image

    with Image.open(path) as image:
        mode = image.mode
        array = np.asarray(image)
    if mode not in ADOPTABLE_PNG_MODES:
        return array, None
    path.replace(kept)
    return array, kept


def _natural_key(path: str) -> list[object]:
    # image_2.png before image_10.png, as the package numbered them.
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(path)]


def read_saved_files(paths: Sequence[str]) -> dict[str, np.ndarray]:
    """The images (and masks) a legacy package saved instead of returning them.

    Image files and ``.npy`` arrays are read in natural order; files whose name contains
    ``mask`` are masks when there is one per image, else they count as images too.
    """
    images, masks = _split_saved(paths)
    arrays = {IMAGES: as_array([_read_file(Path(p)) for p in images], "saved images")}
    if masks:
        arrays[MASKS] = as_array([_read_file(Path(p)) for p in masks], "saved masks")
    return checked(arrays)


def _split_saved(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """The saved images and masks, in natural order (masks empty unless one per image)."""
    readable = [p for p in paths if Path(p).suffix.lower() in _IMAGE_SUFFIXES | {".npy"}]
    if not readable:
        raise PackageOutputError("returned None and saved no image or .npy files into output_path")
    readable.sort(key=_natural_key)
    masks = [p for p in readable if "mask" in Path(p).name.lower()]
    images = [p for p in readable if p not in masks]
    if not images or len(masks) != len(images):
        images, masks = readable, []
    return images, masks


def _read_file(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        with path.open("rb") as handle:
            return np.asarray(np.load(handle, allow_pickle=False))
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image)
