"""The tests' socket guard: a connection to anything but this machine fails the test, loudly.

Every test suite of the repository (the server's here, the catalog's and the client's) runs
with it: this module is a pytest plugin whose autouse fixture guards each test, loaded with
``-p tests.socket_guard`` (pyproject's ``addopts``) and, where only the catalog and the client
are installed (``make test-nodjango``), with ``-p socket_guard`` and ``tests/`` on the path.
Tests talk to servers they start themselves, on 127.0.0.1, localhost, ::1 or a unix socket; a
connection anywhere else means a test that depends on a network CI does not have, or code under
test reaching out when it should not.

``socket.socket.connect`` and ``connect_ex`` are replaced for the duration of each test (what
``socket.create_connection``, ``http.client``, urllib3, httpx and asyncio all end in). A refused
attempt raises :class:`NonLoopbackConnectionError`, an ``AssertionError`` so that HTTP libraries
do not mistake it for an unreachable host, and is also recorded: a test whose code swallowed
the error still fails when it ends. Name lookups are left alone: they fail by themselves where
there is no network, and an answer is only used through ``connect``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["NonLoopbackConnectionError", "SocketGuard", "guard_sockets", "is_loopback"]


class NonLoopbackConnectionError(AssertionError):
    """A test tried to connect to an address that is not this machine's."""


def is_loopback(address: object) -> bool:
    """Whether ``connect(address)`` stays on this machine.

    Unix socket paths and other non-IP addresses (netlink) never leave it; for IP addresses
    the host must be a loopback address (127.0.0.0/8, ::1, ::ffff:127.x) or ``localhost``.
    """
    if not isinstance(address, tuple) or not address or not isinstance(address[0], str):
        return True
    host = address[0].lower()
    if host in ("", "localhost") or host.endswith(".localhost"):
        return True  # "" is INADDR_ANY, which connect() reaches on this machine
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name other than localhost: it could resolve to anywhere
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


class SocketGuard:
    """Replaces ``socket.socket.connect`` and ``connect_ex`` with loopback-only versions."""

    def __init__(self) -> None:
        self.refused: list[object] = []

    def _refuse(self, address: object) -> NonLoopbackConnectionError:
        self.refused.append(address)
        return NonLoopbackConnectionError(
            f"a test tried to connect to {address!r}; tests may only reach this machine "
            "(127.0.0.1, localhost, ::1, unix sockets): see tests/socket_guard.py"
        )

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Guard every socket until ``monkeypatch`` is undone."""
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex

        # A refused socket is closed here: its owner may not (socket.create_connection closes
        # only on OSError), and a leaked socket would fail a later test with a ResourceWarning.
        def connect(sock: socket.socket, address: Any) -> None:
            if not is_loopback(address):
                sock.close()
                raise self._refuse(address)
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            if not is_loopback(address):
                sock.close()
                raise self._refuse(address)
            return real_connect_ex(sock, address)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)

    def check(self) -> None:
        """Fail the test if any connection was refused, even one whose error was swallowed."""
        if self.refused:
            addresses = ", ".join(repr(address) for address in self.refused)
            pytest.fail(f"the test tried to connect off this machine: {addresses}")


def guard_sockets() -> Iterator[SocketGuard]:
    """The body of each suite's autouse fixture: guard the test's sockets, then check them.

    It uses a monkeypatch of its own rather than the ``monkeypatch`` fixture, so a test that
    patches ``connect`` itself (to watch for any connection at all) is undone first and the
    guard restores the real methods last.
    """
    guard = SocketGuard()
    with pytest.MonkeyPatch.context() as monkeypatch:
        guard.install(monkeypatch)
        yield guard
    guard.check()


@pytest.fixture(autouse=True)
def socket_guard() -> Iterator[SocketGuard]:
    """Connections off this machine fail the test."""
    yield from guard_sockets()
