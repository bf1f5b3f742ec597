"""Throughput of ``GET /api/v1/catalog`` against a static file of the same bytes.

Starts gunicorn as ``make run`` does (``deploy/gunicorn.conf.py``, ``hub.wsgi``) on a temporary
data folder (its own SQLite database and static root; the development database is not touched),
with 30 and with 10,000 published releases made from the test factories' cards
(``tests/factories.py``). For each size it writes the rendered snapshot, and its gzip copy, to
the static root, so that whitenoise, in the same gunicorn, serves the same bytes as a file. Then,
at 16 and at 64 concurrent clients (threads, each with its own keep-alive connection, sending
``Accept-Encoding: gzip`` as the client does), it measures requests/s and p50/p99 latency of:

- ``200``: a full download of the snapshot; ``304``: a revalidation with the current ETag;
- the same two against the static file (whitenoise answers ``If-None-Match`` too).

Goals: the API's 304 at least 0.5x the static file's 304, and its 200 at 10,000 releases at
least 0.3x the static file's 200. Run from the repository root:
``.venv/bin/python benchmarks/catalog_api.py [--seconds 3] [--sizes 30 10000]``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Cell:
    """One measurement: requests/s and latency percentiles of one path at one concurrency."""

    label: str
    clients: int
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    statuses: frozenset[int]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _populate(data_dir: Path, releases: int, port: int) -> tuple[bytes, bytes]:
    """Create ``releases`` published releases in a fresh database; return the snapshot bytes."""
    os.environ["MEDIGAN_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    call_command("migrate", "--noinput", verbosity=0)
    from django.utils import timezone

    from hub import snapshot
    from hub.registry import services
    from hub.registry.models import GenerativeModel, Release
    from tests import factories

    owner = factories.user("benchmark")
    with transaction.atomic():
        if releases <= 100:
            for index in range(releases):
                factories.release_row(
                    submitter=owner,
                    model_id=f"bench/model-{index // 3:05d}",
                    version=f"1.{index % 3}.0",
                    grid=False,
                )
        else:
            # Three releases a model, rows made in bulk from the factories' cards.
            models = GenerativeModel.objects.bulk_create(
                GenerativeModel(namespace="bench", name=f"model-{index:05d}", owner=owner)
                for index in range((releases + 2) // 3)
            )
            now = timezone.now()
            rows = []
            for index in range(releases):
                generative_model = models[index // 3]
                version = f"1.{index % 3}.0"
                rows.append(
                    Release(
                        generative_model=generative_model,
                        version=version,
                        state="published",
                        card=factories.card_data(
                            model_id=f"bench/{generative_model.name}", version=version
                        ),
                        submitted_by=owner,
                        published_at=now,
                    )
                )
            Release.objects.bulk_create(rows, batch_size=500)
        services.catalog_serial_bump(
            kind="release_published", generative_model=GenerativeModel.objects.first()
        )
    rendered = snapshot.snapshot_rendered(base_url=f"http://127.0.0.1:{port}/")
    connection.close()
    assert rendered.gzipped is not None
    return rendered.body, rendered.gzipped


def _get(connection: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> int:
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status


def _measure(
    port: int, path: str, headers: dict[str, str], clients: int, seconds: float, label: str
) -> Cell:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: set[int] = set()
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        _get(connection, path, headers)  # connect and warm up outside the clock
        start.wait()
        while time.perf_counter() < deadline[0]:
            began = time.perf_counter()
            statuses.add(_get(connection, path, headers))
            latencies[slot].append(time.perf_counter() - began)
        connection.close()

    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + 3600
    start.wait()
    began = time.perf_counter()
    deadline[0] = began + seconds
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    flat = sorted(value for values in latencies for value in values)
    count = len(flat)
    return Cell(
        label=label,
        clients=clients,
        requests=count,
        per_second=count / elapsed,
        p50_ms=1000 * statistics.median(flat),
        p99_ms=1000 * flat[min(count - 1, int(0.99 * count))],
        statuses=frozenset(statuses),
    )


def _etag(port: int, path: str, headers: dict[str, str]) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return str(response.getheader("ETag"))


@contextlib.contextmanager
def gunicorn_on(data_dir: Path, port: int) -> Iterator[subprocess.Popen[Any]]:
    """gunicorn serving the hub of ``data_dir`` on ``port``, as ``make run`` starts it; stopped
    on leaving (its log is ``data_dir/gunicorn.log``)."""
    with (data_dir / "gunicorn.log").open("w") as log:
        process = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "--config",
                "deploy/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logfile",
                "/dev/null",
                "hub.wsgi:application",
            ],
            cwd=ROOT,
            env={**os.environ, "MEDIGAN_DATA_DIR": str(data_dir)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_up(port, process)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_until_up(port: int, process: subprocess.Popen[Any]) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited; see its log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def run_size(releases: int, seconds: float, concurrencies: list[int]) -> list[Cell]:
    """Populate a fresh hub with ``releases``, start gunicorn on it, measure every cell."""
    data_dir = Path(tempfile.mkdtemp(prefix="medigan-bench-"))
    port = _free_port()
    try:
        # A child populates the database, so this process never holds Django's state.
        code = (
            "import sys, pathlib; sys.path.insert(0, %r); "  # noqa: UP031 - one line of code
            "from benchmarks.catalog_api import _populate; "
            "body, zipped = _populate(pathlib.Path(%r), %d, %d); "
            "static = pathlib.Path(%r) / 'static'; static.mkdir(parents=True, exist_ok=True); "
            "(static / 'catalog.json').write_bytes(body); "
            "(static / 'catalog.json.gz').write_bytes(zipped); "
            "print(len(body), len(zipped))"
        ) % (str(ROOT), str(data_dir), releases, port, str(data_dir))
        began = time.perf_counter()
        sizes = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
        ).stdout.split()
        print(
            f"\n{releases} releases: snapshot {int(sizes[0]) / 1e6:.2f} MB, gzip "
            f"{int(sizes[1]) / 1e6:.2f} MB (populated and first render in "
            f"{time.perf_counter() - began:.1f} s)"
        )
        with gunicorn_on(data_dir, port):
            gzip_headers = {"Accept-Encoding": "gzip"}
            api, static = "/api/v1/catalog", "/static/catalog.json"
            # Every worker renders its copy once per serial; warm them all before the clock.
            for _ in range(8):
                _etag(port, api, gzip_headers)
            api_tag = _etag(port, api, gzip_headers)
            static_tag = _etag(port, static, gzip_headers)
            cells = []
            for clients in concurrencies:
                for label, path, headers in (
                    ("api 200", api, gzip_headers),
                    ("static 200", static, gzip_headers),
                    ("api 304", api, {**gzip_headers, "If-None-Match": api_tag}),
                    ("static 304", static, {**gzip_headers, "If-None-Match": static_tag}),
                ):
                    cells.append(_measure(port, path, headers, clients, seconds, label))
            return cells
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> int:
    """Run every size and print the table and the ratios to the static file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each cell")
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 10_000])
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    options = parser.parse_args()
    print(
        f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs, {options.seconds} s a cell"
    )
    for releases in options.sizes:
        cells = run_size(releases, options.seconds, options.clients)
        print(f"{'path':<11} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses")
        for cell in cells:
            print(
                f"{cell.label:<11} {cell.clients:>7} {cell.per_second:>8.1f} "
                f"{cell.p50_ms:>8.1f} {cell.p99_ms:>8.1f}  {sorted(cell.statuses)}"
            )
        by_key = {(cell.label, cell.clients): cell for cell in cells}
        for clients in options.clients:
            for kind in ("200", "304"):
                ratio = (
                    by_key[(f"api {kind}", clients)].per_second
                    / by_key[(f"static {kind}", clients)].per_second
                )
                print(f"{releases} releases, {clients} clients: api/static {kind} = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
