"""Reads on accounts: token look-up and reviewer membership."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from hub.accounts.models import REVIEWER_GROUP_NAME, ApiToken
from hub.accounts.services import token_hash


def api_token_get_active(*, raw_key: str) -> ApiToken | None:
    """Return the unrevoked token with this key, or None."""
    return (
        ApiToken.objects.select_related("user")
        .filter(key_sha256=token_hash(raw_key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )


def user_is_reviewer(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether ``user`` may approve or reject releases: superusers and the reviewer group."""
    if not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    groups = getattr(user, "groups", None)
    return bool(groups is not None and groups.filter(name=REVIEWER_GROUP_NAME).exists())
