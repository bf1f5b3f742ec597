"""Account records: organisations and their members, namespaces, and API tokens.

A namespace (the first half of ``namespace/name``) belongs to exactly one user or one
organisation, or to the hub itself (the reserved ones, where only operators publish). Tokens are
stored as hashes, never in clear, with their scopes, an optional namespace restriction and an
expiry.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from medigan_catalog.access import OrgRole, TokenScope

REVIEWER_GROUP_NAME = "reviewers"
# Namespaces that only the hub's operators publish into: the project's own zoo and the imported
# medigan catalogue. Anyone else's push there would impersonate them.
RESERVED_NAMESPACES = frozenset({"zoo", "medigan"})


class Organisation(models.Model):
    """A group that owns a namespace of its name; its members have roles (``OrgRole``)."""

    name = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OrganisationMember(models.Model):
    """A user's role in an organisation."""

    ROLE_CHOICES = [(role.value, role.value) for role in OrgRole]

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="organisation_memberships"
    )
    role = models.CharField(max_length=16, choices=ROLE_CHOICES, default=OrgRole.READER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "user"], name="unique_membership"),
        ]
        ordering = ["organisation__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.organisation} ({self.role})"


class Namespace(models.Model):
    """The first half of a model id, owned by a user, an organisation, or the hub (neither)."""

    name = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="namespaces",
    )
    organisation = models.OneToOneField(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="namespace",
    )
    # The upstream hub whose releases this namespace carries (hub/federation), or "" for a
    # local namespace. Local pushes into a mirrored namespace are refused (a release of the
    # same name could shadow the upstream's) unless an operator declares that the namespace
    # tracks the upstream and takes local releases beside the mirrored ones.
    mirrored_from = models.CharField(max_length=64, blank=True, default="")
    tracks_upstream = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=True) | Q(organisation__isnull=True),
                name="namespace_has_one_owner",
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def _all_scopes() -> list[str]:
    return [scope.value for scope in TokenScope]


class ApiToken(models.Model):
    """A bearer token that lets a user call the API from scripts, within its scopes.

    Only the sha256 of the key is stored, so a leaked database does not leak usable tokens; the
    first characters are kept to tell tokens apart. ``namespace`` (blank: none) restricts pushes,
    reviews and non-public reads to one namespace; ``expires_at`` is null only for tokens made
    before tokens expired.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=12)
    key_sha256 = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=_all_scopes)
    namespace = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"
