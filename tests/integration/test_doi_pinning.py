"""DOI pinning end to end (issue 16's acceptance), driven from the CLI against a live demo hub.

A contributor pushes with ``--mint-doi``; a reviewer approves; the hub's worker deposits the
package on the test Zenodo (``tests/zenodo_server.py``, on 127.0.0.1 in this process), pins the
DOI and publishes the release. The model page shows the DOI. The record's file is then edited
on the test Zenodo: the next re-check (``manage.py pin_recheck``) flags the release, and
``medigan-client show`` says the pin is broken. Runs on the embedded default (its own data
directory, gunicorn and Celery worker).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live_hub import REPO_ROOT, LiveHub, live_hub
from tests.zenodo_server import ZenodoServer, zenodo_server

pytestmark = pytest.mark.integration

CLI = Path(os.environ.get("VIRTUAL_ENV", REPO_ROOT / ".venv")) / "bin" / "medigan-client"
MODEL = "contributor/minted-noise"
RELEASE = f"{MODEL}@0.1.0"
STATE_TIMEOUT_SECONDS = 180.0


@pytest.fixture(scope="module")
def zenodo() -> Iterator[ZenodoServer]:
    with zenodo_server() as server:
        yield server


@pytest.fixture(scope="module")
def demo(zenodo: ZenodoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    env = {
        "MEDIGAN_SMOKE_TIMEOUT_SECONDS": "120",
        "MEDIGAN_ZENODO_URL": zenodo.url,
        "MEDIGAN_ZENODO_TOKEN": zenodo.token,
        "MEDIGAN_ZENODO_MINT": "on_request",
        "MEDIGAN_ZENODO_RETRY_SECONDS": "1",
    }
    with live_hub(env=env, data_dir=tmp_path_factory.mktemp("hub-doi"), seed=["--skip-zoo"]) as hub:
        yield hub


def _cli(hub: LiveHub, home: Path, token: str | None, *args: str) -> str:
    env = {
        **os.environ,
        "MEDIGAN_HUB_URL": hub.url,
        "MEDIGAN_CACHE_DIR": str(home / "cache"),
        "MEDIGAN_CONFIG": str(home / "config.toml"),
    }
    env.pop("MEDIGAN_TOKEN", None)
    if token is not None:
        env["MEDIGAN_TOKEN"] = token
    done = subprocess.run(
        [str(CLI), *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"medigan-client {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _wait_published(hub: LiveHub) -> dict[str, object]:
    deadline = time.monotonic() + STATE_TIMEOUT_SECONDS
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        status = httpx.get(f"{hub.url}/api/v1/models/{MODEL}/releases/0.1.0", timeout=10).json()
        if status.get("state") == "published":
            return status
        time.sleep(0.5)
    raise AssertionError(f"{RELEASE} was not published; last status {status}")


def test_a_minted_doi_is_pinned_shown_and_flagged_when_its_record_changes(
    demo: LiveHub, zenodo: ZenodoServer, tmp_path: Path
) -> None:
    tokens = {
        name: entry["token"]
        for name, entry in json.loads(
            (demo.data_dir / "demo-credentials.json").read_text(encoding="utf-8")
        ).items()
    }
    contributor, reviewer, user = (tmp_path / name for name in ("contributor", "rev", "user"))
    for home in (contributor, reviewer, user):
        home.mkdir()

    _cli(demo, contributor, tokens["contributor"], "init-package", "pkg", "--model-id", MODEL)
    pushed = _cli(demo, contributor, tokens["contributor"], "push", "pkg", "--mint-doi", "--wait")
    reviewed = _cli(demo, reviewer, tokens["reviewer"], "review", RELEASE, "--decision", "approve")
    status = _wait_published(demo)
    record = zenodo.published()[0]
    page = httpx.get(f"{demo.url}/models/{MODEL}/", timeout=10).text

    assert f"{RELEASE}: in_review" in pushed
    assert f"{RELEASE}: approved" in reviewed
    assert (status["doi"], status["pinned"], status["pin_broken"]) == (record.doi, True, False)
    assert list(record.files) == ["minted-noise-0.1.0.zip"]
    assert f'<a href="https://doi.org/{record.doi}">{record.doi}</a>' in page

    zenodo.replace_file(record.id, "minted-noise-0.1.0.zip", b"not the package any more")
    rechecked = demo.manage("pin_recheck").stdout
    _cli(demo, user, None, "sync")
    shown = _cli(demo, user, None, "show", MODEL)
    page = httpx.get(f"{demo.url}/models/{MODEL}/", timeout=10).text

    assert f"{RELEASE}: {record.doi}: broken" in rechecked
    assert f"pinned DOI:  {record.doi} (PIN BROKEN" in shown
    assert "minted-noise-0.1.0.zip changed" in shown
    assert "Pin broken" in page
