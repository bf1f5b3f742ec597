"""Whole-run limits on memory and process count through Linux control groups, v1 or v2.

A sandboxed generation is a tree of processes: limits per process (``RLIMIT_AS``) let four
children take four times the memory, so the sandbox puts the whole tree in one control group
with a memory ceiling (swap included where the kernel accounts it) and a process ceiling. The
control group is also how the sandbox kills every process of a run, however it was started.

Where the machine offers no writable control group (an unprivileged worker without delegation),
:func:`run_cgroup_create` raises :class:`CgroupUnavailableError` and the caller decides whether
that is fatal; the sandbox then bounds the run with a per-namespace ``RLIMIT_NPROC`` instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from medigan_client.errors import SandboxUnavailableError

CGROUP_ROOT = Path("/sys/fs/cgroup")
_KILL_ROUNDS = 50


class CgroupUnavailableError(SandboxUnavailableError):
    """No control group could be created and limited here; the message says why."""


@dataclass(frozen=True)
class CgroupLimits:
    """The ceilings of one run: bytes of memory (page cache and tmpfs included) and tasks."""

    memory_bytes: int
    max_processes: int


@dataclass
class RunCgroup:
    """The control group(s) of one run: one directory on v2, one per controller on v1."""

    version: int
    directories: list[Path]

    @property
    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a process writes its pid into to join the run."""
        return [directory / "cgroup.procs" for directory in self.directories]

    def pids(self) -> set[int]:
        """Every process in the run's control group now."""
        found: set[int] = set()
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                found.update(int(line) for line in procs.read_text().split() if line.strip())
        return found

    def memory_oom_killed(self) -> bool:
        """Whether the kernel killed a process of the run for reaching the memory ceiling."""
        for directory in self.directories:
            for name in ("memory.events", "memory.oom_control"):
                with contextlib.suppress(OSError):
                    for line in (directory / name).read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and int(value or 0) > 0:
                            return True
        return False

    def kill_all(self) -> None:
        """SIGKILL every process of the run until none is left (forks race the first rounds)."""
        for directory in self.directories:
            kill_file = directory / "cgroup.kill"
            if kill_file.exists():
                with contextlib.suppress(OSError):
                    kill_file.write_text("1")
        for _ in range(_KILL_ROUNDS):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def remove(self) -> None:
        """Kill what is left and remove the run's directories."""
        self.kill_all()
        for directory in self.directories:
            for _ in range(_KILL_ROUNDS):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    # The last processes are still exiting; the kernel refuses until they have.
                    time.sleep(0.02)


def _own_cgroup_paths() -> dict[str, str]:
    """Controller name (``""`` for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as error:
        raise CgroupUnavailableError(f"cannot write {value!r} to {path}: {error}") from error


def _create_v1(name: str, limits: CgroupLimits, parent: str | None) -> RunCgroup:
    own = _own_cgroup_paths()
    directories: list[Path] = []
    run = RunCgroup(version=1, directories=directories)
    try:
        for controller in ("memory", "pids"):
            mount = CGROUP_ROOT / controller
            if parent is not None:
                directory = mount / parent.strip("/") / name
            else:
                directory = mount / own.get(controller, "/").lstrip("/") / "medigan-sandbox" / name
            try:
                directory.mkdir(parents=parent is None)
            except OSError as error:
                raise CgroupUnavailableError(f"cannot create {directory}: {error}") from error
            directories.append(directory)
        memory_dir, pids_dir = directories
        _write(memory_dir / "memory.limit_in_bytes", str(limits.memory_bytes))
        swap_limit = memory_dir / "memory.memsw.limit_in_bytes"
        if swap_limit.exists():
            # Memory plus swap: without it a run could page its way past the ceiling.
            _write(swap_limit, str(limits.memory_bytes))
        _write(pids_dir / "pids.max", str(limits.max_processes))
    except BaseException:
        run.remove()
        raise
    return run


def _create_v2(name: str, limits: CgroupLimits, parent: str | None) -> RunCgroup:
    if parent is not None:
        parent_dir = CGROUP_ROOT / parent.strip("/")
    else:
        own = _own_cgroup_paths().get("", "/")
        own_dir = CGROUP_ROOT / own.lstrip("/")
        # A v2 group with processes of its own cannot hand memory and pids to children, so runs
        # live under a sibling of the worker's own group (or under the root group).
        base = own_dir if own_dir == CGROUP_ROOT else own_dir.parent
        parent_dir = base / "medigan-sandbox"
    try:
        parent_dir.mkdir(parents=True, exist_ok=True)
        enabled = (parent_dir / "cgroup.subtree_control").read_text().split()
    except OSError as error:
        raise CgroupUnavailableError(f"cannot create {parent_dir}: {error}") from error
    if not {"memory", "pids"} <= set(enabled):
        _write(parent_dir / "cgroup.subtree_control", "+memory +pids")
    directory = parent_dir / name
    try:
        directory.mkdir()
    except OSError as error:
        raise CgroupUnavailableError(f"cannot create {directory}: {error}") from error
    run = RunCgroup(version=2, directories=[directory])
    try:
        _write(directory / "memory.max", str(limits.memory_bytes))
        if (directory / "memory.swap.max").exists():
            _write(directory / "memory.swap.max", "0")
        _write(directory / "pids.max", str(limits.max_processes))
    except BaseException:
        run.remove()
        raise
    return run


def cgroup_version() -> int | None:
    """2 for a pure v2 hierarchy, 1 where the v1 memory and pids controllers are mounted."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return 2
    if (CGROUP_ROOT / "memory" / "cgroup.procs").exists() and (
        CGROUP_ROOT / "pids" / "cgroup.procs"
    ).exists():
        return 1
    return None


def run_cgroup_create(name: str, limits: CgroupLimits, *, parent: str | None = None) -> RunCgroup:
    """Create the control group of one run with its limits, or raise CgroupUnavailableError.

    ``parent`` names a group delegated to this worker, relative to the hierarchy's root (on v1,
    to each controller's), to create runs under: an operator's setting for workers that are not
    root. By default runs go under the worker's own group (v1) or a sibling of it (v2).
    """
    version = cgroup_version()
    if version == 2:
        return _create_v2(name, limits, parent)
    if version == 1:
        return _create_v1(name, limits, parent)
    raise CgroupUnavailableError("no cgroup v2 hierarchy and no v1 memory and pids controllers")
