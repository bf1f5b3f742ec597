"""Who may see and do what: the one place the hub decides access.

Every read path (catalogue snapshot, search, model and release detail, artifacts, sample grids,
evaluations, leaderboards, the web pages, the admin) asks :func:`release_visible_to` or
:func:`model_visible_to` for its filter, or a :class:`Viewer` method for one object; every write
asks a ``Viewer.may_*`` method. A caller that may not see something gets ``404``, exactly as for
something that does not exist, so existence does not leak.

A :class:`Viewer` is built once per request (:func:`viewer_for`) from the user and the token:

- A model is seen by everyone when ``public``, by any signed-in user when ``internal``, and by
  the members of the organisation owning its namespace (any role) when ``private``.
- A release not (yet) published is seen, on top, by its submitter, by the namespace's owner or
  the organisation's owners, maintainers and reviewers, and, for public and internal models, by
  the hub's reviewers.
- A token's scopes gate what it does (``push``, ``review``, ``admin``); every token reads. Hub-wide
  powers need the matching scope: a hub reviewer's token sees releases in review only with
  ``review``, a superuser's token sees everything only with ``admin``. A session (the admin and
  the web pages) carries every scope of its user.
- A token restricted to a namespace pushes, reviews and sees non-public things only there.

This module sits below the registry and evaluations apps and knows their rows only by field
names, so both filter with the same rule (an evaluation's release is ``release__…``).
docs/access.md has the table of roles and actions; tests/hub/test_access_matrix.py enforces it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import Q

from hub.accounts.models import ApiToken
from hub.accounts.selectors import namespace_roles_of, own_namespaces_of, user_is_reviewer
from medigan_catalog.access import OrgRole, TokenScope, Visibility
from medigan_catalog.lifecycle import VISIBLE_STATES

_ALL_SCOPES = frozenset(TokenScope)
_PUBLISHED = sorted(state.value for state in VISIBLE_STATES)
# Organisation roles that see and follow the organisation's releases before they are published.
_RELEASE_WATCHERS = frozenset({OrgRole.OWNER, OrgRole.MAINTAINER, OrgRole.REVIEWER})
_REVIEWERS = frozenset({OrgRole.OWNER, OrgRole.REVIEWER})
_PUSHERS = frozenset({OrgRole.OWNER, OrgRole.MAINTAINER})


@dataclass(frozen=True)
class CatalogScope:
    """Which published models a viewer's catalogue holds: the key of its snapshot and serial.

    ``everything`` (an administrator), else public ones, internal ones when ``signed_in``, and
    the private ones of ``private_namespaces``.
    """

    everything: bool = False
    signed_in: bool = False
    private_namespaces: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        """A stable name of the scope, safe to show its viewer (it names only their namespaces)."""
        if self.everything:
            return "all"
        if not self.signed_in:
            return "public"
        if not self.private_namespaces:
            return "internal"
        return "internal+" + ",".join(sorted(self.private_namespaces))

    @property
    def tag(self) -> str:
        """A short digest of :attr:`key`, for ETags and cache keys."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:12]

    def sees(self, namespace: str, visibility: str) -> bool:
        """Whether a published model of ``namespace`` with ``visibility`` is in this catalogue."""
        if self.everything or visibility == Visibility.PUBLIC:
            return True
        if visibility == Visibility.INTERNAL:
            return self.signed_in
        return namespace in self.private_namespaces

    def changes_q(self) -> Q:
        """The catalogue changes (``registry.CatalogChange``) this scope is told about."""
        if self.everything:
            return Q()
        seen = [Visibility.PUBLIC.value]
        if self.signed_in:
            seen.append(Visibility.INTERNAL.value)
        condition = Q(visibility_before__in=seen) | Q(visibility_after__in=seen)
        if self.private_namespaces:
            condition |= Q(namespace__in=sorted(self.private_namespaces)) & (
                Q(visibility_before=Visibility.PRIVATE) | Q(visibility_after=Visibility.PRIVATE)
            )
        return condition


PUBLIC_SCOPE = CatalogScope()


