"""torch datasets of generated samples: a cached map-style data set and a fresh-sample stream.

:class:`GeneratedDataset` is generated once, stored in the cache under
``datasets/<key>/`` (``images.npy``, ``masks.npy`` and ``labels.npy`` when the package returns
them, ``meta.json``) and read back lazily with ``np.load(mmap_mode="r")``; the key names the
release, its package sha256, the seed, the number of samples, the batch size and the arguments,
so asking again for the same data set reads it from disk instead of generating it.
:class:`StreamingDataset` is a ``torch.utils.data.IterableDataset`` that generates new samples
while it is iterated, in every DataLoader worker, each worker on its own seeds. Both generate
through :mod:`medigan_client.batching`, as :func:`medigan_client.generate.generate` does: item
``i`` of ``client.dataset(model, n, seed=s, batch_size=b)`` is sample ``i`` of
``client.generate(model, n, seed=s, batch_size=b)``.

Every item is a dict (see :func:`sample_item`):

* ``"image"``: ``torch.float32`` ``(C, H, W)``, or ``(C, D, H, W)`` for volumes, scaled from the
  card's ``output.value_range`` to ``[0, 1]`` (values outside the range are clipped);
* ``"mask"``: only when the package returns masks, ``(1, H, W)`` (``(C, H, W)`` for several
  mask channels, ``(1, D, H, W)`` for volumes) with the package's values and dtype (unsigned
  types torch cannot hold become ``torch.int64``);
* ``"label"``: only when the package returns labels, a ``torch.Tensor`` (``()`` or ``(K,)``)
  for numeric labels, a ``str`` for text labels;
* ``"index"``: the ``int`` index of the sample in the data set or the stream.

This module needs torch (the ``medigan-client[torch]`` extra); the rest of the client does not,
and :class:`medigan_client.Client` imports this module only when a data set is asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info
from tqdm import tqdm  # type: ignore[import-untyped]

from medigan_catalog.schema import Card
from medigan_client.batching import (
    DEFAULT_BATCH_SIZE,
    EPOCH,
    SEED_SCHEME,
    STREAM,
    derive_seed,
    generate_batches,
)
from medigan_client.cache import Cache, restrict_to_owner, write_atomic
from medigan_client.download import ensure_package, is_private
from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.http import HubSession
from medigan_client.runtime import GeneratedBatch, Runner, open_runner
from medigan_client.runtime.loader import resolve_device
from medigan_client.settings import ClientSettings

# 2: generated through medigan_client.batching (whole grid batches, its seed scheme).
DATASET_FORMAT = 2
META_NAME = "meta.json"
IMAGES_NAME = "images.npy"
MASKS_NAME = "masks.npy"
LABELS_NAME = "labels.npy"

Item = dict[str, Any]
Transform = Callable[[Any], Any]


def package_identity(card: Card) -> str:
    """What pins the package's bytes: the artifact's sha256, else the release id."""
    artifact = card.package_artifact
    if artifact is not None and artifact.sha256:
        return artifact.sha256.lower()
    return card.release_id


def dataset_key(
    card: Card,
    *,
    seed: int,
    num_samples: int,
    batch_size: int,
    arguments: Mapping[str, object],
) -> str:
    """The cache key of a generated data set: readable release name plus a digest of the rest.

    The batch size is part of the key because a package draws a whole batch from one seed, so
    the same seed with another batch size gives other images. The device is not: a data set
    built on a GPU is reused on a CPU (floating-point results may differ in the last bits).
    """
    identity = json.dumps(
        {
            "format": DATASET_FORMAT,
            "release": card.release_id,
            "package": package_identity(card),
            "seed": seed,
            "num_samples": num_samples,
            "batch_size": batch_size,
            "arguments": dict(arguments),
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:24]
    return f"{card.namespace}--{card.name}--{card.version}--{digest}"


def dataset_lock_key(key: str) -> str:
    """The name of the cache lock that builders (and cleaners) of a data set take."""
    return f"dataset:{key}"


# -- converting one sample ----------------------------------------------------------------------


def _channels_first(array: np.ndarray, *, spatial_dims: int) -> np.ndarray:
    """``(S...)`` -> ``(1, S...)`` and ``(S..., C)`` -> ``(C, S...)`` for ``spatial_dims`` axes."""
    if array.ndim == spatial_dims:
        return array[np.newaxis]
    if array.ndim == spatial_dims + 1:
        return np.moveaxis(array, -1, 0)
    raise GenerationFailedError(
        f"a sample of shape {array.shape} has neither {spatial_dims} nor {spatial_dims + 1} axes"
    )


def scale_image(image: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """``image`` as float32 in ``[0, 1]``: ``(x - low) / (high - low)``, clipped."""
    low, high = value_range
    scaled: np.ndarray = (np.asarray(image, dtype=np.float32) - np.float32(low)) / np.float32(
        high - low
    )
    return np.clip(scaled, 0.0, 1.0, out=scaled)


def _mask_tensor(mask: np.ndarray, *, spatial_dims: int) -> torch.Tensor:
    array = _channels_first(np.asarray(mask), spatial_dims=spatial_dims)
    if array.dtype.kind == "u" and array.dtype != np.uint8:
        # torch has uint8 and bool, but few operations on wider unsigned integers.
        array = array.astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(array))


def _label_value(label: np.ndarray) -> torch.Tensor | str | list[str]:
    value = np.asarray(label)
    if value.dtype.kind in "US":
        return str(value.item()) if value.ndim == 0 else [str(v) for v in value.tolist()]
    return torch.as_tensor(np.array(value))


def sample_item(
    index: int,
    image: np.ndarray,
    *,
    value_range: tuple[float, float],
    volume: bool,
    mask: np.ndarray | None = None,
    label: np.ndarray | None = None,
    transform: Transform | None = None,
    target_transform: Transform | None = None,
) -> Item:
    """One data set item from one sample's arrays (layout and dtypes in the module docstring).

    ``transform`` is applied to the image tensor, ``target_transform`` to the label.
    """
    spatial_dims = 3 if volume else 2
    pixels = _channels_first(scale_image(image, value_range), spatial_dims=spatial_dims)
    image_tensor: Any = torch.from_numpy(np.ascontiguousarray(pixels))
    item: Item = {"image": transform(image_tensor) if transform is not None else image_tensor}
    if mask is not None:
        item["mask"] = _mask_tensor(mask, spatial_dims=spatial_dims)
    if label is not None:
        target: Any = _label_value(label)
        item["label"] = target_transform(target) if target_transform is not None else target
    item["index"] = int(index)
    return item


def _storable_labels(labels: np.ndarray) -> np.ndarray:
    """Labels as an array that ``np.save(allow_pickle=False)`` can write (objects become text)."""
    array = np.asarray(labels)
    if array.dtype == object:
        try:
            array = np.asarray(array.tolist())
        except ValueError:
            array = array.astype(str)
        if array.dtype == object:
            array = array.astype(str)
    return array


# -- the cached, map-style data set -------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that determines a generated data set's content (and so its cache key)."""

    card: Card
    num_samples: int
    seed: int
    batch_size: int
    arguments: Mapping[str, object]

    @property
    def key(self) -> str:
        """The data set's cache key."""
        return dataset_key(
            self.card,
            seed=self.seed,
            num_samples=self.num_samples,
            batch_size=self.batch_size,
            arguments=self.arguments,
        )


