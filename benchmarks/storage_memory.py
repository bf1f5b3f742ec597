"""Memory of the hub while a large artifact is pushed to S3 storage and downloaded back.

Starts moto in server mode on 127.0.0.1 (``tests/s3_server.py``) as the S3 server and a hub on a
temporary data folder (its own SQLite database) with ``MEDIGAN_STORAGE=s3``, served by gunicorn
with the project's configuration (``deploy/gunicorn.conf.py``) but one worker process with one
thread, so that the process serving every request is known. A package of ``--megabytes``
(default 300) is built as the client builds one (a valid card and generator, plus a padding file
of random, incompressible bytes), pushed over HTTP (``POST /api/v1/releases``: the upload
streams to a temporary file, then to the bucket), and downloaded back (the artifact streams out
of the bucket); the bytes in the bucket and the bytes downloaded are checked against the
package.

Printed: for the push and for the download, the resident memory (RSS) of the hub's worker
process just before the request and its peak during it (sampled every few milliseconds from
``/proc``, and the kernel's high-water mark, reset before each request), and the growth, which
the goal (issue 16) holds under 50 MB; the baseline is the same process just before, after a
warm-up push and download of a 1 MB package that loaded boto3 and opened the S3 connection
(its own growth is printed too). Linux only (``/proc``).
Run from the repository root: ``.venv/bin/python benchmarks/storage_memory.py [--megabytes N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.catalog_api import _free_port, _wait_until_up  # noqa: E402
from tests.s3_server import S3Server, s3_server  # noqa: E402

GOAL_MB = 50
BUCKET = "medigan-benchmark"
MB = 1024 * 1024
T = TypeVar("T")


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


class _PeakSampler(threading.Thread):
    """Samples a process's RSS until stopped; keeps the highest seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak_kb = max(self.peak_kb, _status_kb(self.pid, "VmRSS"))
            self._done.wait(0.005)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak_kb


@dataclass
class Measure:
    """One request's memory: RSS before, peak during (MB), and its wall time."""

    before_mb: float
    peak_mb: float
    seconds: float

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.before_mb


def _measured(pid: int, action: Callable[[], T]) -> tuple[T, Measure]:
    """Run ``action`` while sampling the RSS of process ``pid``."""
    before = _status_kb(pid, "VmRSS")
    # Writing 5 to clear_refs resets the high-water mark (VmHWM) to the current RSS, so that
    # the kernel's own peak catches what the sampling may miss between two samples.
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    sampler = _PeakSampler(pid)
    sampler.start()
    began = time.perf_counter()
    try:
        result = action()
    finally:
        sampled = sampler.stop()
    seconds = time.perf_counter() - began
    peak = max(sampled, _status_kb(pid, "VmHWM"))
    return result, Measure(before / 1024, peak / 1024, seconds)


def _package(root: Path, *, model_id: str, padding_bytes: int) -> tuple[Path, str, dict[str, Any]]:
    """A valid package zip with a padding file of random bytes; (zip, sha256, card)."""
    from medigan_catalog.packaging import build_deterministic_zip
    from tests import factories

    directory = factories.package_dir(root, model_id=model_id, version="1.0.0")
    with (directory / "padding.bin").open("wb") as padding:
        left = padding_bytes
        while left > 0:
            chunk = os.urandom(min(MB, left))
            padding.write(chunk)
            left -= len(chunk)
    archive = root / "package.zip"
    info = build_deterministic_zip(directory, archive)
    card = json.loads((directory / "card.json").read_text(encoding="utf-8"))
    shutil.rmtree(directory)
    return archive, info.sha256, card


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return done.stdout


