"""The embedded default as `make run` starts it: a push is validated while an evaluation runs.

deploy/run-embedded.sh starts gunicorn and two Celery workers on the folder broker, one for
validation (and the janitors, with beat) and one for evaluations (queue ``gpu``). Here it runs on
a private data directory (tests/live_hub.py); a published model whose generation takes a minute
is being evaluated when a contributor pushes another package, which must reach ``in_review``
within seconds, not after the evaluation. Stopping gunicorn stops both workers.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import factories
from tests.live_hub import SPLIT_WORKERS, LiveHub, live_hub, wait_until

pytestmark = pytest.mark.integration
# The test polls the hub; one log line per request would bury a failure's report.
logging.getLogger("httpx").setLevel(logging.WARNING)

WAIT_SECONDS = 180.0
# The acceptance: a push starts its checks at once, whatever the evaluations do.
IN_REVIEW_WITHIN_SECONDS = 15.0
# Validation's smoke run asks a package for MEDIGAN_SMOKE_SAMPLES (4) samples, an evaluation for
# batches of 16 (medigan_client.batching.DEFAULT_BATCH_SIZE): only then does the slow model take
# its time, per batch.
SMOKE_SAMPLES = 4
SLOW_SECONDS = 60
SLOW_GENERATOR = f"""
    '''A test generative model: {SLOW_SECONDS} s per batch of an evaluation, a quick smoke run.'''

    import time

    import numpy as np


    def generate(num_samples, *, seed, device="cpu", brightness=0):
        if num_samples > {SMOKE_SAMPLES}:
            time.sleep({SLOW_SECONDS})
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 128, size=(num_samples, 16, 16), dtype=np.int64) + brightness
        return images.clip(0, 255).astype(np.uint8)
"""
ENV = {
    "MEDIGAN_SMOKE_SAMPLES": str(SMOKE_SAMPLES),
    "MEDIGAN_SMOKE_TIMEOUT_SECONDS": "60",
    "MEDIGAN_EVALUATION_SAMPLES": "48",
    "MEDIGAN_EVALUATION_BATCH_SIZE": "48",
    "MEDIGAN_EVALUATION_BATCH_TIMEOUT_SECONDS": "300",
}
# A reference set the test packages match (modality "test noise"), and the accounts' tokens.
SETUP_SCRIPT = """
import json
import numpy as np
from hub.accounts.services import api_token_create, user_get_or_create
from hub.evaluations.services import reference_set_load

