"""Faults against a live hub: killed workers, a crowd of pushes, gunicorn killed mid-upload.

Real gunicorn and Celery worker processes on a private data directory (tests/live_hub.py), as in
test_walk.py: on the embedded default (SQLite, the folder broker, beat embedded in the worker)
always, and on the production path (PostgreSQL, Redis) when ``DATABASE_URL`` and
``CELERY_BROKER_URL`` point at them.
The janitor's deadlines are a few seconds here, so each fault heals within a bounded wait.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import factories
from tests.live_hub import LiveHub, live_hub, production_path, wait_until

pytestmark = pytest.mark.integration
# The tests poll the hub; one log line per request would bury a failure's report.
logging.getLogger("httpx").setLevel(logging.WARNING)

WAIT_SECONDS = 180.0
# The Redis database this module's production hub has alone (test_walk.py has 15).
REDIS_DB = 14
# generate() of the sleepy package takes this long, so a worker can be killed while it runs.
SLEEP_SECONDS = 3
# Deadlines of the janitor on this hub: beat runs it every 2 s; a `validating` release or a
# `running` evaluation is taken for lost after these (longer than any run here takes).
JANITOR_ENV = {
    "MEDIGAN_REQUEUE_AFTER_SECONDS": "3",
    "MEDIGAN_JANITOR_INTERVAL_SECONDS": "2",
    "MEDIGAN_VALIDATION_STALE_SECONDS": "20",
    "MEDIGAN_EVALUATION_STALE_SECONDS": "45",
    "MEDIGAN_SMOKE_TIMEOUT_SECONDS": "60",
    "MEDIGAN_EVALUATION_BATCH_TIMEOUT_SECONDS": "60",
    "MEDIGAN_EVALUATION_SAMPLES": "48",
    "MEDIGAN_EVALUATION_BATCH_SIZE": "48",
}
SLEEPY_GENERATOR = f"""
    '''A test generative model that takes its time: noise after {SLEEP_SECONDS} s.'''

    import time

    import numpy as np


    def generate(num_samples, *, seed, device="cpu", brightness=0):
        time.sleep({SLEEP_SECONDS})
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 128, size=(num_samples, 16, 16), dtype=np.int64) + brightness
        return images.clip(0, 255).astype(np.uint8)
"""
# A reference set the test packages match (modality "test noise"), small and synthetic.
SETUP_SCRIPT = """
import json
import numpy as np
from hub.accounts.services import api_token_create, user_get_or_create
from hub.evaluations.services import reference_set_create