def _write_batches(
    spec: DatasetSpec,
    runner: Runner,
    staging: Path,
    *,
    device: str,
    progress: bool,
) -> dict[str, Any]:
    """Generate every batch into ``.npy`` files in ``staging``; return their shapes and dtypes.

    Images and masks go straight into memory-mapped files, so memory does not grow with the
    number of samples; labels are small and are written at the end.
    """
    card = spec.card
    images: np.memmap[Any, Any] | None = None
    masks: np.memmap[Any, Any] | None = None
    labels: list[np.ndarray] = []
    expect_labels = False
    with tqdm(
        total=spec.num_samples,
        unit="img",
        desc=f"dataset {card.release_id}",
        file=sys.stderr,
        disable=not progress,
    ) as bar:
        for plan, batch in generate_batches(
            runner,
            card,
            seed=spec.seed,
            batch_size=spec.batch_size,
            first=0,
            stop=spec.num_samples,
            device=device,
            args=spec.arguments,
        ):
            start, count = plan.first, plan.count
            if images is None:
                expect_labels = batch.labels is not None
                images = np.lib.format.open_memmap(
                    staging / IMAGES_NAME,
                    mode="w+",
                    dtype=batch.images.dtype,
                    shape=(spec.num_samples, *batch.images.shape[1:]),
                )
                if batch.masks is not None:
                    masks = np.lib.format.open_memmap(
                        staging / MASKS_NAME,
                        mode="w+",
                        dtype=batch.masks.dtype,
                        shape=(spec.num_samples, *batch.masks.shape[1:]),
                    )
            _check_consistent(card, start, batch, images, masks, expect_labels)
            images[start : start + count] = batch.images
            if masks is not None and batch.masks is not None:
                masks[start : start + count] = batch.masks
            if batch.labels is not None:
                labels.append(_storable_labels(batch.labels))
            bar.update(count)
    if images is None:  # num_samples >= 1 is checked by the caller; this keeps mypy exact
        raise GenerationFailedError(f"{card.release_id} generated no samples")
    arrays: dict[str, Any] = {IMAGES_NAME: _describe(images)}
    images.flush()
    if masks is not None:
        masks.flush()
        arrays[MASKS_NAME] = _describe(masks)
    if labels:
        all_labels = np.concatenate(labels)
        with (staging / LABELS_NAME).open("wb") as handle:
            np.save(handle, all_labels, allow_pickle=False)
        arrays[LABELS_NAME] = _describe(all_labels)
    return arrays


