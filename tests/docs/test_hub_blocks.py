"""The documentation's blocks that talk to a hub, executed against a live one.

One live hub (``tests/live_hub.py``: gunicorn and a Celery worker on the embedded default),
seeded as ``make run`` seeds the demo, with the two chest X-ray zoo models the blocks use. Each
block marked ``<!-- check: test_hub_blocks -->`` runs in a fresh process and folder
(``tests/docs/blocks.py``), with:

- ``127.0.0.1:8000`` in its text pointing at the live hub (the host and port only);
- a client cache that has synced the hub once, as after a user's first ``sync``, and
  ``MEDIGAN_HUB_URL`` set to the hub, so ``Client()`` finds it;
- in its folder what a reader of the block has at hand: ``.venv`` (the project's),
  ``var/demo-credentials.json`` (what ``make run`` writes), and for the API walk-through a
  package to push, ``pkg/card.json`` and ``pkg.zip`` of ``contributor/my-model``;
- ``REVIEWER_TOKEN`` and ``STAFF_TOKEN`` in its environment, which the walk-through's comments
  say it needs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from medigan_client import Client
from tests import factories
from tests.docs.blocks import (
    block_environment,
    blocks_checked_by,
    failure_report,
    run_block,
)
from tests.live_hub import LiveHub, live_hub

pytestmark = pytest.mark.integration

ZOO_MODELS = ("chestxray_dcgan_64", "chestxray_cdcgan_64")


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    env = {
        "MEDIGAN_SMOKE_TIMEOUT_SECONDS": "120",
        # The worker evaluates what the seed publishes; small runs leave it free for the blocks.
        "MEDIGAN_EVALUATION_SAMPLES": "200",
        "MEDIGAN_EVALUATION_BATCH_SIZE": "100",
    }
    seed = [argument for name in ZOO_MODELS for argument in ("--zoo", name)]
    with live_hub(env=env, data_dir=tmp_path_factory.mktemp("docs-hub"), seed=seed) as hub:
        credentials = json.loads(
            (hub.data_dir / "demo-credentials.json").read_text(encoding="utf-8")
        )
        hub.contributor_token = credentials["contributor"]["token"]
        hub.reviewer_token = hub.manage("token_create", "reviewer").stdout.strip()
        yield hub


def _reader_folder(hub: LiveHub, folder: Path) -> None:
    """What a reader of the documentation has in the folder they run a block in."""
    folder.mkdir(parents=True)
    (folder / "var").mkdir()
    shutil.copy(hub.data_dir / "demo-credentials.json", folder / "var" / "demo-credentials.json")
    archive, _, _ = factories.package_zip(folder / "build", model_id="contributor/my-model")
    (folder / "pkg").mkdir()
    shutil.copy(archive.parent / "package" / "card.json", folder / "pkg" / "card.json")
    shutil.copy(archive, folder / "pkg.zip")


def test_hub_blocks(demo_hub: LiveHub, tmp_path: Path) -> None:
    blocks = blocks_checked_by("test_hub_blocks")
    assert blocks, "no documentation block is marked <!-- check: test_hub_blocks -->"
    environment = block_environment(
        tmp_path,
        MEDIGAN_HUB_URL=demo_hub.url,
        REVIEWER_TOKEN=demo_hub.reviewer_token,
        STAFF_TOKEN=demo_hub.manage("token_create", "admin").stdout.strip(),
    )
    with Client(
        hub_url=demo_hub.url, cache_dir=Path(environment["MEDIGAN_CACHE_DIR"]), progress=False
    ) as client:
        assert client.sync().changed

    failures: list[str] = []
    for number, block in enumerate(blocks):
        folder = tmp_path / f"block-{number}"
        _reader_folder(demo_hub, folder)
        completed = run_block(block, cwd=folder, env=environment, hub_url=demo_hub.url)
        if completed.returncode != 0 or "Traceback (most recent call last)" in completed.stderr:
            failures.append(failure_report(block, completed))

    assert not failures, "\n\n".join(failures)
