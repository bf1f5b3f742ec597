"""A new user's first hour, as the README tells it: ``make run``, then the README's commands.

The hub is started the way the README's first command starts it (``make run``, here on a free
port and a private data folder), and the README's client blocks run exactly as printed, in a
fresh working folder, with two documented substitutions: the embedded default's address
``127.0.0.1:8000`` becomes the test hub's, and each ``MEDIGAN_TOKEN=...`` placeholder gets the
demo token its line names (the contributor's for ``push``, the reviewer's for ``review``) from
the hub's ``demo-credentials.json``. The walk syncs (giving the hub once), searches, shows,
generates, writes a package with ``init-package``, pushes it, has the demo reviewer approve it
and generates from it. Meanwhile the evaluation worker evaluates every zoo model against the
reference sets that ship with the project; the test ends when the leaderboard lists them all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from medigan_catalog.snapshot import LEADERBOARDS_PATH, STATUS_PATH
from tests.docs.blocks import Block, block_environment, blocks_checked_by, failure_report, run_block
from tests.live_hub import free_port

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[1]
ZOO_MODELS = {
    json.loads(card.read_text(encoding="utf-8"))["model_id"]
    for card in (REPO_ROOT / "zoo").glob("*/package/card.json")
}
# What the whole first hour may take on this machine (2 cores): seeding the demo, the walk, and
# an evaluation of every zoo model at the sample count below.
BUDGET_SECONDS = 1800.0
# Settings of the hub under test that keep the walk inside the budget; everything else is the
# embedded default as `make run` sets it up.
HUB_SETTINGS = {
    "MEDIGAN_EVALUATION_SAMPLES": "200",
    "MEDIGAN_EVALUATION_BATCH_SIZE": "100",
    "MEDIGAN_SMOKE_TIMEOUT_SECONDS": "120",
}
# Variables of the test run that would point `make run` away from its embedded default.
PRODUCTION_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL")
TOKEN_PLACEHOLDER = "MEDIGAN_TOKEN=..."
THIS_TEST = "test_a_new_user_follows_the_readme_from_make_run_to_a_filled_leaderboard"


def _wait_until_serving(url: str, process: subprocess.Popen[str], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make run ended with {process.returncode} before serving")
        try:
            if httpx.get(f"{url}{STATUS_PATH}", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise AssertionError(f"the hub of make run did not answer at {url} in time")


@pytest.fixture(scope="module")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[str]]]:
    """``make run`` on a free port with a private data folder: (URL, data folder, its output)."""
    if shutil.which("bwrap") is None:
        pytest.skip("make run needs bubblewrap (make sandbox-tools)")
    data_dir = tmp_path_factory.mktemp("newcomer-hub")
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in PRODUCTION_VARIABLES and not key.startswith("PYTEST")
    }
    env.update(HUB_SETTINGS, MEDIGAN_DATA_DIR=str(data_dir))
    log = (data_dir / "make-run.out").open("w+", encoding="utf-8")
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so the workers and gunicorn stop with the test
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process, time.monotonic() + 900)
        log.seek(0)
        yield url, data_dir, log.read().splitlines()
    finally:
        with_group = os.getpgid(process.pid) if process.poll() is None else None
        if with_group is not None:
            os.killpg(with_group, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(with_group, signal.SIGKILL)
                process.wait()
        log.close()


def _readme_blocks() -> list[Block]:
    blocks = [b for b in blocks_checked_by(THIS_TEST) if b.path.name == "README.md"]
    assert blocks, f"the README marks no block with <!-- check: {THIS_TEST} -->"
    return blocks


def _with_demo_tokens(block: Block, credentials: dict[str, dict[str, str]]) -> Block:
    lines = []
    for line in block.text.splitlines():
        if TOKEN_PLACEHOLDER in line:
            role = "reviewer" if re.search(r"\breview\b", line) else "contributor"
            line = line.replace(TOKEN_PLACEHOLDER, f"MEDIGAN_TOKEN={credentials[role]['token']}")
        lines.append(line)
    return Block(
        path=block.path,
        line=block.line,
        language=block.language,
        text="\n".join(lines) + "\n",
        marker_kind=block.marker_kind,
        marker_value=block.marker_value,
    )


def _leaderboard_models(url: str) -> set[str]:
    answer = httpx.get(f"{url}{LEADERBOARDS_PATH}", timeout=30)
    answer.raise_for_status()
    return {row["model_id"] for row in answer.json()["rows"]}


def test_a_new_user_follows_the_readme_from_make_run_to_a_filled_leaderboard(
    made_run: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    started = time.monotonic()
    url, data_dir, printed = made_run
    # What `make run` printed is what matters: where the hub is, the accounts, what to try.
    assert any(url in line for line in printed), printed
    assert any("demo-credentials.json" in line for line in printed), printed
    assert len(printed) <= 40, "\n".join(printed)
    credentials = json.loads((data_dir / "demo-credentials.json").read_text(encoding="utf-8"))
    assert {"admin", "reviewer", "contributor"} <= set(credentials)

    work = tmp_path / "newcomer"
    work.mkdir()
    env = block_environment(work, MEDIGAN_CONFIG=str(work / "home" / "config.toml"))
    outputs = []
    for block in _readme_blocks():
        completed = run_block(
            _with_demo_tokens(block, credentials), cwd=work, env=env, hub_url=url, timeout=900
        )
        assert completed.returncode == 0, failure_report(block, completed)
        outputs.append(completed.stdout + completed.stderr)
    walk = "\n".join(outputs)

    # The hub was given once, to sync; every later command used it.
    assert f"hub: {url} (from config)" in walk
    assert len(list((work / "synthetic-cxr").glob("*.png"))) == 64
    assert "contributor/my-model@0.1.0: in_review" in walk
    assert len(list((work / "my-model-samples").glob("*.png"))) == 16

    # The leaderboard fills by itself: every zoo model is evaluated by the worker.
    missing = ZOO_MODELS - _leaderboard_models(url)
    while missing and time.monotonic() - started < BUDGET_SECONDS:
        time.sleep(10)
        missing = ZOO_MODELS - _leaderboard_models(url)
    assert not missing, f"not on the leaderboard after {BUDGET_SECONDS:.0f} s: {sorted(missing)}"
