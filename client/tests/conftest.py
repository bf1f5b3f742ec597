"""Fixtures of the client tests: a real HTTP hub on 127.0.0.1, cards, and model packages on disk.

``FakeHub`` is a ``ThreadingHTTPServer`` that speaks the contract's hub API (catalog with ETag
and 304, artifacts with Range and ``X-Checksum-Sha256``, push answering 202, release status and
review). Tests change its state directly and read its request log to count traffic.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import re
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from medigan_catalog.snapshot import CATALOG_PATH, RELEASES_PATH, artifact_path
from medigan_client.settings import ClientSettings

# The example snapshot of docs/schema/, which the hub's API test validates against the hub too.
EXAMPLE_SNAPSHOT = Path(__file__).resolve().parents[2] / "docs" / "schema" / "snapshot.example.json"


@dataclass
class Received:
    """One request as the fake hub saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class FakeHubState:
    """What the fake hub serves; tests mutate it."""

    serial: int = 1
    releases: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    announced_sha256: dict[str, str] = field(default_factory=dict)
    support_range: bool = True
    token: str = "secret-token"
    fail_next: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    pushes: list[dict[str, Any]] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    log: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Artifact bodies: the next responses stop after this many bytes and drop the connection.
    cut_artifact_after: list[int] = field(default_factory=list)
    # When set, an artifact body stops half way until the event is set (or 60 s pass).
    artifact_gate: threading.Event | None = None
    # Throttle: artifact bodies go out in chunks of this many bytes with a pause after each.
    artifact_chunk_bytes: int = 0
    artifact_chunk_delay_seconds: float = 0.0

    def etag(self) -> str:
        return f'"catalog-{self.serial}"'

    def catalog(self, base_url: str) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "generated_at": "2025-01-01T00:00:00+00:00",
            "hub": {"url": base_url},
            "releases": self.releases,
        }

    def requests_to(self, prefix: str) -> list[Received]:
        return [r for r in self.log if r.path.startswith(prefix)]


