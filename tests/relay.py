"""A relay in front of a live hub for federation tests: passes requests on, or alters them.

A :class:`Relay` is a real HTTP server on 127.0.0.1 that forwards each request to its target hub
and sends the answer back, headers included (the catalogue's signatures with them). A test makes
it misbehave the way a network or a hostile middlebox would: ``tamper`` rewrites the bodies of
matching paths (the signature header is passed on unchanged, so the signature no longer matches),
``down`` answers every request with a closed connection, as a hub that is not there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

# Hop-by-hop headers, and those httpx has undone (the body is relayed decoded).
_DROPPED = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length"}


@dataclass
class RelayState:
    target: str
    tamper: Callable[[str, bytes], bytes] | None = None
    down: bool = False
    paths: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        state = self.server.state
        state.paths.append(self.path)
        if state.down:
            self.close_connection = True
            self.connection.close()
            return
        headers = {
            key: value
            for key, value in self.headers.items()
            if key.lower() in ("authorization", "range", "if-none-match")
        }
        with httpx.Client(timeout=60) as client:
            answer = client.get(state.target + self.path, headers=headers)
        body = answer.content
        if state.tamper is not None:
            body = state.tamper(self.path, body)
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in _DROPPED:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: RelayState


@dataclass
class Relay:
    url: str
    state: RelayState


@contextmanager
def relay(target: str) -> Iterator[Relay]:
    """A relay to ``target`` on a free port of 127.0.0.1, stopped on exit."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = RelayState(target=target.rstrip("/"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Relay(url=f"http://127.0.0.1:{server.server_address[1]}", state=server.state)
    finally:
        server.shutdown()
        server.server_close()
