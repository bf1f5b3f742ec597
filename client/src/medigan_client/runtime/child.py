"""Entry point of the sandboxed child process: ``python -m medigan_client.runtime.child``.

Reads one JSON request on stdin (``package_dir``, ``card``, ``num_samples``, ``seed``,
``device``, ``args``, ``output``, ``limits``), applies the resource limits and network
isolation to itself, imports the package with :mod:`.loader`, generates one batch
and writes it with :func:`numpy.save` (no pickles) to ``output``. Any failure ends the process
with status 1 after printing the traceback and a last line ``error: <message>`` on stderr, which
the parent reports.
"""

from __future__ import annotations

import ctypes
import json
import resource
import sys
import traceback
from pathlib import Path

import numpy as np

from medigan_catalog.schema import card_from_json
from medigan_client.runtime.loader import load_package, resolve_device

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000


def apply_limits(limits: dict[str, object]) -> bool:
    """Limit this process before any package code runs; return whether the network is cut off.

    Sets RLIMIT_AS (when ``memory_limit_bytes`` is given), RLIMIT_FSIZE, RLIMIT_CPU and no core
    dumps. With ``isolate_network`` it moves into a new, empty network namespace (loopback
    down): directly where the process may (root, CAP_SYS_ADMIN), else through an unprivileged
    user namespace where the kernel allows it; where neither works it runs without.
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
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if not limits.get("isolate_network"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) == 0:
        return True
    return bool(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0)


def run(request: dict[str, object]) -> Path:
    """Apply the limits, serve one request and return the path of the written ``.npy`` file."""
    raw_limits = request.get("limits") or {}
    apply_limits(raw_limits if isinstance(raw_limits, dict) else {})
    raw_card = request["card"]
    if not isinstance(raw_card, dict):
        raise TypeError("the request's card must be a JSON object")
    card = card_from_json(raw_card)
    package = load_package(Path(str(request["package_dir"])), card)
    raw_args = request.get("args") or {}
    args = dict(raw_args) if isinstance(raw_args, dict) else {}
    samples = package.generate_batch(
        int(str(request["num_samples"])),
        seed=int(str(request.get("seed", 0))),
        device=resolve_device(str(request.get("device", "cpu"))),
        args=args,
    )
    array = np.ascontiguousarray(samples)
    if array.dtype == np.dtype(object):
        raise TypeError("the package returned an array of Python objects, not numbers")
    output = Path(str(request["output"]))
    with output.open("wb") as handle:
        np.save(handle, array, allow_pickle=False)
    return output


def main() -> int:
    """Read the request from stdin, run it, return the exit status."""
    try:
        request = json.loads(sys.stdin.read())
        if not isinstance(request, dict):
            raise TypeError("the request must be a JSON object")
        run(request)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        message = str(exc).replace("\n", " ") or type(exc).__name__
        print(f"error: {type(exc).__name__}: {message}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
