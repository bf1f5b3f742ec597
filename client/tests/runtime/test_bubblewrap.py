"""The bubblewrap sandbox: what untrusted code sees, what it can reach, and that it fails closed."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medigan_client.errors import GenerationFailedError, SandboxUnavailableError
from medigan_client.runtime import bubblewrap
from medigan_client.runtime.cgroups import (
    CgroupLimits,
    CgroupUnavailableError,
    cgroup_version,
    run_cgroup_create,
)
from medigan_client.runtime.sandbox import (
    SandboxLimits,
    SandboxOptions,
    generate_in_sandbox,
    sandbox_probe,
)

from .conftest import MakePackage

needs_bubblewrap = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap is not installed (Debian: apt-get install bubblewrap; `make test` does)",
)
SMALL = SandboxLimits(
    memory_bytes=1 << 30, max_processes=16, scratch_bytes=64 << 20, wall_seconds=60.0
)


@needs_bubblewrap
def test_generates_the_same_samples_as_in_process(make_package: MakePackage) -> None:
    package = make_package()

    result = generate_in_sandbox(
        package.directory, package.card, 3, seed=7, args={"brightness": 60}, limits=SMALL
    )

    expected = np.clip(np.random.default_rng(7).normal(60, 20.0, size=(3, 8, 8)), 0, 255)
    assert np.array_equal(result.samples, expected.astype(np.uint8))
    assert result.isolation.startswith("bubblewrap")


@needs_bubblewrap
def test_the_package_sees_an_empty_environment_and_its_own_tree(
    make_package: MakePackage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIGAN_TOKEN", "do-not-leak")
    secret = tmp_path / "secret.txt"
    secret.write_text("hub secret")
    listener = socket.create_server(("127.0.0.1", 0))
    package = make_package(
        "looks",
        init_source=(
            "import os, socket\n"
            "import numpy as np\n"
            "def generate(num_samples, *, seed, device, brightness=0):\n"
            "    seen = 0\n"
            "    seen |= 1 * any('TOKEN' in k for k in os.environ)\n"
            f"    seen |= 2 * os.path.exists({str(secret)!r})\n"
            "    seen |= 4 * (os.getcwd() != '/sandbox/scratch/work')\n"
            f"    seen |= 8 * os.path.exists({str(Path(sys.prefix) / 'pyvenv.cfg')!r})\n"
            "    try:\n"
            f"        socket.create_connection(('127.0.0.1', {listener.getsockname()[1]}), 2)\n"
            "        seen |= 16\n"
            "    except OSError:\n"
            "        pass\n"
            "    try:\n"
            "        open('/sandbox/package/x', 'w')\n"
            "        seen |= 32\n"
            "    except OSError:\n"
            "        pass\n"
            "    return np.full((num_samples, 8, 8), seen, dtype=np.uint8)\n"
        ),
    )

    with listener:
        result = generate_in_sandbox(package.directory, package.card, 1, limits=SMALL)

    # Each bit is one thing the package must not see or do; see its source above.
    assert int(result.samples[0, 0, 0]) == 0


@needs_bubblewrap
def test_a_timeout_kills_every_process_of_the_run(
    make_package: MakePackage, tmp_path: Path
) -> None:
    marker = f"medigan-test-sleeper-{os.getpid()}-{time.monotonic_ns()}"
    package = make_package(
        "sleeper",
        init_source=(
            "import os, sys, time\n"
            "def generate(num_samples, *, seed, device, brightness=0):\n"
            "    if os.fork() == 0:\n"
            "        os.setsid()\n"
            "        os.execv(sys.executable, [sys.executable, '-c', 'import time; "
            f"time.sleep(120)', {marker!r}])\n"
            "    time.sleep(120)\n"
        ),
    )
    limits = SandboxLimits(memory_bytes=1 << 30, max_processes=16, wall_seconds=3.0)

    with pytest.raises(GenerationFailedError, match="time limit of 3 s"):
        generate_in_sandbox(package.directory, package.card, 1, limits=limits)

    time.sleep(0.5)
    alive = [
        path
        for path in Path("/proc").glob("[0-9]*/cmdline")
        if marker.encode() in (path.read_bytes() if path.exists() else b"")
    ]
    assert alive == []


@needs_bubblewrap
def test_the_package_output_is_quoted_with_its_own_frames_only(
    make_package: MakePackage,
) -> None:
    package = make_package(
        "raises",
        init_source=(
            "import sys\n"
            "def generate(num_samples, *, seed, device, brightness=0):\n"
            "    print('loading weights.safetensors', file=sys.stderr)\n"
            "    raise FileNotFoundError('weights.safetensors not found')\n"
        ),
    )

    with pytest.raises(GenerationFailedError) as info:
        generate_in_sandbox(package.directory, package.card, 1, limits=SMALL)

    message = info.value.message
    assert "loading weights.safetensors" in message
    assert message.startswith(
        "generation of "
        f"{package.card.release_id} failed: FileNotFoundError: weights.safetensors not found "
        "(package: __init__.py, line 4, in generate)"
    )
    assert "/sandbox" not in message and "^" not in message
    assert "loader.py" not in message and str(package.directory) not in message
    assert info.value.traceback is not None
    assert 'File "/sandbox/package/__init__.py", line 4' in info.value.traceback


def test_a_missing_bubblewrap_fails_closed(make_package: MakePackage, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    package = make_package(
        "never",
        init_source=(
            f"open({str(ran)!r}, 'w').write('ran')\n"
            "def generate(num_samples, *, seed, device, brightness=0):\n"
            "    return None\n"
        ),
    )
    options = SandboxOptions(bwrap=str(tmp_path / "no-bwrap"))

    with pytest.raises(SandboxUnavailableError, match="not installed"):
        generate_in_sandbox(package.directory, package.card, 1, limits=SMALL, options=options)

    assert not ran.exists()
    assert not sandbox_probe(options).available


def test_a_mount_that_would_expose_a_forbidden_path_is_refused(make_package: MakePackage) -> None:
    package = make_package()
    options = SandboxOptions(forbidden=(package.directory / "card.json",))

    with pytest.raises(SandboxUnavailableError, match="would expose"):
        generate_in_sandbox(package.directory, package.card, 1, limits=SMALL, options=options)


def test_parent_directories_of_mounts_are_created_open_and_only_above_mounts() -> None:
    parents = bubblewrap._parent_dirs(
        ["/root/.pyenv/versions/3.11", "/sandbox/package", "/sandbox/lib/0"]
    )

    assert parents == ["/root", "/sandbox", "/root/.pyenv", "/sandbox/lib", "/root/.pyenv/versions"]


def test_a_root_worker_drops_to_the_run_uid_before_the_inner_sandbox(tmp_path: Path) -> None:
    layout = bubblewrap.layout_for(tmp_path, scratch_bytes=1 << 20)

    command = bubblewrap.bubblewrap_command(
        layout,
        bwrap="/usr/bin/bwrap",
        environment={"HOME": "/sandbox/scratch/home"},
        argv=["python"],
        setpriv="/usr/bin/setpriv",
        sandbox_uid=1_880_000_123,
    )

    drop = command.index("/usr/bin/setpriv")
    assert command[:drop].count("/usr/bin/bwrap") == 1
    assert "--reuid=1880000123" in command[drop:]
    assert {"--no-new-privs", "--bounding-set=-all", "--inh-caps=-all"} <= set(command[drop:])
    inner = command.index("/usr/bin/bwrap", drop)
    assert {"--unshare-user", "--disable-userns", "--unshare-net"} <= set(command[inner:])
    assert command[-1] == "python"


@pytest.mark.skipif(os.geteuid() != 0, reason="creating control groups needs root here")
def test_a_run_cgroup_carries_the_limits_and_is_removed() -> None:
    if cgroup_version() is None:
        pytest.skip("no cgroup hierarchy with memory and pids controllers")
    try:
        group = run_cgroup_create(
            f"test-{os.getpid()}", CgroupLimits(memory_bytes=256 << 20, max_processes=7)
        )
    except CgroupUnavailableError as error:
        pytest.skip(f"control groups are not writable here: {error}")
    names = {path.name for directory in group.directories for path in directory.iterdir()}
    limits = {
        name: (directory / name).read_text().strip()
        for directory in group.directories
        for name in ("memory.limit_in_bytes", "memory.max", "pids.max")
        if (directory / name).exists()
    }

    group.remove()

    assert "cgroup.procs" in names
    assert limits.get("pids.max") == "7"
    assert str(256 << 20) in {limits.get("memory.limit_in_bytes"), limits.get("memory.max")}
    assert not any(directory.exists() for directory in group.directories)
