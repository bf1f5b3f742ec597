"""Call a model package's generate function and serve it to a parent process over two pipes.

This module needs only the standard library and numpy, so the same file runs as a script in the
client's own Python (``process`` isolation) and in a per-release virtual environment that holds
nothing but the package's dependencies (``venv`` isolation); the in-process runner and the
loader import its functions, so every mode imports, seeds and calls a package the same way.

Run as ``python -s -P worker.py REQUEST_FD RESULT_FD [SLOT_FD ...]``. Every message is framed
as an 8-byte big-endian length and that many bytes of UTF-8 JSON; nothing is pickled. The parent
first sends ``{"op": "load", "package": {...}}`` (plain values: root, module name, kind, entry
point, legacy model file); the worker imports the package once and answers ``{"ok": true,
"supports_sample_seeds": ...}``. Each ``{"op": "generate", ...}`` is answered with a header
``{"ok": true, "arrays": [{"name", "dtype", "shape"}...], "files": [...]}`` followed by each
array's raw C-ordered bytes, or with ``{"ok": false, "error": ..., "traceback": ...,
"failure": ...}`` (``failure``: :func:`failure_record`, which the parent turns into the message
users read, see :mod:`medigan_client.runtime.failures`). The package's own prints go to stdout
and stderr, which the parent sends to log files: the result pipe carries nothing but the
protocol. End of the request pipe ends the worker.

Shared memory: the ``SLOT_FD`` descriptors are memory files the parent created, sized and sealed
against shrinking, and handed over at start (nothing else is shared, and the worker opens no
path for them). A request that names ``"slot": i`` with ``"slot_size": n`` lends slot ``i``
for its answer: when the arrays fit in ``n`` bytes the worker copies them there (each at a
64-byte aligned ``"offset"`` given in the header, which then says ``"slot": i``) and sends no
array bytes through the pipe; otherwise it sends them through the pipe as above and says in
``"needed"`` how many bytes would have fitted them, so the parent lends a larger slot next time.

medigan-legacy packages are called under ``torch.no_grad()`` when the package uses torch:
medigan's packages run their networks without it, and the graph autograd records for nothing
costs memory and time (the samples are the same bit for bit). A package that needs gradients
(a call that fails with autograd's "does not require grad" error) is called again as it was
and from then on without the guard.
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib.util
import inspect
import json
import mmap
import os
import random
import struct
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

V2 = "v2"
MEDIGAN_LEGACY = "medigan-legacy"
SAMPLE_SEEDS_PARAMETER = "seeds"
# The names under which arrays cross the process boundary; extras are sent as "extra:<name>".
IMAGES, MASKS, LABELS, EXTRA_PREFIX = "images", "masks", "labels", "extra:"
OTHER = "other"

FRAME_HEADER = struct.Struct(">Q")
# Arrays in a shared slot start at multiples of this (a cache line; any dtype's alignment).
SLOT_ALIGNMENT = 64
# What autograd says when a package computes gradients of something made under no_grad.
_NEEDS_GRAD_MARKERS = ("does not require grad", "does not have a grad_fn")
# Numbers, booleans, bytes and text; never objects, which could only travel as pickles.
_SENDABLE_KINDS = frozenset("biufcSU")
_LEGACY_TUPLE_LENGTHS = (2, 3, 4)


class PackageOutputError(Exception):
    """The package returned something that is not samples (wrong type, shape or element).

    Not a ``ClientError``: this file runs with only the standard library and numpy (see above);
    the runners turn it into ``GenerationFailedError``.
    """


@dataclass(frozen=True)
class PackageSpec:
    """Where a package is and how to call it, as plain values the parent can send as JSON."""

    root: str
    module_name: str
    kind: str
    entry_point: str = "generate"
    model_file: str | None = None
    label: str = "the package"

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PackageSpec:
        """Read a spec sent by the parent."""
        model_file = data.get("model_file")
        return cls(
            root=str(data["root"]),
            module_name=str(data["module_name"]),
            kind=str(data["kind"]),
            entry_point=str(data.get("entry_point") or "generate"),
            model_file=None if model_file is None else str(model_file),
            label=str(data.get("label") or "the package"),
        )

    def to_json(self) -> dict[str, object]:
        """The spec as a JSON object."""
        return {
            "root": self.root,
            "module_name": self.module_name,
            "kind": self.kind,
            "entry_point": self.entry_point,
            "model_file": self.model_file,
            "label": self.label,
        }


@dataclass(frozen=True)
class BatchRequest:
    """One call of the package: how many samples, with which seeds and arguments."""

    num_samples: int
    seed: int
    device: str
    args: Mapping[str, object]
    sample_seeds: Sequence[int] | None = None
    # medigan-legacy only: the folder passed as ``output_path`` and whether to ask for files;
    # ``scratch_output``: the runner made that folder for this batch (it is not the caller's).
    output_path: str | None = None
    save_images: bool = False
    scratch_output: bool = False


@dataclass
class PackageOutput:
    """What one call produced: named arrays (first axis = samples) or files to read back."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def import_package(spec: PackageSpec) -> ModuleType:
    """Import the package's ``__init__.py`` from ``spec.root`` under ``spec.module_name``.

    An already imported module of that name is reused. A failed import leaves nothing behind in
    ``sys.modules`` and raises the package's own exception.
    """
    existing = sys.modules.get(spec.module_name)
    if existing is not None:
        return existing
    root = Path(spec.root)
    module_spec = importlib.util.spec_from_file_location(
        spec.module_name, root / "__init__.py", submodule_search_locations=[str(root)]
    )
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot import {spec.label} from {root}")
    module = importlib.util.module_from_spec(module_spec)
    # Registered before executing so that ``from . import x`` inside the package resolves.
    sys.modules[spec.module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        prefix = spec.module_name + "."
        for key in [k for k in sys.modules if k == spec.module_name or k.startswith(prefix)]:
            del sys.modules[key]
        raise
    return module


def entry_function(module: ModuleType, spec: PackageSpec) -> Callable[..., object]:
    """The package's generate function, or ``LookupError`` when it has none."""
    entry = getattr(module, spec.entry_point, None)
    if not callable(entry):
        raise LookupError(f"{spec.label} has no function {spec.entry_point!r} in its __init__.py")
    return entry  # type: ignore[no-any-return]


def accepts_sample_seeds(entry: Callable[..., object], kind: str) -> bool:
    """Whether a v2 entry point takes one seed per sample as a keyword ``seeds``."""
    if kind != V2:
        return False
    try:
        parameters = inspect.signature(entry).parameters
    except (TypeError, ValueError):
        return False
    parameter = parameters.get(SAMPLE_SEEDS_PARAMETER)
    return parameter is not None and parameter.kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )


