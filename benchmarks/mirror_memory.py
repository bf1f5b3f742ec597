"""Peak memory of a mirror's first ``full`` sync, against the same hub process doing nothing.

Builds an upstream hub on a temporary data folder (its own SQLite database) holding ``--releases``
published releases (default 10,000; three versions a model), each with a stored package of
``--artifact-bytes`` bytes that its card lists by sha256, and serves it with gunicorn as
``make run`` does. A second, empty hub (the mirror) is configured with the upstream in ``full``
mode, its key pinned, and runs ``manage.py upstream_sync`` in a fresh process: every feed page
verified and applied, every artifact streamed, verified and stored.

Printed: the sync's wall time, what it mirrored and stored, and the peak resident memory of its
process (``ru_maxrss``) against the baseline, a fresh process of the same hub that loads the
same code and runs ``manage.py check``, in the same run. Goal (issue 14): under 300 MB.
Run from the repository root: ``.venv/bin/python benchmarks/mirror_memory.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.catalog_api import _free_port, gunicorn_on  # noqa: E402
from benchmarks.sync import published_changes_record  # noqa: E402

GOAL_MB = 300


def _populate(data_dir: Path, releases: int, artifact_bytes: int) -> None:
    """An upstream database of ``releases`` published releases, each with a stored package."""
    import hashlib

    os.environ["MEDIGAN_DATA_DIR"] = str(data_dir)
    os.environ["MEDIGAN_HUB_NAME"] = "public"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from hub.registry.models import (
        Artifact,
        GenerativeModel,
        Release,
    )
    from tests import factories

    call_command("migrate", "--noinput", verbosity=0)
    owner = factories.user("bench")
    now = timezone.now()
    media = Path(settings.MEDIA_ROOT)
    with transaction.atomic():
        models = GenerativeModel.objects.bulk_create(
            GenerativeModel(namespace="bench", name=f"model-{index:05d}", owner=owner)
            for index in range((releases + 2) // 3)
        )
        rows, files = [], []
        for index in range(releases):
            model = models[index // 3]
            version = f"1.{index % 3}.0"
            # Distinct bytes per release: a mirror that kept one in memory would show it.
            data = hashlib.sha256(f"{index}".encode()).digest() * (artifact_bytes // 32)
            digest = hashlib.sha256(data).hexdigest()
            filename = f"{model.name}-{version}.zip"
            name = f"releases/bench/{model.name}/{version}/{filename}"
            target = media / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            card = factories.card_data(model_id=f"bench/{model.name}", version=version)
            card["artifacts"] = [
                {
                    "filename": filename,
                    "role": "package",
                    "sha256": digest,
                    "size": len(data),
                    "urls": [],
                }
            ]
            rows.append(
                Release(
                    generative_model=model,
                    version=version,
                    state="published",
                    card=card,
                    submitted_by=owner,
                    published_at=now,
                )
            )
            files.append((filename, name, digest, len(data)))
        created = Release.objects.bulk_create(rows, batch_size=500)
        Artifact.objects.bulk_create(
            (
                Artifact(
                    release=release,
                    role="package",
                    filename=filename,
                    file=name,
                    sha256=digest,
                    size=size,
                )
                for release, (filename, name, digest, size) in zip(created, files, strict=True)
            ),
            batch_size=1000,
        )
        published_changes_record(created)


def _child(data_dir: Path, code: str) -> str:
    """Run ``code`` in a fresh Django process of the hub in ``data_dir``; its last line."""
    program = (
        f"import sys, os, resource; sys.path.insert(0, {str(ROOT)!r}); "
        f"os.environ['MEDIGAN_DATA_DIR'] = {str(data_dir)!r}; "
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'hub.settings'); "
        "import django; django.setup(); "
        "from django.core.management import call_command; "
        "import hub.federation.services, hub.federation.bundles; "
        f"{code}; "
        "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return done.stdout


def _peak_mb(output: str) -> float:
    line = next(line for line in output.splitlines() if line.startswith("MAXRSS_KB"))
    return int(line.split()[1]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=10_000)
    parser.add_argument("--artifact-bytes", type=int, default=4096)
    options = parser.parse_args()
    upstream_dir = Path(tempfile.mkdtemp(prefix="medigan-bench-upstream-"))
    mirror_dir = Path(tempfile.mkdtemp(prefix="medigan-bench-mirror-"))
    port = _free_port()
    try:
        began = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys, pathlib; sys.path.insert(0, {str(ROOT)!r}); "
                "from benchmarks.mirror_memory import _populate; "
                f"_populate(pathlib.Path({str(upstream_dir)!r}), {options.releases}, "
                f"{options.artifact_bytes})",
            ],
            check=True,
            cwd=ROOT,
        )
        print(
            f"upstream: {options.releases} releases with {options.artifact_bytes}-byte "
            f"packages, populated in {time.perf_counter() - began:.1f} s",
            flush=True,
        )
        with gunicorn_on(upstream_dir, port):
            url = f"http://127.0.0.1:{port}"
            _child(mirror_dir, "call_command('migrate', '--noinput', verbosity=0)")
            baseline = _peak_mb(_child(mirror_dir, "call_command('check')"))
            _child(
                mirror_dir,
                f"call_command('upstream_add', 'public', {url!r}, '--mode', 'full')",
            )
            began = time.perf_counter()
            output = _child(mirror_dir, "call_command('upstream_sync', 'public')")
            seconds = time.perf_counter() - began
            peak = _peak_mb(output)
        summary = next(line for line in output.splitlines() if line.startswith("public:"))
        print(f"full sync in {seconds:.1f} s ({options.releases / seconds:.0f} releases/s)")
        print(f"  {summary}")
        print(f"  peak RSS of the syncing process  {peak:7.1f} MB")
        print(f"  peak RSS of the same hub, idle   {baseline:7.1f} MB (the baseline)")
        print(f"  ratio {peak / baseline:.2f}x; growth {peak - baseline:.1f} MB")
        print(f"goal: peak under {GOAL_MB} MB: {'met' if peak < GOAL_MB else 'NOT met'}")
    finally:
        shutil.rmtree(upstream_dir, ignore_errors=True)
        shutil.rmtree(mirror_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
