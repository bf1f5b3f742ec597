"""Generate images with a release: resolve it, run it in batches, write files and a manifest.

Pipeline: the model runs batch after batch in the calling thread (or in its runner's child
process); each batch is checked against the card's ``output`` and handed to a pool of writer
threads that encode and write its samples while the model computes the next batch. At most
``max_in_flight`` batches wait for or are being written, so memory stays flat for any number of
samples; manifest lines are written in index order as soon as all samples before them are on
disk. A writer's error stops the run: pending writes are cancelled, running ones finish, and
the manifest keeps exactly the batches that were written completely.

Seeding and batching are :mod:`medigan_client.batching`'s, shared with the data sets, the
visualiser, medigan's ``Generators`` and the hub's evaluations: batches sit on a fixed grid of
``batch_size`` from index 0 and are always generated whole, so sample ``i`` is the same whether
a run covers ``[0, 2N)`` or is split into ``[0, N)`` and ``[N, 2N)`` (``start_index``), and the
same as the sample ``i`` a hub's evaluation with that seed generated. Runners that take one seed
per sample also get each sample's own seed; their images then do not depend on the batch size
(up to float rounding). Each manifest line records what determined its image.

Options: :class:`GenerationOptions` holds every choice of a run, checked once when it is made.

Output: ``<index:06d><ext>`` per sample in the chosen format (:mod:`medigan_client.outputs`),
``<index:06d>_mask<ext>`` for masks, ``<index:06d>_<name>.npy`` for further arrays, and
``manifest.jsonl`` with one line per sample: ``{file, model, version, package_sha256, seed,
index, batch_seed, batch_start, batch_size, args}`` plus, where they apply, ``sample_seed``,
``precision``, ``mask``, ``label``, ``extras`` and ``dicom`` (the file's UIDs). ``resume=True``
continues a run from its manifest.

The output folder: a run writes into a folder that is missing or empty. A folder that holds
anything is refused (:class:`OutputExistsError`, code ``bad_request``) before any download,
unless ``resume`` continues the run whose manifest is there, or ``overwrite`` replaces that run:
it removes exactly the files the previous run's manifest lists (images, masks, extra arrays), the
hidden temporary files of an interrupted write of those, and the manifest. A folder that holds
anything else, or no manifest, is refused even with ``overwrite``: files the client did not list
as its own are never removed (:func:`check_output_dir`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np
from tqdm import tqdm  # type: ignore[import-untyped]

from medigan_catalog.errors import CatalogError
from medigan_catalog.schema import Card, RuntimeKind
from medigan_catalog.validation import resolve_generation_arguments
from medigan_client.batching import (
    DEFAULT_BATCH_SIZE,
    SEED_SCHEME,
    BatchPlan,
    default_batch_size,
    generate_batches,
)
from medigan_client.cache import Cache
from medigan_client.download import cached_sha256, download_release, ensure_package
from medigan_client.download import package_artifact as _package_artifact
from medigan_client.errors import (
    BadRequestError,
    GenerationFailedError,
    MediganClientError,
    OutputExistsError,
)
from medigan_client.http import HubSession
from medigan_client.outputs import (
    DicomSeries,
    PngWriter,
    Role,
    RunProvenance,
    SampleWriter,
    WrittenFile,
    image_extension,
    new_dicom_series,
    normalise_uid_root,
    require_format_libraries,
    writer_for,
)
from medigan_client.runtime import ISOLATION_MODES, GeneratedBatch, Runner, open_runner
from medigan_client.runtime.batches import SavedFilesBatch
from medigan_client.runtime.loader import resolve_device
from medigan_client.settings import ClientSettings
from medigan_client.sync import Snapshot, find_release, has_snapshot, load_snapshot, sync

MANIFEST_NAME = "manifest.jsonl"
HALF_PRECISION = "float16"
# How many of the files in the way an OutputExistsError names.
_NAMED_FILES = 5
# The hidden temporary name outputs.write_atomically gives a sample file while it is written.
_TEMPORARY_OUTPUT = re.compile(r"^\.(?P<target>.+)\.\d+-\d+\.tmp$")


@dataclass(frozen=True)
class GenerationResult:
    """What :func:`generate` left in ``output_dir``: samples ``[start_index, start_index+count)``.

    File paths are computed from the index on demand, so a result of 100,000 samples holds no
    list of them; :attr:`files` builds one when asked.
    """

    model_id: str
    version: str
    package_sha256: str
    seed: int
    device: str
    output_dir: Path
    format: str
    extension: str
    start_index: int
    count: int
    generated: int
    manifest_path: Path
    # How many files of a previous run ``overwrite`` removed (its manifest included).
    removed: int = 0

    def file_for(self, index: int) -> Path:
        """The image file of sample ``index`` (which must lie in this run's range)."""
        if not self.start_index <= index < self.start_index + self.count:
            raise IndexError(f"sample {index} is not in this run's range")
        return self.output_dir / f"{index:06d}{self.extension}"

    def iter_files(self) -> Iterator[Path]:
        """The image files in index order, one at a time."""
        for index in range(self.start_index, self.start_index + self.count):
            yield self.output_dir / f"{index:06d}{self.extension}"

    @property
    def files(self) -> list[Path]:
        """The image files in index order, as a list (built on each access)."""
        return list(self.iter_files())


def default_worker_count() -> int:
    """The CPUs this process may run on (``os.process_cpu_count`` where Python has it)."""
    counter: Callable[[], int | None] | None = getattr(os, "process_cpu_count", None)
    if counter is not None:
        return max(1, counter() or 1)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def current_snapshot(settings: ClientSettings, *, session: HubSession | None = None) -> Snapshot:
    """The cached catalogue; synced once first when nothing is cached and the client is online."""
    if not has_snapshot(settings) and not settings.offline:
        sync(settings, session=session)
    return load_snapshot(settings)


def resolve_arguments(card: Card, given: Mapping[str, object] | None) -> dict[str, object]:
    """The card's generation arguments, typed and defaulted, as the package receives them."""
    try:
        return dict(resolve_generation_arguments(card, dict(given or {})))
    except CatalogError as exc:
        raise BadRequestError(exc.message, detail=exc.detail) from exc


def save_sample(sample: np.ndarray, card: Card, path_stem: Path) -> Path:
    """Write one sample next to ``path_stem`` as PNG (or ``.npy`` for volumes); return the file."""
    writer = PngWriter(card, RunProvenance(model_id=card.model_id, version=card.version))
    return writer.write(sample, path_stem, {}).path


def _jsonable(value: object) -> object:
    """A label (numpy scalar or row) as JSON: numbers, strings, lists."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


class _WriteCancelledError(Exception):
    """A queued write that the run no longer wants (it is stopping)."""


class _WritePipeline:
    """Writer threads and the bounded queue of batches between the model and the disk.

    Threads, not processes: Pillow's PNG encoder (zlib), ``np.save``'s writes and gzip release
    the GIL, and in the default isolation the model runs in a child process, so the writer
    threads share the GIL only with a calling thread that mostly waits on a pipe. (Checked for
    Pillow 13: with a 0.2 s switch interval beside a thread spinning in Python, five 128 x 128
    PNG encodes took 3.35 s, each waiting to get the GIL back after giving it up in C; the same
    calls of pure Python, which keep the GIL, took under 0.01 s.) A legacy package's own PNG
    files are not encoded here at all but adopted (:meth:`SampleWriter.adopt`). Measured on
    the 2-core development machine (shared, load 2 to 4) with the zoo's 64x64 DCGAN: model in a
    child process, threads write at 1.05 to 1.13 times the serial floor; model in this process,
    neither threads nor a spawned process pool beat the serial floor (383, 379 and 381 img/s),
    because no core was idle, and the pool took 1.2 s to start and pickles every batch. See
    docs/generation.md.
    """

    def __init__(
        self,
        *,
        writer: SampleWriter,
        output_dir: Path,
        manifest: IO[str],
        base_record: Mapping[str, object],
        workers: int,
        max_in_flight: int,
        on_written: Callable[[int], None],
    ):
        self.writer = writer
        self.output_dir = output_dir
        self.manifest = manifest
        self.base_record = dict(base_record)
        self.workers = workers
        self.max_in_flight = max_in_flight
        self.on_written = on_written
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medigan-write")
        self._in_flight: deque[tuple[BatchPlan, list[Future[list[str]]]]] = deque()
        self._cancel = threading.Event()

    def submit(self, plan: BatchPlan, batch: GeneratedBatch) -> None:
        """Queue the kept samples of a batch; blocks while ``max_in_flight`` batches are queued."""
        self._flush(wait_for_oldest=False)
        while len(self._in_flight) >= self.max_in_flight:
            self._flush(wait_for_oldest=True)
        chunk = max(1, math.ceil(plan.count / self.workers))
        futures = [
            self._pool.submit(self._write_samples, plan, batch, low, min(plan.count, low + chunk))
            for low in range(0, plan.count, chunk)
        ]
        self._in_flight.append((plan, futures))

    def finish(self) -> None:
        """Wait until every queued batch is written and in the manifest; stop the threads."""
        while self._in_flight:
            self._flush(wait_for_oldest=True)
        self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Stop: cancel queued writes, let running ones end, record the batches fully written."""
        self._cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        while self._in_flight:
            plan, futures = self._in_flight[0]
            if not all(f.done() and not f.cancelled() and f.exception() is None for f in futures):
                break
            self._record_batch(plan, futures)

    def _flush(self, *, wait_for_oldest: bool) -> None:
        """Raise a writer's error; write the manifest lines of the finished leading batches."""
        if wait_for_oldest and self._in_flight:
            wait(self._in_flight[0][1], return_when=FIRST_EXCEPTION)
        self._raise_first_failure()
        while self._in_flight and all(f.done() for f in self._in_flight[0][1]):
            plan, futures = self._in_flight[0]
            self._record_batch(plan, futures)

    def _record_batch(self, plan: BatchPlan, futures: list[Future[list[str]]]) -> None:
        self.manifest.write("".join(line for future in futures for line in future.result()))
        self.manifest.flush()
        self._in_flight.popleft()
        self.on_written(plan.count)

    def _raise_first_failure(self) -> None:
        for _plan, futures in self._in_flight:
            for future in futures:
                if future.done() and not future.cancelled():
                    error = future.exception()
                    if error is not None:
                        raise error

    def _write_samples(
        self, plan: BatchPlan, batch: GeneratedBatch, low: int, high: int
    ) -> list[str]:
        """Write kept samples ``low:high`` of a batch; return their manifest lines."""
        lines: list[str] = []
        for position in range(low, high):
            if self._cancel.is_set():
                raise _WriteCancelledError
            index = plan.first + position
            try:
                lines.append(self._write_one(plan, batch, position, index))
            except MediganClientError:
                raise
            except Exception as exc:
                raise GenerationFailedError(
                    f"writing sample {index} to {self.output_dir} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        return lines

    def _write(
        self,
        array: np.ndarray,
        saved: Path | None,
        stem: Path,
        record: Mapping[str, object],
        role: Role,
    ) -> WrittenFile:
        """The file the package saved for the sample, adopted; else the sample, written."""
        if saved is not None:
            adopted = self.writer.adopt(saved, stem, record, role=role)
            if adopted is not None:
                return adopted
        return self.writer.write(array, stem, record, role=role)

    def _write_one(self, plan: BatchPlan, batch: GeneratedBatch, position: int, index: int) -> str:
        record: dict[str, object] = {"file": "", **self.base_record}
        record["index"] = index
        record["batch_seed"] = plan.batch_seed
        record["batch_start"] = plan.grid_start
        sample_seed = plan.sample_seed(position)
        if sample_seed is not None:
            record["sample_seed"] = sample_seed
        stem = self.output_dir / f"{index:06d}"
        saved = batch.saved if isinstance(batch, SavedFilesBatch) else None
        written = self._write(
            batch.images[position],
            saved.images[position] if saved is not None else None,
            stem,
            record,
            "image",
        )
        record["file"] = written.path.name
        record.update(written.manifest_fields)
        if batch.masks is not None:
            mask = self._write(
                batch.masks[position],
                saved.masks[position] if saved is not None and saved.masks else None,
                stem.with_name(f"{stem.name}_mask"),
                record,
                "mask",
            )
            record["mask"] = mask.path.name
            record.update(mask.manifest_fields)
        if batch.labels is not None:
            record["label"] = _jsonable(batch.labels[position])
        if batch.extras:
            record["extras"] = {
                name: self.writer.write_extra(name, array[position], stem).name
                for name, array in batch.extras.items()
            }
        return json.dumps(record) + "\n"


def _precision_keyword(card: Card) -> str:
    """The keyword a package takes its precision in: a declared ``dtype``, else ``precision``."""
    names = {argument.name for argument in card.generation_arguments}
    return "dtype" if "dtype" in names and "precision" not in names else "precision"


def check_half_precision(card: Card) -> None:
    """Raise :class:`BadRequestError` unless the card allows half precision."""
    if card.runtime.kind != RuntimeKind.V2 or not card.runtime.half_precision:
        raise BadRequestError(
            f"{card.release_id} does not allow half precision (its card does not set "
            "runtime.half_precision, which only v2 packages can)"
        )


@dataclass(frozen=True)
class _ResumePoint:
    done: int
    dicom_series: DicomSeries | None


def _resume_point(
    manifest_path: Path,
    *,
    expected: Mapping[str, object],
    start_index: int,
    extension: str,
    per_sample_seeds: bool,
) -> _ResumePoint:
    """How many samples of the run are already on disk; cut the manifest to exactly those.

    The manifest's leading lines count while they are complete, in index order from
    ``start_index`` and their files exist; a line written with other parameters is an error,
    not a reason to overwrite. Lines after the first that does not count are removed.
    """
    if not manifest_path.is_file():
        return _ResumePoint(0, None)
    done = 0
    valid_bytes = 0
    last: dict[str, object] | None = None
    with manifest_path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # a line cut off by the interruption
            try:
                line = json.loads(raw)
            except ValueError:
                break
            if not isinstance(line, dict):
                break
            for key, value in expected.items():
                if line.get(key) != value:
                    raise BadRequestError(
                        f"cannot resume in {manifest_path.parent}: its manifest was written with "
                        f"{key} {line.get(key)!r}, this run has {value!r}"
                    )
            if ("sample_seed" in line) != per_sample_seeds:
                raise BadRequestError(
                    f"cannot resume in {manifest_path.parent}: its manifest was written "
                    f"{'with' if 'sample_seed' in line else 'without'} per-sample seeds"
                )
            if line.get("index") != start_index + done:
                if done == 0:
                    raise BadRequestError(
                        f"cannot resume in {manifest_path.parent}: its manifest starts at sample "
                        f"{line.get('index')}, this run at {start_index}"
                    )
                break
            if not str(line.get("file", "")).endswith(extension):
                raise BadRequestError(
                    f"cannot resume in {manifest_path.parent}: its manifest lists "
                    f"{line.get('file')!r}, this run writes {extension} files"
                )
            files = [line.get("file"), line.get("mask"), *dict(line.get("extras") or {}).values()]
            if not all((manifest_path.parent / str(name)).is_file() for name in files if name):
                break
            done += 1
            valid_bytes += len(raw)
            last = line
    with manifest_path.open("r+b") as handle:
        handle.truncate(valid_bytes)
    series = None
    image_uids = last.get("dicom") if last is not None else None
    if last is not None and isinstance(image_uids, dict):
        mask_uids = last.get("mask_dicom")
        series = DicomSeries(
            uid_root=None,
            study_instance_uid=str(image_uids.get("study_instance_uid", "")),
            series_instance_uid=str(image_uids.get("series_instance_uid", "")),
            mask_series_instance_uid=str(mask_uids.get("series_instance_uid", ""))
            if isinstance(mask_uids, dict)
            else "",
            created=datetime.now(UTC),
        )
    return _ResumePoint(done, series)


@dataclass(frozen=True)
class GenerationOptions:
    """How a run generates: every choice but the model and the samples, checked once here.

    ``seed`` and ``batch_size`` pick the sample sequence (:mod:`medigan_client.batching`),
    ``start_index`` where the run starts in it; ``device`` is ``auto``, ``cpu``, ``cuda[:N]`` or
    ``mps``; ``args`` are the card's generation arguments (typed and defaulted against the card
    when the run starts); ``format`` is png, npy, nifti or dicom; ``isolation`` is passed to
    :func:`medigan_client.runtime.open_runner`; ``half`` asks a card that allows it for float16;
    ``workers`` writer threads (default: the CPUs of this process) write while at most
    ``max_in_flight`` batches wait; ``dicom_uid_root`` is the root of the DICOM UIDs (default
    UUID-derived ``2.25.`` UIDs); ``resume`` keeps the samples already in the folder's manifest
    and continues after them; ``overwrite`` replaces the previous run in the folder (see
    :func:`check_output_dir`; not with ``resume``); ``png_compress_level`` (0 to 9) is zlib's
    level for PNG files (``None``: Pillow's 6, the bytes of every earlier run; on the DCGAN 128
    template's images 1 encodes 3.6 times faster for files a fifth larger, the same pixels).
    Making one raises :class:`BadRequestError` for a bad value.
    """

    seed: int = 0
    batch_size: int | None = None
    device: str = "auto"
    args: Mapping[str, object] = field(default_factory=dict)
    progress: bool = True
    format: str = "png"
    start_index: int = 0
    resume: bool = False
    isolation: str = "auto"
    half: bool = False
    workers: int | None = None
    max_in_flight: int | None = None
    dicom_uid_root: str | None = None
    png_compress_level: int | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.resume and self.overwrite:
            raise BadRequestError(
                "resume and overwrite exclude each other: resume keeps the samples in the "
                "folder, overwrite removes them"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise BadRequestError(f"batch_size must be at least 1, not {self.batch_size}")
        if self.start_index < 0:
            raise BadRequestError(f"start_index must not be negative, not {self.start_index}")
        if self.isolation not in ISOLATION_MODES:
            raise BadRequestError(
                f"isolation must be one of {', '.join(ISOLATION_MODES)}, not {self.isolation!r}"
            )
        if self.workers is not None and self.workers < 1:
            raise BadRequestError(f"workers must be at least 1, not {self.workers}")
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise BadRequestError(f"max_in_flight must be at least 1, not {self.max_in_flight}")
        level = self.png_compress_level
        if level is not None and (isinstance(level, bool) or level not in range(10)):
            raise BadRequestError(f"png_compress_level must be 0 to 9, not {level!r}")
        require_format_libraries(self.format)
        # A private copy, so the caller changing its dict later cannot change a made run.
        object.__setattr__(self, "args", dict(self.args or {}))
        if self.format == "dicom":
            object.__setattr__(self, "dicom_uid_root", normalise_uid_root(self.dicom_uid_root))

    def for_card(self, card: Card) -> GenerationOptions:
        """These options with the release's default batch size where none was asked for.

        The default depends on the runtime (:func:`medigan_client.batching.default_batch_size`).
        """
        if self.batch_size is not None:
            return self
        return replace(self, batch_size=default_batch_size(card))

    def writer_threads(self) -> int:
        """How many writer threads write the samples."""
        return self.workers or default_worker_count()

    def batches_in_flight(self) -> int:
        """How many batches may wait for or be in writing."""
        # At least two batches, so one is written while the next is generated, and enough small
        # batches to keep every writer busy.
        batch_size = self.batch_size or DEFAULT_BATCH_SIZE
        return self.max_in_flight or max(2, math.ceil(2 * self.writer_threads() / batch_size))


def _manifest_files(manifest_path: Path) -> set[str] | None:
    """The names of the files a run's manifest lists, or ``None`` when there is no manifest.

    Only plain names count (a run writes into its folder, nothing below or above it); a line cut
    off by an interruption, or that is not a record, lists nothing.
    """
    try:
        raw_lines = manifest_path.read_bytes().splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BadRequestError(f"cannot read {manifest_path}: {exc}") from exc
    names: set[str] = set()
    for raw in raw_lines:
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict):
            continue
        extras = line.get("extras")
        listed = [line.get("file"), line.get("mask")]
        listed += list(extras.values()) if isinstance(extras, dict) else []
        names.update(
            name
            for name in listed
            if isinstance(name, str)
            and name
            and Path(name).name == name
            and name not in {".", ".."}
        )
    return names


def check_output_dir(
    output_dir: Path, *, resume: bool = False, overwrite: bool = False
) -> list[Path]:
    """Check that a run may write into ``output_dir``; return what ``overwrite`` must remove first.

    A missing or empty folder is fine, and so is any folder with ``resume`` (the manifest decides
    what is kept). Otherwise, without ``overwrite``, :class:`OutputExistsError`. With it, the
    files the folder's manifest lists, the hidden temporary files of an interrupted write of
    those, and the manifest are returned; anything else in the folder (or a folder without a
    manifest) is refused with :class:`OutputExistsError` as well, since those files are not the
    client's to remove. Nothing is removed here.
    """
    if resume or not output_dir.is_dir():
        return []
    try:
        present = sorted(output_dir.iterdir())
    except OSError as exc:
        raise BadRequestError(f"cannot list the output folder {output_dir}: {exc}") from exc
    if not present:
        return []
    manifest_path = output_dir / MANIFEST_NAME

    def refuse(message: str, in_the_way: list[Path]) -> OutputExistsError:
        named = [path.name for path in in_the_way[:_NAMED_FILES]]
        more = len(in_the_way) - len(named)
        listing = ", ".join(named) + (f" and {more} more" if more > 0 else "")
        return OutputExistsError(
            f"{message} ({listing})",
            detail={"reason": "output_not_empty", "output_dir": str(output_dir), "files": named},
        )

    if not overwrite:
        raise refuse(
            f"the output folder {output_dir} is not empty: choose an empty folder, resume the run "
            f"whose {MANIFEST_NAME} is there (--resume), or replace that run (--overwrite)",
            present,
        )
    listed = _manifest_files(manifest_path)
    if listed is None:
        raise refuse(
            f"cannot overwrite in {output_dir}: it has no {MANIFEST_NAME}, so none of its files "
            "is known to be a previous run's; choose an empty folder",
            present,
        )

    def is_run_file(path: Path) -> bool:
        if path.name == MANIFEST_NAME or path.name in listed:
            return path.is_file() and not path.is_symlink()
        match = _TEMPORARY_OUTPUT.match(path.name)
        return bool(match and match["target"] in listed and path.is_file())

    unrelated = [path for path in present if not is_run_file(path)]
    if unrelated:
        raise refuse(
            f"cannot overwrite in {output_dir}: besides the previous run's files it holds files "
            f"its {MANIFEST_NAME} does not list, which are never removed; move them or choose an "
            "empty folder",
            unrelated,
        )
    # The manifest last: should a removal fail, the files left are still listed in it.
    return [path for path in present if path.name != MANIFEST_NAME] + [manifest_path]


def _remove_previous_run(files: list[Path]) -> int:
    for path in files:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise BadRequestError(f"cannot remove {path} of the previous run: {exc}") from exc
    return len(files)


def _check_count(num_samples: int) -> None:
    if num_samples < 1:
        raise BadRequestError(f"num_samples must be at least 1, not {num_samples}")


def generate(
    settings: ClientSettings,
    model: str,
    num_samples: int,
    output_dir: Path,
    options: GenerationOptions | None = None,
    *,
    session: HubSession | None = None,
) -> GenerationResult:
    """Generate samples ``[start_index, start_index + num_samples)`` of ``model`` into a folder.

    ``model`` is ``ns/name`` or ``ns/name@version``. The release is resolved in the cached
    catalogue (synced first only if none is cached), the package is downloaded and extracted
    once, and arguments are typed and defaulted from the card; then the package runs as in
    :func:`generate_from_package`. Works offline once the release is cached.
    """
    options = options or GenerationOptions()
    _check_count(num_samples)
    card = find_release(current_snapshot(settings, session=session), model)
    if options.half:
        check_half_precision(card)
    resolve_arguments(card, options.args)  # bad arguments are reported before any download
    # So is a folder the run may not write into (checked again, and cleared, before writing).
    check_output_dir(Path(output_dir), resume=options.resume, overwrite=options.overwrite)
    cache = Cache(settings.cache_dir)
    namespace, name = card.model_id.split("/", 1)
    # A shared lease on the release for the whole run: `cache prune` skips leased releases.
    with cache.in_use(cache.release_dir(namespace, name, card.version)):
        package_dir = ensure_package(settings, card, session=session, progress=options.progress)
        archive = download_release(settings, card, session=session, progress=options.progress)
        package_sha256 = cached_sha256(archive, _package_artifact(card)) or ""
        return _run(
            card,
            package_dir,
            num_samples,
            Path(output_dir),
            options,
            package_sha256=package_sha256,
            settings=settings,
            runner=None,
        )


def generate_from_package(
    card: Card,
    package_dir: Path,
    num_samples: int,
    output_dir: Path,
    options: GenerationOptions | None = None,
    *,
    package_sha256: str = "",
    settings: ClientSettings | None = None,
    runner: Runner | None = None,
) -> GenerationResult:
    """Run the package in ``package_dir`` for ``card`` and write its samples (see the module).

    ``options`` say how (:class:`GenerationOptions`; the defaults when ``None``). ``runner``
    reuses a runner the caller opened for ``card`` (and closes itself); ``options.isolation`` is
    then not used.
    """
    options = options or GenerationOptions()
    _check_count(num_samples)
    if options.half:
        check_half_precision(card)
    return _run(
        card,
        package_dir,
        num_samples,
        Path(output_dir),
        options,
        package_sha256=package_sha256,
        settings=settings,
        runner=runner,
    )


def _base_record(
    card: Card, options: GenerationOptions, package_sha256: str, resolved: Mapping[str, object]
) -> dict[str, object]:
    """What every manifest line of the run says (and what a resumed run must match)."""
    record: dict[str, object] = {
        "model": card.model_id,
        "version": card.version,
        "package_sha256": package_sha256,
        "seed": options.seed,
        "batch_size": options.batch_size,
        "seed_scheme": SEED_SCHEME,
        # Through JSON so that tuples compare equal to the lists read back on resume.
        "args": json.loads(json.dumps(resolved)),
    }
    if options.half:
        record["precision"] = HALF_PRECISION
    return record


def _dicom_series(options: GenerationOptions, point: _ResumePoint) -> DicomSeries | None:
    """The study and series of a DICOM run; a resumed run stays in those its first part began."""
    if options.format != "dicom":
        return None
    series = new_dicom_series(options.dicom_uid_root)
    if point.dicom_series is None:
        return series
    return replace(
        point.dicom_series,
        uid_root=options.dicom_uid_root,
        mask_series_instance_uid=point.dicom_series.mask_series_instance_uid
        or series.mask_series_instance_uid,
    )


def _run(
    card: Card,
    package_dir: Path,
    num_samples: int,
    output_dir: Path,
    options: GenerationOptions,
    *,
    package_sha256: str,
    settings: ClientSettings | None,
    runner: Runner | None,
) -> GenerationResult:
    """Generate and write the run's samples; ``options`` and ``num_samples`` are checked."""
    options = options.for_card(card)
    batch_size = options.batch_size or default_batch_size(card)
    resolved = resolve_arguments(card, options.args)
    call_args = dict(resolved)
    if options.half:
        call_args[_precision_keyword(card)] = HALF_PRECISION
    # Torch is imported here at the earliest, after any download problem was reported.
    device = resolve_device(options.device)
    previous_run = check_output_dir(output_dir, resume=options.resume, overwrite=options.overwrite)
    manifest_path = output_dir / MANIFEST_NAME
    provenance = RunProvenance(
        model_id=card.model_id,
        version=card.version,
        package_sha256=package_sha256,
        seed=options.seed,
        precision=HALF_PRECISION if options.half else "float32",
    )
    base_record = _base_record(card, options, package_sha256, resolved)
    with contextlib.ExitStack() as stack:
        if runner is None:
            runner = stack.enter_context(
                open_runner(package_dir, card, isolation=options.isolation, settings=settings)
            )
        # Only now that the package runs is the previous run's output given up.
        removed = _remove_previous_run(previous_run)
        output_dir.mkdir(parents=True, exist_ok=True)
        point = _ResumePoint(0, None)
        if options.resume:
            point = _resume_point(
                manifest_path,
                expected={**base_record, "precision": base_record.get("precision")},
                start_index=options.start_index,
                extension=image_extension(options.format, card),
                per_sample_seeds=bool(runner.supports_sample_seeds),
            )
        done = min(point.done, num_samples)
        writer = writer_for(
            options.format,
            card,
            provenance,
            dicom_series=_dicom_series(options, point),
            png_compress_level=options.png_compress_level,
        )
        with (
            manifest_path.open("a" if options.resume else "w", encoding="utf-8") as manifest,
            tqdm(
                total=num_samples,
                initial=done,
                unit="img",
                desc=card.release_id,
                file=sys.stderr,
                disable=not options.progress,
            ) as bar,
        ):
            pipeline = _WritePipeline(
                writer=writer,
                output_dir=output_dir,
                manifest=manifest,
                base_record=base_record,
                workers=options.writer_threads(),
                max_in_flight=options.batches_in_flight(),
                on_written=bar.update,
            )
            try:
                for plan, batch in generate_batches(
                    runner,
                    card,
                    seed=options.seed,
                    batch_size=batch_size,
                    first=options.start_index + done,
                    stop=options.start_index + num_samples,
                    device=device,
                    args=call_args,
                ):
                    pipeline.submit(plan, batch)
                pipeline.finish()
            except BaseException:
                pipeline.abort()
                raise
    return GenerationResult(
        model_id=card.model_id,
        version=card.version,
        package_sha256=package_sha256,
        seed=options.seed,
        device=device,
        output_dir=output_dir,
        format=options.format,
        extension=writer.image_extension,
        start_index=options.start_index,
        count=num_samples,
        generated=num_samples - done,
        manifest_path=manifest_path,
        removed=removed,
    )
