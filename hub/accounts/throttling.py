"""Failed sign-ins counted per client address, and refused with ``429`` past a limit.

Every way to authenticate counts: a wrong, revoked or expired API token, a wrong password on
``POST /api/v1/tokens`` (HTTP Basic) and a failed admin sign-in. After
``MEDIGAN_AUTH_FAILURE_LIMIT`` failures from one address within a window of
``MEDIGAN_AUTH_FAILURE_WINDOW_SECONDS``, further attempts from it are answered ``429`` with
``Retry-After`` (the rest of the window) before any credential is looked at, so guessing tokens
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


def _window() -> tuple[str, int]:
    length = int(settings.MEDIGAN_AUTH_FAILURE_WINDOW_SECONDS)
    now = time.time()
    index = int(now // length)
    remaining = max(1, math.ceil((index + 1) * length - now))
    return f"{index}", remaining


def _key(address: str, window: str) -> str:
    return f"{_KEY_PREFIX}:{address}:{window}"


def auth_blocked(address: str) -> Blocked | None:
    """The block on ``address`` when it failed too often in this window, else None."""
    window, remaining = _window()
    failures = cache.get(_key(address, window), 0)
    if int(failures) >= int(settings.MEDIGAN_AUTH_FAILURE_LIMIT):
        return Blocked(int(failures), remaining)
    return None


def auth_failure_record(address: str) -> int:
    """Count one failed sign-in from ``address``; return the failures in this window."""
    window, remaining = _window()
    key = _key(address, window)
    # add() is a no-op when the key exists; incr() is atomic on Redis (the database cache reads
    # and writes, which may undercount under a race: a limit, not a ledger).
    cache.add(key, 0, timeout=remaining + 1)
    try:
        failures = int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=remaining + 1)
        failures = 1
    if failures == int(settings.MEDIGAN_AUTH_FAILURE_LIMIT):
        logger.warning("authentication failures from %s reached %d; refusing", address, failures)
    return failures