@dataclass(frozen=True)
class Viewer:
    """A caller as access control sees them; :data:`ANONYMOUS` is nobody signed in."""

    user_id: int | None = None
    username: str = ""
    scopes: frozenset[TokenScope] = frozenset()
    # The namespace a token is restricted to (None: no restriction).
    token_namespace: str | None = None
    # Namespace -> role, for the organisations the user belongs to.
    org_roles: Mapping[str, OrgRole] = field(default_factory=dict)
    # Namespaces the user owns personally.
    own_namespaces: frozenset[str] = frozenset()
    hub_reviewer: bool = False
    superuser: bool = False
    staff: bool = False

    # -- who the viewer is ------------------------------------------------------------------

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None

    def has_scope(self, scope: TokenScope) -> bool:
        return scope in self.scopes

    @property
    def sees_everything(self) -> bool:
        """An administrator with the ``admin`` scope: every model and release of the hub."""
        return self.superuser and self.has_scope(TokenScope.ADMIN)

    @property
    def reviews_hub(self) -> bool:
        """A hub reviewer with the ``review`` scope (or an administrator)."""
        return self.sees_everything or (self.hub_reviewer and self.has_scope(TokenScope.REVIEW))

    def within_token(self, namespace: str) -> bool:
        """Whether the token's namespace restriction, if any, allows ``namespace``."""
        return self.token_namespace is None or self.token_namespace == namespace

    def role_in(self, namespace: str) -> OrgRole | None:
        """The viewer's organisation role in ``namespace`` (None outside it, or the token's)."""
        if not self.within_token(namespace):
            return None
        return self.org_roles.get(namespace)

    def owns_namespace(self, namespace: str) -> bool:
        """Whether ``namespace`` is the viewer's own (personal) one, within the token."""
        return namespace in self.own_namespaces and self.within_token(namespace)

    def member_namespaces(self) -> frozenset[str]:
        """Namespaces whose private models the viewer sees (any role), within the token."""
        return frozenset(ns for ns in self.org_roles if self.within_token(ns))

    def watched_namespaces(self) -> frozenset[str]:
        """Namespaces whose unpublished releases the viewer follows (as owner, maintainer or
        reviewer, or their own), within the token."""
        watched = {ns for ns, role in self.org_roles.items() if role in _RELEASE_WATCHERS}
        watched |= self.own_namespaces
        return frozenset(ns for ns in watched if self.within_token(ns))

    def catalog_scope(self) -> CatalogScope:
        """The scope of this viewer's catalogue (published models it may see)."""
        if self.sees_everything:
            return CatalogScope(everything=True)
        if not self.signed_in:
            return PUBLIC_SCOPE
        return CatalogScope(signed_in=True, private_namespaces=self.member_namespaces())

    # -- what the viewer sees ---------------------------------------------------------------

    def sees_model(self, namespace: str, visibility: str) -> bool:
        """Whether the viewer sees a model at all (its published releases, its page)."""
        return self.catalog_scope().sees(namespace, visibility)

    def sees_release(
        self,
        *,
        namespace: str,
        visibility: str,
        state: str,
        submitted_by_id: int | None,
        requested_visibility: str = "",
    ) -> bool:
        """Whether the viewer sees one release; the Python twin of :func:`release_visible_to`."""
        if (
            requested_visibility == Visibility.PUBLIC
            and self.reviews_hub
            and self.within_token(namespace)
        ):
            return True
        if not self.sees_model(namespace, visibility):
            return False
        if self.sees_everything or state in _PUBLISHED:
            return True
        if not self.signed_in:
            return False
        if submitted_by_id == self.user_id and self.within_token(namespace):
            return True
        if namespace in self.watched_namespaces():
            return True
        return (
            self.reviews_hub and visibility != Visibility.PRIVATE and self.within_token(namespace)
        )

    # -- what the viewer may do -------------------------------------------------------------

    def may_push_to(self, namespace: str, *, reserved: bool) -> bool:
        """Whether the viewer may push into ``namespace`` (an existing one)."""
        if not (
            self.signed_in and self.has_scope(TokenScope.PUSH) and self.within_token(namespace)
        ):
            return False
        if reserved:
            return self.staff or self.superuser
        return (
            self.sees_everything
            or self.owns_namespace(namespace)
            or self.role_in(namespace) in _PUSHERS
        )

    def may_review(self, *, namespace: str, visibility: str, submitted_by_id: int | None) -> bool:
        """Whether the viewer may approve or reject a release of this model (not their own).

        Releases of public models need a hub reviewer; of internal ones a hub reviewer or the
        organisation's owners and reviewers; of private ones the organisation's.
        """
        if not (self.signed_in and self.has_scope(TokenScope.REVIEW)):
            return False
        if submitted_by_id == self.user_id or not self.within_token(namespace):
            return False
        if self.sees_everything:
            return True
        if visibility != Visibility.PRIVATE and self.reviews_hub:
            return True
        if visibility == Visibility.PUBLIC:
            return False
        return self.role_in(namespace) in _REVIEWERS

    def may_manage_namespace(self, namespace: str) -> bool:
        """Whether the viewer may change the settings (visibility) of a namespace's models."""
        if not (self.signed_in and self.has_scope(TokenScope.ADMIN)):
            return False
        return (
            self.owns_namespace(namespace)
            or self.role_in(namespace) == OrgRole.OWNER
            or self.sees_everything
        )

    def may_manage_organisation(self, namespace: str) -> bool:
        """Whether the viewer may add and remove members of the organisation of ``namespace``."""
        if not (self.signed_in and self.has_scope(TokenScope.ADMIN)):
            return False
        return self.role_in(namespace) == OrgRole.OWNER or self.sees_everything


