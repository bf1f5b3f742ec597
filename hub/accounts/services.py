"""Writes on accounts: users, reviewers, API tokens, organisations, members and namespaces."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.contrib.auth.models import Group, Permission, User
from django.db import IntegrityError, transaction
from django.utils import timezone

from hub.accounts.models import (
    RESERVED_NAMESPACES,
    REVIEWER_GROUP_NAME,
    ApiToken,
    Namespace,
    Organisation,
    OrganisationMember,
)
from medigan_catalog.access import (
    DEFAULT_TOKEN_DAYS,
    DEFAULT_TOKEN_SCOPES,
    MAX_TOKEN_DAYS,
    OrgRole,
    TokenScope,
)
from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.schema import NAMESPACE_PATTERN

TOKEN_PREFIX = "mgh_"  # noqa: S105 - a visible prefix, not a secret


class NamespaceTakenError(CatalogError):
    """A namespace (or an organisation, whose name is its namespace) of this name exists."""

    code = ErrorCode.NAMESPACE_TAKEN


class NamespaceReservedError(CatalogError):
    """Only the hub's operators may hold this namespace."""

    code = ErrorCode.PERMISSION_DENIED


class TokenRequestError(CatalogError):
    """A token was asked for with scopes, a namespace or a lifetime it may not have."""

    code = ErrorCode.PERMISSION_DENIED


class LastOwnerError(CatalogError):
    """An organisation would be left without an owner."""

    code = ErrorCode.BAD_REQUEST


