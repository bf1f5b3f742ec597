"""Hostile packages pushed through the real API to a live hub with a real worker stay contained.

The corpus (:mod:`tests.security.hostile`) runs against two hubs: one whose processes run as
root, as ``make run`` and CI run them, and one run as an unprivileged user with a control group
delegated to it, as a production image runs. Canary secrets are planted in the worker's
environment, its settings and its data directory; the tests show they never reach anything a
contributor can read, that nothing was written outside the sandbox's scratch, that the network
and the database were out of reach, that memory, processes and disk were bounded, and that no
process of a run outlived it.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_hub import REPO_ROOT, HubUser, LiveHub, live_hub, traversable_for
from tests.security.hostile import CASES, Case, Targets, hostile_package_zip

pytestmark = pytest.mark.integration

MEMORY_LIMIT = 1 << 30
PROCESS_LIMIT = 32
SCRATCH_LIMIT = 256 << 20
STATE_TIMEOUT_SECONDS = 300.0
CGROUP_ROOT = Path("/sys/fs/cgroup")


class Listener:
    """A TCP listener on the host that counts every connection made to it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port: int = self.server.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()


@dataclass
class Corpus:
    """A hub after every hostile package went through validation."""

    hub: LiveHub
    targets: Targets
    canaries: list[str]
    statuses: dict[str, dict[str, Any]]
    listener: Listener
    user: HubUser | None
    tokens_before: int


def _delegated_cgroup(user: HubUser) -> str | None:
    """A v1 memory+pids group owned by ``user`` (what an operator delegates); None elsewhere."""
    if not (CGROUP_ROOT / "memory" / "cgroup.procs").exists():
        return None
    name = f"medigan-ci-{secrets.token_hex(4)}"
    entry = user.ensure()
    for controller in ("memory", "pids"):
        directory = CGROUP_ROOT / controller / name
        directory.mkdir()
        for path in [directory, *directory.iterdir()]:
            os.chown(path, entry.pw_uid, entry.pw_gid)
    return name


def _remove_cgroup(name: str | None) -> None:
    if name is None:
        return
    for controller in ("memory", "pids"):
        directory = CGROUP_ROOT / controller / name
        for child in sorted(directory.glob("*/"), reverse=True):
            if child.is_dir():
                child.rmdir()
        directory.rmdir()


def _wait_final(hub: LiveHub, model: str) -> dict[str, Any]:
    deadline = time.monotonic() + STATE_TIMEOUT_SECONDS
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = httpx.get(
            f"{hub.url}/api/v1/models/{model}/releases/1.0.0",
            headers={"Authorization": f"Token {hub.env['TEST_CONTRIBUTOR_TOKEN']}"},
            timeout=10,
        ).json()
        if status.get("state") in {"in_review", "rejected"}:
            return status
        time.sleep(0.5)
    raise AssertionError(f"{model} never left validation; last status {status}")


def _create_accounts(hub: LiveHub) -> tuple[str, int]:
    script = (
        "from django.contrib.auth.models import User\n"
        "from hub.accounts.models import ApiToken\n"
        "from hub.accounts.services import api_token_create, user_get_or_create\n"
        "user_get_or_create(username='reviewer', password='x-reviewer', is_staff=True, "
        "reviewer=True)\n"
        "mallory = user_get_or_create(username='mallory', password='x-mallory')\n"
        "print(api_token_create(user=mallory, name='push')[1])\n"
        "print(ApiToken.objects.count())\n"
    )
    lines = hub.manage("shell", "-c", script).stdout.split()
    return lines[-2], int(lines[-1])


@pytest.fixture(scope="module", params=["root", "unprivileged"])
def corpus(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Corpus]:
    if shutil.which("bwrap") is None:
        pytest.fail(
            "bubblewrap is not installed; `make test` installs it (apt-get install bubblewrap)"
        )
    user: HubUser | None = None
    cgroup: str | None = None
    if request.param == "unprivileged":
        if os.geteuid() != 0:
            pytest.skip("running the hub as another, unprivileged user needs root")
        if shutil.which("setfacl") is None:
            pytest.fail("setfacl is missing; `make test` installs it (apt-get install acl)")
        user = HubUser()
        cgroup = _delegated_cgroup(user)
    token = secrets.token_hex(6)
    canary_prefix = "canary-"
    canaries = [f"{canary_prefix}secret-{token}", f"{canary_prefix}env-{token}"]
    listener = Listener()
    env = {
        "DJANGO_SECRET_KEY": canaries[0],
        "MEDIGAN_CANARY": canaries[1],
        "AWS_SECRET_ACCESS_KEY": canaries[1],
        "MEDIGAN_SMOKE_TIMEOUT_SECONDS": "60",
        "MEDIGAN_SANDBOX_MEMORY_BYTES": str(MEMORY_LIMIT),
        "MEDIGAN_SANDBOX_MAX_PROCESSES": str(PROCESS_LIMIT),
        "MEDIGAN_SANDBOX_SCRATCH_BYTES": str(SCRATCH_LIMIT),
        **({"MEDIGAN_SANDBOX_CGROUP": cgroup} if cgroup else {}),
    }
    root = tmp_path_factory.mktemp(f"hostile-{request.param}")
    interpreter_dirs = [Path(os.__file__).parent, REPO_ROOT]
    try:
        reachable = traversable_for(user, interpreter_dirs) if user else contextlib.nullcontext()
        with reachable, live_hub(env=env, user=user) as hub:
            contributor_token, tokens_before = _create_accounts(hub)
            hub.env["TEST_CONTRIBUTOR_TOKEN"] = contributor_token
            (hub.data_dir / "demo-credentials.json").write_text(
                json.dumps({"admin": {"password": canaries[0]}}), encoding="utf-8"
            )
            targets = Targets(
                data_dir=hub.data_dir,
                repo_root=REPO_ROOT,
                host_marker=Path(f"/tmp/medigan-pwned-{token}"),
                listener_port=listener.port,
                canary_prefix=canary_prefix,
                admin_token=f"hostile-admin-{token}",
                linger_marker=f"medigan-linger-{token}",
            )
            for case in CASES:
                archive, card = hostile_package_zip(root, case.name, targets)
                with archive.open("rb") as package:
                    response = httpx.post(
                        f"{hub.url}/api/v1/releases",
                        data={"card": json.dumps(card)},
                        files={"package": (archive.name, package, "application/zip")},
                        headers={"Authorization": f"Token {contributor_token}"},
                        timeout=60,
                    )
                assert response.status_code == 202, response.text
            statuses = {
                case.name: _wait_final(hub, f"mallory/{case.name.replace('_', '-')}")
                for case in CASES
            }
            yield Corpus(hub, targets, canaries, statuses, listener, user, tokens_before)
    finally:
        listener.close()
        _remove_cgroup(cgroup)