def seed_globals(seed: int) -> None:
    """Seed the global generators medigan packages draw from (torch only when loaded)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def call_package(
    entry: Callable[..., object], spec: PackageSpec, request: BatchRequest
) -> PackageOutput:
    """Call the entry point once and turn what it returns into named arrays (or saved files)."""
    if spec.kind == V2:
        keywords = dict(request.args)
        if request.sample_seeds is not None and accepts_sample_seeds(entry, spec.kind):
            keywords[SAMPLE_SEEDS_PARAMETER] = [int(s) for s in request.sample_seeds]
        result = entry(request.num_samples, seed=request.seed, device=request.device, **keywords)
        return PackageOutput(arrays=collect_v2(result))
    if spec.kind != MEDIGAN_LEGACY:
        raise ValueError(f"unknown runtime kind {spec.kind!r}")
    if request.output_path is None:
        raise ValueError("a medigan-legacy package needs an output_path")
    output_dir = Path(request.output_path)
    output_dir.mkdir(parents=True, exist_ok=True)
    before = _file_times(output_dir)
    base = {
        "model_file": spec.model_file if spec.model_file is not None else spec.root,
        "num_samples": request.num_samples,
        "output_path": str(output_dir) + os.sep,
        "save_images": request.save_images,
    }
    result = _call_legacy(entry, spec, request.seed, {**base, **dict(request.args)})
    if result is None:
        # medigan packages that always save their images return nothing; read back the new files.
        after = _file_times(output_dir)
        files = sorted(path for path, stamp in after.items() if before.get(path) != stamp)
        if not files:
            raise PackageOutputError(
                "returned None and wrote no files into output_path; expected arrays or images"
            )
        return PackageOutput(files=files)
    return PackageOutput(arrays=collect_legacy(result, request.num_samples))


# Module ids of the legacy packages that computed gradients, which are then called without the
# no_grad guard (one process serves one package; a set keeps the in-process runner right too).
_NEEDS_GRAD: set[str] = set()


def _call_legacy(
    entry: Callable[..., object], spec: PackageSpec, seed: int, keywords: Mapping[str, object]
) -> object:
    """Seed the globals and call a legacy package, under no_grad unless it needs gradients."""
    torch = sys.modules.get("torch")
    if torch is None or spec.module_name in _NEEDS_GRAD:
        seed_globals(seed)
        return entry(**keywords)
    try:
        seed_globals(seed)
        with torch.no_grad():
            return entry(**keywords)
    except RuntimeError as error:
        if not any(marker in str(error) for marker in _NEEDS_GRAD_MARKERS):
            raise
    # Seeded again, so the second call draws exactly what the first drew.
    _NEEDS_GRAD.add(spec.module_name)
    seed_globals(seed)
    return entry(**keywords)


def _file_times(directory: Path) -> dict[str, int]:
    # New or rewritten files: a caller's output_path may already hold earlier batches' files.
    return {str(p): p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


def as_array(value: object, what: str = "the samples") -> np.ndarray:
    """A numeric array from an array, a torch tensor (not importing torch) or a list of those."""
    if isinstance(value, np.ndarray):
        array = value
    elif callable(getattr(value, "detach", None)):
        array = np.asarray(value.detach().cpu().numpy())  # type: ignore[attr-defined]
    elif isinstance(value, list | tuple):
        items = [as_array(item, what) for item in value]
        if not items:
            return np.zeros((0,), dtype=np.uint8)
        shapes = {item.shape for item in items}
        if len(shapes) != 1:
            raise PackageOutputError(
                f"returned {what} of different shapes: {sorted(str(s) for s in shapes)}"
            )
        array = np.stack(items)
    elif isinstance(value, bool | int | float | np.number | np.bool_):
        array = np.asarray(value)
    else:
        raise PackageOutputError(
            f"returned {type(value).__name__} as {what}, expected an array or a list of arrays"
        )
    if array.dtype.kind not in _SENDABLE_KINDS:
        raise PackageOutputError(
            f"returned {what} as an array of {array.dtype} (Python objects), not of numbers"
        )
    return array


def _is_array_like(value: object) -> bool:
    return isinstance(value, np.ndarray) or callable(getattr(value, "detach", None))


def collect_v2(result: object) -> dict[str, np.ndarray]:
    """The arrays of a v2 result: an array, a tensor, a list of arrays, or a mapping.

    A mapping names ``images`` (required), ``masks`` and ``labels``; any other key is an extra.
    """
    if isinstance(result, Mapping):
        if IMAGES not in result:
            raise PackageOutputError(
                f"returned a mapping without 'images' (keys: {', '.join(map(str, result))}); "
                "expected an array, a list of arrays or a mapping with 'images'"
            )
        arrays = {IMAGES: as_array(result[IMAGES], "images")}
        for key, value in result.items():
            if key == IMAGES or value is None:
                continue
            name = str(key)
            if name == LABELS and isinstance(value, list | tuple):
                arrays[name] = _labels_array(value)
            elif name in (LABELS, MASKS):
                arrays[name] = as_array(value, name)
            else:
                arrays[EXTRA_PREFIX + name] = as_array(value, name)
        return checked(arrays)
    return checked({IMAGES: as_array(result, "images")})


def collect_legacy(result: object, num_samples: int) -> dict[str, np.ndarray]:
    """The arrays of what a medigan package returned.

    Understood shapes of ``result``:

    * an array or tensor ``(N, ...)``, or a list of per-sample arrays: images;
    * a list (or tuple) with one tuple per sample ``(image, mask[, other[, label]])``, medigan's
      order; an item may be ``None``;
    * a tuple of parallel lists ``(images, masks[, others[, labels]])``;
    * any of these wrapped in single-element lists (medigan unwraps up to a few levels).
    """
    for _ in range(3):
        # medigan unwraps nesting such as [[img, img, ...]] while the data is shorter than asked.
        if (
            isinstance(result, list)
            and len(result) == 1
            and num_samples > 1
            and isinstance(result[0], list)
        ):
            result = result[0]
    if _is_array_like(result):
        return checked({IMAGES: as_array(result, "images")})
    if not isinstance(result, list | tuple):
        raise PackageOutputError(
            f"returned {type(result).__name__}, expected an array, a list of arrays or a list of "
            "(image, mask, other, label) tuples"
        )
    if not result:
        return {IMAGES: np.zeros((0,), dtype=np.uint8)}
    if _is_parallel_lists(result, num_samples):
        return _from_columns([None if column is None else _items(column) for column in result])
    if any(_is_sample_tuple(item) for item in result):
        return _from_sample_tuples(result)
    return checked({IMAGES: as_array(list(result), "images")})


def _items(column: object) -> list[object]:
    if isinstance(column, np.ndarray):
        return list(column)
    if _is_array_like(column):
        return list(as_array(column))
    if isinstance(column, list | tuple):
        return list(column)
    raise PackageOutputError(f"returned {type(column).__name__} where a list was expected")


def _is_sample_tuple(item: object) -> bool:
    # medigan's per-sample form is a tuple; a short list that starts with an array is read alike.
    if isinstance(item, tuple):
        return True
    return isinstance(item, list) and len(item) in _LEGACY_TUPLE_LENGTHS and _is_array_like(item[0])


def _is_parallel_lists(result: Sequence[object], num_samples: int) -> bool:
    # (images, masks, ...) as a tuple of columns, each a list (or array) with one entry per
    # sample; the per-sample form is a list of tuples instead.
    if not isinstance(result, tuple) or len(result) not in _LEGACY_TUPLE_LENGTHS:
        return False
    columns = [column for column in result if column is not None]
    return bool(columns) and all(
        (isinstance(column, list) or _is_array_like(column)) and len(column) == num_samples
        for column in columns
    )


def _from_sample_tuples(samples: Sequence[object]) -> dict[str, np.ndarray]:
    width = max(len(s) if isinstance(s, list | tuple) else 1 for s in samples)
    if width > 4:
        raise PackageOutputError(
            f"returned per-sample tuples of {width} items; medigan's order has at most 4 "
            "(image, mask, other, label)"
        )
    columns: list[list[object]] = [[] for _ in range(4)]
    for sample in samples:
        parts = list(sample) if isinstance(sample, list | tuple) else [sample]
        parts += [None] * (4 - len(parts))
        for index, part in enumerate(parts):
            columns[index].append(part)
    return _from_columns(columns)


def _from_columns(columns: Sequence[Sequence[object] | None]) -> dict[str, np.ndarray]:
    padded = list(columns) + [None] * (4 - len(columns))
    images, masks, others, labels = padded[:4]
    if images is None or any(item is None for item in images):
        raise PackageOutputError("returned a sample without an image")
    arrays = {IMAGES: as_array(list(images), "images")}
    for name, column in ((MASKS, masks), (EXTRA_PREFIX + OTHER, others)):
        present = [] if column is None else [item for item in column if item is not None]
        if not present:
            continue
        if len(present) != len(images):
            shown = name.removeprefix(EXTRA_PREFIX)
            raise PackageOutputError(f"returned {shown} for only some samples")
        arrays[name] = as_array(present, name.removeprefix(EXTRA_PREFIX))
    if labels is not None and any(label is not None for label in labels):
        arrays[LABELS] = _labels_array(labels)
    return checked(arrays)


def _labels_array(labels: Iterable[object]) -> np.ndarray:
    values = [_plain_label(label) for label in labels]
    array = np.asarray(values)
    if array.dtype.kind not in _SENDABLE_KINDS:
        # Mixed numbers and text: keep every label as text rather than as Python objects.
        array = np.asarray(["" if value is None else str(value) for value in values])
    return array


def _plain_label(label: object) -> object:
    if _is_array_like(label):
        return as_array(label, "labels")
    return label


def checked(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays, once every one has as many samples (first axis) as ``images``."""
    images = arrays.get(IMAGES)
    if images is None or images.ndim == 0:
        raise PackageOutputError("returned no images (an array with a first axis of samples)")
    count = images.shape[0]
    for name, array in arrays.items():
        if array.ndim == 0 or array.shape[0] != count:
            shown = name.removeprefix(EXTRA_PREFIX)
            raise PackageOutputError(
                f"returned {count} images but {shown} of shape {array.shape}; "
                "every output needs one entry per sample"
            )
    return arrays


