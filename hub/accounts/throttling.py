"""Failed sign-ins counted per client address, and refused with ``429`` past a limit.

Every way to authenticate counts: a wrong, revoked or expired API token, a wrong password on
``POST /api/v1/tokens`` (HTTP Basic) and a failed admin sign-in. After
``MEDIGAN_AUTH_FAILURE_LIMIT`` failures from one address within a window of
``MEDIGAN_AUTH_FAILURE_WINDOW_SECONDS`` (opened by its first failure), further attempts from it
are answered ``429`` with ``Retry-After`` (the rest of the window) before any credential is
looked at, so guessing tokens
costs the window per ``limit`` guesses. Successful requests do not reset the count: one valid
token must not launder guesses.

The counts live in Django's cache, which all of the hub's processes share: the database cache
(table ``hub_cache``) by default, Redis where ``CACHE_URL`` names one. The client address is
DRF's (``REMOTE_ADDR``, or ``X-Forwarded-For`` behind ``REST_FRAMEWORK["NUM_PROXIES"]`` proxies).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

_KEY_PREFIX = "medigan:auth-failures"


@dataclass(frozen=True)
class Blocked:
    """An address that failed too often: how many times, and the seconds until it may retry."""

    failures: int
    retry_after_seconds: int


def client_address(request: Any) -> str:
    """The address requests are counted by (DRF's rule, honouring ``NUM_PROXIES``)."""
    return str(BaseThrottle().get_ident(request))


# The clock, replaceable in tests.
_now = time.time


def _window_start(address: str, *, open_one: bool) -> float | None:
    """When the window of ``address`` began (its first counted failure), or None.

    A window is anchored at its first failure, not at the clock's ten-minute marks, so a burst
    that straddles a mark is counted whole. With ``open_one`` a window is opened when none is.
    """
    key = f"{_KEY_PREFIX}:start:{address}"
    window = int(settings.MEDIGAN_AUTH_FAILURE_WINDOW_SECONDS)
    start = cache.get(key)
    if start is not None and _now() - float(start) >= window:
        # Over, whatever the cache's own expiry says (its clock may be another's).
        if not open_one:
            return None
        cache.set(key, _now(), timeout=window)
        start = cache.get(key)
    if start is None and open_one:
        # add() keeps a window another process opened meanwhile; the start key lives exactly
        # as long as its window.
        cache.add(key, _now(), timeout=window)
        start = cache.get(key)
    return None if start is None else float(start)


def _count_key(address: str, start: float) -> str:
    return f"{_KEY_PREFIX}:count:{address}:{start!r}"


def auth_blocked(address: str) -> Blocked | None:
    """The block on ``address`` when it failed too often in its window, else None."""
    start = _window_start(address, open_one=False)
    if start is None:
        return None
    failures = int(cache.get(_count_key(address, start), 0))
    if failures < int(settings.MEDIGAN_AUTH_FAILURE_LIMIT):
        return None
    remaining = start + int(settings.MEDIGAN_AUTH_FAILURE_WINDOW_SECONDS) - _now()
    return Blocked(failures, max(1, math.ceil(remaining)))


def auth_failure_record(address: str) -> int:
    """Count one failed sign-in from ``address``; return the failures in its window."""
    start = _window_start(address, open_one=True)
    assert start is not None
    key = _count_key(address, start)
    lifetime = int(settings.MEDIGAN_AUTH_FAILURE_WINDOW_SECONDS) + 1
    # add() is a no-op when the key exists; incr() is atomic on Redis (the database cache reads
    # and writes, which may undercount under a race: a limit, not a ledger).
    cache.add(key, 0, timeout=lifetime)
    try:
        failures = int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=lifetime)
        failures = 1
    if failures == int(settings.MEDIGAN_AUTH_FAILURE_LIMIT):
        logger.warning("authentication failures from %s reached %d; refusing", address, failures)
    return failures