contributor = user_get_or_create(username="contributor")
reviewer = user_get_or_create(username="reviewer", is_staff=True, reviewer=True)
images = np.random.default_rng(0).integers(0, 128, size=(48, 16, 16), dtype=np.uint8)
reference_set_create(
    slug="test-noise", title="test noise", modality="test noise",
    match_terms=[["test noise"]], split="test", licence="CC0-1.0", citation="",
    source="synthetic", images=images, source_paths=[f"noise/{i}" for i in range(48)],
)
print(json.dumps({
    "contributor": api_token_create(user=contributor, name="faults")[1],
    "reviewer": api_token_create(user=reviewer, name="faults", scopes=("read", "review"))[1],
}))
"""


def _wait(what: str, probe: Callable[[], Any], seconds: float = WAIT_SECONDS) -> Any:
    return wait_until(what, probe, seconds)


@pytest.fixture(scope="module", params=["embedded", "production"])
def hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveHub]:
    with live_hub(
        env=JANITOR_ENV,
        data_dir=tmp_path_factory.mktemp(f"faults-{request.param}"),
        production=production_path(
            request.param, redis_db=REDIS_DB, database_prefix="medigan_faults"
        ),
        web_options=["--workers", "2", "--threads", "4", "--timeout", "120"],
        # As deploy/run-embedded.sh starts it: one process, beat embedded.
        beat=True,
        start=False,
    ) as hub:
        tokens = json.loads(hub.shell(SETUP_SCRIPT))
        hub.contributor_token, hub.reviewer_token = tokens["contributor"], tokens["reviewer"]
        hub.ensure_running()
        yield hub


def _push(hub: LiveHub, root: Path, **kwargs: Any) -> httpx.Response:
    archive, sha256, card = factories.package_zip(root, **kwargs)
    with archive.open("rb") as package, hub.api(hub.contributor_token) as api:
        return api.post(
            "/api/v1/releases",
            data={"card": json.dumps(card), "sha256": sha256},
            files={"package": ("package.zip", package, "application/zip")},
        )


def _status(hub: LiveHub, release: str) -> dict[str, Any]:
    model_id, version = release.split("@")
    with hub.api(hub.contributor_token) as api:
        response = api.get(f"/api/v1/models/{model_id}/releases/{version}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _state_in(hub: LiveHub, release: str, states: set[str]) -> dict[str, Any] | None:
    status = _status(hub, release)
    return status if status["state"] in states else None


def _wait_final(hub: LiveHub, release: str) -> dict[str, Any]:
    status: dict[str, Any] = _wait(
        f"{release} validated", lambda: _state_in(hub, release, {"in_review", "rejected"})
    )
    return status


def _transitions(status: dict[str, Any]) -> list[tuple[str, str]]:
    return [(event["from_state"], event["to_state"]) for event in status["events"]]


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


def _pool_process_running_a_sandbox(worker_pid: int) -> int | None:
    """The worker's pool process that is running contributed code (it has a child: the sandbox).

    The worker's other child, embedded beat, runs nothing of its own.
    """
    return next((child for child in _children(worker_pid) if _children(child)), None)


# a) The worker killed mid-validation and mid-evaluation.


def test_a_validation_whose_worker_is_killed_finishes_without_a_human(
    hub: LiveHub, tmp_path: Path
) -> None:
    hub.ensure_running()
    release = "contributor/sleepy@1.0.0"
    pushed = _push(hub, tmp_path, model_id="contributor/sleepy", generator_source=SLEEPY_GENERATOR)
    _wait("validation started", lambda: _state_in(hub, release, {"validating"}))
    time.sleep(1.5)  # inside the smoke generation's sleep

    hub.kill("worker")
    after_kill = _status(hub, release)
    hub.start_worker()
    final = _wait_final(hub, release)

    assert pushed.status_code == 202, pushed.text
    assert after_kill["state"] == "validating"
    assert final["state"] == "in_review", final["events"]
    assert _transitions(final) == [
        ("", "submitted"),
        ("submitted", "validating"),
        ("validating", "submitted"),
        ("submitted", "validating"),
        ("validating", "in_review"),
    ]
    assert "attempt 1 of 3 did not finish" in final["events"][2]["note"]
    names = [check["name"] for check in final["checks"]]
    assert len(names) == len(set(names)), "the lost run's partial checks were removed"
    assert {check["status"] for check in final["checks"]} == {"passed"}
    assert not list((hub.data_dir / "work").glob("validate-*"))


def test_a_validation_whose_pool_process_dies_restarts_at_once(
    hub: LiveHub, tmp_path: Path
) -> None:
    hub.ensure_running()
    worker_pid = hub.processes["worker"].pid
    release = "contributor/sleepy-pool@1.0.0"
    pushed = _push(
        hub, tmp_path, model_id="contributor/sleepy-pool", generator_source=SLEEPY_GENERATOR
    )
    _wait("validation started", lambda: _state_in(hub, release, {"validating"}))
    pool = _wait(
        "the pool process running the sandbox",
        lambda: _pool_process_running_a_sandbox(worker_pid),
        60,
    )

    os.kill(pool, signal.SIGKILL)  # the worker lives on; its message comes back to it
    final = _wait_final(hub, release)

    assert pushed.status_code == 202, pushed.text
    assert final["state"] == "in_review", final["events"]
    assert ("validating", "submitted") in _transitions(final)
    restart = final["events"][2]["note"]
    # Restarted by the redelivered task itself, not by the janitor's deadline.
    assert "the worker running it was lost" in restart and "no result within" not in restart


def test_an_evaluation_whose_worker_is_killed_finishes_without_a_human(
    hub: LiveHub, tmp_path: Path
) -> None:
    hub.ensure_running()
    release = "contributor/sleepy-eval@1.0.0"
    pushed = _push(
        hub, tmp_path, model_id="contributor/sleepy-eval", generator_source=SLEEPY_GENERATOR
    )
    _wait_final(hub, release)
    with hub.api(hub.reviewer_token) as reviewer:
        published = reviewer.post(
            "/api/v1/models/contributor/sleepy-eval/releases/1.0.0/review",
            json={"decision": "approve", "note": "fault test"},
        )
    url = "/api/v1/models/contributor/sleepy-eval/releases/1.0.0/evaluations"

    def evaluation_in(statuses: set[str]) -> dict[str, Any] | None:
        with hub.api(hub.contributor_token) as api:
            results = api.get(url).json()["results"]
        return next((item for item in results if item["status"] in statuses), None)

    _wait("the evaluation started", lambda: evaluation_in({"running"}))
    time.sleep(1.0)
    hub.kill("worker")
    after_kill = evaluation_in({"running"})
    hub.start_worker()
    final = _wait("a final evaluation state", lambda: evaluation_in({"succeeded", "failed"}))
    attempts = hub.shell(
        "from hub.evaluations.models import Evaluation; "
        f"print(Evaluation.objects.get(pk={final['id']}).attempts)"
    )

    assert pushed.status_code == 202 and published.status_code == 200, published.text
    assert after_kill is not None, "still running when its worker died"
    assert final["status"] == "succeeded", final["error"]
    assert final["error"] == ""
    assert int(attempts) == 2
    assert not list((hub.data_dir / "work").glob("evaluate-*"))


# b) A crowd of concurrent pushes.


def _push_bytes(root: Path, version: str, model_id: str) -> tuple[bytes, str, dict[str, Any]]:
    archive, sha256, card = factories.package_zip(root, model_id=model_id, version=version)
    return archive.read_bytes(), sha256, card


def _concurrent_pushes(
    hub: LiveHub, payloads: list[tuple[bytes, str, dict[str, Any]]]
) -> list[httpx.Response]:
    barrier = threading.Barrier(len(payloads))
    responses: list[httpx.Response | None] = [None] * len(payloads)

    def push(index: int) -> None:
        data, sha256, card = payloads[index]
        with hub.api(hub.contributor_token) as api:
            barrier.wait()
            responses[index] = api.post(
                "/api/v1/releases",
                data={"card": json.dumps(card), "sha256": sha256},
                files={"package": ("package.zip", data, "application/zip")},
            )

    threads = [threading.Thread(target=push, args=(index,)) for index in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(response is not None for response in responses), "a push got no answer"
    return [response for response in responses if response is not None]


def test_two_concurrent_pushes_of_one_version_give_one_202_and_one_409(
    hub: LiveHub, tmp_path: Path
) -> None:
    hub.ensure_running()
    payload = _push_bytes(tmp_path, "1.0.0", "contributor/twins")

    responses = _concurrent_pushes(hub, [payload, payload])

    assert sorted(response.status_code for response in responses) == [202, 409]
    conflict = next(response for response in responses if response.status_code == 409)
    assert conflict.json()["code"] == "release_exists"


def test_twenty_concurrent_pushes_answer_202_409_or_503_and_leave_no_orphan(
    hub: LiveHub, tmp_path: Path
) -> None:
    hub.ensure_running()
    # Ten versions, each pushed twice at the same moment.
    payloads = [
        _push_bytes(tmp_path / str(index), f"1.0.{index // 2}", "contributor/crowd")
        for index in range(20)
    ]

    responses = _concurrent_pushes(hub, payloads)
    statuses = [response.status_code for response in responses]
    accepted = {response.json()["version"] for response in responses if response.status_code == 202}
    for version in sorted(accepted):
        # Validation writes sample grids; the audit below runs once none is half-written.
        _wait_final(hub, f"contributor/crowd@{version}")
    check = hub.manage("storage_check", check=False)
    stored = hub.shell(
        "from hub.registry.models import Release; print(Release.objects.filter("
        "generative_model__name='crowd').count())"
    )

    assert set(statuses) <= {202, 409, 503}, statuses
    assert statuses.count(202) == len(accepted) >= 1, "at most one push of a version wins"
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "release_exists"
        if response.status_code == 503:
            assert response.json()["code"] == "hub_busy" and response.headers["Retry-After"]
    assert int(stored) == len(accepted)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.splitlines()[-1].endswith(" 0 orphans (0 deleted)")


# c) gunicorn killed mid-upload.


def test_gunicorn_killed_mid_upload_leaves_nothing_after_the_janitor(
    hub: LiveHub, tmp_path: Path
) -> None:
    hub.ensure_running()
    upload_dir = hub.data_dir / "upload-tmp"
    card = json.dumps(factories.card_data(model_id="contributor/huge")).encode()
    boundary = "faultboundary" + secrets.token_hex(8)
    package_bytes = 24 * 1024 * 1024
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="card"\r\n\r\n'.encode()
        + card
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="package"; '
        'filename="package.zip"\r\nContent-Type: application/zip\r\n\r\n'.encode()
    )
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + package_bytes + len(tail)
    sent = threading.Event()

    def upload_slowly() -> None:
        chunk = b"\0" * (1024 * 1024)
        try:
            with socket.create_connection(("127.0.0.1", hub.port), timeout=60) as connection:
                connection.sendall(
                    (
                        "POST /api/v1/releases HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        f"Authorization: Token {hub.contributor_token}\r\n"
                        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                        f"Content-Length: {length}\r\n\r\n"
                    ).encode()
                    + head
                )
                for _ in range(12):  # half the package, then a slow link
                    connection.sendall(chunk)
                sent.set()
                for _ in range(package_bytes // len(chunk) - 12):
                    time.sleep(1)
                    connection.sendall(chunk)
        except OSError:
            pass  # gunicorn is gone: that is the point

    uploader = threading.Thread(target=upload_slowly, daemon=True)
    uploader.start()
    sent.wait(timeout=60)
    spooled = _wait(
        "the upload spooled to the upload temp dir",
        lambda: [path for path in upload_dir.iterdir() if path.stat().st_size > 8 * 1024 * 1024],
        60,
    )
    hub.kill("web")
    uploader.join(timeout=30)
    left_after_kill = sorted(path.name for path in upload_dir.iterdir())

    _wait(
        "the janitor removed the upload's temp file",
        lambda: not any(upload_dir.iterdir()),
        60,
    )

    assert spooled and [path.name for path in spooled] == left_after_kill
    assert not list(upload_dir.iterdir())