# ---- the protocol, on the worker's side -------------------------------------------------------


def write_frame(fd: int, payload: Mapping[str, object]) -> None:
    """Send one JSON message."""
    data = json.dumps(payload).encode("utf-8")
    write_all(fd, FRAME_HEADER.pack(len(data)) + data)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of ``data`` to ``fd`` (a pipe takes a chunk at a time)."""
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exact(fd: int, size: int) -> bytes | None:
    """Read ``size`` bytes, or ``None`` at end of file before any byte."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            if not chunks:
                return None
            raise EOFError("the pipe closed in the middle of a message")
        chunks += chunk
    return bytes(chunks)


def read_frame(fd: int) -> dict[str, object] | None:
    """Receive one JSON message, or ``None`` at end of file."""
    header = read_exact(fd, FRAME_HEADER.size)
    if header is None:
        return None
    (length,) = FRAME_HEADER.unpack(header)
    body = read_exact(fd, length)
    message = json.loads(body or b"null")
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    return message


def slot_layout(arrays: Iterable[np.ndarray]) -> tuple[list[int], int]:
    """Where each array goes in a shared slot (aligned offsets), and the bytes they need."""
    offsets: list[int] = []
    end = 0
    for array in arrays:
        end = -(-end // SLOT_ALIGNMENT) * SLOT_ALIGNMENT
        offsets.append(end)
        end += array.nbytes
    return offsets, end


class SharedSlots:
    """The worker's side of the shared slots: maps a lent slot and copies arrays into it."""

    def __init__(self, fds: Sequence[int]):
        self.fds = list(fds)
        self._maps: dict[int, mmap.mmap] = {}

    def write(self, slot: object, size: object, arrays: Sequence[np.ndarray]) -> list[int] | None:
        """Copy ``arrays`` into slot ``slot`` of ``size`` bytes; their offsets, or ``None``.

        ``None`` when no such slot was lent or the arrays do not fit: they then go through the
        pipe. A slot smaller than the parent says (it cannot be: the parent sized it and sealed
        it against shrinking) is not mapped: mmap refuses a length past the end of the file.
        """
        if not isinstance(slot, int) or not isinstance(size, int) or size <= 0:
            return None
        if not 0 <= slot < len(self.fds):
            return None
        offsets, needed = slot_layout(arrays)
        if needed > size:
            return None
        mapping = self._maps.get(slot)
        if mapping is None or len(mapping) != size:
            if mapping is not None:
                mapping.close()
                del self._maps[slot]
            try:
                mapping = mmap.mmap(self.fds[slot], size)
            except (OSError, ValueError):
                return None
            self._maps[slot] = mapping
        for array, offset in zip(arrays, offsets, strict=True):
            if array.nbytes:
                target = np.ndarray(array.shape, dtype=array.dtype, buffer=mapping, offset=offset)
                np.copyto(target, array, casting="no")
        return offsets


def send_output(
    fd: int,
    output: PackageOutput,
    slots: SharedSlots | None = None,
    lent: Mapping[str, object] | None = None,
) -> None:
    """Send a header describing the arrays, then each array's raw bytes (or put them in a slot).

    ``lent`` is the request, which may lend a shared slot (see the module docstring).
    """
    arrays = {name: np.ascontiguousarray(array) for name, array in output.arrays.items()}
    described: list[dict[str, object]] = [
        {"name": name, "dtype": array.dtype.str, "shape": list(array.shape)}
        for name, array in arrays.items()
    ]
    header: dict[str, object] = {"ok": True, "arrays": described, "files": output.files}
    offsets = None
    if slots is not None and lent is not None and "slot" in lent:
        offsets = slots.write(lent.get("slot"), lent.get("slot_size"), list(arrays.values()))
        if offsets is None:
            header["needed"] = slot_layout(arrays.values())[1]
    if offsets is not None:
        header["slot"] = lent["slot"] if lent is not None else None
        for entry, offset in zip(described, offsets, strict=True):
            entry["offset"] = offset
        write_frame(fd, header)
        return
    write_frame(fd, header)
    for array in arrays.values():
        if array.nbytes:
            write_all(fd, array.data.cast("B"))


# Bounds of a failure record: the exceptions of a chain, the frames of one exception, the
# characters of a message and of the full traceback (its end is kept: that is where it failed).
MAX_CHAINED_EXCEPTIONS = 8
MAX_RECORDED_FRAMES = 200
MAX_MESSAGE_CHARS = 2000
MAX_TRACEBACK_CHARS = 32_000


def failure_record(exc: BaseException) -> dict[str, object]:
    """What is known of a failure, as plain JSON values: its chain of exceptions and traceback.

    The record holds no judgement: :mod:`medigan_client.runtime.failures` turns it into the
    short form users read (the package's frames only) and keeps the full traceback for logs. It
    is made here, where the exception happened, because only this process has the frames and
    their source lines; it is plain data because this file runs where the client is not
    installed. ``chain`` lists the exception, then what caused it (``relation`` ``cause``: ``raise
    ... from``) or what it interrupted (``context``). Consecutive identical frames, as a runaway
    recursion leaves them, are recorded once with their ``repeated`` count.
    """
    chain: list[dict[str, object]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    relation: str | None = None
    while current is not None and id(current) not in seen:
        if len(chain) >= MAX_CHAINED_EXCEPTIONS:
            break
        seen.add(id(current))
        chain.append(_exception_record(current, relation))
        if current.__cause__ is not None:
            current, relation = current.__cause__, "cause"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, relation = current.__context__, "context"
        else:
            current = None
    full = "".join(traceback.format_exception(exc))
    if len(full) > MAX_TRACEBACK_CHARS:
        full = "[...]\n" + full[-MAX_TRACEBACK_CHARS:]
    return {"chain": chain, "traceback": full}


def _exception_record(exc: BaseException, relation: str | None) -> dict[str, object]:
    frames: list[list[object]] = []
    for frame in traceback.extract_tb(exc.__traceback__):
        entry: list[object] = [frame.filename, frame.lineno or 0, frame.name, frame.line or "", 0]
        if frames and frames[-1][:4] == entry[:4]:
            previous = frames[-1]
            previous[4] = int(str(previous[4])) + 1
            continue
        frames.append(entry)
    if len(frames) > MAX_RECORDED_FRAMES:
        # The outermost frames say where the package was entered, the innermost where it failed.
        frames = frames[:10] + frames[-(MAX_RECORDED_FRAMES - 10) :]
    record: dict[str, object] = {
        "type": type(exc).__name__,
        "message": _exception_text(exc)[:MAX_MESSAGE_CHARS],
        "relation": relation,
        "frames": frames,
        "output_error": isinstance(exc, PackageOutputError),
    }
    if isinstance(exc, SystemExit):
        record["exit_code"] = repr(exc.code)
    if isinstance(exc, SyntaxError) and exc.filename:
        # A syntax error has no frame of the broken file: the error itself says where.
        record["location"] = [exc.filename, exc.lineno or 0, (exc.text or "").strip()]
    return record


def _exception_text(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return str(exc.msg or "")
    try:
        text = str(exc)
    except Exception:  # a package's own __str__ may fail in turn
        text = ""
    return " ".join(text.split())


def _failure(exc: BaseException) -> dict[str, object]:
    message = _exception_text(exc)
    if isinstance(exc, SystemExit):
        text = f"the package called sys.exit({exc.code!r})"
    elif isinstance(exc, PackageOutputError):
        text = message
    else:
        text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    record = failure_record(exc)
    return {
        "ok": False,
        "error": text,
        "error_type": type(exc).__name__,
        "output_error": isinstance(exc, PackageOutputError),
        "traceback": record["traceback"],
        "failure": record,
    }


def _batch_request(message: Mapping[str, object]) -> BatchRequest:
    raw_args = message.get("args") or {}
    raw_seeds = message.get("sample_seeds")
    output_path = message.get("output_path")
    return BatchRequest(
        num_samples=int(str(message["num_samples"])),
        seed=int(str(message.get("seed", 0))),
        device=str(message.get("device", "cpu")),
        args=dict(raw_args) if isinstance(raw_args, dict) else {},
        sample_seeds=[int(s) for s in raw_seeds] if isinstance(raw_seeds, list) else None,
        output_path=None if output_path is None else str(output_path),
        save_images=bool(message.get("save_images", False)),
    )


def serve(request_fd: int, result_fd: int, slot_fds: Sequence[int] = ()) -> int:
    """Load the package named by the first message, then answer generate requests until EOF.

    ``slot_fds`` are the shared slots the parent handed over (see the module docstring).
    """
    slots = SharedSlots(slot_fds) if slot_fds else None
    first = read_frame(request_fd)
    if first is None:
        return 0
    try:
        raw_spec = first.get("package")
        if first.get("op") != "load" or not isinstance(raw_spec, dict):
            raise ValueError("the first message must be {'op': 'load', 'package': {...}}")
        spec = PackageSpec.from_json(raw_spec)
        entry = entry_function(import_package(spec), spec)
    except BaseException as exc:  # the parent reports whatever stopped the import
        write_frame(result_fd, _failure(exc))
        return 1
    write_frame(
        result_fd,
        {
            "ok": True,
            "supports_sample_seeds": accepts_sample_seeds(entry, spec.kind),
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "pid": os.getpid(),
        },
    )
    while True:
        message = read_frame(request_fd)
        if message is None or message.get("op") == "close":
            return 0
        try:
            output = call_package(entry, spec, _batch_request(message))
        except BaseException as exc:  # SystemExit from the package too
            write_frame(result_fd, _failure(exc))
            continue
        send_output(result_fd, output, slots, message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``worker.py REQUEST_FD RESULT_FD [SLOT_FD ...]``."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) < 2 or not all(value.isdigit() for value in arguments):
        print("usage: worker.py REQUEST_FD RESULT_FD [SLOT_FD ...]", file=sys.stderr)
        return 2
    request_fd, result_fd, *slot_fds = (int(value) for value in arguments)
    # A crash in native code then leaves the Python stack in the stderr log the parent reports.
    faulthandler.enable(file=sys.stderr, all_threads=True)
    for fd in (request_fd, result_fd, *slot_fds):
        # Processes the package starts must not hold the protocol's pipes or slots open.
        with contextlib.suppress(OSError):
            os.set_inheritable(fd, False)
    return serve(request_fd, result_fd, slot_fds)


if __name__ == "__main__":
    sys.exit(main())
