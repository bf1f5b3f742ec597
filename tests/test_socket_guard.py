"""The socket guard every suite runs under: loopback and unix sockets pass, anything else fails."""

from __future__ import annotations

import contextlib
import socket
import tempfile
from pathlib import Path

import pytest

from tests.socket_guard import NonLoopbackConnectionError, SocketGuard, is_loopback


@pytest.mark.parametrize(
    "address",
    [
        ("127.0.0.1", 80),
        ("127.8.9.10", 80),
        ("localhost", 80),
        ("::1", 80, 0, 0),
        ("::ffff:127.0.0.1", 80),
        "/run/some.sock",
        b"\0abstract",
    ],
)
def test_loopback_and_unix_addresses_stay_on_this_machine(address: object) -> None:
    assert is_loopback(address)


@pytest.mark.parametrize(
    "address", [("192.0.2.1", 80), ("10.0.0.1", 5432), ("2001:db8::1", 80), ("hub.example", 443)]
)
def test_other_addresses_leave_it(address: object) -> None:
    assert not is_loopback(address)


def test_a_connection_elsewhere_raises_and_is_recorded(socket_guard: SocketGuard) -> None:
    with pytest.raises(NonLoopbackConnectionError, match=r"192\.0\.2\.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with socket.socket() as sock, pytest.raises(NonLoopbackConnectionError):
        sock.connect_ex(("192.0.2.1", 80))
    assert socket_guard.refused == [("192.0.2.1", 80), ("192.0.2.1", 80)]
    socket_guard.refused.clear()  # this test meant to be refused; do not fail it at teardown


def test_a_swallowed_refusal_still_fails_the_test() -> None:
    guard = SocketGuard()
    with pytest.MonkeyPatch.context() as monkeypatch:
        guard.install(monkeypatch)
        with contextlib.suppress(AssertionError):  # what code under test might do
            socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(pytest.fail.Exception, match=r"192\.0\.2\.1"):
        guard.check()


def test_loopback_and_unix_sockets_still_connect() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname(), timeout=5),
    ):
        pass
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "s.sock")
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(path)
            listener.listen()
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(path)
