"""Live hubs for end-to-end tests: real gunicorn and Celery worker processes on a private data dir.

A :class:`LiveHub` migrates its own database, optionally seeds the demo, starts gunicorn and
Celery workers with the environment a test gives it, and stops them; a test may kill any and start
it again. By default one worker consumes every queue; :data:`SPLIT_WORKERS` gives validation and
evaluation a worker each, as deploy/run-embedded.sh starts them (which
:meth:`LiveHub.start_embedded` runs itself). It runs on the embedded default (SQLite, the
filesystem broker) unless it is given the production path (:class:`ProductionPath`): then it gets
a fresh PostgreSQL database of its own, dropped afterwards, and a private, emptied Redis database.
It can run the hub as an unprivileged user (:class:`HubUser`), which is how the sandbox is tested
the way a production image runs it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# gunicorn's process model unless a test asks for another.
WEB_OPTIONS = ("--workers", "1", "--threads", "4")
# The hub's Celery workers by process name, with the queues each consumes. Beat, when asked for,
# is embedded in the first.
ONE_WORKER = {"worker": "validation,default,gpu"}
# As deploy/run-embedded.sh starts them: a push never waits behind a running evaluation.
SPLIT_WORKERS = {"validation-worker": "validation,default", "gpu-worker": "gpu"}


def wait_until(what: str, probe: Callable[[], Any], seconds: float) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"{what} within {seconds:.0f} s (last seen: {last!r})")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class HubUser:
    """An unprivileged system account to run a hub's processes as (created when missing)."""

    name: str = "medigan-ci"

    def ensure(self) -> pwd.struct_passwd:
        """Create the account if it does not exist; needs root."""
        try:
            return pwd.getpwnam(self.name)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    self.name,
                ],
                check=True,
                capture_output=True,
            )
            return pwd.getpwnam(self.name)

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run as this user with no supplementary groups and no capabilities."""
        entry = pwd.getpwnam(self.name)
        return [
            "setpriv",
            f"--reuid={entry.pw_uid}",
            f"--regid={entry.pw_gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
            *argv,
        ]


@contextlib.contextmanager
def traversable_for(user: HubUser, paths: Sequence[Path]) -> Iterator[None]:
    """Let ``user`` traverse every directory above ``paths`` (an ACL entry), undone afterwards.

    The project's interpreter may live under a directory only root may enter (``/root``); the
    unprivileged hub needs to reach it, exactly as a production worker's user would.
    """
    granted: list[Path] = []
    try:
        for path in paths:
            for directory in [*reversed(Path(path).resolve().parents), Path(path).resolve()]:
                if directory in granted or directory.stat().st_mode & 0o001:
                    continue
                subprocess.run(
                    ["setfacl", "-m", f"u:{user.name}:x", str(directory)],
                    check=True,
                    capture_output=True,
                )
                granted.append(directory)
        yield
    finally:
        for directory in granted:
            subprocess.run(["setfacl", "-x", f"u:{user.name}", str(directory)], check=False)


@dataclass(frozen=True)
class ProductionPath:
    """The servers of the production path, of which each live hub gets a private part.

    ``database_url`` (postgres://…) names a database on the server where the hub's own database
    is created; ``broker_url`` (redis://…) names the Redis server, whose database ``redis_db``
    the hub has alone. Each test module picks its own number, so no two ever share one.
    """

    database_url: str
    broker_url: str
    redis_db: int
    database_prefix: str = "medigan_live"

    @classmethod
    def from_environment(cls, *, redis_db: int, database_prefix: str) -> ProductionPath:
        """The servers ``DATABASE_URL`` and ``CELERY_BROKER_URL`` name; skip the test without."""
        database_url = os.environ.get("DATABASE_URL", "")
        broker_url = os.environ.get("CELERY_BROKER_URL", "")
        if not database_url.startswith("postgres") or not broker_url.startswith("redis"):
            pytest.skip(
                "the production path needs DATABASE_URL=postgres://… and CELERY_BROKER_URL="
                "redis://… (set by .ci/run)"
            )
        return cls(database_url, broker_url, redis_db, database_prefix)


def production_path(name: str, *, redis_db: int, database_prefix: str) -> ProductionPath | None:
    """The servers of the path ``name``: None for ``"embedded"``, else from the environment.

    Test modules parametrise their live hub over both paths by these names; for
    ``"production"`` this is :meth:`ProductionPath.from_environment`, which may skip the test.
    """
    if name == "embedded":
        return None
    assert name == "production", name
    return ProductionPath.from_environment(redis_db=redis_db, database_prefix=database_prefix)


@contextlib.contextmanager
def private_services(production: ProductionPath) -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database and an emptied Redis database; yields the URLs to run on.

    The Redis database is flushed so no earlier run's tasks arrive; the PostgreSQL database is
    dropped afterwards, even while something is still connected to it.
    """
    import psycopg
    import redis

    name = f"{production.database_prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(production.database_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        broker_url = urlunsplit(
            urlsplit(production.broker_url)._replace(path=f"/{production.redis_db}")
        )
        redis.Redis.from_url(broker_url).flushdb()
        yield {
            "DATABASE_URL": production.database_url.rsplit("/", 1)[0] + f"/{name}",
            "CELERY_BROKER_URL": broker_url,
        }
    finally:
        with psycopg.connect(production.database_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class LiveHub:
    """One hub and its processes; use :func:`live_hub` to start it.

    ``web_options`` are gunicorn's process options, ``workers`` the Celery workers (process name
    to queues, :data:`ONE_WORKER` or :data:`SPLIT_WORKERS`) and ``beat`` embeds beat in the first
    worker (as deploy/run-embedded.sh does); all hold for every start, a restart after a kill
    included.
    The tokens are those of the accounts a test acts as, set by the test that creates them.
    """

    url: str
    data_dir: Path
    env: dict[str, str]
    log_dir: Path
    user: HubUser | None = None
    web_options: tuple[str, ...] = WEB_OPTIONS
    workers: dict[str, str] = field(default_factory=lambda: dict(ONE_WORKER))
    beat: bool = False
    contributor_token: str = ""
    reviewer_token: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def port(self) -> int:
        """The port gunicorn listens on."""
        return int(self.url.rsplit(":", 1)[1])

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a management command against this hub's database, as the hub's user."""
        argv = [sys.executable, "manage.py", *args]
        completed = subprocess.run(
            self.user.command(argv) if self.user else argv,
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check:
            assert completed.returncode == 0, completed.stderr[-3000:]
        return completed

    def shell(self, code: str) -> str:
        """Run Python in ``manage.py shell`` on this hub; return the last line it printed."""
        return self.manage("shell", "-c", code).stdout.strip().splitlines()[-1]

    def api(self, token: str) -> httpx.Client:
        """An HTTP client for this hub's URL that authenticates with ``token``."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Token {token}"}, timeout=60
        )

    def start_worker(self, *extra: str, name: str | None = None) -> subprocess.Popen[bytes]:
        """Start (or restart) the Celery worker ``name`` (by default the first of ``workers``)
        on its queues, with beat embedded if asked and it is the first."""
        name = name or next(iter(self.workers))
        beat = ("--beat", "--schedule", str(self.data_dir / "celerybeat-schedule"))
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "hub",
            "worker",
            "--queues",
            self.workers[name],
            # Distinct node names: two workers of one hub are two nodes to Celery.
            "--hostname",
            f"{name}@%h",
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            *(beat if self.beat and name == next(iter(self.workers)) else ()),
            "--loglevel",
            "INFO",
            *extra,
        ]
        return self._start(name, argv)

    def start_web(self, *extra: str) -> subprocess.Popen[bytes]:
        """Start (or restart) gunicorn on this hub's port."""
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            *self.web_options,
            *extra,
            "hub.wsgi:application",
        ]
        return self._start("web", argv)

    def start_embedded(self) -> subprocess.Popen[bytes]:
        """Start the hub as ``make run`` does, with deploy/run-embedded.sh: gunicorn and its
        workers in one process group, as process ``embedded`` (its output in ``embedded.log``)."""
        env = {
            **self.env,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "VENV": str(Path(sys.executable).parent.parent),
        }
        with (self.log_dir / "embedded.log").open("ab") as log:
            process = subprocess.Popen(
                ["bash", str(REPO_ROOT / "deploy" / "run-embedded.sh")],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes["embedded"] = process
        return process

    def running(self, name: str) -> bool:
        """Whether the hub's process ``name`` (``web`` or a worker's name) is alive."""
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def ensure_running(self, timeout: float = 60.0) -> None:
        """Start whichever of gunicorn and the workers is not running; wait until it serves."""
        for name in ("web", *self.workers):
            if not self.running(name):
                self.kill(name)  # reap a process that died, and whatever it left in its session
                if name == "web":
                    self.start_web()
                else:
                    self.start_worker(name=name)
        self.wait_until_serving(timeout)

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        # The child keeps its own handle on the log; a restart appends to it.
        with (self.log_dir / f"{name}.log").open("ab") as log:
            # A session of its own, so a kill reaches the whole tree (pool children, sandboxes).
            process = subprocess.Popen(
                self.user.command(argv) if self.user else argv,
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        """SIGKILL one of the hub's processes and everything in its session: no shutdown."""
        process = self.processes.pop(name, None)
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        """Stop every process of the hub (TERM, then KILL)."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()

    def wait_until_serving(self, timeout: float = 60.0) -> None:
        """Wait for the catalogue to answer; fail early if a process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                assert process.poll() is None, f"{name} exited with {process.returncode}"
            try:
                if httpx.get(f"{self.url}/api/v1/catalog", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"the hub at {self.url} did not answer within {timeout} s")

    def log(self, name: str) -> str:
        """What a process of the hub has logged so far."""
        path = self.log_dir / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


@contextlib.contextmanager
def live_hub(
    *,
    env: Mapping[str, str] | None = None,
    user: HubUser | None = None,
    seed: Sequence[str] | None = None,
    data_dir: Path | None = None,
    production: ProductionPath | None = None,
    web_options: Sequence[str] = WEB_OPTIONS,
    workers: Mapping[str, str] = ONE_WORKER,
    beat: bool = False,
    start: bool = True,
) -> Iterator[LiveHub]:
    """A migrated hub on the embedded default unless ``env`` says otherwise, serving and working.

    ``seed`` is the argument list of ``seed_demo`` (None: no seed). With ``user``, the data
    directory is owned by that user and every process runs as it. With ``production``, the hub
    runs on a private part of those servers (:func:`private_services`). ``web_options``,
    ``workers`` and ``beat`` shape its processes (see :class:`LiveHub`). With ``start=False``
    the hub is only migrated and seeded: the test starts it (:meth:`LiveHub.ensure_running` or
    :meth:`LiveHub.start_embedded`) once it has set up what it needs; whatever runs is stopped
    at the end either way.
    """
    owned_dir = data_dir is None
    if data_dir is None:
        # Not under pytest's root-only tmp folder: an unprivileged hub must own its data dir.
        data_dir = Path(tempfile.mkdtemp(prefix="medigan-live-hub-"))
    with contextlib.ExitStack() as cleanup:
        if owned_dir:
            cleanup.callback(shutil.rmtree, data_dir, ignore_errors=True)
        services = cleanup.enter_context(private_services(production)) if production else {}
        log_dir = data_dir / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        full_env = {
            **os.environ,
            "MEDIGAN_DATA_DIR": str(data_dir),
            "DJANGO_SETTINGS_MODULE": "hub.settings",
            "DATABASE_URL": f"sqlite:///{data_dir / 'hub.sqlite3'}",
            "CELERY_BROKER_URL": "filesystem://localhost/",
            **(env or {}),
            **services,
        }
        full_env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        if user is not None:
            entry = user.ensure()
            for path in [data_dir, *data_dir.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
            full_env["HOME"] = str(data_dir)
        hub = LiveHub(
            url=f"http://127.0.0.1:{free_port()}",
            data_dir=data_dir,
            env=full_env,
            log_dir=log_dir,
            user=user,
            web_options=tuple(web_options),
            workers=dict(workers),
            beat=beat,
        )
        cleanup.callback(hub.stop)
        hub.manage("migrate", "--noinput")
        if seed is not None:
            hub.manage("seed_demo", *seed)
        if start:
            hub.ensure_running()
        yield hub
