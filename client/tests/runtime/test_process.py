"""The process runtime: one child serves many batches; crashes are reported, the caller lives."""

from __future__ import annotations

import mmap
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.runtime.process import (
    MALLOC_TUNABLES,
    MAX_SLOT_BYTES,
    SHARED_SLOTS,
    ProcessRunner,
    SharedSlots,
    process_environment,
)

from .conftest import MakePackage

# One package that misbehaves in a different way for each brightness, so that one runner (one
# child after another) shows that the caller survives each failure and keeps generating.
MISBEHAVING = """
import ctypes, os, sys
import numpy as np

print("importing the misbehaving package", flush=True)


def generate(num_samples, *, seed, device, brightness=0):
    print("generating on stdout", num_samples, flush=True)
    if brightness == 1:
        print("about to read address zero", file=sys.stderr, flush=True)
        ctypes.string_at(0)
    if brightness == 2:
        print("loading weights failed badly", file=sys.stderr, flush=True)
        os._exit(3)
    if brightness == 3:
        raise ValueError("bad latent size")
    if brightness == 4:
        sys.exit(4)
    if brightness == 5:
        return "not samples"
    return np.full((num_samples, 8, 8), brightness, dtype=np.uint8)
"""


@pytest.fixture
def misbehaving(make_package: MakePackage) -> ProcessRunner:
    package = make_package("misbehaving", MISBEHAVING)
    return ProcessRunner(package.directory, package.card)


def _generate(runner: ProcessRunner, brightness: int, count: int = 2) -> np.ndarray:
    batch = runner.generate_batch(
        count, seed=0, device="cpu", args={"brightness": brightness}, sample_seeds=None
    )
    return batch.images


def test_one_child_serves_many_batches_and_prints_go_to_its_log(
    misbehaving: ProcessRunner,
) -> None:
    with misbehaving as runner:
        pid = runner.pid
        assert pid is not None and pid != os.getpid()
        assert int(_generate(runner, 7).max()) == 7
        assert _generate(runner, 9, count=3).shape == (3, 8, 8)
        assert runner.pid == pid, "the package is imported once and the child reused"
        stdout = (runner.log_dir / "stdout.log").read_text()
        assert "importing the misbehaving package" in stdout
        assert stdout.count("generating on stdout") == 2
        log_dir = runner.log_dir
    assert runner.pid is None
    assert not log_dir.exists()


def test_a_segfault_is_reported_with_its_signal_and_the_next_batch_gets_a_new_child(
    misbehaving: ProcessRunner,
) -> None:
    with misbehaving as runner:
        first = runner.pid
        with pytest.raises(GenerationFailedError) as info:
            _generate(runner, 1)
        assert "SIGSEGV" in info.value.message
        assert "about to read address zero" in info.value.message or any(
            "about to read address zero" in line for line in info.value.detail["stderr"]
        )
        assert info.value.detail["signal"] == "SIGSEGV"
        assert runner.pid is None
        assert int(_generate(runner, 6).max()) == 6
        assert runner.pid not in (None, first)


def test_os_exit_is_reported_with_its_status_and_last_stderr_lines(
    misbehaving: ProcessRunner,
) -> None:
    with misbehaving as runner, pytest.raises(GenerationFailedError) as info:
        _generate(runner, 2)
    assert "exited with status 3" in info.value.message
    assert "loading weights failed badly" in info.value.message
    assert info.value.detail["returncode"] == 3
    assert info.value.code.value == "generation_failed"


def test_exceptions_sys_exit_and_garbage_leave_the_child_serving(
    misbehaving: ProcessRunner,
) -> None:
    with misbehaving as runner:
        pid = runner.pid
        with pytest.raises(GenerationFailedError, match="ValueError: bad latent size") as info:
            _generate(runner, 3)
        assert "raise ValueError" in str(info.value.detail["traceback"])
        with pytest.raises(GenerationFailedError, match=r"called sys\.exit\(4\)"):
            _generate(runner, 4)
        with pytest.raises(GenerationFailedError, match="the package returned str"):
            _generate(runner, 5)
        assert runner.pid == pid
        assert int(_generate(runner, 8).max()) == 8


