"""The access-control part of the hub-to-client wire format: visibility, roles, scopes, tokens.

Defined once, here; the hub answers with these models and the client parses them.

- :class:`Visibility` of a model: ``public`` (everyone), ``internal`` (any signed-in user of the
  hub), ``private`` (members of the organisation that owns its namespace).
- :class:`OrgRole` of an organisation member: ``owner`` manages members and settings,
  ``maintainer`` pushes and deprecates, ``reviewer`` reviews the organisation's non-public
  releases, ``reader`` sees its private models. Each role can do what the roles after it can.
- :class:`TokenScope` of an API token: ``read`` (see what its user may see beyond the public
  catalogue), ``push``, ``review`` and ``admin`` (manage organisations, namespaces, visibility).
- The documents of tokens (``/api/v1/tokens``), organisations and their members, namespaces and a
  model's visibility; their paths are built in :mod:`medigan_catalog.snapshot` with every other.

docs/access.md has the table of roles and actions that the hub enforces.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.schema import NAMESPACE_PATTERN

# Tokens live this long unless their creator asks for another lifetime (at most the maximum).
DEFAULT_TOKEN_DAYS: Final = 90
MAX_TOKEN_DAYS: Final = 366


class Visibility(StrEnum):
    """Who may see a model and its releases."""

    PUBLIC = "public"
    INTERNAL = "internal"
    PRIVATE = "private"


class OrgRole(StrEnum):
    """A member's role in an organisation, strongest first."""

    OWNER = "owner"
    MAINTAINER = "maintainer"
    REVIEWER = "reviewer"
    READER = "reader"

    def includes(self, other: OrgRole) -> bool:
        """Whether this role may do everything ``other`` may (an owner is also a reader)."""
        order = list(OrgRole)
        return order.index(self) <= order.index(other)


class TokenScope(StrEnum):
    """What an API token may be used for."""

    READ = "read"
    PUSH = "push"
    REVIEW = "review"
    ADMIN = "admin"


# What a token gets when its creator names no scopes: enough to use and contribute, not to
# review or administer.
DEFAULT_TOKEN_SCOPES: Final = (TokenScope.READ, TokenScope.PUSH)


class ScopeMissingError(CatalogError):
    """The token lacks the scope an operation needs."""

    code = ErrorCode.SCOPE_MISSING


class _AccessModel(BaseModel):
    """Frozen, and tolerant of fields a newer hub adds."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)


class TokenRequest(_AccessModel):
    """``POST /api/v1/tokens``: a new token for the caller.

    ``namespace`` restricts it to one namespace (pushes, reviews and non-public reads outside it
    are refused); ``expires_in_days`` defaults to :data:`DEFAULT_TOKEN_DAYS`.
    """

    name: str = Field(min_length=1, max_length=100)
    scopes: tuple[TokenScope, ...] = DEFAULT_TOKEN_SCOPES
    namespace: str | None = Field(default=None, pattern=NAMESPACE_PATTERN)
    expires_in_days: int = Field(default=DEFAULT_TOKEN_DAYS, ge=1, le=MAX_TOKEN_DAYS)


class TokenInfo(_AccessModel):
    """A token as listed: never its key, which only :class:`TokenCreated` carries, once."""

    id: int
    name: str
    key_prefix: str
    scopes: tuple[TokenScope, ...]
    namespace: str | None = None
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class TokenCreated(TokenInfo):
    """The answer to ``POST /api/v1/tokens``: the token and its key, shown only this once."""

    key: str = Field(min_length=1)


class TokenList(_AccessModel):
    """``GET /api/v1/tokens``: the caller's tokens, newest first, revoked ones included."""

    tokens: tuple[TokenInfo, ...] = ()


class Membership(_AccessModel):
    """One member of an organisation and their role."""

    username: str
    role: OrgRole


class MemberRequest(_AccessModel):
    """``POST …/organisations/<name>/members``: add a user, or change their role."""

    username: str = Field(min_length=1, max_length=150)
    role: OrgRole = OrgRole.READER


class OrganisationRequest(_AccessModel):
    """``POST /api/v1/organisations``: a new organisation and its namespace of the same name."""

    name: str = Field(pattern=NAMESPACE_PATTERN)
    title: str = Field(default="", max_length=200)


class Organisation(_AccessModel):
    """An organisation as its members see it; ``role`` is the caller's."""

    name: str
    title: str = ""
    role: OrgRole | None = None
    members: tuple[Membership, ...] = ()
    created_at: datetime | None = None


class OrganisationList(_AccessModel):
    """``GET /api/v1/organisations``: the organisations the caller belongs to."""

    organisations: tuple[Organisation, ...] = ()


class NamespaceRequest(_AccessModel):
    """``POST /api/v1/namespaces``: a namespace of the caller's own."""

    name: str = Field(pattern=NAMESPACE_PATTERN)


class Namespace(_AccessModel):
    """A namespace, whose owner is a user or an organisation (exactly one of the two)."""

    name: str
    user: str | None = None
    organisation: str | None = None
    can_push: bool = False


class NamespaceList(_AccessModel):
    """``GET /api/v1/namespaces``: the namespaces the caller may push into."""

    namespaces: tuple[Namespace, ...] = ()


class VisibilityRequest(_AccessModel):
    """``POST …/models/<ns>/<name>/visibility``: change who sees a model.

    Making a model public needs a hub reviewer: asked by anyone else, it waits as a request
    that a hub reviewer approves (``…/visibility/review``).
    """

    visibility: Visibility
    note: str = Field(default="", max_length=2000)


class VisibilityReview(_AccessModel):
    """``POST …/visibility/review``: a hub reviewer's decision on a pending request."""

    decision: str = Field(pattern=r"^(approve|reject)$")
    note: str = Field(default="", max_length=2000)


class VisibilityState(_AccessModel):
    """A model's visibility, and the change that waits for a hub reviewer, if any."""

    model_id: str
    visibility: Visibility
    requested: Visibility | None = None
    requested_by: str | None = None


class TokenSummary(_AccessModel):
    """The calling token in ``GET /api/v1/me`` (``id`` is what ``DELETE …/tokens/<id>`` takes)."""

    id: int | None = None
    scopes: tuple[TokenScope, ...]
    namespace: str | None = None
    expires_at: datetime | None = None


class AccountInfo(_AccessModel):
    """``GET /api/v1/me``: the caller, where they may push, and what their token allows.

    ``namespace`` is where the hub lets this user publish by default (their own namespace, the
    username as a namespace); ``None`` when they have none, so every push names one.
    ``namespaces`` are all the namespaces they may push into (their own and those of the
    organisations they maintain); ``reserved_namespaces`` are the namespaces only the hub's
    operators publish into. ``token`` describes the calling token (``None`` for a session).
    """

    username: str = Field(min_length=1)
    namespace: str | None = None
    namespaces: tuple[str, ...] = ()
    reserved_namespaces: tuple[str, ...] = ()
    organisations: tuple[Organisation, ...] = ()
    hub_reviewer: bool = False
    token: TokenSummary | None = None
