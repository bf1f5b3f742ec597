"""Writes on accounts: creating users, reviewers and API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.utils import timezone

from hub.accounts.models import REVIEWER_GROUP_NAME, ApiToken

TOKEN_PREFIX = "mgh_"  # noqa: S105 - a visible prefix, not a secret


def token_hash(raw_key: str) -> str:
    """Return the stored form of a token key."""
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user`` and return it with its key, which is shown only this once."""
    raw_key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, key_prefix=raw_key[:12], key_sha256=token_hash(raw_key)
    )
    return token, raw_key


def api_token_revoke(*, token: ApiToken) -> None:
    """Revoke a token; it stops authenticating at once."""
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])


def api_token_touch(*, token: ApiToken) -> None:
    """Record that a token was used (at most once a minute, to spare the database)."""
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)


REVIEWER_PERMISSIONS = (
    "view_generativemodel",
    "view_release",
    "view_releasecheck",
    "view_releaseevent",
    "view_artifact",
)


def reviewer_group_get_or_create() -> Group:
    """Return the group whose members may see releases in the admin and approve or reject them."""
    group, _ = Group.objects.get_or_create(name=REVIEWER_GROUP_NAME)
    permissions = Permission.objects.filter(
        content_type__app_label="registry", codename__in=REVIEWER_PERMISSIONS
    )
    group.permissions.add(*permissions)
    return group


@transaction.atomic
def user_get_or_create(
    *,
    username: str,
    email: str = "",
    password: str | None = None,
    is_staff: bool = False,
    is_superuser: bool = False,
    reviewer: bool = False,
) -> User:
    """Create a user if missing (idempotent); set the password only when one is given."""
    user, _ = User.objects.get_or_create(
        username=username,
        defaults={"email": email, "is_staff": is_staff, "is_superuser": is_superuser},
    )
    if password is not None:
        user.set_password(password)
        user.save(update_fields=["password"])
    if reviewer:
        user.groups.add(reviewer_group_get_or_create())
    return user
