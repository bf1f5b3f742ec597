"""DRF authentication: ``Authorization: Token <key>`` against hashed API tokens, and HTTP Basic
with a password on the one endpoint that turns a password into a token.

Both count failures per client address and refuse with ``429`` past the limit
(:mod:`hub.accounts.throttling`) before looking at the credential.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from hub.accounts.selectors import api_token_get_unrevoked
from hub.accounts.services import api_token_touch
from hub.accounts.throttling import auth_blocked, auth_failure_record, client_address
from hub.api.errors import ApiError
from medigan_catalog.errors import ErrorCode


class TooManyFailures(exceptions.Throttled):
    """``429`` with ``Retry-After``: this address failed to authenticate too often."""

    default_code = ErrorCode.THROTTLED.value


def _refuse_if_blocked(request: Request) -> str:
    address = client_address(request)
    blocked = auth_blocked(address)
    if blocked is not None:
        raise TooManyFailures(
            wait=blocked.retry_after_seconds,
            detail=(
                f"too many failed sign-ins from this address; retry in "
                f"{blocked.retry_after_seconds} s"
            ),
        )
    return address


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """Authenticate a request by its API token; no header means anonymous."""

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in {b"token", b"bearer"}:
            return None
        address = _refuse_if_blocked(request)
        if len(header) != 2:
            auth_failure_record(address)
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError as error:
            auth_failure_record(address)
            raise exceptions.AuthenticationFailed("Malformed token.") from error
        token = api_token_get_unrevoked(raw_key=raw_key)
        if token is None:
            auth_failure_record(address)
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if token.expires_at is not None and token.expires_at <= timezone.now():
            auth_failure_record(address)
            raise ApiError(
                ErrorCode.TOKEN_EXPIRED,
                f"the token {token.key_prefix}… expired at {token.expires_at.isoformat()}; "
                "create a new one (medigan-client login)",
            )
        api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class PasswordAuthentication(authentication.BasicAuthentication):
    """HTTP Basic with the user's password, throttled like tokens; only for creating tokens."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != b"basic":
            return None
        address = _refuse_if_blocked(request)
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            if not getattr(request, "_medigan_password_checked", False):
                # A malformed header; a wrong password was counted by the user_login_failed
                # receiver (hub.accounts.receivers), as the admin's sign-in is.
                auth_failure_record(address)
            raise

    def authenticate_credentials(
        self, userid: str, password: str, request: Any = None
    ) -> tuple[Any, None]:
        if request is not None:
            request._medigan_password_checked = True
        user = authenticate(request=request, username=userid, password=password)
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed("Invalid username or password.")
        return user, None