def _describe(array: np.ndarray) -> dict[str, Any]:
    return {"shape": [int(n) for n in array.shape], "dtype": str(array.dtype)}


def _check_consistent(
    card: Card,
    start: int,
    batch: GeneratedBatch,
    images: np.ndarray,
    masks: np.ndarray | None,
    expect_labels: bool,
) -> None:
    """Every batch must look like the first: same sample shape, same masks and labels present."""
    problems: list[str] = []
    if batch.images.shape[1:] != images.shape[1:] or batch.images.dtype != images.dtype:
        problems.append(
            f"images {batch.images.shape[1:]} {batch.images.dtype} differ from the first "
            f"batch's {images.shape[1:]} {images.dtype}"
        )
    if (batch.masks is None) != (masks is None):
        problems.append("masks are returned for some batches and not for others")
    elif masks is not None and batch.masks is not None and batch.masks.shape[1:] != masks.shape[1:]:
        problems.append(f"masks {batch.masks.shape[1:]} differ from {masks.shape[1:]}")
    if (batch.labels is not None) != expect_labels:
        problems.append("labels are returned for some batches and not for others")
    if problems:
        raise GenerationFailedError(
            f"{card.release_id} changed its output at sample {start}: " + "; ".join(problems),
            detail={"problems": problems},
        )


