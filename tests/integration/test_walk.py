"""The walk end to end through real processes: gunicorn, a Celery worker, the client.

Runs on the embedded default (SQLite, the filesystem broker) always, and on the production path
(PostgreSQL and a Redis broker) when ``DATABASE_URL`` and ``CELERY_BROKER_URL`` point at them, as
they do in CI. Each stack gets its own data directory and, on PostgreSQL, its own database.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from medigan_client import Client
from tests import factories

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_TIMEOUT_SECONDS = 180.0


@dataclass
class Stack:
    """A running hub: its URL, tokens and the processes to stop."""

    url: str
    contributor_token: str
    reviewer_token: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _manage(env: dict[str, str], *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def _postgres_database(base_url: str) -> tuple[str, str]:
    """Create a fresh database on the server of ``base_url``; return (its URL, its name)."""
    import psycopg

    name = f"medigan_walk_{secrets.token_hex(4)}"
    with psycopg.connect(base_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return base_url.rsplit("/", 1)[0] + f"/{name}", name


def _drop_postgres_database(base_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _private_redis_database(broker_url: str) -> str:
    """A Redis database of its own for this stack, emptied, so no earlier run's tasks arrive."""
    from urllib.parse import urlsplit, urlunsplit

    import redis

    url = urlunsplit(urlsplit(broker_url)._replace(path="/15"))
    redis.Redis.from_url(url).flushdb()
    return url


def _wait_until_serving(url: str, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, f"{process.args} exited with {process.returncode}"
        try:
            if httpx.get(f"{url}/api/v1/catalog", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the hub at {url} did not answer within 60 s")


@pytest.fixture(scope="module", params=["embedded", "production"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp(f"hub-{request.param}")
    env = {
        **os.environ,
        "MEDIGAN_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "hub.settings",
        "MEDIGAN_SMOKE_TIMEOUT_SECONDS": "120",
        # The zoo model is evaluated by the worker after the seed publishes it; keep it short.
        "MEDIGAN_EVALUATION_SAMPLES": "200",
        "MEDIGAN_EVALUATION_BATCH_SIZE": "100",
    }
    cleanup_database: tuple[str, str] | None = None
    if request.param == "embedded":
        env["DATABASE_URL"] = f"sqlite:///{data_dir / 'hub.sqlite3'}"
        env["CELERY_BROKER_URL"] = "filesystem://"
    else:
        database_url = os.environ.get("DATABASE_URL", "")
        broker_url = os.environ.get("CELERY_BROKER_URL", "")
        if not database_url.startswith("postgres") or not broker_url.startswith("redis"):
            pytest.skip(
                "the production path needs DATABASE_URL=postgres://… and CELERY_BROKER_URL="
                "redis://… (set by .ci/run)"
            )
        env["DATABASE_URL"], name = _postgres_database(database_url)
        cleanup_database = (database_url, name)
        env["CELERY_BROKER_URL"] = _private_redis_database(broker_url)
    _manage(env, "migrate", "--noinput")
    # One zoo model is enough for the walk; seeding them all is tested in the hub's own tests.
    _manage(env, "seed_demo", "--zoo", "chestxray_dcgan_64")
    credentials = json.loads((data_dir / "demo-credentials.json").read_text(encoding="utf-8"))
    reviewer_token = _manage(env, "token_create", "reviewer").strip()

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_dir = data_dir / "log"
    log_dir.mkdir()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "4",
                "hub.wsgi:application",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=(log_dir / "web.log").open("wb"),
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "hub",
                "worker",
                "--queues",
                "validation,default,gpu",
                "--concurrency",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=(log_dir / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        _wait_until_serving(url, processes)
        yield Stack(url, credentials["contributor"]["token"], reviewer_token, processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if cleanup_database is not None:
            _drop_postgres_database(*cleanup_database)


def _wait_for_state(client: Client, release: str, states: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + STATE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        status = client.release_status(release)
        if status["state"] in states:
            return status
        time.sleep(0.5)
    raise AssertionError(f"{release} did not reach {states}; last status {status}")


def test_a_pushed_package_is_validated_by_the_worker_reviewed_synced_and_generated(
    stack: Stack, tmp_path: Path
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
    stack: Stack, tmp_path: Path
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
    stack: Stack, tmp_path: Path
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
