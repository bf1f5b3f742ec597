"""Signal receivers of accounts: every failed password sign-in counts against its address."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from hub.accounts.throttling import auth_failure_record, client_address


@receiver(user_login_failed, dispatch_uid="medigan-count-login-failure")
def count_login_failure(sender: Any, credentials: Any, request: Any = None, **kwargs: Any) -> None:
    """Count a failed sign-in (the admin's form, HTTP Basic on the token endpoint)."""
    if request is not None:
        auth_failure_record(client_address(request))
