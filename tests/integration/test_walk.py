"""The walk end to end through real processes: gunicorn, a Celery worker, the client.

Runs on the embedded default (SQLite, the filesystem broker) always, and on the production path
(PostgreSQL and a Redis broker) when ``DATABASE_URL`` and ``CELERY_BROKER_URL`` point at them, as
they do in CI. Each stack (tests/live_hub.py) gets its own data directory and, on the
production path, its own PostgreSQL database and Redis database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from medigan_client import Client
from tests import factories
from tests.live_hub import REPO_ROOT, LiveHub, live_hub, production_path

pytestmark = pytest.mark.integration

STATE_TIMEOUT_SECONDS = 180.0
# The Redis database this module's production stack has alone (test_faults.py has 14).
REDIS_DB = 15


@pytest.fixture(scope="module", params=["embedded", "production"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveHub]:
    env = {
        "MEDIGAN_SMOKE_TIMEOUT_SECONDS": "120",
        # The zoo model is evaluated by the worker after the seed publishes it; keep it short.
        "MEDIGAN_EVALUATION_SAMPLES": "200",
        "MEDIGAN_EVALUATION_BATCH_SIZE": "100",
    }
    with live_hub(
        env=env,
        data_dir=tmp_path_factory.mktemp(f"hub-{request.param}"),
        production=production_path(
            request.param, redis_db=REDIS_DB, database_prefix="medigan_walk"
        ),
        # One zoo model is enough for the walk; seeding them all is tested in the hub's own tests.
        seed=["--zoo", "chestxray_dcgan_64"],
        start=False,
    ) as hub:
        credentials = json.loads(
            (hub.data_dir / "demo-credentials.json").read_text(encoding="utf-8")
        )
        hub.contributor_token = credentials["contributor"]["token"]
        hub.reviewer_token = hub.manage("token_create", "reviewer").stdout.strip()
        hub.ensure_running()
        yield hub


def _wait_for_state(client: Client, release: str, states: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + STATE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        status = client.release_status(release)
        if status["state"] in states:
            return status
        time.sleep(0.5)
    raise AssertionError(f"{release} did not reach {states}; last status {status}")


def test_a_pushed_package_is_validated_by_the_worker_reviewed_synced_and_generated(
    stack: LiveHub, tmp_path: Path
) -> None:
    contributor = Client(
        hub_url=stack.url,
        token=stack.contributor_token,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    reviewer = Client(
        hub_url=stack.url,
        token=stack.reviewer_token,
        cache_dir=tmp_path / "reviewer-cache",
        progress=False,
    )
    package = factories.package_dir(tmp_path / "src", model_id="contributor/noise-16")

    pushed = contributor.push(package)
    status = _wait_for_state(contributor, "contributor/noise-16@1.0.0", {"in_review", "rejected"})
    published = reviewer.review("contributor/noise-16@1.0.0", "approve", "fine noise")
    synced = contributor.sync()
    generated = contributor.generate("contributor/noise-16", 5, tmp_path / "out", seed=3)

    assert pushed.state == "submitted"
    assert status["state"] == "in_review", status["checks"]
    assert {check["status"] for check in status["checks"]} == {"passed"}
    assert published["state"] == "published"
    assert synced.changed
    assert [path.name for path in generated.files] == [f"{i:06d}.png" for i in range(5)]
    manifest = generated.manifest_path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["index"] for line in manifest] == [0, 1, 2, 3, 4]


def test_a_zip_that_climbs_out_is_rejected_by_the_worker_with_its_message(
    stack: LiveHub, tmp_path: Path
) -> None:
    card = factories.card_data(model_id="contributor/evil", version="1.0.0")
    archive = factories.evil_zip(tmp_path)

    with archive.open("rb") as package:
        response = httpx.post(
            f"{stack.url}/api/v1/releases",
            data={"card": json.dumps(card)},
            files={"package": ("evil.zip", package, "application/zip")},
            headers={"Authorization": f"Token {stack.contributor_token}"},
            timeout=30,
        )
    client = Client(hub_url=stack.url, token=stack.contributor_token, cache_dir=tmp_path / "c")
    status = _wait_for_state(client, "contributor/evil@1.0.0", {"in_review", "rejected"})

    assert response.status_code == 202
    assert status["state"] == "rejected"
    unpacking = next(check for check in status["checks"] if check["name"] == "safe_unpacking")
    assert unpacking["status"] == "failed"
    assert "../evil" in unpacking["message"]
    assert "../evil" in status["events"][-1]["note"]


def test_the_published_zoo_model_is_evaluated_by_the_worker_and_ranked_offline(
    stack: LiveHub, tmp_path: Path
) -> None:
    if not (REPO_ROOT.parent / "shared" / "data").is_dir():
        pytest.skip("the reference sets need the shared data sets beside the repository")
    deadline = time.monotonic() + STATE_TIMEOUT_SECONDS
    row: dict[str, Any] | None = None
    while time.monotonic() < deadline and row is None:
        board = httpx.get(f"{stack.url}/api/v1/leaderboards/chest-xray-test", timeout=10).json()
        row = next(
            (item for item in board["rows"] if item["model_id"] == "zoo/chestxray-dcgan-64"), None
        )
        time.sleep(1)
    page = httpx.get(f"{stack.url}/leaderboard/", timeout=10)
    client = Client(hub_url=stack.url, cache_dir=tmp_path / "cache", progress=False)
    client.sync()
    offline = Client(hub_url=stack.url, cache_dir=tmp_path / "cache", offline=True)
    ranked = offline.rank_by_hub_metric("fid", reference="chest-xray-test")
    evaluations = offline.evaluations("zoo/chestxray-dcgan-64")

    assert row is not None, "no evaluation of the zoo model reached the leaderboard"
    assert row["num_samples"] == 200
    assert row["fid_rs"] > 0 and row["extractor"] == "medical-cnn"
    assert "zoo/chestxray-dcgan-64" in page.text
    values = [item.value("fid") for item in ranked if item.evaluation is not None]
    assert values == sorted(values), "ranked by the hub's FID, lowest first"
    dcgan = next(item for item in ranked if item.card.model_id == "zoo/chestxray-dcgan-64")
    assert dcgan.value("fid") == pytest.approx(row["fid_rs"])
    assert ranked[-1].evaluation is None, "models without the hub's number come last"
    assert evaluations[0].reference == "chest-xray-test"
    assert evaluations[0].extractor_weights_sha256 == row["extractor_weights_sha256"]
