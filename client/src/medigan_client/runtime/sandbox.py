"""Run a model package's generation in a child process, isolated as far as its origin demands.

Two isolations share one protocol with the child (``python -m medigan_client.runtime.child``):
the request goes in as JSON on stdin, the samples come back as one ``.npy`` document on stdout
(loaded with ``allow_pickle=False``), and stderr carries the package's own output.

* :attr:`Isolation.BUBBLEWRAP` (:func:`generate_in_sandbox`) is for code nobody has vetted:
  the hub's validation and evaluations. bubblewrap builds the tree described in
  :mod:`.bubblewrap` (own uid, no capability, new namespaces, no network, nothing of the host's
  data), a control group bounds the memory and process count of the whole tree
  (:mod:`.cgroups`; a per-namespace ``RLIMIT_NPROC`` where none can be had), a tmpfs bounds the
  disk, ``RLIMIT_CPU`` and a wall clock bound the time, and when the run ends every process of it
  is killed. If any of that cannot be set up, the code does not run:
  :class:`~medigan_client.errors.SandboxUnavailableError`.
* :attr:`Isolation.PROCESS` (:func:`generate_in_subprocess`) is for one's own code, as in the
  dry run of ``medigan-client push``: a child with a scrubbed environment, resource limits, its
  own session and, where the kernel allows, an empty network namespace.

Both take an ``environment`` (:class:`~.environments.PackageEnvironment`): the child then runs
with that environment's interpreter and sees only the card's requirements and the shared base,
not the caller's environment; the hub always passes one, and so does ``push``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medigan_catalog.schema import Card
from medigan_client.errors import GenerationFailedError, SandboxUnavailableError
from medigan_client.runtime import bubblewrap
from medigan_client.runtime.cgroups import (
    CgroupLimits,
    CgroupUnavailableError,
    RunCgroup,
    run_cgroup_create,
)
from medigan_client.runtime.failures import reported_failure

if TYPE_CHECKING:
    from medigan_client.runtime.environments import PackageEnvironment

DEFAULT_FILE_SIZE_LIMIT_BYTES = 1 << 30
DEFAULT_CPU_SECONDS = 600
STDERR_TAIL_LINES = 20
STDERR_KEPT_BYTES = 64 * 1024
# How many of the package's last stderr lines a failure message quotes.
MESSAGE_LINES = 10
# The sh wrapper's status when the run could not join its control group.
_CGROUP_JOIN_FAILED = 125
_CHILD_MODULE = "medigan_client.runtime.child"

_PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES")
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class Isolation(StrEnum):
    """How contributed code is isolated; see the module docstring."""

    BUBBLEWRAP = "bubblewrap"
    PROCESS = "process"


@dataclass(frozen=True)
class SandboxLimits:
    """The bounds of one sandboxed run, each for the whole process tree unless it says so.

    ``process_memory_bytes`` is a per-process address-space limit added on top of the run's
    memory ceiling; without a control group it is what bounds memory, together with
    ``max_processes``. ``output_bytes`` caps what the parent reads back.
    """

    memory_bytes: int = 6 << 30
    max_processes: int = 64
    scratch_bytes: int = 1 << 30
    cpu_seconds: int = DEFAULT_CPU_SECONDS
    wall_seconds: float = 180.0
    output_bytes: int = 2 << 30
    process_memory_bytes: int | None = None
    file_size_bytes: int = DEFAULT_FILE_SIZE_LIMIT_BYTES


@dataclass(frozen=True)
class SandboxOptions:
    """Where the sandbox may not look and how it finds its resources (an operator's settings).

    ``forbidden`` lists host paths that no mount may contain (the hub's data, settings,
    database); ``cgroup_parent`` names a delegated control group, relative to the hierarchy's
    root, to create runs under; ``uid_base``/``uid_count`` the range of per-run uids a root
    worker drops to.
    """

    forbidden: tuple[Path, ...] = ()
    cgroup_parent: str | None = None
    uid_base: int = 1_880_000_000
    uid_count: int = 1_000_000
    bwrap: str | None = None
    setpriv: str | None = None


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed run gave: its samples, how it was isolated, and its stderr tail."""

    samples: np.ndarray
    isolation: str
    stderr: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SandboxStatus:
    """Whether contributed code can be isolated here, and how, in words for operators."""

    isolation: Isolation
    available: bool
    detail: str


def child_environment(home: Path) -> dict[str, str]:
    """The whole environment of the child: nothing secret, nothing that points at a proxy."""
    env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    env.setdefault("PATH", "/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    for name in _THREAD_VARS:
        env[name] = os.environ.get(name, "1")
    env.update(
        {
            "HOME": str(home),
            "TMPDIR": str(home),
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            # glibc reserves one 64 MiB arena per thread; keep address space small for RLIMIT_AS.
            "MALLOC_ARENA_MAX": "2",
        }
    )
    return env


def _sandbox_environment(layout: bubblewrap.SandboxLayout) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(bubblewrap.INSIDE_HOME),
        "TMPDIR": str(bubblewrap.INSIDE_TMP),
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MALLOC_ARENA_MAX": "2",
    }
    if layout.python_path_inside:
        env["PYTHONPATH"] = layout.python_path_inside
    for name in _THREAD_VARS:
        env[name] = os.environ.get(name, "1")
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


@dataclass
class _Outcome:
    returncode: int | None
    stdout: bytes
    stderr_tail: list[str]
    timed_out: bool
    output_overflow: bool


def _printable(line: str) -> str:
    return "".join(ch if ch.isprintable() or ch == "\t" else "?" for ch in line)


def _run(
    command: Sequence[str],
    *,
    request: bytes,
    env: Mapping[str, str],
    cwd: Path | None,
    wall_seconds: float,
    output_bytes: int,
    cgroup: RunCgroup | None,
) -> _Outcome:
    """Run ``command``, feed it ``request``, collect stdout (capped) and stderr (its tail)."""
    if cgroup is not None:
        # The run joins its control group before anything else starts, so no process of it can
        # be outside; a preexec_fn would do the same but is unsafe in threaded workers.
        join = (
            'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit '
            f'{_CGROUP_JOIN_FAILED}; shift; n=$((n-1)); done; exec "$@"'
        )
        procs = [str(path) for path in cgroup.procs_files]
        command = ["/bin/sh", "-c", join, "sh", str(len(procs)), *procs, *command]
    process = subprocess.Popen(
        list(command),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
        close_fds=True,
    )
    assert process.stdin and process.stdout and process.stderr
    chunks: list[bytes] = []
    received = 0
    overflow = threading.Event()
    tail: deque[bytes] = deque()
    tail_size = 0

    def read_stdout() -> None:
        nonlocal received
        assert process.stdout is not None
        while chunk := os.read(process.stdout.fileno(), 1 << 20):
            received += len(chunk)
            if received > output_bytes:
                overflow.set()
                _kill(process, cgroup)
                break
            chunks.append(chunk)

    def read_stderr() -> None:
        nonlocal tail_size
        assert process.stderr is not None
        while chunk := os.read(process.stderr.fileno(), 1 << 16):
            tail.append(chunk)
            tail_size += len(chunk)
            while tail_size > STDERR_KEPT_BYTES and len(tail) > 1:
                tail_size -= len(tail.popleft())

    def write_stdin() -> None:
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            process.stdin.write(request)
        with contextlib.suppress(BrokenPipeError, OSError):
            process.stdin.close()

    threads = [
        threading.Thread(target=target, daemon=True)
        for target in (read_stdout, read_stderr, write_stdin)
    ]
    for thread in threads:
        thread.start()
    timed_out = False
    try:
        process.wait(timeout=wall_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        # Whatever happened, nothing of the run survives it: the session, then the cgroup.
        _kill(process, cgroup)
        process.wait()
        for thread in threads:
            thread.join(timeout=5)
        # The readers are done (or stuck on a pipe that the kill just closed at its far end).
        for stream in (process.stdout, process.stderr):
            with contextlib.suppress(OSError):
                stream.close()
    text = b"".join(tail)[-STDERR_KEPT_BYTES:].decode("utf-8", errors="replace")
    lines = [_printable(line) for line in text.splitlines() if line.strip()]
    return _Outcome(
        returncode=None if timed_out else process.returncode,
        stdout=b"".join(chunks),
        stderr_tail=lines[-STDERR_TAIL_LINES:],
        timed_out=timed_out,
        output_overflow=overflow.is_set(),
    )


def _kill(process: subprocess.Popen[bytes], cgroup: RunCgroup | None) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if cgroup is not None:
        cgroup.kill_all()


def _describe_exit(returncode: int, limits: SandboxLimits, *, oom: bool) -> str:
    if oom:
        return f"was killed for using more than its memory limit of {limits.memory_bytes} bytes"
    if returncode >= 0:
        return f"exited with status {returncode}"
    signum = -returncode
    if signum == signal.SIGXCPU:
        return f"was stopped after using its CPU time limit of {limits.cpu_seconds} s"
    if signum == signal.SIGXFSZ:
        return f"was stopped for writing a file larger than {limits.file_size_bytes} bytes"
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return f"was killed by {name}"


def _request(
    package_dir: str,
    card: Card,
    num_samples: int,
    *,
    seed: int,
    device: str,
    args: Mapping[str, object] | None,
    limits: Mapping[str, object],
    start_index: int = 0,
    batch_size: int | None = None,
) -> bytes:
    request: dict[str, object] = {
        "package_dir": package_dir,
        "card": card.to_json(),
        "num_samples": num_samples,
        "seed": seed,
        "device": device,
        "args": dict(args or {}),
        "limits": dict(limits),
    }
    if batch_size is not None:
        request.update(batch_size=batch_size, start_index=start_index)
    return json.dumps(request).encode("utf-8")


def _samples_from(
    outcome: _Outcome,
    label: str,
    num_samples: int,
    limits: SandboxLimits,
    *,
    oom: bool,
    package_dirs: Sequence[str | Path] = (),
) -> np.ndarray:
    shown = " | ".join(outcome.stderr_tail[-MESSAGE_LINES:]) if outcome.stderr_tail else "(nothing)"
    detail: dict[str, object] = {"stderr": outcome.stderr_tail}
    if outcome.timed_out:
        raise GenerationFailedError(
            f"generation of {num_samples} samples of {label} ran past the time limit of "
            f"{limits.wall_seconds:g} s and was killed; the package's last output: {shown}",
            detail={**detail, "timeout_seconds": limits.wall_seconds},
        )
    if outcome.output_overflow:
        raise GenerationFailedError(
            f"generation of {label} wrote more than {limits.output_bytes} bytes of samples "
            "and was killed",
            detail=detail,
        )
    assert outcome.returncode is not None
    reported = None if oom else reported_failure(outcome.stderr_tail, package_dirs)
    if outcome.returncode != 0 and reported is not None:
        raise GenerationFailedError(
            f"generation of {label} failed: {reported.with_output()}",
            detail={**detail, "returncode": outcome.returncode, "traceback": reported.traceback},
            traceback=reported.traceback,
        )
    if outcome.returncode != 0 or oom:
        reason = _describe_exit(outcome.returncode, limits, oom=oom)
        raise GenerationFailedError(
            f"generation of {label} failed: the package {reason}; its last output on stderr: "
            f"{shown}",
            detail={**detail, "returncode": outcome.returncode},
        )
    try:
        return np.asarray(np.load(io.BytesIO(outcome.stdout), allow_pickle=False))
    except (OSError, ValueError, EOFError) as exc:
        raise GenerationFailedError(
            f"generation of {label} returned no readable samples: {exc}", detail=detail
        ) from exc


def generate_in_subprocess(
    package_dir: Path,
    card: Card,
    num_samples: int,
    *,
    seed: int = 0,
    device: str = "cpu",
    args: Mapping[str, object] | None = None,
    timeout_seconds: float = 120.0,
    memory_limit_bytes: int | None = None,
    file_size_limit_bytes: int = DEFAULT_FILE_SIZE_LIMIT_BYTES,
    cpu_seconds: int = DEFAULT_CPU_SECONDS,
    isolate_network: bool = True,
    start_index: int = 0,
    batch_size: int | None = None,
    environment: PackageEnvironment | None = None,
) -> np.ndarray:
    """Generate ``num_samples`` samples of the package in ``package_dir`` in a limited child.

    For one's own code (:attr:`Isolation.PROCESS`). With ``environment`` the child is that
    package environment's Python, else this one. ``args`` must already be resolved (typed,
    defaulted) generation arguments. Without ``batch_size`` the package is called once with
    ``seed``; with it, the samples are ``[start_index, start_index + num_samples)`` of the
    client's sample sequence of ``(seed, batch_size)`` (:mod:`medigan_client.batching`), the
    same that ``Client.generate`` writes. Raises :class:`GenerationFailedError` when the child fails
    (the message carries its last stderr lines), exceeds a limit, or runs past
    ``timeout_seconds`` (its whole session is killed).
    """
    limits = SandboxLimits(
        memory_bytes=memory_limit_bytes or 0,
        cpu_seconds=cpu_seconds,
        wall_seconds=timeout_seconds,
        file_size_bytes=file_size_limit_bytes,
    )
    with tempfile.TemporaryDirectory(prefix="medigan-sandbox-") as scratch:
        root = Path(scratch)
        home, work = root / "home", root / "work"
        home.mkdir()
        work.mkdir()
        request = _request(
            str(Path(package_dir).resolve()),
            card,
            num_samples,
            seed=seed,
            device=device,
            args=args,
            limits={
                "memory_limit_bytes": memory_limit_bytes,
                "file_size_limit_bytes": file_size_limit_bytes,
                "cpu_seconds": cpu_seconds,
                "isolate_network": isolate_network,
            },
            start_index=start_index,
            batch_size=batch_size,
        )
        python = str(environment.python) if environment is not None else sys.executable
        outcome = _run(
            [python, "-s", "-P", "-m", _CHILD_MODULE],
            request=request,
            env=child_environment(home),
            cwd=work,
            wall_seconds=timeout_seconds,
            output_bytes=limits.output_bytes,
            cgroup=None,
        )
    return _samples_from(
        outcome, card.release_id, num_samples, limits, oom=False, package_dirs=(package_dir,)
    )


def _tool(name: str, configured: str | None) -> str:
    if configured:
        found = configured if os.access(configured, os.X_OK) else None
    else:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/bin")
    if not found:
        package = "bubblewrap" if name == "bwrap" else "util-linux"
        raise SandboxUnavailableError(
            f"{name} is not installed, so contributed code cannot be isolated and was not run; "
            f"install it (Debian: apt-get install {package}) or see docs/security.md"
        )
    return found


def _is_root() -> bool:
    return os.geteuid() == 0


def _command(
    layout: bubblewrap.SandboxLayout, options: SandboxOptions, argv: Sequence[str]
) -> tuple[list[str], int | None]:
    bwrap = _tool("bwrap", options.bwrap)
    uid: int | None = None
    setpriv: str | None = None
    if _is_root():
        setpriv = _tool("setpriv", options.setpriv)
        uid = options.uid_base + secrets.randbelow(options.uid_count)
    command = bubblewrap.bubblewrap_command(
        layout,
        bwrap=bwrap,
        environment=_sandbox_environment(layout),
        argv=argv,
        setpriv=setpriv,
        sandbox_uid=uid,
    )
    return command, uid


def _layout(
    package_dir: Path,
    limits: SandboxLimits,
    options: SandboxOptions,
    *,
    gpu: bool,
    environment: PackageEnvironment | None = None,
) -> bubblewrap.SandboxLayout:
    try:
        return bubblewrap.layout_for(
            package_dir,
            scratch_bytes=limits.scratch_bytes,
            gpu=gpu,
            forbidden=options.forbidden,
            environment=environment,
        )
    except bubblewrap.LayoutError as error:
        raise SandboxUnavailableError(str(error)) from error


def _cgroup(limits: SandboxLimits, options: SandboxOptions) -> tuple[RunCgroup | None, str]:
    try:
        group = run_cgroup_create(
            f"run-{os.getpid()}-{secrets.token_hex(6)}",
            CgroupLimits(memory_bytes=limits.memory_bytes, max_processes=limits.max_processes),
            parent=options.cgroup_parent,
        )
    except CgroupUnavailableError as error:
        return None, str(error)
    return group, f"cgroup v{group.version}"


def generate_in_sandbox(
    package_dir: Path,
    card: Card,
    num_samples: int,
    *,
    seed: int = 0,
    device: str = "cpu",
    args: Mapping[str, object] | None = None,
    limits: SandboxLimits | None = None,
    options: SandboxOptions | None = None,
    start_index: int = 0,
    batch_size: int | None = None,
    environment: PackageEnvironment | None = None,
) -> SandboxResult:
    """Generate ``num_samples`` samples of an untrusted package under bubblewrap.

    ``seed``, ``start_index`` and ``batch_size`` mean what they do for
    :func:`generate_in_subprocess`. With ``environment`` the package runs with that package
    environment's interpreter, and only its files are mounted (:mod:`.bubblewrap`); without
    one, with this interpreter and its environment.

    Raises :class:`SandboxUnavailableError` (and runs nothing) when the isolation cannot be set
    up, and :class:`GenerationFailedError` when the package fails, exceeds a limit or runs past
    the wall clock; in every case no process of the run is left.
    """
    limits = limits or SandboxLimits()
    options = options or SandboxOptions()
    gpu = device.startswith("cuda") or device == "auto"
    layout = _layout(package_dir, limits, options, gpu=gpu, environment=environment)
    argv = [layout.python_inside, "-s", "-P", "-m", _CHILD_MODULE]
    command, uid = _command(layout, options, argv)
    cgroup, cgroup_note = _cgroup(limits, options)
    child_limits: dict[str, object] = {
        "memory_limit_bytes": limits.process_memory_bytes,
        "file_size_limit_bytes": limits.file_size_bytes,
        "cpu_seconds": limits.cpu_seconds,
        "max_processes": limits.max_processes,
        "isolate_network": False,
    }
    if cgroup is None:
        # Without a control group, each process's address space is what bounds memory.
        child_limits["memory_limit_bytes"] = limits.process_memory_bytes or limits.memory_bytes
    request = _request(
        str(bubblewrap.INSIDE_PACKAGE),
        card,
        num_samples,
        seed=seed,
        device=device,
        args=args,
        limits=child_limits,
        start_index=start_index,
        batch_size=batch_size,
    )
    try:
        outcome = _run(
            command,
            request=request,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
            cwd=None,
            wall_seconds=limits.wall_seconds,
            output_bytes=limits.output_bytes,
            cgroup=cgroup,
        )
        oom = cgroup.memory_oom_killed() if cgroup is not None else False
    finally:
        if cgroup is not None:
            cgroup.remove()
    _raise_if_not_isolated(outcome)
    samples = _samples_from(
        outcome,
        card.release_id,
        num_samples,
        limits,
        oom=oom,
        package_dirs=(str(bubblewrap.INSIDE_PACKAGE), package_dir),
    )
    identity = f"uid {uid}" if uid is not None else "the worker's uid in a user namespace"
    bounds = (
        f"{cgroup_note}: {limits.memory_bytes} bytes, {limits.max_processes} processes"
        if cgroup is not None
        else f"no cgroup ({cgroup_note}); per-process limits"
    )
    return SandboxResult(
        samples=samples,
        isolation=f"bubblewrap, {identity}, no network, {bounds}, "
        f"{limits.scratch_bytes} bytes of scratch",
        stderr=outcome.stderr_tail,
    )


def _raise_if_not_isolated(outcome: _Outcome) -> None:
    """bubblewrap's own failures (before the package ran) are the operator's, not the package's."""
    if outcome.returncode == _CGROUP_JOIN_FAILED:
        raise SandboxUnavailableError(
            "the sandboxed run could not join its control group, so the package was not run"
        )
    bwrap_lines = [line for line in outcome.stderr_tail if line.startswith("bwrap:")]
    if outcome.returncode not in (0, None) and bwrap_lines:
        raise SandboxUnavailableError(
            f"bubblewrap could not set up the sandbox, so the package was not run: "
            f"{bwrap_lines[-1]}"
        )


_probe_cache: dict[tuple[object, ...], tuple[float, SandboxStatus]] = {}
_PROBE_SECONDS = 60.0


def sandbox_probe(options: SandboxOptions | None = None) -> SandboxStatus:
    """Whether the bubblewrap sandbox works here: runs the interpreter once in it (cached 60 s)."""
    options = options or SandboxOptions()
    key = (options.forbidden, options.cgroup_parent, options.bwrap, options.setpriv)
    cached = _probe_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < _PROBE_SECONDS:
        return cached[1]
    status = _probe(options)
    _probe_cache[key] = (time.monotonic(), status)
    return status


def _probe(options: SandboxOptions) -> SandboxStatus:
    limits = SandboxLimits(
        memory_bytes=512 << 20, max_processes=16, scratch_bytes=16 << 20, wall_seconds=30.0
    )
    with tempfile.TemporaryDirectory(prefix="medigan-sandbox-probe-") as empty:
        try:
            layout = _layout(Path(empty), limits, options, gpu=False)
            command, uid = _command(
                layout, options, [layout.python_inside, "-S", "-c", "import os; print(os.getuid())"]
            )
        except SandboxUnavailableError as error:
            return SandboxStatus(Isolation.BUBBLEWRAP, False, error.message)
        cgroup, cgroup_note = _cgroup(limits, options)
        try:
            outcome = _run(
                command,
                request=b"",
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                cwd=None,
                wall_seconds=limits.wall_seconds,
                output_bytes=4096,
                cgroup=cgroup,
            )
        finally:
            if cgroup is not None:
                cgroup.remove()
    if outcome.returncode != 0:
        shown = " | ".join(outcome.stderr_tail[-3:]) or f"status {outcome.returncode}"
        return SandboxStatus(
            Isolation.BUBBLEWRAP, False, f"bubblewrap cannot start a sandbox here: {shown}"
        )
    identity = (
        f"per-run uids from {options.uid_base}"
        if uid is not None
        else ("the worker's uid in a user namespace (run the worker as root for per-run uids)")
    )
    bounds = cgroup_note if cgroup is not None else f"per-process limits only ({cgroup_note})"
    return SandboxStatus(
        Isolation.BUBBLEWRAP, True, f"bubblewrap with {identity}; whole-run limits: {bounds}"
    )
