"""An S3 server for the storage tests and benchmarks: moto in server mode, reached over HTTP.

:func:`s3_server` starts ``python -m moto.server`` as a process of its own on a free port of
127.0.0.1 and stops it afterwards; :class:`S3Server` creates buckets there, lists and reads what
the hub stored, and gives the hub's configuration for a bucket, made by the same code as the
hub's own settings (:func:`hub.settings.storage.s3_storage`). Credentials are dummy values and
region and endpoint are explicit, so neither the hub nor these helpers ever look for credentials
on the machine, ask an instance metadata service or reach AWS: every request goes to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Dummy credentials: moto accepts any, and explicit ones keep botocore from searching the
# machine's configuration or an instance metadata service for real ones.
ACCESS_KEY = "medigan-test-access-key"
SECRET_KEY = "medigan-test-secret-key"
REGION = "us-east-1"
# What the hub's processes and botocore itself must never do while they talk to moto: read the
# user's AWS configuration, or ask an instance metadata service for credentials or a region.
ISOLATING_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class S3Server:
    """A running moto server; ``endpoint_url`` is ``http://127.0.0.1:PORT``."""

    endpoint_url: str

    def hub_env(self, bucket: str) -> dict[str, str]:
        """The environment that puts a hub process's storage in ``bucket`` on this server."""
        return {
            "MEDIGAN_STORAGE": "s3",
            "MEDIGAN_S3_BUCKET": bucket,
            "MEDIGAN_S3_ENDPOINT_URL": self.endpoint_url,
            "MEDIGAN_S3_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            **ISOLATING_ENV,
        }

    def storage_settings(self, bucket: str) -> dict[str, Any]:
        """``STORAGES["default"]`` for ``bucket``, as the hub's settings make it from
        :meth:`hub_env` (the same function builds both)."""
        from hub.settings.storage import s3_storage

        return s3_storage(self.hub_env(bucket))

    def client(self) -> Any:
        """A boto3 S3 client for this server alone (explicit endpoint, region, credentials)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def bucket_create(self, bucket: str) -> None:
        """Create ``bucket``: the hub expects its bucket to exist, as an operator makes it."""
        self.client().create_bucket(Bucket=bucket)

    def objects(self, bucket: str) -> dict[str, int]:
        """Every object in ``bucket``: key to size in bytes."""
        found: dict[str, int] = {}
        paginator = self.client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            for entry in page.get("Contents", []):
                found[str(entry["Key"])] = int(entry["Size"])
        return found

    def object_bytes(self, bucket: str, key: str) -> bytes:
        """The bytes of one stored object, read back from the server."""
        body = self.client().get_object(Bucket=bucket, Key=key)["Body"]
        with contextlib.closing(body):
            data: bytes = body.read()
            return data

    def object_put(self, bucket: str, key: str, data: bytes) -> None:
        """Replace an object behind the hub's back (a damaged or tampered store)."""
        self.client().put_object(Bucket=bucket, Key=key, Body=data)


@contextlib.contextmanager
def s3_server(*, log_dir: Path | None = None) -> Iterator[S3Server]:
    """moto in server mode on a free port of 127.0.0.1, a process of its own; stopped after.

    Its log goes to ``log_dir/moto.log`` (a temporary folder unless given), and is shown when
    the server does not come up.
    """
    port = _free_port()
    with contextlib.ExitStack() as cleanup:
        if log_dir is None:
            log_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="moto-")))
        log_path = log_dir / "moto.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                env={**os.environ, **ISOLATING_ENV},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        cleanup.callback(_stop, process)
        _wait_until_listening(port, process, log_path)
        yield S3Server(endpoint_url=f"http://127.0.0.1:{port}")


def _wait_until_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto exited with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"moto did not listen on 127.0.0.1:{port}: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
