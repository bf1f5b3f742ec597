"""Reads on accounts: tokens, reviewers, organisations, members and namespaces."""

from __future__ import annotations

import re

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import QuerySet

from hub.accounts.models import (
    RESERVED_NAMESPACES,
    REVIEWER_GROUP_NAME,
    ApiToken,
    Namespace,
    Organisation,
    OrganisationMember,
)
from hub.accounts.services import token_hash
from medigan_catalog.access import OrgRole
from medigan_catalog.schema import NAMESPACE_PATTERN

_NOT_IN_NAMESPACE = re.compile(r"[^a-z0-9_-]")


def namespace_for_username(username: str) -> str | None:
    """The namespace a username becomes: lower case, each character a namespace cannot hold
    made ``-`` (``Alice.Smith`` -> ``alice-smith``); None when nothing valid remains."""
    candidate = _NOT_IN_NAMESPACE.sub("-", username.lower()).lstrip("-_")[:64]
    return candidate if re.fullmatch(NAMESPACE_PATTERN, candidate) else None


def api_token_get_unrevoked(*, raw_key: str) -> ApiToken | None:
    """The unrevoked token with this key whose user is active (expired or not), or None."""
    return (
        ApiToken.objects.select_related("user")
        .filter(key_sha256=token_hash(raw_key), revoked_at__isnull=True, user__is_active=True)
        .first()
    )


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    """The user's tokens, newest first, revoked and expired ones included."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-pk")


def user_is_reviewer(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether ``user`` is a hub reviewer: superusers and the reviewer group."""
    if not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    groups = getattr(user, "groups", None)
    return bool(groups is not None and groups.filter(name=REVIEWER_GROUP_NAME).exists())


def namespace_roles_of(user: User) -> dict[str, OrgRole]:
    """The user's role in each organisation namespace they belong to (one query)."""
    rows = OrganisationMember.objects.filter(
        user=user, organisation__namespace__isnull=False
    ).values_list("organisation__namespace__name", "role")
    return {str(name): OrgRole(role) for name, role in rows}


def own_namespaces_of(user: User) -> frozenset[str]:
    """The namespaces the user owns personally."""
    return frozenset(Namespace.objects.filter(user=user).values_list("name", flat=True))


def namespace_get(*, name: str) -> Namespace | None:
    """The namespace ``name`` with its owner, or None."""
    return Namespace.objects.select_related("user", "organisation").filter(name=name).first()


def namespace_is_reserved(name: str) -> bool:
    """Whether only the hub's operators publish into ``name``."""
    return name in RESERVED_NAMESPACES


def user_default_namespace(user: AbstractBaseUser | AnonymousUser) -> str | None:
    """The namespace ``user`` publishes into when a push names none of its own.

    Their personal namespace named after the username when they own it (or, for staff, the
    reserved namespace of that name), else their only personal namespace; None otherwise, so
    the user names one on every push.
    """
    if not user.is_authenticated:
        return None
    if not isinstance(user, User):
        return None
    owned = sorted(own_namespaces_of(user))
    preferred = namespace_for_username(user.get_username())
    if preferred in owned:
        return preferred
    if preferred in RESERVED_NAMESPACES and getattr(user, "is_staff", False):
        return preferred
    return owned[0] if len(owned) == 1 else None


def organisation_get(*, name: str) -> Organisation | None:
    """The organisation ``name``, or None."""
    return Organisation.objects.filter(name=name).first()


def organisation_members(organisation: Organisation) -> list[OrganisationMember]:
    """The members of an organisation with their users, by username."""
    return list(organisation.memberships.select_related("user").order_by("user__username"))


def organisations_of(user: User) -> list[OrganisationMember]:
    """The user's memberships, with their organisations, by organisation name."""
    return list(
        OrganisationMember.objects.filter(user=user)
        .select_related("organisation")
        .order_by("organisation__name")
    )


def namespaces_pushable_by(user: User) -> list[Namespace]:
    """Namespaces the user may push into: their own, their organisations' as owner or
    maintainer, and the reserved ones for staff."""
    namespaces = list(Namespace.objects.filter(user=user))
    namespaces += list(
        Namespace.objects.filter(
            organisation__memberships__user=user,
            organisation__memberships__role__in=[OrgRole.OWNER, OrgRole.MAINTAINER],
        ).select_related("organisation")
    )
    if getattr(user, "is_staff", False):
        namespaces += list(Namespace.objects.filter(name__in=sorted(RESERVED_NAMESPACES)))
    unique = {namespace.name: namespace for namespace in namespaces}
    return [unique[name] for name in sorted(unique)]
