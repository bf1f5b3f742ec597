"""The sandboxed child process: success, crashes, timeouts, scrubbed environment."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from medigan_client.errors import GenerationFailedError
from medigan_client.runtime.sandbox import generate_in_subprocess

from .conftest import MakePackage


def test_generates_in_a_child_like_in_process(make_package: MakePackage) -> None:
    package = make_package()
    samples = generate_in_subprocess(
        package.directory,
        package.card,
        3,
        seed=7,
        args={"brightness": 60},
        memory_limit_bytes=2 << 30,
    )
    expected = np.clip(np.random.default_rng(7).normal(60, 20.0, size=(3, 8, 8)), 0, 255)
    assert samples.shape == (3, 8, 8)
    assert np.array_equal(samples, expected.astype(np.uint8))


def test_environment_is_scrubbed_and_network_isolated(
    make_package: MakePackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIGAN_TOKEN", "do-not-leak")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    package = make_package(
        "env",
        init_source=(
            "import os, socket\n"
            "import numpy as np\n"
            "def generate(num_samples, *, seed, device, brightness=0):\n"
            "    leaked = [k for k in os.environ if 'TOKEN' in k or 'PROXY' in k.upper()]\n"
            "    assert not leaked, leaked\n"
            "    assert os.environ['HOME'] != os.path.expanduser('~root')\n"
            "    assert os.getcwd().endswith('work')\n"
            "    try:\n"
            f"        socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
            "        reached = 1\n"
            "    except OSError:\n"
            "        reached = 0\n"
            "    return np.full((num_samples, 8, 8), reached, dtype=np.uint8)\n"
        ),
    )
    with listener:
        samples = generate_in_subprocess(package.directory, package.card, 1)
        reached_in_child = int(samples[0, 0, 0])
        unisolated = generate_in_subprocess(
            package.directory, package.card, 1, isolate_network=False
        )
    assert reached_in_child == 0, "the child reached a socket on the host"
    assert int(unisolated[0, 0, 0]) == 1


def test_a_crashing_child_reports_its_exit_status_and_stderr(make_package: MakePackage) -> None:
    package = make_package(
        "crash",
        init_source=(
            "import os, sys\n"
            "def generate(num_samples, *, seed, device, brightness=0):\n"
            "    print('loading weights failed badly', file=sys.stderr, flush=True)\n"
            "    os._exit(3)\n"
        ),
    )
    with pytest.raises(GenerationFailedError) as info:
        generate_in_subprocess(package.directory, package.card, 2)
    assert "exited with status 3" in info.value.message
    assert "loading weights failed badly" in info.value.message
    assert isinstance(info.value.detail, dict)
    assert info.value.detail["returncode"] == 3


def test_a_python_exception_is_reported_with_its_message(make_package: MakePackage) -> None:
    package = make_package(
        "raise",
        init_source="def generate(num_samples, *, seed, device, brightness=0):\n"
        "    raise ValueError('bad latent size')\n",
    )
    with pytest.raises(GenerationFailedError, match="bad latent size"):
        generate_in_subprocess(package.directory, package.card, 1)


def test_a_sleeping_child_is_killed_at_the_timeout(
    tmp_path: Path, make_package: MakePackage
) -> None:
    marker = tmp_path / "grandchild.pid"
    package = make_package(
        "sleep",
        init_source=(
            "import subprocess, time\n"
            "def generate(num_samples, *, seed, device, brightness=0):\n"
            f"    child = subprocess.Popen(['sleep', '60'])\n"
            f"    open({str(marker)!r}, 'w').write(str(child.pid))\n"
            "    time.sleep(60)\n"
        ),
    )
    started = time.monotonic()
    with pytest.raises(GenerationFailedError, match=r"time limit of 1\.5 s"):
        generate_in_subprocess(package.directory, package.card, 1, timeout_seconds=1.5)
    assert time.monotonic() - started < 10
    grandchild = int(marker.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{grandchild}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the package's own child process survived the timeout")


def test_output_that_is_not_an_array_fails(make_package: MakePackage) -> None:
    package = make_package(
        "objects",
        init_source="def generate(num_samples, *, seed, device, brightness=0):\n"
        "    return {'not': 'an array'}\n",
    )
    with pytest.raises(GenerationFailedError, match="expected an array"):
        generate_in_subprocess(package.directory, package.card, 1)


def test_torch_imports_under_a_4_gib_address_space_limit(make_package: MakePackage) -> None:
    pytest.importorskip("torch")
    package = make_package(
        "torchy",
        init_source=(
            "import torch\n"
            "def generate(num_samples, *, seed, device, brightness=0):\n"
            "    g = torch.Generator().manual_seed(seed)\n"
            "    x = torch.randint(0, 256, (num_samples, 8, 8), generator=g)\n"
            "    return x.to(torch.uint8)\n"
        ),
    )
    samples = generate_in_subprocess(
        package.directory, package.card, 2, seed=4, memory_limit_bytes=4 << 30
    )
    assert samples.shape == (2, 8, 8)
    assert samples.dtype == np.uint8


def test_a_memory_hog_hits_the_address_space_limit(make_package: MakePackage) -> None:
    package = make_package(
        "hog",
        init_source=(
            "def generate(num_samples, *, seed, device, brightness=0):\n"
            "    hog = bytearray(3 << 30)\n"
            "    return hog\n"
        ),
    )
    with pytest.raises(GenerationFailedError, match="MemoryError"):
        generate_in_subprocess(package.directory, package.card, 1, memory_limit_bytes=1 << 30)