def _worker_pid(master: int) -> int:
    """The pid of gunicorn's (only) worker process."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


@contextlib.contextmanager
def _hub(env: dict[str, str], data_dir: Path, port: int) -> Iterator[int]:
    """gunicorn serving the hub with one worker process; yields that worker's pid."""
    with (data_dir / "gunicorn.log").open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "deploy/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logfile",
                "/dev/null",
                "hub.wsgi:application",
            ],
            cwd=ROOT,
            # One process with one thread: every request runs where the RSS is read, and the
            # warm-up's first use of boto3 (django-storages keeps a client per thread) is made
            # in the thread that then moves the large artifact.
            env={**env, "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_up(port, process)
            yield _worker_pid(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)


def _push(url: str, token: str, archive: Path, sha256: str, card: dict[str, Any]) -> str:
    import httpx

    with archive.open("rb") as package:
        # httpx streams a file part in small chunks; the benchmark's own memory is not measured.
        response = httpx.post(
            f"{url}/api/v1/releases",
            data={"card": json.dumps(card), "sha256": sha256},
            files={"package": (archive.name, package, "application/zip")},
            headers={"Authorization": f"Token {token}"},
            timeout=600,
        )
    if response.status_code != 202:
        raise RuntimeError(f"push answered {response.status_code}: {response.text[:500]}")
    artifact: dict[str, Any] = response.json()["card"]["artifacts"][0]
    return str(artifact["filename"])


def _catalogue(url: str) -> None:
    import httpx

    httpx.get(f"{url}/api/v1/catalog", timeout=60).raise_for_status()


def _download(url: str, token: str, path: str) -> tuple[str, int]:
    import httpx

    digest = hashlib.sha256()
    size = 0
    # The release is in review (no worker validates it here): its submitter may download it.
    headers = {"Authorization": f"Token {token}"}
    with httpx.stream("GET", f"{url}{path}", headers=headers, timeout=600) as response:
        if response.status_code != 200:
            raise RuntimeError(f"download answered {response.status_code}")
        for chunk in response.iter_bytes(MB):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _round_trip(
    s3: S3Server,
    url: str,
    token: str,
    root: Path,
    *,
    model_id: str,
    padding_bytes: int,
    pid: int,
) -> tuple[Measure, Measure, int]:
    """Push a package of ``padding_bytes`` and download it back, measuring each request."""
    from medigan_catalog.snapshot import artifact_path

    archive, sha256, card = _package(root, model_id=model_id, padding_bytes=padding_bytes)
    size = archive.stat().st_size
    filename, push = _measured(pid, lambda: _push(url, token, archive, sha256, card))
    key = f"releases/{model_id}/1.0.0/{filename}"
    stored = s3.objects(BUCKET).get(key)
    if stored != size:
        raise RuntimeError(f"the bucket holds {stored} bytes under {key}, not {size}")
    archive.unlink()
    (digest, downloaded), download = _measured(
        pid, lambda: _download(url, token, artifact_path(model_id, "1.0.0", filename))
    )
    if (digest, downloaded) != (sha256, size):
        raise RuntimeError(f"downloaded {downloaded} bytes, sha256 {digest}: not the package")
    return push, download, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=300, help="the padding file's size")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when the goal is not met"
    )
    options = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="medigan-bench-storage-"))
    try:
        with s3_server(log_dir=data_dir) as s3:
            s3.bucket_create(BUCKET)
            env = {
                **os.environ,
                **s3.hub_env(BUCKET),
                "MEDIGAN_DATA_DIR": str(data_dir),
                "DJANGO_SETTINGS_MODULE": "hub.settings",
                # Its own database and broker, whatever the calling environment names.
                "DATABASE_URL": f"sqlite:///{data_dir / 'hub.sqlite3'}",
                "CELERY_BROKER_URL": "filesystem://localhost/",
                "CACHE_URL": "",
                "MEDIGAN_MAX_PACKAGE_BYTES": str((options.megabytes + 64) * MB),
            }
            _manage(env, "migrate", "--noinput")
            token = _manage(
                env,
                "shell",
                "-c",
                "from tests import factories; print(factories.token(factories.user('bench')))",
            ).split()[-1]
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            with _hub(env, data_dir, port) as pid:
                _catalogue(url)
                idle_mb = _status_kb(pid, "VmRSS") / 1024
                warm_push, warm_download, warm_size = _round_trip(
                    s3, url, token, data_dir, model_id="bench/warm-up", padding_bytes=MB, pid=pid
                )
                push, download, size = _round_trip(
                    s3,
                    url,
                    token,
                    data_dir,
                    model_id="bench/large",
                    padding_bytes=options.megabytes * MB,
                    pid=pid,
                )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(
        f"hub worker after its first request: {idle_mb:.1f} MB RSS "
        "(gunicorn, one worker process with one thread, S3 storage on moto)"
    )
    print(
        f"warm-up, a {warm_size / MB:.1f} MB package: push growth {warm_push.growth_mb:.1f} MB, "
        f"download growth {warm_download.growth_mb:.1f} MB (first use of boto3 and S3)"
    )
    for name, measure in (("push", push), ("download", download)):
        print(
            f"{name} of a {size / MB:.1f} MB package in {measure.seconds:.1f} s "
            f"({size / MB / measure.seconds:.0f} MB/s): RSS {measure.before_mb:.1f} MB before, "
            f"peak {measure.peak_mb:.1f} MB; growth {measure.growth_mb:.1f} MB "
            f"({measure.growth_mb / (size / MB):.3f} MB per MB moved)"
        )
    met = push.growth_mb < GOAL_MB and download.growth_mb < GOAL_MB
    print(
        f"goal: RSS growth under {GOAL_MB} MB for push and download: "
        f"push {push.growth_mb:.1f} MB, download {download.growth_mb:.1f} MB: "
        f"{'PASS' if met else 'FAIL'}"
    )
    return 1 if options.check and not met else 0


if __name__ == "__main__":
    raise SystemExit(main())
