"""How many CPU threads feature extraction uses: the cores this process may actually run on.

torch sizes its intra-op pool from the machine's cores, which overcounts inside a container
with a CPU quota or a worker pinned to some cores: more threads than cores makes every
OpenMP barrier wait for a thread that is not running, and a 2-core worker under load then runs
the Inception network several times slower than with the right count. The count here is the
smallest of the process's CPU affinity (`os.sched_getaffinity`) and its cgroup CPU quota (v2
`cpu.max`, v1 `cpu.cfs_quota_us / cpu.cfs_period_us`, rounded up), and `MEDIGAN_TORCH_THREADS`
overrides it (an operator running several workers on one machine gives each its share).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

__all__ = ["THREADS_ENV_VAR", "available_cpus", "configured_threads", "torch_threads"]

THREADS_ENV_VAR = "MEDIGAN_TORCH_THREADS"

_CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_quota_cpus(root: Path, proc_cgroup: Path) -> float | None:
    """The CPU quota of this process's cgroup in CPUs, or None when unlimited or unknown."""
    try:
        lines = proc_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        relative = path.lstrip("/")
        if hierarchy == "0" and controllers == "":
            # cgroup v2: "max 100000" is unlimited, "150000 100000" is 1.5 CPUs.
            for candidate in (root / relative / "cpu.max", root / "cpu.max"):
                quota = _read_words(candidate)
                if quota is not None and len(quota) == 2 and quota[0] != "max":
                    return _ratio(quota[0], quota[1])
        elif "cpu" in controllers.split(","):
            # cgroup v1: a quota of -1 is unlimited.
            for folder in (root / "cpu" / relative, root / "cpu,cpuacct" / relative, root / "cpu"):
                quota_words = _read_words(folder / "cpu.cfs_quota_us")
                period_words = _read_words(folder / "cpu.cfs_period_us")
                if quota_words and period_words and quota_words[0] != "-1":
                    return _ratio(quota_words[0], period_words[0])
    return None


def _read_words(path: Path) -> list[str] | None:
    try:
        return path.read_text(encoding="utf-8").split()
    except OSError:
        return None


def _ratio(quota: str, period: str) -> float | None:
    try:
        value = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def available_cpus(
    *, cgroup_root: Path = _CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")
) -> int:
    """CPUs this process can use: its affinity, capped by its cgroup's CPU quota (rounded up)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota_cpus(cgroup_root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(cpus, 1)


def configured_threads(override: int | None = None) -> int:
    """Threads to use: `override`, else `MEDIGAN_TORCH_THREADS`, else `available_cpus()`.

    Raises ValueError for a count below 1 or an environment value that is not an integer.
    """
    if override is None:
        configured = os.environ.get(THREADS_ENV_VAR, "").strip()
        if not configured:
            return available_cpus()
        try:
            override = int(configured)
        except ValueError:
            raise ValueError(
                f"{THREADS_ENV_VAR} must be a positive integer, got {configured!r}"
            ) from None
    if override < 1:
        raise ValueError(f"the number of torch threads must be at least 1, got {override}")
    return override


@contextmanager
def torch_threads(count: int) -> Iterator[int]:
    """Run the block with torch's intra-op pool at `count` threads, then restore the old size."""
    previous = torch.get_num_threads()
    if count != previous:
        torch.set_num_threads(count)
    try:
        yield count
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
