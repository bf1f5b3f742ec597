"""One batch on the caller's side: the request a runner sends and the batch it gets back.

:func:`prepare_batch` checks a ``generate_batch`` call and turns it into the plain
:class:`~.worker.BatchRequest` every runner hands to a package (for medigan-legacy packages
with paths rewritten and an ``output_path`` chosen); :func:`batch_from_output` turns what the
package produced into a :class:`~.base.GeneratedBatch`, reading back images a legacy package
only saved to disk.
"""

from __future__ import annotations

import operator
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
        )
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def batch_from_output(output: PackageOutput, label: str) -> GeneratedBatch:
    """The batch of a package's output (its arrays, or the files it saved)."""
    try:
        arrays = checked(dict(output.arrays)) if output.arrays else read_saved_files(output.files)
    except PackageOutputError as exc:
        raise GenerationFailedError(f"{label}: the package {exc}") from exc
    except (OSError, ValueError) as exc:
        raise GenerationFailedError(
            f"{label}: the images the package saved cannot be read: {exc}"
        ) from exc
    extras = {
        name.removeprefix(EXTRA_PREFIX): array
        for name, array in arrays.items()
        if name.startswith(EXTRA_PREFIX)
    }
    return GeneratedBatch(
        images=arrays[IMAGES],
        masks=arrays.get(MASKS),
        labels=arrays.get(LABELS),
        extras=extras,
    )


def _natural_key(path: str) -> list[object]:
    # image_2.png before image_10.png, as the package numbered them.
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(path)]


def read_saved_files(paths: Sequence[str]) -> dict[str, np.ndarray]:
    """The images (and masks) a legacy package saved instead of returning them.

    Image files and ``.npy`` arrays are read in natural order; files whose name contains
    ``mask`` are masks when there is one per image, else they count as images too.
    """
    readable = [p for p in paths if Path(p).suffix.lower() in _IMAGE_SUFFIXES | {".npy"}]
    if not readable:
        raise PackageOutputError("returned None and saved no image or .npy files into output_path")
    readable.sort(key=_natural_key)
    masks = [p for p in readable if "mask" in Path(p).name.lower()]
    images = [p for p in readable if p not in masks]
    if not images or len(masks) != len(images):
        images, masks = readable, []
    arrays = {IMAGES: as_array([_read_file(Path(p)) for p in images], "saved images")}
    if masks:
        arrays[MASKS] = as_array([_read_file(Path(p)) for p in masks], "saved masks")
    return checked(arrays)


def _read_file(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        with path.open("rb") as handle:
            return np.asarray(np.load(handle, allow_pickle=False))
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image)