def test_an_import_failure_is_reported_when_the_runner_opens(make_package: MakePackage) -> None:
    package = make_package("broken", "import not_a_module_x\n")
    with pytest.raises(GenerationFailedError, match=r"ModuleNotFoundError.*not_a_module_x"):
        ProcessRunner(package.directory, package.card)


def test_a_package_crashing_at_import_is_reported(make_package: MakePackage) -> None:
    package = make_package("dies", "import os\nos._exit(7)\n")
    with pytest.raises(GenerationFailedError, match=r"while loading the package.*status 7"):
        ProcessRunner(package.directory, package.card)


def test_close_kills_the_childs_process_group(tmp_path: Path, make_package: MakePackage) -> None:
    marker = tmp_path / "grandchild.pid"
    package = make_package(
        "spawns",
        "import subprocess\n"
        "import numpy as np\n"
        "def generate(num_samples, *, seed, device, brightness=0):\n"
        "    child = subprocess.Popen(['sleep', '60'])\n"
        f"    open({str(marker)!r}, 'w').write(str(child.pid))\n"
        "    return np.zeros((num_samples, 8, 8), dtype=np.uint8)\n",
    )
    runner = ProcessRunner(package.directory, package.card)
    _generate(runner, 0, count=1)
    grandchild = int(marker.read_text())
    runner.close()
    runner.close()  # closing twice is harmless
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{grandchild}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail("a process the package started survived close()")
    with pytest.raises(BadRequestError, match="closed"):
        _generate(runner, 0, count=1)


def test_a_batch_past_the_time_limit_kills_the_child(make_package: MakePackage) -> None:
    package = make_package(
        "slow",
        "import time\n"
        "import numpy as np\n"
        "def generate(num_samples, *, seed, device, brightness=0):\n"
        "    if brightness == 1:\n"
        "        time.sleep(60)\n"
        "    return np.zeros((num_samples, 8, 8), dtype=np.uint8)\n",
    )
    with ProcessRunner(package.directory, package.card, timeout_seconds=1.5) as runner:
        with pytest.raises(GenerationFailedError, match=r"longer than 1\.5 s generating"):
            _generate(runner, 1)
        assert _generate(runner, 0).shape == (2, 8, 8)


def test_per_sample_seeds_reach_a_package_that_takes_them(make_package: MakePackage) -> None:
    package = make_package(
        "seeds",
        "import numpy as np\n"
        "def generate(num_samples, *, seed, device, seeds=None, brightness=0):\n"
        "    seeds = seeds if seeds is not None else [seed] * num_samples\n"
        "    return np.stack([np.full((8, 8), s, dtype=np.int64) for s in seeds])\n",
    )
    with ProcessRunner(package.directory, package.card) as runner:
        assert runner.supports_sample_seeds is True
        batch = runner.generate_batch(3, seed=0, device="cpu", args={}, sample_seeds=[5, 6, 7])
        assert batch.images[:, 0, 0].tolist() == [5, 6, 7]
        alone = runner.generate_batch(1, seed=0, device="cpu", args={}, sample_seeds=[6])
        assert np.array_equal(alone.images[0], batch.images[1])
        with pytest.raises(BadRequestError, match="2 seeds for a batch of 3"):
            runner.generate_batch(3, seed=0, device="cpu", args={}, sample_seeds=[1, 2])


