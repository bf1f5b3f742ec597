"""Refuses the sign-in forms (the admin's, the contributors') with ``429`` from an address that
failed too often."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from hub.accounts.throttling import auth_blocked, client_address


class AdminLoginThrottleMiddleware:
    """Before a sign-in form checks a password, refuse an address past the failure limit."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self._login_paths: frozenset[str] | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            if self._login_paths is None:
                self._login_paths = frozenset({reverse("admin:login"), reverse("web-login")})
            if request.path in self._login_paths:
                blocked = auth_blocked(client_address(request))
                if blocked is not None:
                    response = HttpResponse(
                        f"Too many failed sign-ins from this address; retry in "
                        f"{blocked.retry_after_seconds} s.\n",
                        status=429,
                        content_type="text/plain; charset=utf-8",
                    )
                    response["Retry-After"] = str(blocked.retry_after_seconds)
                    return response
        return self.get_response(request)