def _smoke(status: dict[str, Any]) -> dict[str, Any]:
    return next(check for check in status["checks"] if check["name"] == "smoke_generation")


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_hostile_package_gets_its_named_outcome(corpus: Corpus, case: Case) -> None:
    status = corpus.statuses[case.name]
    smoke = _smoke(status)

    assert status["state"] == case.state, smoke["message"]
    assert smoke["status"] == case.check_status, smoke["message"]
    assert case.message in smoke["message"]


def test_no_write_lands_outside_the_scratch(corpus: Corpus) -> None:
    data = corpus.targets.data_dir
    written = [
        path
        for path in [
            *data.rglob("*pwned*"),
            *corpus.targets.repo_root.glob("pwned*"),
            *Path("/tmp").glob(corpus.targets.host_marker.name + "*"),
            *Path("/dev/shm").glob("pwned*"),
        ]
    ]

    assert written == []


def test_canary_secrets_never_reach_what_a_contributor_reads(corpus: Corpus) -> None:
    leak_message = _smoke(corpus.statuses["reads_secrets"])["message"]
    readable = re.search(r"LEAKPROBE readable=(\[.*?\])", leak_message)
    everything = json.dumps(corpus.statuses) + corpus.hub.log("worker") + corpus.hub.log("web")

    # /proc/1 is the sandbox's own init (the sandbox's own, empty environment), never the hub's.
    assert readable is not None, leak_message
    # The probe prints positions in its list of paths; 3 is /proc/1/environ (hostile.py).
    assert set(ast.literal_eval(readable.group(1))) <= {3}, leak_message
    assert "LEAKPROBE found=[]" in leak_message
    for canary in corpus.canaries:
        assert canary not in everything
    assert str(corpus.targets.data_dir) not in json.dumps(corpus.statuses)


def test_no_network_reaches_the_host_even_through_setns(corpus: Corpus) -> None:
    assert corpus.listener.connections == 0
    assert corpus.statuses["escapes_network"]["state"] == "in_review"


def test_the_database_is_untouched_and_a_planted_token_is_refused(corpus: Corpus) -> None:
    tokens_now = int(
        corpus.hub.manage(
            "shell",
            "-c",
            "from hub.accounts.models import ApiToken; print(ApiToken.objects.count())",
        ).stdout.split()[-1]
    )
    review = httpx.post(
        f"{corpus.hub.url}/api/v1/models/mallory/takes-over-database/releases/1.0.0/review",
        json={"decision": "approve", "note": "self-approved"},
        headers={"Authorization": f"Token {corpus.targets.admin_token}"},
        timeout=10,
    )

    assert tokens_now == corpus.tokens_before
    assert review.status_code == 401
    assert corpus.statuses["takes_over_database"]["state"] == "in_review"


def test_processes_memory_and_disk_are_bounded_for_the_whole_run(corpus: Corpus) -> None:
    forks = re.search(r"FORKPROBE spawned (\d+)", _smoke(corpus.statuses["fork_bomb"])["message"])
    disk = re.search(r"DISKPROBE wrote (\d+)", _smoke(corpus.statuses["fills_disk"])["message"])
    memory = _smoke(corpus.statuses["memory_hog"])["message"]

    assert forks is not None and int(forks.group(1)) < PROCESS_LIMIT
    assert disk is not None and int(disk.group(1)) <= SCRATCH_LIMIT
    assert f"memory limit of {MEMORY_LIMIT} bytes" in memory


def test_no_process_of_a_run_outlives_it(corpus: Corpus) -> None:
    marker = corpus.targets.linger_marker.encode()
    survivors = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes():
                survivors.append(cmdline.parent.name)
        except OSError:
            continue
    leftovers = subprocess.run(
        ["ps", "-eo", "uid=,args="], capture_output=True, text=True, check=True
    ).stdout

    assert survivors == []
    assert "FORKPROBE" not in leftovers
    sandbox_uids = [line for line in leftovers.splitlines() if int(line.split()[0]) >= 1880000000]
    assert sandbox_uids == []


def test_contributed_code_holds_no_privilege(corpus: Corpus) -> None:
    message = _smoke(corpus.statuses["escalates"])["message"]
    uid = re.search(r"PRIVPROBE uid=(\d+)", message)

    assert "capeff=0000000000000000" in message
    assert "capbnd=0000000000000000" in message or corpus.user is not None
    assert uid is not None and int(uid.group(1)) != 0