def test_masks_labels_and_large_arrays_come_back_intact(make_package: MakePackage) -> None:
    package = make_package(
        "rich",
        "import numpy as np\n"
        "def generate(num_samples, *, seed, device, brightness=0):\n"
        "    rng = np.random.default_rng(seed)\n"
        "    images = rng.random((num_samples, 256, 256, 3), dtype=np.float32)\n"
        "    return {'images': images, 'masks': images[..., 0] > 0.5,\n"
        "            'labels': np.array(['benign', 'malignant'][:num_samples]),\n"
        "            'volume': np.arange(num_samples, dtype=np.int16)}\n",
    )
    with ProcessRunner(package.directory, package.card) as runner:
        batch = runner.generate_batch(2, seed=3, device="cpu", args={})
    expected = np.random.default_rng(3).random((2, 256, 256, 3), dtype=np.float32)
    assert np.array_equal(batch.images, expected)
    assert batch.masks is not None and batch.masks.dtype == np.bool_
    assert batch.labels is not None and batch.labels.tolist() == ["benign", "malignant"]
    assert batch.extras["volume"].tolist() == [0, 1]
    assert len(batch.select(1)) == 1


def test_arguments_that_json_cannot_carry_are_a_bad_request(make_package: MakePackage) -> None:
    package = make_package()
    with ProcessRunner(package.directory, package.card) as runner:
        with pytest.raises(BadRequestError, match="plain values"):
            runner.generate_batch(1, seed=0, device="cpu", args={"brightness": object()})
        assert runner.generate_batch(1, seed=0, device="cpu", args={}).images.shape == (1, 8, 8)


def _in_shared_memory(array: np.ndarray) -> bool:
    """Whether the array's memory is a mapping (a shared slot), not the process's own."""
    base: object = array
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)


NUMBERED = (
    "import numpy as np\n"
    "def generate(num_samples, *, seed, device, brightness=0):\n"
    "    return np.full((num_samples, 8, 8), seed % 251, dtype=np.uint8)\n"
)


@pytest.mark.skipif(SharedSlots.create() is None, reason="no memory files on this system")
def test_batches_come_through_shared_slots_that_are_lent_again_only_when_unused(
    make_package: MakePackage,
) -> None:
    package = make_package("numbered", NUMBERED)
    with ProcessRunner(package.directory, package.card) as runner:
        # More batches kept alive than there are slots: the first come as views of the shared
        # slots, the rest through the pipe, and no batch is overwritten by a later one.
        kept = [
            runner.generate_batch(2, seed=seed, device="cpu", args={}).images
            for seed in range(SHARED_SLOTS + 2)
        ]
        assert [seed for seed, images in enumerate(kept) if not (images == seed).all()] == []
        shared = [_in_shared_memory(images) for images in kept]
        assert shared == [True] * SHARED_SLOTS + [False, False]
        kept.clear()  # every slot is free again and lent to the next batches
        again = runner.generate_batch(2, seed=7, device="cpu", args={}).images
        assert (again == 7).all() and _in_shared_memory(again)


def test_shared_slots_cannot_shrink_and_arrays_outside_them_are_refused() -> None:
    slots = SharedSlots.create(count=1)
    if slots is None:
        pytest.skip("no memory files on this system")
    try:
        assert slots.lend(MAX_SLOT_BYTES + 1) is None  # a huge batch goes through the pipe
        index, size = slots.lend(100)
        assert index == 0 and size >= 100
        with pytest.raises(PermissionError):
            os.ftruncate(slots.fds[0], 16)  # what a hostile child would try
        uint8 = np.dtype(np.uint8)
        with pytest.raises(ValueError, match="outside the slot"):
            slots.arrays(0, [("images", uint8, (2, size), 0)])
        with pytest.raises(ValueError, match="outside the slot"):
            slots.arrays(0, [("images", uint8, (4,), -1)])
        view = slots.arrays(0, [("images", uint8, (4,), 64)])["images"]
        assert slots.lend(100) is None  # its only slot is still viewed
        del view
        assert slots.lend(100) == (0, size)
    finally:
        slots.close()


def test_the_child_gets_malloc_tunables_unless_the_caller_set_its_own() -> None:
    environment = process_environment({"PATH": "/usr/bin"})
    expected = MALLOC_TUNABLES if sys.platform.startswith("linux") else None
    assert environment.get("GLIBC_TUNABLES") == expected
    own = process_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=1"})
    assert own["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=1"