_RELEASE_PATH = re.compile(
    r"^/api/v1/models/(?P<ns>[^/]+)/(?P<name>[^/]+)/releases/(?P<version>[^/]+)"
    r"(?P<rest>/.*)?$"
)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    @property
    def state(self) -> FakeHubState:
        return self.server.state

    def _record(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.state.lock:
            self.state.log.append(
                Received(self.command, self.path, {k: v for k, v in self.headers.items()}, body)
            )
        return body

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        self._send(
            status,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"code": code, "message": message, "detail": None})

    def _injected_failure(self) -> bool:
        with self.state.lock:
            if not self.state.fail_next:
                return False
            status, headers = self.state.fail_next.pop(0)
        if status == 0:  # drop the connection without any answer
            self.close_connection = True
            return True
        self._json(status, {"code": "server_error", "message": "injected", "detail": None}, headers)
        return True

    def _authorised(self) -> bool:
        return self.headers.get("Authorization") == f"Token {self.state.token}"

    def do_GET(self) -> None:
        self._record()
        if self._injected_failure():
            return
        if self.path == CATALOG_PATH:
            if self.headers.get("If-None-Match") == self.state.etag():
                self._send(304, b"", {"ETag": self.state.etag()})
                return
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            self._json(200, self.state.catalog(base), {"ETag": self.state.etag()})
            return
        match = _RELEASE_PATH.match(self.path)
        if match and match["rest"] and match["rest"].startswith("/artifacts/"):
            self._artifact(self.path)
            return
        if match and not match["rest"]:
            release = f"{match['ns']}/{match['name']}@{match['version']}"
            if release not in self.state.states:
                self._error(404, "not_found", f"no release {release}")
                return
            self._json(200, self._status(release))
            return
        self._error(404, "not_found", f"nothing at {self.path}")

    def _status(self, release: str) -> dict[str, Any]:
        model_id, version = release.split("@")
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        return {
            "model_id": model_id,
            "version": version,
            "state": self.state.states[release],
            "checks": [],
            "events": [],
            "card": None,
            "doi": None,
            "pinned": False,
            "url": f"{base}/api/v1/models/{model_id}/releases/{version}",
        }

    def _artifact(self, path: str) -> None:
        data = self.state.artifacts.get(path)
        if data is None:
            self._error(404, "not_found", f"no artifact at {path}")
            return
        headers = {
            "Content-Type": "application/zip",
            "X-Checksum-Sha256": self.state.announced_sha256.get(
                path, hashlib.sha256(data).hexdigest()
            ),
        }
        requested = self.headers.get("Range")
        if self.state.support_range:
            headers["Accept-Ranges"] = "bytes"
            if requested and requested.startswith("bytes="):
                start = int(requested.removeprefix("bytes=").split("-")[0])
                part = data[start:]
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                self._send_artifact(206, part, headers)
                return
        self._send_artifact(200, data, headers)

    def _send_artifact(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        """Like ``_send``, honouring the state's cut, gate and throttle options for bodies."""
        with self.state.lock:
            cut = self.state.cut_artifact_after.pop(0) if self.state.cut_artifact_after else None
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        payload = body if cut is None else body[:cut]
        pieces = [payload]
        if self.state.artifact_gate is not None:
            pieces = [payload[: len(payload) // 2], payload[len(payload) // 2 :]]
        for number, piece in enumerate(pieces):
            if number and self.state.artifact_gate is not None:
                self.state.artifact_gate.wait(timeout=60)
            step = self.state.artifact_chunk_bytes or max(1, len(piece))
            for offset in range(0, len(piece), step):
                self.wfile.write(piece[offset : offset + step])
                self.wfile.flush()
                if self.state.artifact_chunk_delay_seconds:
                    time.sleep(self.state.artifact_chunk_delay_seconds)
        if cut is not None:
            self.close_connection = True

    def do_POST(self) -> None:
        body = self._record()
        if self._injected_failure():
            return
        if not self._authorised():
            self._error(401, "authentication_required", "a token is required")
            return
        if self.path == RELEASES_PATH:
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body
            )
            fields: dict[str, Any] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                fields[str(name)] = part.get_payload(decode=True)
            card = json.loads(fields["card"])
            release = f"{card['model_id']}@{card['version']}"
            if release in self.state.states:
                self._error(409, "release_exists", f"{release} was already pushed")
                return
            with self.state.lock:
                self.state.pushes.append(fields)
                self.state.states[release] = "submitted"
            self._json(202, self._status(release))
            return
        match = _RELEASE_PATH.match(self.path)
        if match and match["rest"] == "/review":
            release = f"{match['ns']}/{match['name']}@{match['version']}"
            decision = json.loads(body)["decision"]
            if self.state.states.get(release) != "in_review":
                self._error(409, "transition_not_allowed", f"{release} is not in review")
                return
            self.state.states[release] = "approved" if decision == "approve" else "rejected"
            self._json(200, self._status(release))
            return
        self._error(404, "not_found", f"nothing at {self.path}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FakeHubState):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@dataclass
class FakeHub:
    """A running fake hub: its URL and its state."""

    url: str
    state: FakeHubState
    server: _Server

    def artifact_url(self, model_id: str, version: str, filename: str) -> str:
        return f"{self.url}{self.artifact_path(model_id, version, filename)}"

    @staticmethod
    def artifact_path(model_id: str, version: str, filename: str) -> str:
        return artifact_path(model_id, version, filename)

    def serve_example_snapshot(self) -> dict[str, Any]:
        """Serve the shared example snapshot's releases (at its serial); return the document."""
        document: dict[str, Any] = json.loads(EXAMPLE_SNAPSHOT.read_text(encoding="utf-8"))
        self.state.releases = list(document["releases"])
        self.state.serial = document["serial"]
        return document

    def publish(self, card: dict[str, Any], package_zip: Path) -> dict[str, Any]:
        """Serve ``package_zip`` as the card's package and list the release in the catalogue."""
        data = package_zip.read_bytes()
        path = self.artifact_path(card["model_id"], card["version"], package_zip.name)
        self.state.artifacts[path] = data
        published = dict(card)
        published["artifacts"] = [
            {
                "role": "package",
                "filename": package_zip.name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "urls": [self.url + path],
            }
        ]
        self.state.releases.append(
            {
                "model_id": card["model_id"],
                "version": card["version"],
                "published_at": "2025-01-01T00:00:00+00:00",
                "card": published,
            }
        )
        self.state.serial += 1
        return published


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """A fake hub listening on 127.0.0.1 on a free port, stopped after the test."""
    state = FakeHubState()
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield FakeHub(
            url=f"http://127.0.0.1:{server.server_address[1]}", state=state, server=server
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def settings(tmp_path: Path, hub: FakeHub) -> ClientSettings:
    """Settings pointing at the fake hub with a cache inside tmp_path."""
    return ClientSettings(
        hub_url=hub.url, token=hub.state.token, cache_dir=tmp_path / "cache", timeout=5.0
    )


def _make_card(
    model_id: str = "zoo/noise-8",
    version: str = "1.0.0",
    *,
    kind: str = "v2",
    modality: list[str] | None = None,
    title: str = "Noise images for tests",
    model_type: str = "DCGAN",
    fid: float | None = None,
    height: int = 8,
    width: int = 8,
    channels: int = 1,
) -> dict[str, Any]:
    """A valid package card (artifacts empty, as inside a package directory)."""
    card: dict[str, Any] = {
        "schema_version": "1.0",
        "model_id": model_id,
        "version": version,
        "runtime": {"kind": kind, "entry_point": "generate", "dependencies": ["numpy"]},
        "generation_arguments": [
            {
                "name": "brightness",
                "type": "int",
                "default": 128,
                "minimum": 0,
                "maximum": 255,
                "help": "mean grey value",
            }
        ],
        "output": {
            "height": height,
            "width": width,
            "channels": channels,
            "dtype": "uint8",
            "value_range": [0, 255],
        },
        "artifacts": [],
        "provenance": {"authors": ["Test Author"], "licence": "MIT"},
        "selection": {
            "modality": modality or ["X-ray", "Chest X-ray"],
            "organ": ["chest"],
            "type": model_type,
            "tags": ["test"],
            "performance": {"FID": fid},
        },
        "description": {"title": title, "version": version},
    }
    return card


V2_INIT = '''
"""A v2 test package: numpy noise around a brightness, deterministic per seed."""
import numpy as np

from .noise import spread


def generate(num_samples, *, seed, device, brightness=128):
    rng = np.random.default_rng(seed)
    values = rng.normal(brightness, spread(), size=(num_samples, {height}, {width}))
    return np.clip(values, 0, 255).astype(np.uint8)
'''

LEGACY_INIT = '''
"""A medigan-legacy test package: returns a list of images, reads its weights file."""
import os

import numpy as np


def generate(model_file, num_samples, output_path, save_images, brightness=128):
    with open(model_file) as handle:
        offset = int(handle.read().strip())
    images = []
    for _ in range(num_samples):
        image = np.random.randint(0, 50, size=({height}, {width}, 1)) + brightness + offset
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    if save_images:
        raise AssertionError("the client asks for arrays, never files")
    return images
'''


def _write_package(
    directory: Path, card: dict[str, Any], *, init_source: str | None = None
) -> Path:
    """Write a model package (card.json, __init__.py, helpers) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    height = card["output"]["height"]
    width = card["output"]["width"]
    if init_source is None:
        template = LEGACY_INIT if card["runtime"]["kind"] == "medigan-legacy" else V2_INIT
        init_source = template.replace("{height}", str(height)).replace("{width}", str(width))
    (directory / "__init__.py").write_text(textwrap.dedent(init_source), encoding="utf-8")
    (directory / "noise.py").write_text("def spread():\n    return 20.0\n", encoding="utf-8")
    if card["runtime"]["kind"] == "medigan-legacy":
        (directory / "DCGAN.pt").write_text("7\n", encoding="utf-8")
    (directory / "card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return directory


def _zip_package(directory: Path, destination: Path) -> Path:
    """Zip a package directory deterministically (the catalogue's packaging rules)."""
    from medigan_catalog.packaging import build_deterministic_zip

    destination.parent.mkdir(parents=True, exist_ok=True)
    build_deterministic_zip(directory, destination)
    return destination


MakeCard = Callable[..., dict[str, Any]]
WritePackage = Callable[..., Path]
ZipPackage = Callable[[Path, Path], Path]


@pytest.fixture
def make_card() -> MakeCard:
    """Build a valid package card: ``make_card(model_id=..., version=..., kind=...)``."""
    return _make_card


@pytest.fixture
def write_package() -> WritePackage:
    """Write a package: ``write_package(directory, card, init_source=None)``."""
    return _write_package


@pytest.fixture
def zip_package() -> ZipPackage:
    """Zip a package directory deterministically: ``zip_package(directory, destination)``."""
    return _zip_package


@pytest.fixture
def publish(hub: FakeHub, tmp_path: Path) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Write, zip and publish a package for a card on the fake hub; returns the catalogue card."""

    def run(card: dict[str, Any]) -> dict[str, Any]:
        slug = f"{card['model_id'].replace('/', '_')}-{card['version']}"
        package = _write_package(tmp_path / "src" / slug, card)
        archive = _zip_package(package, tmp_path / "dist" / f"{slug}.zip")
        return hub.publish(card, archive)

    return run


@pytest.fixture
def published(publish: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """One v2 release (zoo/noise-8@1.0.0) published on the fake hub; its catalogue card."""
    return publish(_make_card())
