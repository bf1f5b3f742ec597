"""Reads on accounts: token look-up, reviewer membership, a user's default namespace."""

from __future__ import annotations

import re
from collections.abc import Collection

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from hub.accounts.models import REVIEWER_GROUP_NAME, ApiToken
from hub.accounts.services import token_hash
from medigan_catalog.schema import NAMESPACE_PATTERN

_NOT_IN_NAMESPACE = re.compile(r"[^a-z0-9_-]")


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


def user_push_namespace(
    *, user: AbstractBaseUser | AnonymousUser, reserved: Collection[str]
) -> str | None:
    """The namespace ``user`` publishes into by default: the username as a namespace.

    The username is lower-cased and each character a namespace cannot hold becomes ``-``
    (``Alice.Smith`` -> ``alice-smith``). ``None`` when nothing valid remains, or when the
    result is a ``reserved`` namespace and the user is not staff (the registry refuses their
    pushes there).
    """
    if not user.is_authenticated:
        return None
    candidate = _NOT_IN_NAMESPACE.sub("-", user.get_username().lower()).lstrip("-_")[:64]
    if not re.fullmatch(NAMESPACE_PATTERN, candidate):
        return None
    if candidate in reserved and not getattr(user, "is_staff", False):
        return None
    return candidate
