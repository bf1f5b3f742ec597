"""What a client's ``sync`` costs through the change feed, against downloading the whole snapshot.

Starts gunicorn as ``make run`` does on a temporary data folder (its own SQLite database) holding
``--releases`` published releases (default 10,000; three versions a model, cards from the test
factories, one catalogue change each, as publishing makes them). Then, ``--repeats`` times in
turn, in this process and over HTTP on 127.0.0.1, with the client's own ``sync``:

- the anchor: ``GET /api/v1/catalog`` downloaded whole, gzip, as the client asks for it;
- a first sync into an empty cache (the whole snapshot, stored, its search index built);
- a re-sync when nothing changed (goal: one request, under 1 KB on the wire);
- a re-sync after 10 new releases were published (goal: under 50 KB on the wire);

and prints each one's requests, bytes on the wire (``num_bytes_downloaded``: what the hub sent,
compressed) and wall time, medians of the rounds, with the ratio to the anchor. Run from the
repository root: ``.venv/bin/python benchmarks/sync.py [--releases 10000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.catalog_api import _free_port, gunicorn_on  # noqa: E402
from medigan_client.http import HubSession  # noqa: E402
from medigan_client.settings import ClientSettings  # noqa: E402
from medigan_client.sync import sync  # noqa: E402


@dataclass(frozen=True)
class Cost:
    """One measured operation: requests, bytes the hub sent, wall seconds."""

    requests: int
    wire_bytes: int
    seconds: float


class CountingSession(HubSession):
    """A hub session that counts requests and the bytes each answer took on the wire."""

    def __init__(self, settings: ClientSettings) -> None:
        super().__init__(settings)
        self.requests = 0
        self.wire_bytes = 0

    def send(self, method: str, path: str, **kwargs: Any) -> Any:
        response = super().send(method, path, **kwargs)
        self.requests += 1
        self.wire_bytes += response.num_bytes_downloaded
        return response


def published_changes_record(releases: list[Any]) -> None:
    """The catalogue changes of releases bulk-created as published: serials 1..N, in order."""
    from hub.registry.models import CatalogChange, CatalogSerial

    CatalogChange.objects.bulk_create(
        (
            CatalogChange(
                serial=serial,
                kind="release_published",
                generative_model=release.generative_model,
                release=release,
                namespace="bench",
                visibility_before="public",
                visibility_after="public",
            )
            for serial, release in enumerate(releases, start=1)
        ),
        batch_size=1000,
    )
    CatalogSerial.objects.update_or_create(pk=1, defaults={"serial": len(releases)})


def _populate(data_dir: Path, releases: int) -> None:
    """A fresh database with ``releases`` published releases and their catalogue changes."""
    os.environ["MEDIGAN_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from hub.registry.models import GenerativeModel, Release
    from tests import factories

    call_command("migrate", "--noinput", verbosity=0)
    owner = factories.user("bench")
    now = timezone.now()
    with transaction.atomic():
        models = GenerativeModel.objects.bulk_create(
            GenerativeModel(namespace="bench", name=f"model-{index:05d}", owner=owner)
            for index in range((releases + 2) // 3)
        )
        rows = []
        for index in range(releases):
            model = models[index // 3]
            version = f"1.{index % 3}.0"
            rows.append(
                Release(
                    generative_model=model,
                    version=version,
                    state="published",
                    card=factories.card_data(model_id=f"bench/{model.name}", version=version),
                    submitted_by=owner,
                    published_at=now,
                )
            )
        created = Release.objects.bulk_create(rows, batch_size=500)
        published_changes_record(created)


def _publish_more(data_dir: Path, count: int, round_index: int) -> None:
    """Publish ``count`` new releases through the registry's own transitions."""
    os.environ["MEDIGAN_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()
    import logging

    from django.contrib.auth.models import User
    from django.db import transaction

    # Each transition logs a line; the measurements are what this run prints.
    logging.getLogger("hub").setLevel(logging.WARNING)

    from hub.registry import services
    from medigan_catalog.lifecycle import ReleaseState
    from tests import factories

    owner = User.objects.get(username="bench")
    for index in range(count):
        release = factories.release_row(
            submitter=owner,
            model_id=f"bench/new-{round_index}-{index}",
            state="in_review",
            grid=False,
        )
        with transaction.atomic():
            for target in (ReleaseState.APPROVED, ReleaseState.PUBLISHED):
                services.release_transition(release_id=release.pk, target=target)


def _in_child(function: str, *arguments: object) -> None:
    code = (
        f"import sys, pathlib; sys.path.insert(0, {str(ROOT)!r}); "
        f"from benchmarks.sync import {function}; "
        f"{function}(pathlib.Path({str(arguments[0])!r}), *{arguments[1:]!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _timed_sync(settings: ClientSettings) -> Cost:
    with CountingSession(settings) as session:
        began = time.perf_counter()
        sync(settings, session=session)
        return Cost(session.requests, session.wire_bytes, time.perf_counter() - began)


def _download_whole(settings: ClientSettings) -> Cost:
    with CountingSession(settings) as session:
        began = time.perf_counter()
        session.send("GET", "/api/v1/catalog", headers={"Accept": "application/json"})
        return Cost(session.requests, session.wire_bytes, time.perf_counter() - began)


def _median(costs: list[Cost]) -> Cost:
    return Cost(
        requests=int(statistics.median(cost.requests for cost in costs)),
        wire_bytes=int(statistics.median(cost.wire_bytes for cost in costs)),
        seconds=statistics.median(cost.seconds for cost in costs),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new", type=int, default=10, help="releases published between syncs")
    options = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="medigan-bench-sync-"))
    port = _free_port()
    try:
        began = time.perf_counter()
        _in_child("_populate", data_dir, options.releases)
        print(
            f"{options.releases} releases populated in {time.perf_counter() - began:.1f} s; "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        with gunicorn_on(data_dir, port):
            url = f"http://127.0.0.1:{port}"
            # Every worker renders the snapshot once per serial; warm them before the clock.
            for _ in range(4):
                _download_whole(ClientSettings(hub_url=url, cache_dir=data_dir / "warm"))
            results: dict[str, list[Cost]] = {"whole": [], "first": [], "same": [], "new": []}
            for round_index in range(options.repeats):
                settings = ClientSettings(hub_url=url, cache_dir=data_dir / f"cache-{round_index}")
                results["whole"].append(_download_whole(settings))
                results["first"].append(_timed_sync(settings))
                results["same"].append(_timed_sync(settings))
                _in_child("_publish_more", data_dir, options.new, round_index)
                results["new"].append(_timed_sync(settings))
            anchor = _median(results["whole"])
            labels = {
                "whole": "GET /api/v1/catalog whole (the anchor)",
                "first": "first sync, empty cache",
                "same": "re-sync, nothing changed",
                "new": f"re-sync after {options.new} new releases",
            }
            print(f"medians of {options.repeats} rounds; load {os.getloadavg()[0]:.1f}")
            for key, label in labels.items():
                cost = _median(results[key])
                print(
                    f"  {label:42s} {cost.requests} request(s) {cost.wire_bytes / 1024:10.1f} KB "
                    f"({cost.wire_bytes / anchor.wire_bytes:8.5f}x)  {1000 * cost.seconds:8.1f} ms "
                    f"({cost.seconds / anchor.seconds:6.3f}x)"
                )
            same, new = _median(results["same"]), _median(results["new"])
            print(
                f"goals: nothing changed = 1 request under 1 KB: "
                f"{'met' if same.requests == 1 and same.wire_bytes < 1024 else 'NOT met'}; "
                f"{options.new} new under 50 KB: "
                f"{'met' if new.wire_bytes < 50 * 1024 else 'NOT met'}"
            )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