contributor = user_get_or_create(username="contributor")
reviewer = user_get_or_create(username="reviewer", is_staff=True, reviewer=True)
images = np.random.default_rng(0).integers(0, 128, size=(48, 16, 16), dtype=np.uint8)
reference_set_load(
    slug="test-noise", title="test noise", modality="test noise",
    match_terms=[["test noise"]], split="test", licence="CC0-1.0", citation="",
    source="synthetic", images=images, source_paths=[f"noise/{i}" for i in range(48)],
)
print(json.dumps({
    "contributor": api_token_create(user=contributor, name="embedded")[1],
    "reviewer": api_token_create(user=reviewer, name="embedded", scopes=("read", "review"))[1],
}))
"""


def _wait(what: str, probe: Callable[[], Any], seconds: float = WAIT_SECONDS) -> Any:
    return wait_until(what, probe, seconds)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    with live_hub(
        env=ENV,
        data_dir=tmp_path_factory.mktemp("embedded"),
        workers=SPLIT_WORKERS,
        start=False,
    ) as hub:
        tokens = json.loads(hub.shell(SETUP_SCRIPT))
        hub.contributor_token, hub.reviewer_token = tokens["contributor"], tokens["reviewer"]
        hub.start_embedded()
        hub.wait_until_serving(timeout=120)
        yield hub


def _push(hub: LiveHub, root: Path, **kwargs: Any) -> httpx.Response:
    archive, sha256, card = factories.package_zip(root, **kwargs)
    with archive.open("rb") as package, hub.api(hub.contributor_token) as api:
        return api.post(
            "/api/v1/releases",
            data={"card": json.dumps(card), "sha256": sha256},
            files={"package": ("package.zip", package, "application/zip")},
        )


def _state(hub: LiveHub, model_id: str) -> str:
    with hub.api(hub.contributor_token) as api:
        response = api.get(f"/api/v1/models/{model_id}/releases/1.0.0")
    assert response.status_code == 200, response.text
    state: str = response.json()["state"]
    return state


def _evaluation_status(hub: LiveHub, model_id: str) -> str | None:
    with hub.api(hub.contributor_token) as api:
        results = api.get(f"/api/v1/models/{model_id}/releases/1.0.0/evaluations").json()
    return results["results"][0]["status"] if results.get("results") else None


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


def _descendants(pid: int) -> list[int]:
    below = _children(pid)
    return [*below, *(grandchild for child in below for grandchild in _descendants(child))]


def _describe_process(pid: int) -> str:
    """pid, state, the kernel function it sleeps in, and its command line."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        wchan = Path(f"/proc/{pid}/wchan").read_text() or "-"
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"{pid} (gone)"
    return f"{pid} {state} {wchan} {command[:200]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead to everyone but its parent, which has not reaped it yet.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_push_is_validated_while_an_evaluation_runs_and_both_workers_stop_with_gunicorn(
    hub: LiveHub, tmp_path: Path
) -> None:
    slow = "contributor/slow-eval"
    pushed = _push(hub, tmp_path / "slow", model_id=slow, generator_source=SLOW_GENERATOR)
    assert pushed.status_code == 202, pushed.text
    _wait("the slow model in review", lambda: _state(hub, slow) == "in_review")
    with hub.api(hub.reviewer_token) as reviewer:
        approved = reviewer.post(
            f"/api/v1/models/{slow}/releases/1.0.0/review",
            json={"decision": "approve", "note": "embedded default test"},
        )
    assert approved.status_code == 200, approved.text
    _wait("its evaluation running", lambda: _evaluation_status(hub, slow) == "running")

    quick = "contributor/quick"
    started = time.monotonic()
    pushed = _push(hub, tmp_path / "quick", model_id=quick)
    assert pushed.status_code == 202, pushed.text
    state = _wait(
        "the quick push validated",
        lambda: (lambda s: s if s in {"in_review", "rejected"} else None)(_state(hub, quick)),
        seconds=IN_REVIEW_WITHIN_SECONDS,
    )
    validated_in = time.monotonic() - started

    assert state == "in_review"
    assert validated_in < IN_REVIEW_WITHIN_SECONDS
    assert _evaluation_status(hub, slow) == "running"  # the evaluation did not hold it up
    assert "validation@" in hub.log("worker-validation") and "gpu@" in hub.log("worker-gpu")
    # Each task ran where it belongs (a worker's banner lists every task it knows, hence "[").
    assert "release_validate_task[" in hub.log("worker-validation")
    assert "release_validate_task[" not in hub.log("worker-gpu")
    assert "evaluation_run_task[" not in hub.log("worker-validation")
    assert "No hostname was supplied" not in hub.log("worker-validation") + hub.log("web")

    # Stopping gunicorn (as Ctrl-C's end does) stops the workers, mid-evaluation included.
    workers = [
        int((hub.data_dir / f"worker-{name}.pid").read_text().strip())
        for name in ("validation", "gpu")
    ]
    gunicorn = next(
        pid
        for pid in _children(hub.processes["embedded"].pid)
        if b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    )
    os.kill(gunicorn, signal.SIGTERM)
    try:
        hub.processes["embedded"].wait(timeout=60)
    except subprocess.TimeoutExpired:
        # What each process was doing when it did not stop: the end of every log.
        tails = {
            name: "\n".join(hub.log(name).splitlines()[-15:])
            for name in ("embedded", "web", "worker-validation", "worker-gpu")
        }
        # Last, as the end of a long report is what survives: who is left, and where it waits.
        still = [
            _describe_process(pid)
            for root in (hub.processes["embedded"].pid, gunicorn, *workers)
            for pid in (root, *_descendants(root))
            if _pid_alive(pid)
        ]
        pytest.fail(
            "the embedded hub did not stop within 60 s of gunicorn's TERM\n"
            + "\n".join(f"--- {name}.log\n{tail}" for name, tail in tails.items())
            + "\n--- still alive\n"
            + "\n".join(dict.fromkeys(still))
        )
    _wait("both workers stopped", lambda: not any(_pid_alive(pid) for pid in workers), 60)
