"""The client's one way to talk HTTP: a hub session with auth, retries and error mapping.

Every request to the hub goes through :class:`HubSession`: it adds ``Authorization: Token <key>``
and ``User-Agent: medigan-client/<version>``, turns connection failures into
:class:`HubUnreachableError` and error answers into the typed exceptions of
:mod:`medigan_client.errors`. In offline mode it refuses before any traffic. Artifact URLs that
point elsewhere (e.g. Zenodo) use the same session but never receive the hub token.

Retry policy (:class:`RetryPolicy`), a bounded number of attempts in all:

* idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) are retried after a connection failure
  (refused, reset, dropped before the answer) and after 429, 502, 503 and 504; GET and HEAD
  also after 500, since a read cannot have been half applied;
* POST (and PATCH) are retried only when the connection was never made, so an upload is never
  sent twice; any answer from the hub, or a connection dropped after sending, is final;
* the wait before retry ``n`` is ``base * 2**(n-1)`` seconds, capped at ``max_wait_seconds``;
  a ``Retry-After`` header (delta-seconds or HTTP date) replaces it, capped at
  ``max_retry_after_seconds`` so that a hub cannot park the client for hours;
* a 429 whose code is ``throttled`` (too many failed sign-ins from this address) is final
  whatever the method: trying again would count as one more failure and lengthen the wait, so
  it raises :class:`~medigan_client.errors.ThrottledError` at once, carrying the
  ``Retry-After`` seconds for the caller to wait or report.

The sleep function is injectable (``HubSession(sleep=...)``) so that tests observe the waits
instead of spending them.
"""

from __future__ import annotations

import datetime
import email.utils
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from medigan_catalog.errors import ErrorCode
from medigan_client.errors import (
    ClientError,
    HubUnreachableError,
    OfflineError,
    error_from_body,
)
from medigan_client.settings import ClientSettings
from medigan_client.version import __version__

RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# A 500 may come from a write that failed half way; only reads are safe to repeat after it.
RETRY_500_METHODS = frozenset({"GET", "HEAD"})
# Failures where the request may already have reached the hub: retried for idempotent methods.
_AFTER_SEND_ERRORS: tuple[type[Exception], ...] = (
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
# Failures before a single byte was sent: safe to retry whatever the method.
_BEFORE_SEND_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
USER_AGENT = f"medigan-client/{__version__}"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: ``attempts`` tries in all, waits ``base * 2**n`` capped."""

    attempts: int = 3
    base_wait_seconds: float = 0.25
    max_wait_seconds: float = 4.0
    max_retry_after_seconds: float = 10.0

    def backoff_seconds(self, failed_attempts: int) -> float:
        """The wait after ``failed_attempts`` failures (1 for the first) without Retry-After."""
        exponent = max(0, failed_attempts - 1)
        return float(min(self.base_wait_seconds * (2**exponent), self.max_wait_seconds))


def should_retry_status(method: str, status: int) -> bool:
    """Whether an answer with ``status`` to ``method`` is worth sending again."""
    verb = method.upper()
    if verb not in IDEMPOTENT_METHODS:
        return False
    return status in RETRY_STATUSES or (status == 500 and verb in RETRY_500_METHODS)


class _RetryableStatusError(Exception):
    """Internal signal: the answer (429, 5xx) is worth sending the request again for."""

    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def origin_of(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of a URL with the default port filled in, for same-origin tests."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), parts.port or default)


def retry_after_seconds(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP date), None if absent.

    A date in the past means "now" (0); an unreadable value counts as absent. ``now`` (a Unix
    time) defaults to the current time.
    """
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT even when written with "-0000"
        when = when.replace(tzinfo=datetime.UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class HubSession:
    """An ``httpx.Client`` bound to one hub: base URL, token, user agent, retries, error mapping."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._hub_origin = origin_of(settings.hub_url)
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
            transport=transport,
        )

    def __enter__(self) -> HubSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._client.close()

    def url(self, path: str) -> str:
        """The absolute URL of a hub path such as ``/api/v1/catalog``."""
        if path.startswith(("http://", "https://")):
            return path
        return self.settings.hub_url + "/" + path.lstrip("/")

    def is_hub_url(self, url: str) -> bool:
        """Whether ``url`` is on the hub's origin (and may therefore carry the token)."""
        return origin_of(url) == self._hub_origin

    def _headers(self, url: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.settings.token and self.is_hub_url(url):
            headers["Authorization"] = f"Token {self.settings.token}"
        return headers

    def wait_before_retry(self, failed_attempts: int) -> None:
        """Sleep the policy's backoff after ``failed_attempts`` failures (for callers' loops)."""
        self._sleep(self.retry.backoff_seconds(failed_attempts))

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and outcome.failed:
            exc = outcome.exception()
            if isinstance(exc, _RetryableStatusError):
                asked = retry_after_seconds(exc.response)
                if asked is not None:
                    return min(asked, self.retry.max_retry_after_seconds)
        return self.retry.backoff_seconds(state.attempt_number)

    def _retrying(self, method: str) -> Retrying:
        # Only idempotent requests are retried after the hub may have seen them; a POST is
        # retried only when the connection was never made, so a push is never sent twice.
        retryable = _BEFORE_SEND_ERRORS
        if method.upper() in IDEMPOTENT_METHODS:
            retryable = (*retryable, *_AFTER_SEND_ERRORS, _RetryableStatusError)
        return Retrying(
            stop=stop_after_attempt(max(1, self.retry.attempts)),
            wait=self._wait,
            retry=retry_if_exception_type(retryable),
            sleep=self._sleep,
            reraise=True,
        )

    def _check_online(self, url: str) -> None:
        if self.settings.offline:
            raise OfflineError(f"offline mode: not contacting {url}")

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        ok_statuses: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request with retries and return the response (2xx, 304 or ``ok_statuses``).

        With ``stream=True`` the body is not read; the caller must close the response.
        Error answers raise the typed exception from the body; connection failures raise
        :class:`HubUnreachableError` (or, for non-hub URLs, the same error naming that URL).
        """
        url = self.url(path)
        self._check_online(url)
        request = self._client.build_request(
            method, url, headers=self._headers(url, headers), **kwargs
        )
        response: httpx.Response | None = None
        try:
            for attempt in self._retrying(method):
                with attempt:
                    response = self._client.send(request, stream=stream)
                    if should_retry_status(method, response.status_code):
                        response.read()
                        if not _is_throttled(response):
                            response.close()
                            raise _RetryableStatusError(response)
        except _RetryableStatusError as exc:
            raise _error_from_response(exc.response) from None
        except httpx.TimeoutException as exc:
            raise HubUnreachableError(
                f"no answer from {url} within {self.settings.timeout:g} s", detail=str(exc)
            ) from exc
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise HubUnreachableError(f"cannot reach {url}: {reason}", detail=reason) from exc
        assert response is not None
        status = response.status_code
        if status < 400 or status in ok_statuses:
            return response
        if stream:
            response.read()
            response.close()
        raise _error_from_response(response)

    @contextmanager
    def stream(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Iterator[httpx.Response]:
        """Context manager around :meth:`send` with ``stream=True`` that closes the response."""
        response = self.send(method, path, headers=headers, stream=True, **kwargs)
        try:
            yield response
        finally:
            response.close()

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """GET a hub path and decode its JSON body."""
        return _json_of(self.send("GET", path, **kwargs))

    def post_json(self, path: str, payload: object, **kwargs: Any) -> Any:
        """POST a JSON payload to a hub path and decode the JSON answer."""
        return _json_of(self.send("POST", path, json=payload, **kwargs))


def _json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise error_from_body(
            502, {"message": f"{response.request.url} answered with a body that is not JSON"}
        ) from exc


def _is_throttled(response: httpx.Response) -> bool:
    """Whether an answer is the hub's ``throttled`` refusal, which no retry may follow."""
    if response.status_code != 429:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, Mapping) and body.get("code") == ErrorCode.THROTTLED.value


def _error_from_response(response: httpx.Response) -> ClientError:
    body: object = None
    try:
        body = response.json()
    except ValueError:
        body = None
    error = error_from_body(
        response.status_code, body, retry_after_seconds=retry_after_seconds(response)
    )
    if not (isinstance(body, Mapping) and body.get("message")):
        error.message = f"{response.request.url} answered HTTP {response.status_code}"
        error.args = (error.message,)
    return error
