"""Run a model package in a child process with a scrubbed environment and resource limits.

The hub's validation and ``medigan-client push`` use :func:`generate_in_subprocess` for smoke
generations of code they do not trust yet. The child (``python -m medigan_client.runtime.child``)
gets only PATH, LANG/LC_ALL, CUDA_VISIBLE_DEVICES, a temporary HOME/TMPDIR, PYTHONHASHSEED and
thread-count variables (no proxies, no tokens), its own temporary working directory and a new
session, so the whole process group can be killed at the wall-clock timeout. Before importing
the package the child limits itself: address space (optional), file size, CPU time, no core
dumps, and, where the kernel allows it, an empty network namespace (loopback down: no network).
The samples come back as a ``.npy`` file loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from medigan_catalog.schema import Card
from medigan_client.errors import GenerationFailedError

DEFAULT_FILE_SIZE_LIMIT_BYTES = 1 << 30
DEFAULT_CPU_SECONDS = 600
STDERR_TAIL_LINES = 20

_PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "CUDA_VISIBLE_DEVICES")
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


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


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> list[str]:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _describe_exit(returncode: int, cpu_seconds: int, file_size_limit_bytes: int) -> str:
    if returncode >= 0:
        return f"exited with status {returncode}"
    signum = -returncode
    if signum == signal.SIGXCPU:
        return f"was stopped after using its CPU time limit of {cpu_seconds} s"
    if signum == signal.SIGXFSZ:
        return (
            f"was stopped for writing more than its file size limit of "
            f"{file_size_limit_bytes} bytes"
        )
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return f"was killed by {name}"


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
) -> np.ndarray:
    """Generate ``num_samples`` samples of the package in ``package_dir`` in a sandboxed child.

    ``args`` must already be resolved (typed, defaulted) generation arguments. Raises
    :class:`GenerationFailedError` when the child fails (the message carries its last stderr
    lines), exceeds a limit, or runs past ``timeout_seconds`` (its process group is killed).
    """
    label = card.release_id
    with tempfile.TemporaryDirectory(prefix="medigan-sandbox-") as scratch:
        root = Path(scratch)
        home = root / "home"
        work = root / "work"
        home.mkdir()
        work.mkdir()
        output = root / "samples.npy"
        stdout_path = root / "stdout.log"
        stderr_path = root / "stderr.log"
        request = {
            "package_dir": str(Path(package_dir).resolve()),
            "card": card.to_json(),
            "num_samples": num_samples,
            "seed": seed,
            "device": device,
            "args": dict(args or {}),
            "output": str(output),
            "limits": {
                "memory_limit_bytes": memory_limit_bytes,
                "file_size_limit_bytes": file_size_limit_bytes,
                "cpu_seconds": cpu_seconds,
                "isolate_network": isolate_network,
            },
        }
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-s", "-P", "-m", "medigan_client.runtime.child"],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                cwd=work,
                env=child_environment(home),
                # A new session so the whole process group can be killed at the timeout. Limits
                # are applied by the child itself before it imports the package: a preexec_fn
                # is unsafe in the threaded processes (Celery, gunicorn) that call this.
                start_new_session=True,
                close_fds=True,
            )
            try:
                process.communicate(json.dumps(request).encode("utf-8"), timeout=timeout_seconds)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                raise GenerationFailedError(
                    f"generation of {num_samples} samples of {label} ran past the time limit of "
                    f"{timeout_seconds:g} s and was killed",
                    detail={"timeout_seconds": timeout_seconds, "stderr": _tail(stderr_path)},
                ) from None
            except BaseException:
                _kill_group(process)
                raise
            finally:
                # The package may have left grandchildren behind in the session.
                _kill_group(process, only_leftovers=True)
        tail = _tail(stderr_path)
        if process.returncode != 0:
            reason = _describe_exit(process.returncode, cpu_seconds, file_size_limit_bytes)
            shown = " | ".join(tail[-5:]) if tail else "(no output on stderr)"
            raise GenerationFailedError(
                f"generation of {label} in a child process failed: the child {reason}; "
                f"last stderr lines: {shown}",
                detail={"returncode": process.returncode, "stderr": tail},
            )
        try:
            with output.open("rb") as handle:
                return np.asarray(np.load(handle, allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise GenerationFailedError(
                f"generation of {label} in a child process wrote no readable samples: {exc}",
                detail={"stderr": tail},
            ) from exc


def _kill_group(process: subprocess.Popen[bytes], *, only_leftovers: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if not only_leftovers:
        process.wait()
