"""DRF authentication by ``Authorization: Token <key>`` against hashed API tokens."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from hub.accounts.selectors import api_token_get_active
from hub.accounts.services import api_token_touch


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """Authenticate a request by its API token; no header means anonymous."""

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in {b"token", b"bearer"}:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError as error:
            raise exceptions.AuthenticationFailed("Malformed token.") from error
        token = api_token_get_active(raw_key=raw_key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
