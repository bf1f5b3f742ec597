"""Entry point of the sandboxed child process: ``python -m medigan_client.runtime.child``.

Reads one JSON request on stdin (``package_dir``, ``card``, ``num_samples``, ``seed``,
``device``, ``args``, ``limits`` and, optionally, ``batch_size`` and ``start_index``), applies
the resource limits (and, outside bubblewrap, the network isolation) to itself, imports the
package with :mod:`.loader`, generates and writes the samples with :func:`numpy.save` (no
pickles) to its standard output, the only channel back to the parent. Without ``batch_size``
the package is called once with ``seed`` (validation's smoke run); with it, the child generates
samples ``[start_index, start_index + num_samples)`` of the sample sequence of ``(seed,
batch_size)`` through :mod:`medigan_client.batching`, as ``Client.generate`` does (the hub's
evaluations). The package's own prints go to stderr: before the package is imported, stdout is
moved to a private descriptor and descriptor 1 points at stderr. Any failure ends the process
with status 1 after a last line on stderr that reports it in both forms, the short one in the
package's terms and the full traceback (:func:`medigan_client.runtime.failures.report_line`);
the parent reads it back and quotes the lines before it as the package's own output.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import resource
import sys
from pathlib import Path

import numpy as np

from medigan_catalog.schema import card_from_json
from medigan_client.batching import generate_batches
from medigan_client.runtime.failures import PackageFailure, describe_exception, report_line
from medigan_client.runtime.inprocess import InProcessRunner
from medigan_client.runtime.loader import resolve_device

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000


def apply_limits(limits: dict[str, object]) -> bool:
    """Limit this process before any package code runs; return whether the network is cut off.

    Sets RLIMIT_AS (when ``memory_limit_bytes`` is given), RLIMIT_FSIZE, RLIMIT_CPU,
    RLIMIT_NPROC (when ``max_processes`` is given: inside a user namespace the kernel counts
    only that namespace's processes, so it bounds this run alone) and no core dumps. With
    ``isolate_network`` it moves into a new, empty network namespace (loopback down): directly
    where the process may (root, CAP_SYS_ADMIN), else through an unprivileged user namespace
    where the kernel allows it; where neither works it runs without. Under bubblewrap the
    sandbox has no network already and the flag is off.
    """
    memory = limits.get("memory_limit_bytes")
    if isinstance(memory, int):
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    file_size = limits.get("file_size_limit_bytes")
    if isinstance(file_size, int):
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    cpu = limits.get("cpu_seconds")
    if isinstance(cpu, int):
        # The soft limit sends SIGXCPU (reported as such); the hard limit a little later kills.
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    processes = limits.get("max_processes")
    if isinstance(processes, int):
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if not limits.get("isolate_network"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) == 0:
        return True
    return bool(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0)


def run(request: dict[str, object], samples_out: int) -> None:
    """Apply the limits, serve one request and write the samples to descriptor ``samples_out``."""
    raw_limits = request.get("limits") or {}
    apply_limits(raw_limits if isinstance(raw_limits, dict) else {})
    raw_card = request["card"]
    if not isinstance(raw_card, dict):
        raise TypeError("the request's card must be a JSON object")
    card = card_from_json(raw_card)
    runner = InProcessRunner(Path(str(request["package_dir"])), card)
    raw_args = request.get("args") or {}
    args = dict(raw_args) if isinstance(raw_args, dict) else {}
    num_samples = int(str(request["num_samples"]))
    seed = int(str(request.get("seed", 0)))
    device = resolve_device(str(request.get("device", "cpu")))
    batch_size = request.get("batch_size")
    if batch_size is None:
        samples = runner.package.generate_batch(num_samples, seed=seed, device=device, args=args)
    else:
        first = int(str(request.get("start_index", 0)))
        samples = np.concatenate(
            [
                batch.images
                for _, batch in generate_batches(
                    runner,
                    card,
                    seed=seed,
                    batch_size=int(str(batch_size)),
                    first=first,
                    stop=first + num_samples,
                    device=device,
                    args=args,
                )
            ]
        )
    array = np.ascontiguousarray(samples)
    if array.dtype == np.dtype(object):
        raise TypeError("the package returned an array of Python objects, not numbers")
    # A pipe cannot seek, which numpy's direct file write needs: serialise, then write.
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    with os.fdopen(samples_out, "wb") as handle:
        handle.write(buffer.getbuffer())


def package_failure(error: BaseException, package_dir: str) -> PackageFailure:
    """Both forms of the failure that ended the run (see :mod:`.failures`).

    The loader's and this module's frames are left out of the short form: the contributor
    debugs their code, not the runtime's.
    """
    return describe_exception(error, (package_dir,) if package_dir else ())


def main() -> int:
    """Read the request from stdin, run it, return the exit status."""
    sys.stdout.flush()
    samples_out = os.dup(1)
    # From here on, whatever the package prints lands on stderr, never in the samples.
    os.dup2(2, 1)
    package_dir = ""
    try:
        request = json.loads(sys.stdin.read())
        if not isinstance(request, dict):
            raise TypeError("the request must be a JSON object")
        package_dir = str(request.get("package_dir") or "")
        run(request, samples_out)
    except Exception as exc:
        print(report_line(package_failure(exc, package_dir)), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