def token_hash(raw_key: str) -> str:
    """Return the stored form of a token key."""
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def api_token_create(
    *,
    user: User,
    name: str,
    scopes: Iterable[TokenScope | str] = DEFAULT_TOKEN_SCOPES,
    namespace: str | None = None,
    expires_in_days: int | None = DEFAULT_TOKEN_DAYS,
    within: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for ``user`` and return it with its key, which is shown only this once.

    Every token reads (``read`` is always among its scopes). ``expires_in_days=None`` makes a
    token that never expires, for operators only (``manage.py token_create --days 0``).
    ``within`` is the token the request came with: the new one may not reach further (scopes,
    namespace, expiry), so a leaked narrow token cannot mint a wide one.
    """
    granted = sorted({TokenScope(scope) for scope in scopes} | {TokenScope.READ})
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            raise TokenRequestError(f"a token lives 1 to {MAX_TOKEN_DAYS} days")
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    if namespace is not None and not re.fullmatch(NAMESPACE_PATTERN, namespace):
        raise TokenRequestError(f"{namespace!r} is not a namespace")
    if within is not None:
        expires_at = _within_token(within, granted, namespace, expires_at)
        namespace = namespace or (within.namespace or None)
    raw_key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        key_prefix=raw_key[:12],
        key_sha256=token_hash(raw_key),
        scopes=[scope.value for scope in granted],
        namespace=namespace or "",
        expires_at=expires_at,
    )
    return token, raw_key


def _within_token(
    within: ApiToken,
    granted: list[TokenScope],
    namespace: str | None,
    expires_at: datetime | None,
) -> datetime | None:
    wider = sorted(set(granted) - {TokenScope(scope) for scope in within.scopes})
    if wider:
        names = ", ".join(scope.value for scope in wider)
        raise TokenRequestError(
            f"this token cannot create a token with scopes it lacks itself: {names}"
        )
    if within.namespace and namespace not in (None, within.namespace):
        raise TokenRequestError(
            f"this token is restricted to {within.namespace!r}; so is every token it creates"
        )
    if within.expires_at is not None and (expires_at is None or expires_at > within.expires_at):
        # A token made by a token lives no longer than its maker.
        return within.expires_at
    return expires_at


def api_token_revoke(*, token: ApiToken) -> None:
    """Revoke a token; it stops authenticating at once."""
    if token.revoked_at is None:
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
    """Create a user if missing (idempotent), with the personal namespace of their username.

    The password is set only when one is given. The namespace is the username as a namespace
    (``Alice.Smith`` -> ``alice-smith``), made when it is valid, not reserved and still free.
    """
    from hub.accounts.selectors import namespace_for_username

    user, created = User.objects.get_or_create(
        username=username,
        defaults={"email": email, "is_staff": is_staff, "is_superuser": is_superuser},
    )
    if password is not None:
        user.set_password(password)
        user.save(update_fields=["password"])
    if reviewer:
        user.groups.add(reviewer_group_get_or_create())
    if created:
        personal = namespace_for_username(username)
        if personal is not None and personal not in RESERVED_NAMESPACES:
            Namespace.objects.get_or_create(name=personal, defaults={"user": user})
    return user


class SignUpError(CatalogError):
    """A sign-up that cannot go through: the name is taken, or its namespace would be."""

    code = ErrorCode.BAD_REQUEST


@transaction.atomic
def user_sign_up(*, username: str, email: str, password: str) -> User:
    """A contributor's own account, with the namespace of their username, from the web form.

    Unlike :func:`user_get_or_create` (operators, the seed) it refuses a name that exists, and
    a name whose namespace is reserved or taken, so that every contributor who signs up can
    push under their own name at once.
    """
    from hub.accounts.selectors import namespace_for_username

    if User.objects.filter(username__iexact=username).exists():
        raise SignUpError(f"the name {username!r} is taken", {"field": "username"})
    personal = namespace_for_username(username)
    if personal is None:
        raise SignUpError(
            f"{username!r} gives no namespace: use letters, digits, '-' or '_'",
            {"field": "username"},
        )
    if personal in RESERVED_NAMESPACES or Namespace.objects.filter(name=personal).exists():
        raise SignUpError(
            f"the namespace {personal!r} of that name is taken or reserved", {"field": "username"}
        )
    user = User.objects.create_user(username=username, email=email, password=password)
    Namespace.objects.create(name=personal, user=user)
    return user


def namespace_check_free(name: str) -> None:
    """Refuse a name that is not a namespace, is reserved, or is taken."""
    if not re.fullmatch(NAMESPACE_PATTERN, name):
        raise CatalogError(f"{name!r} is not a valid namespace", code=ErrorCode.BAD_REQUEST)
    if name in RESERVED_NAMESPACES:
        raise NamespaceReservedError(f"the namespace {name!r} is reserved for the hub's operators")
    if Namespace.objects.filter(name=name).exists():
        raise NamespaceTakenError(f"the namespace {name!r} exists already")


@transaction.atomic
def namespace_create(*, user: User, name: str) -> Namespace:
    """Create the namespace ``name`` owned by ``user``."""
    namespace_check_free(name)
    try:
        with transaction.atomic():
            return Namespace.objects.create(name=name, user=user)
    except IntegrityError as error:  # a concurrent request took it between check and insert
        raise NamespaceTakenError(f"the namespace {name!r} exists already") from error


@transaction.atomic
def organisation_create(*, user: User, name: str, title: str = "") -> Organisation:
    """Create an organisation and its namespace of the same name; ``user`` becomes its owner."""
    namespace_check_free(name)
    try:
        with transaction.atomic():
            organisation = Organisation.objects.create(name=name, title=title, created_by=user)
            Namespace.objects.create(name=name, organisation=organisation)
    except IntegrityError as error:
        raise NamespaceTakenError(f"the namespace {name!r} exists already") from error
    OrganisationMember.objects.create(organisation=organisation, user=user, role=OrgRole.OWNER)
    return organisation


@transaction.atomic
def organisation_member_set(
    *, organisation: Organisation, user: User, role: OrgRole
) -> OrganisationMember:
    """Add ``user`` to the organisation with ``role``, or change their role."""
    member = (
        OrganisationMember.objects.select_for_update()
        .filter(organisation=organisation, user=user)
        .first()
    )
    if member is None:
        return OrganisationMember.objects.create(organisation=organisation, user=user, role=role)
    if member.role == OrgRole.OWNER and role != OrgRole.OWNER:
        _check_not_last_owner(organisation, member)
    member.role = role
    member.save(update_fields=["role"])
    return member


@transaction.atomic
def organisation_member_remove(*, organisation: Organisation, user: User) -> bool:
    """Remove ``user`` from the organisation; False when they were not a member."""
    member = (
        OrganisationMember.objects.select_for_update()
        .filter(organisation=organisation, user=user)
        .first()
    )
    if member is None:
        return False
    if member.role == OrgRole.OWNER:
        _check_not_last_owner(organisation, member)
    member.delete()
    return True


def _check_not_last_owner(organisation: Organisation, member: OrganisationMember) -> None:
    owners = (
        OrganisationMember.objects.select_for_update()
        .filter(organisation=organisation, role=OrgRole.OWNER)
        .exclude(pk=member.pk)
    )
    if not owners.exists():
        raise LastOwnerError(
            f"{member.user.get_username()} is the last owner of {organisation.name}; "
            "make another member an owner first"
        )