ANONYMOUS = Viewer()


def viewer_for(user: AbstractBaseUser | AnonymousUser | None, token: Any = None) -> Viewer:
    """The viewer of a user, authenticated by ``token`` (an ``ApiToken``) or by a session."""
    if not isinstance(user, User) or not user.is_authenticated or not user.is_active:
        return ANONYMOUS
    if isinstance(token, ApiToken):
        scopes = frozenset(TokenScope(scope) for scope in token.scopes if scope in _ALL_SCOPES)
        token_namespace = token.namespace or None
    else:
        scopes, token_namespace = _ALL_SCOPES, None
    return Viewer(
        user_id=int(user.pk),
        username=user.get_username(),
        scopes=scopes,
        token_namespace=token_namespace,
        org_roles=namespace_roles_of(user),
        own_namespaces=own_namespaces_of(user),
        hub_reviewer=user_is_reviewer(user),
        superuser=bool(getattr(user, "is_superuser", False)),
        staff=bool(getattr(user, "is_staff", False)),
    )


def request_viewer(request: Any) -> Viewer:
    """The viewer of a DRF or Django request, built once and kept on the request."""
    kept = getattr(request, "_medigan_viewer", None)
    if isinstance(kept, Viewer):
        return kept
    viewer = viewer_for(getattr(request, "user", None), getattr(request, "auth", None))
    request._medigan_viewer = viewer
    return viewer


def model_visible_to(viewer: Viewer, *, via: str = "") -> Q:
    """The filter of models (``via`` the path to one, e.g. ``"generative_model__"``) the
    viewer sees."""
    return catalog_scope_q(viewer.catalog_scope(), via=via)


def catalog_scope_q(scope: CatalogScope, *, via: str = "") -> Q:
    """The filter of models (``via`` the path to one) in a catalogue scope."""
    if scope.everything:
        return Q()
    visibility = f"{via}visibility"
    condition = Q(**{visibility: Visibility.PUBLIC})
    if scope.signed_in:
        condition |= Q(**{visibility: Visibility.INTERNAL})
    if scope.private_namespaces:
        condition |= Q(
            **{
                visibility: Visibility.PRIVATE,
                f"{via}namespace__in": sorted(scope.private_namespaces),
            }
        )
    return condition


def models_pending_review_q(viewer: Viewer, *, via: str = "") -> Q:
    """Models waiting for a hub reviewer to make them public: a hub reviewer sees them (and
    their releases) whatever their visibility, to judge what would become public."""
    if not viewer.reviews_hub:
        return Q(pk__in=[])
    condition = Q(**{f"{via}requested_visibility": Visibility.PUBLIC})
    if viewer.token_namespace is not None:
        condition &= Q(**{f"{via}namespace": viewer.token_namespace})
    return condition


def model_visible_or_pending_q(viewer: Viewer, *, via: str = "") -> Q:
    """Models the viewer sees, and those a hub reviewer judges (:func:`models_pending_review_q`).

    ``Q() | x`` is ``x`` in Django, so "everything" is said by returning before any OR.
    """
    if viewer.sees_everything:
        return Q()
    return model_visible_to(viewer, via=via) | models_pending_review_q(viewer, via=via)


def release_visible_to(viewer: Viewer, *, via: str = "") -> Q:
    """The filter of releases (``via`` the path to one, e.g. ``"release__"``) the viewer sees."""
    if viewer.sees_everything:
        return Q()
    model = f"{via}generative_model__"
    condition = Q(**{f"{via}state__in": _PUBLISHED})
    if viewer.signed_in:
        own = Q(**{f"{via}submitted_by_id": viewer.user_id})
        if viewer.token_namespace is not None:
            own &= Q(**{f"{model}namespace": viewer.token_namespace})
        condition |= own
        watched = viewer.watched_namespaces()
        if watched:
            condition |= Q(**{f"{model}namespace__in": sorted(watched)})
        if viewer.reviews_hub:
            reviewed = ~Q(**{f"{model}visibility": Visibility.PRIVATE})
            if viewer.token_namespace is not None:
                reviewed &= Q(**{f"{model}namespace": viewer.token_namespace})
            condition |= reviewed
    visible = condition & model_visible_to(viewer, via=model)
    if viewer.reviews_hub:
        visible |= models_pending_review_q(viewer, via=model)
    return visible
