"""Start-up time of the client: ``import medigan_client``, ``from medigan_client import Client``,
``medigan-client --help`` and ``medigan-client search`` on a synced cache, each against
``python -c pass`` measured in the same run.

Every figure is the median wall time of fresh interpreter processes, the cases run in turn
(interleaved) so that a change of the machine's load touches them all alike. The cache is synced
once, before timing, from a loopback HTTP server that serves a catalogue of medigan's 23 models
(imported through the card schema) replicated to ``--releases`` releases.

    python benchmarks/startup.py                    # 23 releases, 7 rounds
    python benchmarks/startup.py --releases 10000   # the search index at 10,000 models

Goals (issue 11): ``import medigan_client`` <= 0.3 s, ``medigan-client search`` <= 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MEDIGAN_CATALOGUE = REPO / "hub" / "registry" / "seed" / "medigan-global.json"
GOALS = {"import medigan_client": 0.3, "medigan-client search": 0.5}


def catalogue_document(releases: int, hub_url: str) -> bytes:
    """A snapshot document of ``releases`` releases: medigan's models, renamed copies after 23."""
    from medigan_catalog.medigan_compat import card_from_medigan_entry

    entries: dict[str, Any] = json.loads(MEDIGAN_CATALOGUE.read_text("utf-8"))
    items = list(entries.items())
    documents = []
    for index in range(releases):
        medigan_id, entry = items[index % len(items)]
        copy = index // len(items)
        name = medigan_id if copy == 0 else f"{medigan_id}_COPY{copy:04d}"
        card, _ = card_from_medigan_entry(name, entry)
        documents.append(
            {
                "model_id": card.model_id,
                "version": card.version,
                "published_at": "2026-11-01T09:00:00Z",
                "card": card.to_json(),
                "evaluations": [],
            }
        )
    snapshot = {
        "serial": 1,
        "generated_at": "2026-11-01T09:00:00Z",
        "hub": {"url": hub_url},
        "releases": documents,
    }
    return json.dumps(snapshot).encode()


@contextmanager
def catalogue_server(releases: int) -> Iterator[tuple[str, int]]:
    """A loopback HTTP server answering every GET with a signed catalogue (its key set at
    ``/api/v1/keys``), as a hub does; yields its URL and the catalogue's size."""
    from medigan_catalog.signing import (
        KEYS_PATH,
        SIGNATURE_HEADER,
        KeySet,
        PublicKey,
        SigningKey,
        format_signatures,
    )

    key = SigningKey.generate()
    key_set = KeySet(
        hub="benchmark",
        keys=(PublicKey(key_id=key.key_id, public_key=key.public_key_b64()),),
    )
    keys_body = key_set.model_dump_json().encode()
    body = b""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            document = keys_body if self.path == KEYS_PATH else body
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if document is body:
                self.send_header("ETag", '"catalog-1"')
            self.send_header(SIGNATURE_HEADER, format_signatures([key.sign(document)]))
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    body = catalogue_document(releases, url)
    try:
        yield url, len(body)
    finally:
        server.shutdown()
        server.server_close()


def wall_time(command: list[str], env: dict[str, str]) -> float:
    """Seconds one process takes from start to exit; its failure stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=23, help="releases in the catalogue")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (>= 3)")
    args = parser.parse_args()
    python = sys.executable
    cli = str(Path(python).with_name("medigan-client"))
    with tempfile.TemporaryDirectory(prefix="medigan-startup-") as tmp:
        env = {
            **os.environ,
            "MEDIGAN_CACHE_DIR": str(Path(tmp) / "cache"),
            "MEDIGAN_CONFIG": str(Path(tmp) / "absent.toml"),
        }
        started = time.perf_counter()
        with catalogue_server(args.releases) as (url, size):
            env["MEDIGAN_HUB_URL"] = url
            sync_seconds = wall_time([cli, "sync"], env)
        print(
            f"catalogue: {args.releases} releases, {size / 1e6:.2f} MB; built in "
            f"{time.perf_counter() - started - sync_seconds:.1f} s; `medigan-client sync` "
            f"{sync_seconds:.2f} s"
        )
        env["MEDIGAN_OFFLINE"] = "1"
        cases = {
            "python -c pass": [python, "-c", "pass"],
            "import medigan_client": [python, "-c", "import medigan_client"],
            "from medigan_client import Client": [
                python,
                "-c",
                "from medigan_client import Client",
            ],
            "medigan-client --help": [cli, "--help"],
            "medigan-client search": [cli, "search", "mammography", "dcgan"],
            "medigan-client search --medigan-semantics": [
                cli,
                "search",
                "mammography",
                "dcgan",
                "--medigan-semantics",
            ],
        }
        for command in cases.values():  # warm the page cache and the bytecode
            wall_time(command, env)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(max(3, args.rounds)):
            for name, command in cases.items():
                times[name].append(wall_time(command, env))
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {os.cpu_count()} cores")
    print(f"median of {max(3, args.rounds)} interleaved rounds, fresh processes:")
    baseline = statistics.median(times["python -c pass"])
    for name, samples in times.items():
        median = statistics.median(samples)
        line = f"  {name:<44} {median:6.3f} s   {median - baseline:+6.3f} s over python"
        if name in GOALS:
            verdict = "met" if median <= GOALS[name] else "MISSED"
            line += f"   goal <= {GOALS[name]} s: {verdict}"
        print(line)


if __name__ == "__main__":
    main()
