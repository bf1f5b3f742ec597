"""Thread sizing: affinity and cgroup quotas bound the count, the environment overrides it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from evaluation.threads import available_cpus, configured_threads, torch_threads

AFFINITY = len(os.sched_getaffinity(0))


def _cgroup(tmp_path: Path, membership: str, files: dict[str, str]) -> dict[str, Path]:
    root = tmp_path / "cgroup"
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(membership)
    return {"cgroup_root": root, "proc_cgroup": proc}


def test_a_v2_quota_below_the_affinity_caps_the_count(tmp_path: Path) -> None:
    # 50000 us every 100000 us is half a CPU: one thread, not zero.
    paths = _cgroup(tmp_path, "0::/worker.slice\n", {"worker.slice/cpu.max": "50000 100000\n"})
    assert available_cpus(**paths) == 1


def test_a_fractional_quota_rounds_up_and_never_exceeds_the_affinity(tmp_path: Path) -> None:
    quota = f"{(AFFINITY + 5) * 100000 - 50000} 100000\n"
    paths = _cgroup(tmp_path, "0::/\n", {"cpu.max": quota})
    assert available_cpus(**paths) == AFFINITY


def test_an_unlimited_v2_group_leaves_the_affinity(tmp_path: Path) -> None:
    paths = _cgroup(tmp_path, "0::/a\n", {"a/cpu.max": "max 100000\n"})
    assert available_cpus(**paths) == AFFINITY


def test_a_v1_quota_is_read_from_the_cpu_controller(tmp_path: Path) -> None:
    # A container sees its own group at the controller's root, not at the host's path.
    paths = _cgroup(
        tmp_path,
        "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n",
        {"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"},
    )
    assert available_cpus(**paths) == 1
    unlimited = _cgroup(
        tmp_path / "unlimited",
        "2:cpu,cpuacct:/\n",
        {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
    )
    assert available_cpus(**unlimited) == AFFINITY


def test_no_cgroup_information_leaves_the_affinity(tmp_path: Path) -> None:
    assert available_cpus(cgroup_root=tmp_path, proc_cgroup=tmp_path / "absent") == AFFINITY


def test_the_environment_and_an_argument_override_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MEDIGAN_TORCH_THREADS", raising=False)
    assert configured_threads() == available_cpus()
    monkeypatch.setenv("MEDIGAN_TORCH_THREADS", " 3 ")
    assert configured_threads() == 3
    assert configured_threads(1) == 1
    monkeypatch.setenv("MEDIGAN_TORCH_THREADS", "all")
    with pytest.raises(ValueError, match="MEDIGAN_TORCH_THREADS must be a positive integer"):
        configured_threads()
    with pytest.raises(ValueError, match="at least 1"):
        configured_threads(0)


def test_torch_threads_sets_the_pool_for_the_block_and_restores_it() -> None:
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with torch_threads(target) as count:
        assert torch.get_num_threads() == count == target
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(target):
        raise RuntimeError("the pool is restored on errors too")
    assert torch.get_num_threads() == before