def build_dataset(
    settings: ClientSettings,
    spec: DatasetSpec,
    *,
    device: str = "auto",
    isolation: str = "auto",
    session: HubSession | None = None,
    progress: bool = True,
) -> Path:
    """The directory of the generated data set ``spec``, generating it once if it is not cached.

    Builders take the data set's cache lock, generate into a scratch directory beside the
    cache and rename it into place when it is complete, so a reader never sees half a data set
    and two processes asking for the same one generate it once. The package runs in the given
    ``isolation`` (see :func:`medigan_client.runtime.open_runner`).
    """
    if spec.num_samples < 1:
        raise BadRequestError(f"num_samples must be at least 1, not {spec.num_samples}")
    if spec.batch_size < 1:
        raise BadRequestError(f"batch_size must be at least 1, not {spec.batch_size}")
    cache = Cache(settings.cache_dir)
    key = spec.key
    target = cache.dataset_dir(key)
    if (target / META_NAME).is_file():
        return target
    # No timeout: a large data set takes longer than any fixed wait, and the lock dies with a
    # builder that crashes, so waiting cannot hang on a dead process.
    with cache.lock(dataset_lock_key(key), timeout=-1):
        # Another process may have finished the same data set while we waited for the lock.
        if (target / META_NAME).is_file():
            return target
        package_dir = ensure_package(settings, spec.card, session=session, progress=progress)
        chosen_device = resolve_device(device)
        staging = Path(tempfile.mkdtemp(prefix="dataset-", dir=cache.tmp_dir))
        try:
            with open_runner(
                package_dir, spec.card, isolation=isolation, settings=settings
            ) as runner:
                arrays = _write_batches(
                    spec, runner, staging, device=chosen_device, progress=progress
                )
                sample_seeds = runner.supports_sample_seeds
            meta = {
                "format": DATASET_FORMAT,
                "key": key,
                "release_id": spec.card.release_id,
                "package": package_identity(spec.card),
                "seed": spec.seed,
                "num_samples": spec.num_samples,
                "batch_size": spec.batch_size,
                "arguments": dict(spec.arguments),
                "sample_seeds": sample_seeds,
                "seed_scheme": SEED_SCHEME,
                "device": chosen_device,
                "volume": spec.card.output.depth is not None,
                "value_range": list(spec.card.output.value_range),
                "arrays": arrays,
            }
            # meta.json is written last: a directory without it is never a finished data set.
            write_atomic(
                staging / META_NAME, json.dumps(meta, indent=2, default=str).encode("utf-8")
            )
            if is_private(settings, spec.card):
                # The staging folder is mkdtemp's (0700), so nothing in it was ever readable by
                # others; its files are narrowed to 0600 before it moves into the cache.
                for path in staging.rglob("*"):
                    restrict_to_owner(path)
            if target.exists():
                # Left behind by a removal that was interrupted; nobody uses it (we hold the lock).
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.replace(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


class GeneratedDataset(Dataset[Item]):
    """A map-style torch data set of generated samples, read lazily from its cache directory.

    Make one with :meth:`medigan_client.Client.dataset`, or open a directory it built with
    ``GeneratedDataset(directory)``. Only the directory and the small ``meta.json`` are held,
    so the data set pickles cheaply into DataLoader workers; each process memory-maps the
    arrays on first access (``np.load(mmap_mode="r")``), and the operating system shares their
    pages between workers. Items are described in :mod:`medigan_client.dataset`.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        transform: Transform | None = None,
        target_transform: Transform | None = None,
    ):
        self.directory = Path(directory)
        meta_path = self.directory / META_NAME
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise BadRequestError(f"{self.directory} is not a generated data set") from exc
        if not isinstance(meta, dict) or meta.get("format") != DATASET_FORMAT:
            raise BadRequestError(
                f"{meta_path} is not a generated data set of format {DATASET_FORMAT}"
            )
        self.meta: dict[str, Any] = meta
        self.transform = transform
        self.target_transform = target_transform
        low, high = meta["value_range"]
        self._value_range = (float(low), float(high))
        self._arrays: dict[str, np.ndarray] | None = None

    def __repr__(self) -> str:
        return (
            f"GeneratedDataset({self.meta['release_id']}, num_samples={len(self)}, "
            f"seed={self.meta['seed']}, directory={str(self.directory)!r})"
        )

    def __len__(self) -> int:
        return int(self.meta["num_samples"])

    @property
    def release_id(self) -> str:
        """The release that generated the samples (``ns/name@version``)."""
        return str(self.meta["release_id"])

    @property
    def has_masks(self) -> bool:
        """Whether items carry a ``"mask"``."""
        return MASKS_NAME in self.meta["arrays"]

    @property
    def has_labels(self) -> bool:
        """Whether items carry a ``"label"``."""
        return LABELS_NAME in self.meta["arrays"]

    def arrays(self) -> dict[str, np.ndarray]:
        """The raw arrays by file name, memory-mapped read-only (opened once per process)."""
        if self._arrays is None:
            self._arrays = {
                name: np.load(self.directory / name, mmap_mode="r", allow_pickle=False)
                for name in self.meta["arrays"]
            }
        return self._arrays

    def __getitem__(self, index: int) -> Item:
        size = len(self)
        position = int(index)
        if position < 0:
            position += size
        if not 0 <= position < size:
            raise IndexError(f"index {index} is out of range for {size} samples")
        arrays = self.arrays()
        masks = arrays.get(MASKS_NAME)
        labels = arrays.get(LABELS_NAME)
        return sample_item(
            position,
            np.array(arrays[IMAGES_NAME][position]),
            value_range=self._value_range,
            volume=bool(self.meta["volume"]),
            mask=None if masks is None else np.array(masks[position]),
            label=None if labels is None else np.array(labels[position]),
            transform=self.transform,
            target_transform=self.target_transform,
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # A pickled memmap would carry its whole content; each process maps the files itself.
        state["_arrays"] = None
        return state


def open_dataset(
    settings: ClientSettings,
    spec: DatasetSpec,
    *,
    transform: Transform | None = None,
    target_transform: Transform | None = None,
    device: str = "auto",
    isolation: str = "auto",
    session: HubSession | None = None,
    progress: bool = True,
) -> GeneratedDataset:
    """Build (once) and open the data set ``spec``; see :func:`build_dataset`."""
    directory = build_dataset(
        settings, spec, device=device, isolation=isolation, session=session, progress=progress
    )
    # The directory's time says when it was last used, for cache pruning.
    os.utime(directory)
    return GeneratedDataset(directory, transform=transform, target_transform=target_transform)


# -- the stream of fresh samples -----------------------------------------------------------------


class StreamingDataset(IterableDataset[Item]):
    """An endless (or ``num_samples`` long) stream of freshly generated samples.

    Make one with :meth:`medigan_client.Client.iterable_dataset`. The object holds only the
    card, the package directory (already downloaded) and the settings, so it pickles into
    DataLoader workers; each worker opens its own runner when it starts iterating and closes it
    when the iteration ends.

    Seeding: an iteration draws samples ``0, 1, 2, ...`` (each item's ``"index"``) of the
    sample sequence (:mod:`medigan_client.batching`) of ``(stream seed, batch_size)``, where the
    stream seed is derived from ``(seed, epoch, iteration)``; DataLoader worker ``w`` of ``W``
    generates the grid batches ``g = w, w + W, w + 2W, ...``. Workers therefore never share a
    batch, and the same seed, epoch and batch size give the same samples whatever the number of
    workers. ``epoch`` is what :meth:`set_epoch` set (like ``DistributedSampler.set_epoch``);
    ``iteration`` counts the iterations this copy of the object has started since. Without
    persistent workers a DataLoader hands every epoch a fresh copy, so a finite stream repeats
    itself each epoch unless ``set_epoch`` is called; in the main process or with
    ``persistent_workers=True`` each iteration draws new samples.

    Isolation defaults to ``"inprocess"``: a DataLoader worker already is a separate process,
    so running the package in a further child per worker would double the processes and the
    memory for little gain. Ask for ``"process"`` or ``"venv"`` when the package must not
    share the worker's interpreter (conflicting dependencies, crashes). The device defaults to
    ``"cpu"``: CUDA cannot be used in workers started with ``fork`` (the Linux default); use
    ``multiprocessing_context="spawn"`` or ``num_workers=0`` for a GPU.
    """

    def __init__(
        self,
        settings: ClientSettings,
        card: Card,
        package_dir: Path,
        *,
        arguments: Mapping[str, object],
        seed: int = 0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        num_samples: int | None = None,
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        device: str = "cpu",
        isolation: str = "inprocess",
    ):
        if batch_size < 1:
            raise BadRequestError(f"batch_size must be at least 1, not {batch_size}")
        if num_samples is not None and num_samples < 0:
            raise BadRequestError(f"num_samples must not be negative, not {num_samples}")
        self.settings = settings
        self.card = card
        self.package_dir = Path(package_dir)
        self.arguments = dict(arguments)
        self.seed = seed
        self.batch_size = batch_size
        self.num_samples = num_samples
        self.transform = transform
        self.target_transform = target_transform
        self.device = device
        self.isolation = isolation
        self.epoch = 0
        self._iterations = 0

    def __repr__(self) -> str:
        total = "endless" if self.num_samples is None else f"num_samples={self.num_samples}"
        return f"StreamingDataset({self.card.release_id}, {total}, seed={self.seed})"

    def __len__(self) -> int:
        if self.num_samples is None:
            raise TypeError("an endless StreamingDataset has no length")
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Start the stream of ``epoch`` at the next iteration (call before each epoch)."""
        self.epoch = int(epoch)
        self._iterations = 0

    def stream_base(self, iteration: int) -> int:
        """The seed of the sample sequence that iteration ``iteration`` of this epoch draws."""
        return derive_seed(STREAM, derive_seed(EPOCH, self.seed, self.epoch), iteration)

    def __iter__(self) -> Iterator[Item]:
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker else (0, 1)
        iteration = self._iterations
        self._iterations += 1
        return self._stream(iteration, worker_id, num_workers)

    def _stream(self, iteration: int, worker_id: int, num_workers: int) -> Iterator[Item]:
        seed = self.stream_base(iteration)
        value_range = self.card.output.value_range
        volume = self.card.output.depth is not None
        device = resolve_device(self.device)
        batch_index = worker_id
        with open_runner(
            self.package_dir, self.card, isolation=self.isolation, settings=self.settings
        ) as runner:
            while True:
                start = batch_index * self.batch_size
                stop = start + self.batch_size
                if self.num_samples is not None:
                    stop = min(stop, self.num_samples)
                if start >= stop:
                    return
                for plan, batch in generate_batches(
                    runner,
                    self.card,
                    seed=seed,
                    batch_size=self.batch_size,
                    first=start,
                    stop=stop,
                    device=device,
                    args=self.arguments,
                ):
                    for offset in range(plan.count):
                        yield sample_item(
                            plan.first + offset,
                            batch.images[offset],
                            value_range=value_range,
                            volume=volume,
                            mask=None if batch.masks is None else batch.masks[offset],
                            label=None if batch.labels is None else batch.labels[offset],
                            transform=self.transform,
                            target_transform=self.target_transform,
                        )
                batch_index += num_workers
