"""Many processes (and threads) sharing one cache download a release once and all succeed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from medigan_catalog.schema import card_from_json
from medigan_client.cache import Cache
from medigan_client.cache_admin import verify_cache
from medigan_client.download import download_release, ensure_package
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from conftest import FakeHub

WAITING = "waiting for another process to finish downloading zoo/noise-8@1.0.0"
# Generous bounds for a loaded machine; the test ends as soon as both processes are done.
START_DEADLINE_SECONDS = 50.0
FINISH_TIMEOUT_SECONDS = 180.0


def _artifact_downloads(hub: FakeHub) -> int:
    return sum(1 for r in hub.state.log if r.method == "GET" and "/artifacts/" in r.path)


class _Collector(threading.Thread):
    """Reads a pipe to the end so the child never blocks on a full pipe; keeps the text."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.chunks: list[bytes] = []

    def run(self) -> None:
        # os.read returns what is there now, so the test sees messages as they are written.
        descriptor = self.stream.fileno()
        for chunk in iter(lambda: os.read(descriptor, 4096), b""):
            self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")


def _generate_in_a_new_process(
    hub: FakeHub, cache_dir: Path, output_dir: Path, config: Path
) -> tuple[subprocess.Popen[bytes], _Collector, _Collector]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIGAN_")}
    env.update({"MEDIGAN_CONFIG": str(config), "MEDIGAN_TIMEOUT": "120"})
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medigan_client.cli",
            "--hub",
            hub.url,
            "--cache-dir",
            str(cache_dir),
            "generate",
            "zoo/noise-8",
            "-n",
            "5",
            "--batch-size",
            "2",
            "--seed",
            "11",
            "--device",
            "cpu",
            "-o",
            str(output_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = _Collector(process.stdout), _Collector(process.stderr)
    out.start()
    err.start()
    return process, out, err


def test_two_processes_generating_one_uncached_model_download_it_once(
    hub: FakeHub, published: dict[str, Any], tmp_path: Path
) -> None:
    # The artifact body stops half way until released, so whichever process downloads is
    # still downloading when the other one asks for the same release.
    gate = threading.Event()
    hub.state.artifact_gate = gate
    cache_dir = tmp_path / "cache"
    outputs = [tmp_path / "out-a", tmp_path / "out-b"]
    config = tmp_path / "no-config.toml"
    runs = [_generate_in_a_new_process(hub, cache_dir, out, config) for out in outputs]
    try:
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if any(WAITING in err.text for _, _, err in runs):
                break
            if all(process.poll() is not None for process, _, _ in runs):
                break
            time.sleep(0.05)
    finally:
        gate.set()
    for process, _, _ in runs:
        process.wait(timeout=FINISH_TIMEOUT_SECONDS)
    for process, out, err in runs:
        out.join(timeout=10)
        err.join(timeout=10)
        assert process.returncode == 0, err.text

    waited = [WAITING in err.text for _, _, err in runs]
    assert sorted(waited) == [False, True], "the two processes did not overlap"
    assert _artifact_downloads(hub) == 1
    first, second = (sorted(p.name for p in out.iterdir()) for out in outputs)
    assert first == second == [*(f"{i:06d}.png" for i in range(5)), "manifest.jsonl"]
    for name in first:
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name
    assert all("wrote 5 images of zoo/noise-8@1.0.0" in out.text for _, out, _ in runs)
    report = verify_cache(Cache(cache_dir))
    assert report.ok and report.problems == ()
    assert not any(Cache(cache_dir).tmp_dir.iterdir()), "no partial download is left behind"


def test_threads_sharing_a_cache_download_and_extract_once(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any]
) -> None:
    # A throttled body keeps the first download busy while the other threads arrive.
    hub.state.artifact_chunk_bytes = 128
    hub.state.artifact_chunk_delay_seconds = 0.02
    card = card_from_json(published)
    start = threading.Barrier(4)
    packages: list[Path] = []
    archives: list[Path] = []
    errors: list[BaseException] = []

    def use_the_release() -> None:
        try:
            start.wait(timeout=30)
            packages.append(ensure_package(settings, card, progress=False))
            archives.append(download_release(settings, card, progress=False))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=use_the_release) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(set(packages)) == 1 and len(packages) == 4
    assert len(set(archives)) == 1
    assert _artifact_downloads(hub) == 1
    assert (packages[0] / "__init__.py").is_file()
