"""The ``process`` runtime: a long-lived child Python that imports the package once.

The child runs :mod:`.worker` as a script (``python -s -P worker.py``) with its own session
(process group), a scratch working directory and two dedicated pipes: requests go to it as
JSON, samples come back as a JSON header plus raw array bytes (dtype and shape in the header,
never a pickle), or, where the system has memory files, in shared slots: this process creates
a few anonymous memory files (``memfd_create``, sealed against shrinking, so the child cannot
pull pages from under a mapping here), hands them to the child at start, and lends one per
batch; the arrays the runner returns are views of that slot, which is lent again only after
every view of it is gone (:class:`SharedSlots`). Nothing but those files is handed over, and
an answer that points outside the lent slot stops the child.

The child's stdout and stderr go to log files, because packages print; the last lines of
stderr are quoted when it fails. A package that raises, calls ``sys.exit`` or returns something
that is not samples is reported as :class:`GenerationFailedError` while the child keeps
serving (the message is the failure's short form, in the package's terms, and
``GenerationFailedError.traceback`` the full traceback; see :mod:`.failures`); a child that
dies (a segfault, ``os._exit``, the OOM killer) is reported with its signal or exit status,
and the next batch starts a fresh child. The ``venv`` runtime is this runner with another
interpreter (see :mod:`.venv`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import os
import select
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np

from medigan_catalog.schema import Card, RuntimeKind
from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.runtime import worker
from medigan_client.runtime.base import GeneratedBatch
from medigan_client.runtime.batches import batch_from_output, prepare_batch
from medigan_client.runtime.failures import PackageFailure, describe_record, rewrite_paths
from medigan_client.runtime.legacy import link_models_folder, medigan_model_ids
from medigan_client.runtime.loader import (
    failure_message,
    import_failure_message,
    locate_package_root,
    package_spec,
)
from medigan_client.runtime.worker import BatchRequest, PackageOutput, PackageSpec

WORKER_SCRIPT = Path(worker.__file__).resolve()
LOG_TAIL_LINES = 20
# How long a child may take to leave after its request pipe closed, before it is killed.
_EXIT_GRACE_SECONDS = 2.0
_POLL_SECONDS = 0.25
_F_SETPIPE_SZ = 1031  # Linux: a larger pipe buffer means fewer wake-ups per array
# Shared slots per runner: the batch being generated, the one the caller's loop holds, and the
# two that generate's writers hold by default; a caller holding more gets the rest by pipe.
SHARED_SLOTS = 4
_MIN_SLOT_BYTES = 1 << 20
# A slot keeps its pages until the runner closes: batches larger than this go through the pipe,
# so that one huge batch does not pin four times its size for the runner's life.
MAX_SLOT_BYTES = 256 << 20
# glibc malloc tunables of the child: never return freed memory to the system (no trim) and
# serve large blocks from the heap instead of fresh mmaps. A network's weights and activations
# are freed and allocated again for every batch; with glibc's defaults each time costs page
# faults on fresh zeroed pages. Measured in docs/runtimes.md (CPU time per image 1.2 to 1.3
# times lower); the caller's own GLIBC_TUNABLES, when set, are left as they are.
MALLOC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184"


def _sample_bytes(card: Card) -> int:
    """The bytes of one image as the card describes it (the first guess of a slot's size)."""
    output = card.output
    try:
        itemsize = np.dtype(str(output.dtype)).itemsize
    except TypeError:
        itemsize = 4
    values = int(output.height) * int(output.width) * int(output.depth or 1)
    return values * int(output.channels or 1) * itemsize


class _ChildExitedError(Exception):
    """The child closed its end of the pipe or exited while the parent waited."""


class _AnswerTimeoutError(Exception):
    """The child did not answer within the runner's time limit."""


def tail_lines(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last non-blank lines of a log file (empty when it cannot be read)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def describe_exit(returncode: int) -> str:
    """How a child's exit reads: its exit status, or the signal that killed it."""
    if returncode >= 0:
        return f"exited with status {returncode}"
    signum = -returncode
    description = signal.strsignal(signum)
    return f"was killed by {_signal_name(signum)}" + (f" ({description})" if description else "")


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def child_flags() -> list[str]:
    """Interpreter flags of the child: no script directory on sys.path, no user site.

    The user site stays on when this process itself imports from it, so that the child sees
    the packages the caller sees.
    """
    flags = ["-P"]
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if not user_site or user_site not in sys.path:
        flags.insert(0, "-s")
    return flags


def process_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: the caller's, with unbuffered output so logs are complete.

    On Linux the child also gets :data:`MALLOC_TUNABLES` unless ``GLIBC_TUNABLES`` is set.
    """
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    if sys.platform.startswith("linux"):
        env.setdefault("GLIBC_TUNABLES", MALLOC_TUNABLES)
    return env


class _Slot:
    """One shared memory file: its descriptor, its size, and the mapping lent out last."""

    def __init__(self, fd: int, size: int):
        self.fd = fd
        self.size = size
        self.lease: mmap.mmap | None = None

    def free(self) -> bool:
        """Whether no array of its last batch is alive (the lease's mapping then closes)."""
        if self.lease is None:
            return True
        try:
            self.lease.close()  # refused while an array still points into it
        except BufferError:
            return False
        self.lease = None
        return True


class SharedSlots:
    """The memory files a :class:`ProcessRunner` lends its child, one per batch.

    Each slot is an anonymous memory file (never a path any process could open), sealed so that
    it cannot shrink: a child that tried would make reads here fault. :meth:`lend` picks a slot
    no array points into and grows it to the bytes asked; :meth:`arrays` maps it afresh and
    returns views of the child's answer after checking that every array lies inside it. A slot
    is free again when the mapping behind those views can close, i.e. when no view is left.
    ``None`` from :meth:`create` (no ``memfd_create`` here) means: send everything by pipe.
    """

    def __init__(self, slots: list[_Slot]):
        self._slots = slots
        self.hint = _MIN_SLOT_BYTES

    @classmethod
    def create(cls, count: int = SHARED_SLOTS) -> SharedSlots | None:
        """``count`` empty slots, or ``None`` where memory files or seals are not available."""
        memfd_create = getattr(os, "memfd_create", None)
        seals = getattr(fcntl, "F_ADD_SEALS", None)
        if memfd_create is None or seals is None:
            return None
        slots: list[_Slot] = []
        try:
            for _ in range(count):
                fd = memfd_create("medigan-batch", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
                slots.append(_Slot(fd, 0))
                # Growing stays possible (this side grows a slot for larger batches).
                fcntl.fcntl(fd, seals, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
        except OSError:
            for slot in slots:
                os.close(slot.fd)
            return None
        return cls(slots)

    @property
    def fds(self) -> list[int]:
        """The descriptors to hand to the child, in slot order."""
        return [slot.fd for slot in self._slots]

    def lend(self, needed: int) -> tuple[int, int] | None:
        """A free slot of at least ``needed`` bytes (and :attr:`hint`): ``(index, size)``.

        ``None`` when every slot is still viewed or the batch needs more than
        :data:`MAX_SLOT_BYTES`.
        """
        wanted = max(needed, self.hint, _MIN_SLOT_BYTES)
        if wanted > MAX_SLOT_BYTES:
            return None
        for index, slot in enumerate(self._slots):
            if not slot.free():
                continue
            if slot.size < wanted:
                try:
                    os.ftruncate(slot.fd, wanted)
                except OSError:
                    continue
                slot.size = wanted
            return index, slot.size
        return None

    def arrays(
        self, index: int, entries: list[tuple[str, np.dtype[np.generic], tuple[int, ...], int]]
    ) -> dict[str, np.ndarray]:
        """Views of the arrays the child put into slot ``index`` (``name, dtype, shape, offset``).

        Raises :class:`ValueError` when an array does not lie inside the slot.
        """
        slot = self._slots[index]
        extents = []
        for name, dtype, shape, offset in entries:
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if offset < 0 or offset + nbytes > slot.size or offset % dtype.alignment:
                raise ValueError(f"array {name!r} at {offset}+{nbytes} is outside the slot")
            extents.append(nbytes)
        if not slot.free():  # lent: cannot happen; a stale lease would be overwritten
            raise ValueError(f"slot {index} is still in use")
        lease = mmap.mmap(slot.fd, slot.size)
        arrays: dict[str, np.ndarray] = {}
        for (name, dtype, shape, offset), nbytes in zip(entries, extents, strict=True):
            if nbytes == 0:
                arrays[name] = np.empty(shape, dtype=dtype)
                continue
            view = np.frombuffer(lease, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset)
            arrays[name] = view.reshape(shape)
        slot.lease = lease
        return arrays

    def close(self) -> None:
        """Close the descriptors; mappings still viewed by arrays stay until those are gone."""
        for slot in self._slots:
            slot.free()
            with contextlib.suppress(OSError):
                os.close(slot.fd)
        self._slots = []


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    request_fd: int
    result_fd: int
    supports_sample_seeds: bool = False


@dataclass
class _Resources:
    """What a runner holds outside Python objects; released by close() or at collection."""

    scratch: Path
    child: _Child | None = None
    closed: bool = False
    slots: SharedSlots | None = None
    stdout_log: Path = field(init=False)
    stderr_log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.stdout_log = self.scratch / "stdout.log"
        self.stderr_log = self.scratch / "stderr.log"

    def stop_child(self, *, graceful: bool) -> int | None:
        """Stop the child and everything in its process group; return its exit status."""
        child, self.child = self.child, None
        if child is None:
            return None
        with contextlib.suppress(OSError):
            os.close(child.request_fd)
        if graceful:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=_EXIT_GRACE_SECONDS)
        # Also the leftovers: processes the package started share the child's process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        returncode = child.process.wait()
        with contextlib.suppress(OSError):
            os.close(child.result_fd)
        return returncode

    def release(self) -> None:
        """Stop the child and remove the scratch directory."""
        self.closed = True
        self.stop_child(graceful=True)
        if self.slots is not None:
            self.slots.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


class ProcessRunner:
    """A package served by a child Python (see :class:`medigan_client.runtime.base.Runner`).

    ``python`` is the interpreter of the child (this one by default; a venv's for ``venv``
    isolation), ``environment`` its whole environment, and ``timeout_seconds`` (``None``: no
    limit) how long loading the package or one batch may take before the child is killed.
    """

    def __init__(
        self,
        package_dir: Path,
        card: Card,
        *,
        python: str | Path | None = None,
        environment: Mapping[str, str] | None = None,
        isolation: str = "process",
        timeout_seconds: float | None = None,
    ):
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise BadRequestError(f"timeout_seconds must be positive, not {timeout_seconds!r}")
        self.isolation = isolation
        self.card = card
        self.package_dir = Path(package_dir).resolve()
        self.root = locate_package_root(self.package_dir, card)
        self.spec: PackageSpec = package_spec(card, self.root)
        self.python = str(python) if python is not None else sys.executable
        self.environment = process_environment(environment)
        self.timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        scratch = Path(tempfile.mkdtemp(prefix="medigan-runner-"))
        self._resources = _Resources(scratch=scratch, slots=SharedSlots.create())
        self._sample_bytes = _sample_bytes(card)
        self._finalizer = weakref.finalize(self, self._resources.release)
        self.workdir = scratch / "work"
        self.workdir.mkdir()
        if RuntimeKind(card.runtime.kind) is RuntimeKind.MEDIGAN_LEGACY:
            link_models_folder(self.workdir, self.package_dir, medigan_model_ids(card))
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    # ---- the Runner protocol ------------------------------------------------------------------

    @property
    def supports_sample_seeds(self) -> bool:
        """Whether the package takes one seed per sample, as its child reported at start."""
        child = self._resources.child
        return child is not None and child.supports_sample_seeds

    @property
    def pid(self) -> int | None:
        """The process id of the current child, if one is running."""
        child = self._resources.child
        return None if child is None else child.process.pid

    @property
    def log_dir(self) -> Path:
        """Where the child's ``stdout.log`` and ``stderr.log`` are (removed on close)."""
        return self._resources.scratch

    def generate_batch(
        self,
        num_samples: int,
        *,
        seed: int,
        device: str,
        args: Mapping[str, object],
        sample_seeds: Sequence[int] | None = None,
    ) -> GeneratedBatch:
        """Generate one batch in the child; restart the child first if an earlier one died."""
        with self._lock:
            if self._resources.closed:
                raise BadRequestError(f"the runner of {self.card.release_id} is closed")
            if self._resources.child is None:
                self._start()
            with prepare_batch(
                self.card,
                package_dir=self.package_dir,
                root=self.root,
                num_samples=num_samples,
                seed=seed,
                device=device,
                args=args,
                sample_seeds=sample_seeds,
                scratch=self._resources.scratch,
            ) as request:
                output = self._exchange(request)
                return batch_from_output(output, self.card.release_id, request)

    def close(self) -> None:
        """Stop the child (killing its process group) and remove the scratch directory."""
        self._finalizer()

    def __enter__(self) -> ProcessRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- the child ----------------------------------------------------------------------------

    def _start(self) -> None:
        request_read, request_write = os.pipe()
        result_read, result_write = os.pipe()
        for fd in (request_write, result_read):
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, _F_SETPIPE_SZ, 1 << 20)
        resources = self._resources
        slot_fds = resources.slots.fds if resources.slots is not None else []
        try:
            with resources.stdout_log.open("ab") as out, resources.stderr_log.open("ab") as err:
                process = subprocess.Popen(
                    [
                        self.python,
                        *child_flags(),
                        str(WORKER_SCRIPT),
                        str(request_read),
                        str(result_write),
                        *(str(fd) for fd in slot_fds),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    cwd=self.workdir,
                    env=self.environment,
                    pass_fds=(request_read, result_write, *slot_fds),
                    # Its own session: close() kills the whole group, and a Ctrl-C meant for the
                    # caller does not reach the package in the middle of a batch.
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as exc:
            for fd in (request_read, request_write, result_read, result_write):
                os.close(fd)
            raise GenerationFailedError(
                f"cannot start a Python for {self.card.release_id} ({self.python}): {exc}"
            ) from exc
        # The child holds its own copies; the parent keeps only its ends, so the child's exit
        # shows as end of file.
        os.close(request_read)
        os.close(result_write)
        resources.child = _Child(process, request_write, result_read)
        try:
            self._send({"op": "load", "package": self.spec.to_json()})
            answer = self._receive_frame()
        except _ChildExitedError:
            raise self._crashed("while loading the package") from None
        except _AnswerTimeoutError:
            raise self._timed_out("loading the package") from None
        except BaseException:
            resources.stop_child(graceful=False)
            raise
        if not answer.get("ok"):
            resources.stop_child(graceful=True)
            failure = self._failure(answer)
            raise GenerationFailedError(
                import_failure_message(self.card, failure),
                detail=self._detail(traceback=failure.traceback),
                traceback=failure.traceback,
            )
        resources.child.supports_sample_seeds = bool(answer.get("supports_sample_seeds"))

    def _exchange(self, request: BatchRequest) -> PackageOutput:
        message = {
            "op": "generate",
            "num_samples": request.num_samples,
            "seed": request.seed,
            "device": request.device,
            "args": dict(request.args),
            "sample_seeds": None if request.sample_seeds is None else list(request.sample_seeds),
            "output_path": request.output_path,
            "save_images": request.save_images,
        }
        slots = self._resources.slots
        lent = slots.lend(self._sample_bytes * request.num_samples) if slots is not None else None
        if lent is not None:
            message["slot"], message["slot_size"] = lent
        try:
            encoded = json.dumps(message)
        except (TypeError, ValueError) as exc:
            raise BadRequestError(
                f"the generation arguments of {self.card.release_id} must be plain values "
                f"(numbers, text, booleans, lists) to reach its process: {exc}"
            ) from exc
        try:
            self._send_raw(encoded.encode("utf-8"))
            header = self._receive_frame()
            if not header.get("ok"):
                raise self._package_failed(request.num_samples, header)
            return self._receive_arrays(header, lent)
        except _ChildExitedError:
            raise self._crashed(f"while generating {request.num_samples} samples") from None
        except _AnswerTimeoutError:
            raise self._timed_out(f"generating {request.num_samples} samples") from None
        except (GenerationFailedError, BadRequestError):
            raise
        except BaseException:
            # An interrupted exchange leaves half a message in the pipe: this child is done.
            self._resources.stop_child(graceful=False)
            raise

    # ---- the protocol, on the parent's side ---------------------------------------------------

    def _child(self) -> _Child:
        child = self._resources.child
        if child is None:
            raise _ChildExitedError
        return child

    def _send(self, payload: Mapping[str, object]) -> None:
        self._send_raw(json.dumps(payload).encode("utf-8"))

    def _send_raw(self, body: bytes) -> None:
        child = self._child()
        try:
            worker.write_all(child.request_fd, worker.FRAME_HEADER.pack(len(body)) + body)
        except (BrokenPipeError, ConnectionResetError):
            raise _ChildExitedError from None

    def _read_into(self, view: memoryview, deadline: float | None) -> None:
        child = self._child()
        filled = 0
        while filled < len(view):
            wait = _POLL_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise _AnswerTimeoutError
            ready, _, _ = select.select([child.result_fd], [], [], wait)
            if not ready:
                # A process the package forked may still hold the pipe open after the child
                # died, so end of file alone is not enough to notice.
                if child.process.poll() is not None:
                    raise _ChildExitedError
                continue
            count = os.readv(child.result_fd, [view[filled:]])
            if count == 0:
                raise _ChildExitedError
            filled += count

    def _deadline(self) -> float | None:
        if self.timeout_seconds is None:
            return None
        return time.monotonic() + self.timeout_seconds

    def _receive_frame(self) -> dict[str, object]:
        deadline = self._deadline()
        header = bytearray(worker.FRAME_HEADER.size)
        self._read_into(memoryview(header), deadline)
        (length,) = worker.FRAME_HEADER.unpack(header)
        body = bytearray(length)
        self._read_into(memoryview(body), deadline)
        try:
            message = json.loads(body)
        except ValueError as exc:
            self._resources.stop_child(graceful=False)
            raise GenerationFailedError(
                f"the process of {self.card.release_id} sent a malformed message: {exc}",
                detail=self._detail(),
            ) from exc
        if not isinstance(message, dict):
            self._resources.stop_child(graceful=False)
            raise GenerationFailedError(
                f"the process of {self.card.release_id} sent a malformed message",
                detail=self._detail(),
            )
        return message

    def _receive_arrays(
        self, header: Mapping[str, object], lent: tuple[int, int] | None
    ) -> PackageOutput:
        deadline = self._deadline()
        described = header.get("arrays")
        files = header.get("files")
        if not isinstance(described, list) or not isinstance(files, list):
            self._resources.stop_child(graceful=False)
            raise GenerationFailedError(
                f"the process of {self.card.release_id} described its samples wrongly",
                detail=self._detail(),
            )
        needed = header.get("needed")
        slots = self._resources.slots
        if (
            slots is not None
            and isinstance(needed, int)
            and not isinstance(needed, bool)
            and needed <= MAX_SLOT_BYTES
        ):
            # Lent too small (masks, extras, another dtype than the card's): lend more next time.
            slots.hint = max(slots.hint, needed)
        if "slot" in header:
            return PackageOutput(
                arrays=self._slot_arrays(header.get("slot"), described, lent),
                files=[str(f) for f in files],
            )
        arrays: dict[str, np.ndarray] = {}
        for entry in described:
            name, dtype, shape = self._array_description(entry)
            buffer = bytearray(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
            if buffer:
                self._read_into(memoryview(buffer), deadline)
            arrays[name] = np.frombuffer(buffer, dtype=dtype).reshape(shape)
        return PackageOutput(arrays=arrays, files=[str(f) for f in files])

    def _slot_arrays(
        self, slot: object, described: list[object], lent: tuple[int, int] | None
    ) -> dict[str, np.ndarray]:
        """The arrays the child put into the lent slot; anything else stops the child."""
        slots = self._resources.slots
        try:
            if slots is None or lent is None or isinstance(slot, bool) or slot != lent[0]:
                raise ValueError(f"slot {slot!r} was not lent for this batch")
            entries = []
            for entry in described:
                name, dtype, shape = self._array_description(entry)
                offset = entry.get("offset") if isinstance(entry, dict) else None
                if not isinstance(offset, int) or isinstance(offset, bool):
                    raise ValueError(f"array {name!r} has no offset")
                entries.append((name, dtype, shape, offset))
            return slots.arrays(lent[0], entries)
        except ValueError as exc:
            self._resources.stop_child(graceful=False)
            raise GenerationFailedError(
                f"the process of {self.card.release_id} described its samples wrongly: {exc}",
                detail=self._detail(),
            ) from exc

    def _array_description(
        self, entry: object
    ) -> tuple[str, np.dtype[np.generic], tuple[int, ...]]:
        try:
            if not isinstance(entry, dict):
                raise TypeError("not an object")
            dtype = np.dtype(str(entry["dtype"]))
            if dtype.kind not in "biufcSU" or dtype.hasobject:
                raise TypeError(f"dtype {dtype} cannot be sent without pickling")
            raw_shape = entry["shape"]
            if not isinstance(raw_shape, list) or not all(
                isinstance(n, int) and n >= 0 for n in raw_shape
            ):
                raise TypeError(f"bad shape {raw_shape!r}")
            return str(entry["name"]), dtype, tuple(raw_shape)
        except (KeyError, TypeError, ValueError) as exc:
            self._resources.stop_child(graceful=False)
            raise GenerationFailedError(
                f"the process of {self.card.release_id} described its samples wrongly: {exc}",
                detail=self._detail(),
            ) from exc

    # ---- reporting ----------------------------------------------------------------------------

    def _detail(self, **extra: object) -> dict[str, object]:
        detail: dict[str, object] = {
            "isolation": self.isolation,
            "python": self.python,
            "stderr": tail_lines(self._resources.stderr_log),
            "stdout": tail_lines(self._resources.stdout_log),
        }
        detail.update({key: value for key, value in extra.items() if value is not None})
        return detail

    def _crashed(self, when: str) -> GenerationFailedError:
        child = self._resources.child
        returncode: int | None = None
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                # The pipe closed: the child is exiting; give it a moment to be reaped.
                child.process.wait(timeout=_EXIT_GRACE_SECONDS)
            returncode = child.process.poll()
        stopped = self._resources.stop_child(graceful=False)
        if returncode is None:
            returncode = stopped
        reason = describe_exit(returncode) if returncode is not None else "closed its pipe"
        detail = self._detail(returncode=returncode)
        if returncode is not None and returncode < 0:
            detail["signal"] = _signal_name(-returncode)
        stderr = detail["stderr"]
        shown = " | ".join(stderr[-5:]) if isinstance(stderr, list) and stderr else "(nothing)"
        return GenerationFailedError(
            f"{self.card.release_id} failed {when}: its child process ({self.isolation} "
            f"isolation) {reason}; last stderr lines: {shown}",
            detail=detail,
        )

    def _timed_out(self, what: str) -> GenerationFailedError:
        self._resources.stop_child(graceful=False)
        return GenerationFailedError(
            f"{self.card.release_id} took longer than {self.timeout_seconds:g} s {what} and its "
            "child process was killed",
            detail=self._detail(timeout_seconds=self.timeout_seconds),
        )

    def _failure(self, answer: Mapping[str, object]) -> PackageFailure:
        """Both forms of a failure the child reported (see :mod:`.failures`)."""
        record = answer.get("failure")
        if isinstance(record, dict):
            return describe_record(record, (self.package_dir, self.root))
        # The worker always sends a record; an answer without one still gets a message.
        error = str(answer.get("error") or "unknown error")
        shown = ("the package " if answer.get("output_error") else "") + error
        return PackageFailure(
            message=rewrite_paths(shown, (self.package_dir, self.root)),
            traceback=str(answer.get("traceback") or ""),
        )

    def _package_failed(
        self, num_samples: int, header: Mapping[str, object]
    ) -> GenerationFailedError:
        failure = self._failure(header)
        return GenerationFailedError(
            failure_message(self.card, num_samples, failure),
            detail=self._detail(traceback=failure.traceback),
            traceback=failure.traceback,
        )
