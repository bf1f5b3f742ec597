"""The leak matrix: every route of the hub, for every kind of caller and every kind of model.

docs/access.md is the specification. The routes come from Django's URL resolver, so a new
endpoint joins the matrix by itself; one the matrix does not know how to fill (a new route name,
a new path parameter, a new method) fails ``test_every_route_is_in_the_matrix`` and its own cell
with "add it to the matrix", never skipped.

Each cell is one (route, method, actor, object): the request is sent and its status compared
with the one the ORACLE below computes from the tables of docs/access.md, written here again on
purpose and never by calling ``hub/access.py``. Every answer is then searched for the markers
(model name, card title, package bytes, metric value, sample grid bytes) of every object the
actor may not see: lists, search, the snapshot, leaderboards, error messages and the web pages
included. A 404 must also read exactly like the 404 of something that does not exist.

The objects (organisation ``acme`` with a public, an internal, a private model and a private one
waiting to become public, each with one release published and one in review) are built once per
module inside an outer transaction that the module's end rolls back; each cell runs in its own
nested transaction (pytest-django's ``db``), so a cell that writes (a review, a visibility
change, a push, a new member) leaves nothing behind for the next.

The web pages read the session only: an ``Authorization`` header is not a credential there, so
a token-only actor is anonymous on them (and its header must not change what they show).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.http import HttpResponseBase
from django.test import Client as HttpClient
from django.test.utils import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from hub import snapshot
from hub.accounts import services as account_services
from hub.accounts.models import ApiToken
from hub.evaluations.models import Evaluation
from hub.registry import selectors as registry_selectors
from hub.registry import services as registry_services
from hub.registry.models import GenerativeModel, Release
from medigan_catalog.access import OrgRole
from tests import factories

pytestmark = pytest.mark.django_db

ORG = "acme"
# A namespace of the org maintainer's own: the one their restricted token is limited to.
OTHER = "other"
SUBMITTER = "org-maintainer"
REFERENCE = "noise"
# Failed sign-ins are throttled per address; the matrix sends revoked and expired tokens far
# more often than the limit (the 429 has its own test).
AUTH_FAILURE_LIMIT = 1_000_000


# --- the objects --------------------------------------------------------------------------


class Visibility(Enum):
    PUBLIC = "public"
    INTERNAL = "internal"
    PRIVATE = "private"


class State(Enum):
    PUBLISHED = "published"
    IN_REVIEW = "in_review"


@dataclass(frozen=True)
class ModelSpec:
    """A model of ``acme``; ``pending`` ones wait for a hub reviewer to make them public."""

    key: str
    name: str
    visibility: Visibility
    pending_public: bool = False

    @property
    def model_id(self) -> str:
        return f"{ORG}/{self.name}"


@dataclass(frozen=True)
class ReleaseSpec:
    """A release with markers found nowhere else: the leak check looks for each of them."""

    model: ModelSpec
    state: State
    index: int

    @property
    def key(self) -> str:
        return f"{self.model.key}-{self.state.value}"

    @property
    def version(self) -> str:
        return "1.0.0" if self.state is State.PUBLISHED else "1.1.0"

    @property
    def title(self) -> str:
        return f"SECRET-{self.key}-7f3a{self.index}"

    @property
    def package(self) -> bytes:
        return f"PACKAGE-BYTES-{self.key}-c0ffee{self.index}".encode()

    @property
    def filename(self) -> str:
        return f"{self.model.name}-{self.version}.zip"

    @property
    def metric(self) -> float | None:
        """fid_rs of its finished evaluation (published releases only)."""
        return 900 + self.index + 0.654321 if self.state is State.PUBLISHED else None

    @property
    def grid(self) -> bytes:
        return factories.png_bytes(size=9 + self.index)


MODELS = (
    ModelSpec("public", "plain-public-2b6c", Visibility.PUBLIC),
    ModelSpec("internal", "secret-internal-91d0", Visibility.INTERNAL),
    ModelSpec("private", "secret-private-e44a", Visibility.PRIVATE),
    ModelSpec("pending", "secret-pending-5d7b", Visibility.PRIVATE, pending_public=True),
)
RELEASES = tuple(
    ReleaseSpec(model, state, index)
    for index, (model, state) in enumerate(
        (model, state) for model in MODELS for state in (State.PUBLISHED, State.IN_REVIEW)
    )
)
ORG_TITLE = "SECRET-organisation-title-a1b2"
BYSTANDER_TOKEN = "token-of-bystander-9e1d"


# --- the actors ---------------------------------------------------------------------------


class Credential(Enum):
    NONE = "none"
    TOKEN = "token"
    REVOKED = "revoked"
    EXPIRED = "expired"


ALL_SCOPES = frozenset({"read", "push", "review", "admin"})


@dataclass(frozen=True)
class Actor:
    """A kind of caller: a user (or nobody), their token, and whether pages see them signed in.

    ``session``: the web pages see this user signed in (a person with a browser); token-only
    actors are anonymous there.
    """

    key: str
    username: str | None = None
    role: OrgRole | None = None
    hub_reviewer: bool = False
    superuser: bool = False
    scopes: frozenset[str] = ALL_SCOPES
    token_namespace: str | None = None
    credential: Credential = Credential.TOKEN
    session: bool = True

    @property
    def token_name(self) -> str:
        return f"token-of-{self.key}-4c2e"


ACTORS = (
    Actor("anonymous", credential=Credential.NONE, session=False),
    Actor("outsider", "outsider"),
    Actor("org-reader", "org-reader", OrgRole.READER),
    Actor("org-maintainer", SUBMITTER, OrgRole.MAINTAINER),
    Actor("org-reviewer", "org-reviewer", OrgRole.REVIEWER),
    Actor("org-owner", "org-owner", OrgRole.OWNER),
    # Hub reviewers are staff (they work in the admin), like the administrator.
    Actor("hub-reviewer", "hub-reviewer", hub_reviewer=True, scopes=frozenset({"read", "review"})),
    Actor("admin", "hub-admin", superuser=True),
    Actor(
        "token-without-scope",
        SUBMITTER,
        OrgRole.MAINTAINER,
        scopes=frozenset({"read"}),
        session=False,
    ),
    Actor(
        "token-other-namespace", SUBMITTER, OrgRole.MAINTAINER, token_namespace=OTHER, session=False
    ),
    Actor(
        "token-revoked", SUBMITTER, OrgRole.MAINTAINER, credential=Credential.REVOKED, session=False
    ),
    Actor(
        "token-expired", SUBMITTER, OrgRole.MAINTAINER, credential=Credential.EXPIRED, session=False
    ),
)
ACTOR_BY_KEY = {actor.key: actor for actor in ACTORS}


# --- the oracle: docs/access.md, written again ----------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who the hub should take a request for: an actor as seen on an API route or a page."""

    username: str | None = None
    role: OrgRole | None = None
    hub_reviewer: bool = False
    superuser: bool = False
    scopes: frozenset[str] = frozenset()
    token_namespace: str | None = None
    # The refusal every API answer gets (a revoked or expired token), else None.
    refused: tuple[int, str] | None = None

    @property
    def signed_in(self) -> bool:
        return self.username is not None


NOBODY = Caller()


def caller_of(actor: Actor, *, page: bool) -> Caller:
    """``actor`` as the hub should see them on an API route, or on a web page (``page``)."""
    if page:
        if not (actor.session and actor.username):
            return NOBODY
        # "A session (the admin, the web pages) carries all of its user's scopes."
        return Caller(actor.username, actor.role, actor.hub_reviewer, actor.superuser, ALL_SCOPES)
    if actor.credential is Credential.NONE:
        return NOBODY
    if actor.credential is Credential.REVOKED:
        return Caller(refused=(401, "authentication_required"))
    if actor.credential is Credential.EXPIRED:
        return Caller(refused=(401, "token_expired"))
    return Caller(
        actor.username,
        actor.role,
        actor.hub_reviewer,
        actor.superuser,
        actor.scopes | {"read"},
        actor.token_namespace,
    )


def within(caller: Caller, namespace: str) -> bool:
    """A namespace restriction: pushes, reviews and non-public things only in that namespace."""
    return caller.token_namespace is None or caller.token_namespace == namespace


def org_role(caller: Caller) -> OrgRole | None:
    return caller.role if within(caller, ORG) else None


def sees_everything(caller: Caller) -> bool:
    """Superusers with the ``admin`` scope see everything."""
    return caller.superuser and "admin" in caller.scopes and within(caller, ORG)


def hub_reviews(caller: Caller) -> bool:
    """Hub reviewers (the group, and superusers) with the ``review`` scope."""
    return (caller.hub_reviewer or caller.superuser) and "review" in caller.scopes


def in_catalogue(caller: Caller, model: ModelSpec) -> bool:
    """The caller's catalogue scope: public; internal when signed in; private of their
    organisations (any role); everything for an administrator."""
    if sees_everything(caller) or model.visibility is Visibility.PUBLIC:
        return True
    if model.visibility is Visibility.INTERNAL:
        return caller.signed_in
    return org_role(caller) is not None


def sees_model(caller: Caller, model: ModelSpec) -> bool:
    """Its page and published releases; a hub reviewer also sees a model waiting to be public."""
    if in_catalogue(caller, model):
        return True
    return model.pending_public and hub_reviews(caller) and within(caller, ORG)


_WATCHERS = {OrgRole.OWNER, OrgRole.MAINTAINER, OrgRole.REVIEWER}


def sees_release(caller: Caller, release: ReleaseSpec) -> bool:
    if not sees_model(caller, release.model):
        return False
    if release.state is State.PUBLISHED or sees_everything(caller):
        return True
    if not caller.signed_in or not within(caller, ORG):
        return False
    return (
        caller.username == SUBMITTER
        or org_role(caller) in _WATCHERS
        or (hub_reviews(caller) and release.model.visibility is not Visibility.PRIVATE)
        or (hub_reviews(caller) and release.model.pending_public)
    )


def sees_organisation(caller: Caller) -> bool:
    return org_role(caller) is not None or sees_everything(caller)


def may_review(caller: Caller, release: ReleaseSpec) -> bool:
    """Public models: hub reviewers; internal: them or the org's owners and reviewers; private:
    the org's owners and reviewers; an administrator any. Nobody their own release."""
    if caller.username == SUBMITTER or not within(caller, ORG):
        return False
    if sees_everything(caller):
        return True
    visibility = release.model.visibility
    org_reviews = org_role(caller) in {OrgRole.OWNER, OrgRole.REVIEWER}
    if visibility is Visibility.PUBLIC:
        return hub_reviews(caller)
    if visibility is Visibility.INTERNAL:
        return hub_reviews(caller) or org_reviews
    return org_reviews


def is_staff(caller: Caller) -> bool:
    return caller.hub_reviewer or caller.superuser


def manages_namespace(caller: Caller) -> bool:
    """The namespace's owner (the organisation's owners) or an administrator."""
    return org_role(caller) is OrgRole.OWNER or sees_everything(caller)


def may_push(caller: Caller) -> bool:
    if not within(caller, ORG):
        return False
    return org_role(caller) in {OrgRole.OWNER, OrgRole.MAINTAINER} or caller.superuser


@dataclass(frozen=True)
class Expected:
    status: int
    code: str | None = None


OK = Expected(200)
NOT_FOUND = Expected(404, "not_found")
SIGN_IN = Expected(401, "authentication_required")
DENIED = Expected(403, "permission_denied")


SCOPE_MISSING = Expected(403, "scope_missing")


def _signed_in(caller: Caller, then: Callable[[], Expected]) -> Expected:
    return then() if caller.signed_in else SIGN_IN


def expect_release_review(caller: Caller, release: ReleaseSpec) -> Expected:
    if not caller.signed_in:
        return SIGN_IN
    if not sees_release(caller, release):
        return NOT_FOUND
    if "review" not in caller.scopes:
        return SCOPE_MISSING
    if not may_review(caller, release):
        return DENIED
    if release.state is not State.IN_REVIEW:
        return Expected(409, "transition_not_allowed")
    return OK


def expect_release_maintain(caller: Caller, release: ReleaseSpec) -> Expected:
    """Deprecate and yank: the namespace's maintainers (who may push), published releases."""
    if not caller.signed_in:
        return SIGN_IN
    if not sees_release(caller, release):
        return NOT_FOUND
    if "push" not in caller.scopes:
        return SCOPE_MISSING
    if not may_push(caller):
        return DENIED
    if release.state is not State.PUBLISHED:
        return Expected(409, "transition_not_allowed")
    return OK


def expect_release_withdraw(caller: Caller, release: ReleaseSpec) -> Expected:
    """Its submitter before publication; an administrator (admin scope) after it."""
    if not caller.signed_in:
        return SIGN_IN
    if not sees_release(caller, release):
        return NOT_FOUND
    if release.state is State.PUBLISHED:
        return OK if caller.superuser and "admin" in caller.scopes else DENIED
    if "push" not in caller.scopes:
        return SCOPE_MISSING
    return OK if caller.username == SUBMITTER else DENIED


def expect_visibility_change(caller: Caller, model: ModelSpec) -> Expected:
    """The matrix asks to make each model public: that waits for a hub reviewer (202)."""
    if not caller.signed_in:
        return SIGN_IN
    if not sees_model(caller, model):
        return NOT_FOUND
    if "admin" not in caller.scopes:
        return SCOPE_MISSING
    if not manages_namespace(caller):
        return DENIED
    return OK if model.visibility is Visibility.PUBLIC else Expected(202)


def expect_visibility_review(caller: Caller, model: ModelSpec) -> Expected:
    """The matrix rejects the request to make each model public (the org owner asked)."""
    if not caller.signed_in:
        return SIGN_IN
    if not sees_model(caller, model):
        return NOT_FOUND
    if "review" not in caller.scopes:
        return SCOPE_MISSING
    if not hub_reviews(caller):
        return DENIED
    if not model.pending_public:
        return Expected(409, "transition_not_allowed")
    if caller.username == "org-owner":
        return DENIED
    return OK


def expect_member_change(caller: Caller, *, leaving: bool) -> Expected:
    if not caller.signed_in:
        return SIGN_IN
    if not sees_organisation(caller):
        return NOT_FOUND
    if "admin" not in caller.scopes:
        return SCOPE_MISSING
    return OK if leaving or manages_namespace(caller) else DENIED


def expect_evaluation_request(caller: Caller, release: ReleaseSpec) -> Expected:
    """Staff queue evaluations of releases they see. The matrix names an unknown extractor, so
    a caller let through gets 400 and nothing runs."""
    if not caller.signed_in:
        return SIGN_IN
    if not is_staff(caller):
        return DENIED
    return Expected(400, "bad_request") if sees_release(caller, release) else NOT_FOUND


def expect_push(caller: Caller) -> Expected:
    if not caller.signed_in:
        return SIGN_IN
    if "push" not in caller.scopes:
        return SCOPE_MISSING
    return Expected(202) if may_push(caller) else DENIED


def expect_github_link(allowed: Expected) -> Callable[[Caller, ModelSpec], Expected]:
    """A model's GitHub link is its maintainers' (those who push): ``allowed`` for them (the
    matrix's models have no link, so reading or removing one is 404, making one 201)."""

    def expect(caller: Caller, model: ModelSpec) -> Expected:
        if not caller.signed_in:
            return SIGN_IN
        if not sees_model(caller, model):
            return NOT_FOUND
        if "push" not in caller.scopes:
            return SCOPE_MISSING
        return allowed if may_push(caller) else DENIED

    return expect


def expect_github_submission(caller: Caller, _: Any) -> Expected:
    """Fetching a GitHub release on demand needs the push scope and a linked model the caller
    maintains; the matrix's repository is linked to none."""
    if not caller.signed_in:
        return SIGN_IN
    return NOT_FOUND if "push" in caller.scopes else SCOPE_MISSING


# --- the routes ---------------------------------------------------------------------------


class Kind(Enum):
    """How the leak check reads an answer."""

    # Holds only the caller's catalogue scope: published releases of models in it.
    CATALOGUE = "catalogue"
    # About one object the caller named, or about the caller: everything they may see.
    DETAIL = "detail"


@dataclass(frozen=True)
class Operation:
    """One method of a route: what the matrix sends and what the oracle expects."""

    expect: Callable[[Caller, Any], Expected]
    body: Callable[[Any], dict[str, Any]] | None = None
    kind: Kind = Kind.DETAIL
    push: bool = False


# The object of a cell: a model's or a release's key, "own" or "foreign" (a token), the
# organisation, its member, the reference set, a search, or "-" for a route without one.
ObjectKey = str


@dataclass(frozen=True)
class RouteSpec:
    operations: dict[str, Operation]
    page: bool = False
    # Query strings the route is asked with, by object (None: the route has path objects).
    queries: Callable[[], list[tuple[ObjectKey, str]]] | None = None


def _everyone(caller: Caller, _: Any) -> Expected:
    return OK


def _signed_in_ok(status: int = 200) -> Callable[[Caller, Any], Expected]:
    return lambda caller, _: Expected(status) if caller.signed_in else SIGN_IN


def _admin_scope(status: int) -> Callable[[Caller, Any], Expected]:
    return lambda caller, _: _signed_in(
        caller, lambda: Expected(status) if "admin" in caller.scopes else SCOPE_MISSING
    )


def _model_read(caller: Caller, model: ModelSpec) -> Expected:
    return OK if sees_model(caller, model) else NOT_FOUND


def _release_read(caller: Caller, release: ReleaseSpec) -> Expected:
    return OK if sees_release(caller, release) else NOT_FOUND


# A page's 404 is an HTML page, without the API's error code; it must still read exactly like
# the 404 of a model that does not exist.
PAGE_NOT_FOUND = Expected(404)


def _model_page_read(caller: Caller, model: ModelSpec) -> Expected:
    return OK if sees_model(caller, model) else PAGE_NOT_FOUND


def _release_page_read(caller: Caller, release: ReleaseSpec) -> Expected:
    return OK if sees_release(caller, release) else PAGE_NOT_FOUND


# The reviewer's pages: nobody signed in is sent to sign in; someone who reviews nothing (neither
# a hub reviewer nor in any organisation) is refused whatever they name.
PAGE_SIGN_IN = Expected(302)
PAGE_DENIED = Expected(403)


def reviews_anything(caller: Caller) -> bool:
    return caller.hub_reviewer or caller.superuser or caller.role is not None


def _review_queue_read(caller: Caller, _: Any) -> Expected:
    if not caller.signed_in:
        return PAGE_SIGN_IN
    return OK if reviews_anything(caller) else PAGE_DENIED


def _review_page_read(caller: Caller, release: ReleaseSpec) -> Expected:
    if not caller.signed_in:
        return PAGE_SIGN_IN
    if not reviews_anything(caller):
        return PAGE_DENIED
    return OK if sees_release(caller, release) else PAGE_NOT_FOUND


def _organisation_read(caller: Caller, _: Any) -> Expected:
    return _signed_in(caller, lambda: OK if sees_organisation(caller) else NOT_FOUND)


def _token_read(status: int) -> Callable[[Caller, Any], Expected]:
    # Everyone sees and revokes their own tokens only: another's is a 404, for admins too.
    return lambda caller, which: _signed_in(
        caller, lambda: Expected(status) if which == "own" else NOT_FOUND
    )


def _searches() -> list[tuple[ObjectKey, str]]:
    return [("all", ""), *((f"q={model.key}", f"q={model.name}") for model in MODELS)]


READ_CATALOGUE = Operation(_everyone, kind=Kind.CATALOGUE)

ROUTES: dict[str, RouteSpec] = {
    "hub-status": RouteSpec({"get": READ_CATALOGUE}),
    "account-me": RouteSpec({"get": Operation(_signed_in_ok())}),
    "tokens": RouteSpec(
        {
            "get": Operation(_signed_in_ok()),
            "post": Operation(
                _signed_in_ok(201),
                body=lambda _: {"name": "matrix-made", "scopes": ["read"], "expires_in_days": 1},
            ),
        }
    ),
    "token": RouteSpec({"get": Operation(_token_read(200)), "delete": Operation(_token_read(204))}),
    "organisations": RouteSpec(
        {
            "get": Operation(_signed_in_ok()),
            "post": Operation(_admin_scope(201), body=lambda _: {"name": "matrix-org"}),
        }
    ),
    "organisation": RouteSpec({"get": Operation(_organisation_read)}),
    "organisation-members": RouteSpec(
        {
            "get": Operation(_organisation_read),
            "post": Operation(
                lambda caller, _: expect_member_change(caller, leaving=False),
                body=lambda _: {"username": "bystander", "role": "reader"},
            ),
        }
    ),
    "organisation-member": RouteSpec(
        {
            "delete": Operation(
                lambda caller, _: expect_member_change(
                    caller, leaving=caller.username == "org-reader"
                )
            )
        }
    ),
    "namespaces": RouteSpec(
        {
            "get": Operation(_signed_in_ok()),
            "post": Operation(_admin_scope(201), body=lambda _: {"name": "matrix-namespace"}),
        }
    ),
    "catalog-snapshot": RouteSpec({"get": READ_CATALOGUE}),
    "signing-keys": RouteSpec({"get": READ_CATALOGUE}),
    "catalog-changes": RouteSpec({"get": READ_CATALOGUE}, queries=lambda: [("since=0", "since=0")]),
    "model-list": RouteSpec({"get": READ_CATALOGUE}, queries=_searches),
    "model": RouteSpec({"get": Operation(_model_read)}),
    "model-visibility": RouteSpec(
        {
            "get": Operation(_model_read),
            "post": Operation(expect_visibility_change, body=lambda _: {"visibility": "public"}),
        }
    ),
    "model-visibility-review": RouteSpec(
        {
            "post": Operation(
                expect_visibility_review, body=lambda _: {"decision": "reject", "note": "x"}
            )
        }
    ),
    "model-github-link": RouteSpec(
        {
            "get": Operation(expect_github_link(NOT_FOUND)),
            "post": Operation(
                expect_github_link(Expected(201)), body=lambda _: {"repository": "acme/matrix"}
            ),
            "delete": Operation(expect_github_link(NOT_FOUND)),
        }
    ),
    "github-submissions": RouteSpec(
        {
            "post": Operation(
                expect_github_submission,
                body=lambda _: {"repository": "acme/matrix", "tag": "v1.0.0"},
            )
        }
    ),
    "release-create": RouteSpec({"post": Operation(lambda c, _: expect_push(c), push=True)}),
    "release": RouteSpec({"get": Operation(_release_read)}),
    "release-review": RouteSpec(
        {
            "post": Operation(
                expect_release_review, body=lambda _: {"decision": "reject", "note": "x"}
            )
        }
    ),
    "release-deprecate": RouteSpec(
        {
            "post": Operation(
                expect_release_maintain, body=lambda _: {"reason": "superseded", "replacement": ""}
            )
        }
    ),
    "release-yank": RouteSpec(
        {"post": Operation(expect_release_maintain, body=lambda _: {"reason": "broken"})}
    ),
    "release-withdraw": RouteSpec(
        {"post": Operation(expect_release_withdraw, body=lambda _: {"reason": "mistake"})}
    ),
    "release-sample-grid": RouteSpec({"get": Operation(_release_read)}),
    "release-evaluations": RouteSpec(
        {
            "get": Operation(_release_read),
            "post": Operation(
                expect_evaluation_request,
                body=lambda _: {"reference": REFERENCE, "extractor": "no-such-extractor"},
            ),
        }
    ),
    "release-artifact": RouteSpec({"get": Operation(_release_read)}),
    "leaderboards": RouteSpec({"get": READ_CATALOGUE}),
    "leaderboard": RouteSpec({"get": READ_CATALOGUE}),
    "reference-sets": RouteSpec({"get": READ_CATALOGUE}),
    "openapi-schema": RouteSpec({"get": READ_CATALOGUE}),
    "catalog-page": RouteSpec({"get": READ_CATALOGUE}, page=True),
    "leaderboard-page": RouteSpec({"get": READ_CATALOGUE}, page=True),
    "model-page": RouteSpec({"get": Operation(_model_page_read)}, page=True),
    "model-version-page": RouteSpec({"get": Operation(_release_page_read)}, page=True),
    "review-queue": RouteSpec({"get": Operation(_review_queue_read)}, page=True),
    "review-release": RouteSpec({"get": Operation(_review_page_read)}, page=True),
}

# Routes outside the matrix, each with the reason; anything else the resolver has must be in it.
OUT_OF_MATRIX = {
    "admin": "the Django admin: staff sign in to it with a password; tests/hub/*/test_admin.py",
    "api-docs": "the Swagger UI page: static, it holds no data and reads /api/schema/",
    # The contributors' own pages show only what the signed-in user made (their account, their
    # tokens, their submissions) and answer others' with 404: tests/hub/web/test_contributor.py.
    "web-signup": "the sign-up form: it shows nothing of anyone",
    "web-login": "the sign-in form: it shows nothing of anyone",
    "web-logout": "signing out: it shows nothing",
    "web-tokens": "the signed-in user's own tokens (test_contributor.py)",
    "web-submit": "the submission form; a push goes through the same service as release-create",
    "web-card-check": "checks a card typed by the signed-in user against the schema",
    "web-submissions": "the signed-in user's own releases (test_contributor.py)",
    "web-submission": "one of the signed-in user's own releases; another's is 404",
    "web-submission-withdraw": "withdraws one of the signed-in user's own releases",
    "github-webhook": "GitHub's deliveries: authenticated by their HMAC signature with the "
    "link's secret, never by a user (tests/hub/github/test_webhooks.py)",
    "github-submission": "one GitHub submission by id, for whoever asked for it or maintains "
    "its model, else 404 (tests/hub/github/test_links_and_push.py)",
}
# Where a route belongs to the matrix: the API, its schema and the web pages.
MATRIX_PREFIXES = ("api/v1/", "api/schema/")
PAGE_ROUTES = {
    "catalog-page",
    "leaderboard-page",
    "model-page",
    "model-version-page",
    "review-queue",
    "review-release",
}

# Objects of a route, by its path parameters.
_OBJECTS_BY_PARAMETERS: dict[frozenset[str], Callable[[], list[ObjectKey]]] = {
    frozenset(): lambda: ["-"],
    frozenset({"namespace", "name"}): lambda: [model.key for model in MODELS],
    frozenset({"namespace", "name", "version"}): lambda: [r.key for r in RELEASES],
    frozenset({"namespace", "name", "version", "filename"}): lambda: [r.key for r in RELEASES],
    frozenset({"token_id"}): lambda: ["own", "foreign"],
    frozenset({"name"}): lambda: [ORG],
    frozenset({"name", "username"}): lambda: [f"{ORG}:org-reader"],
    frozenset({"reference"}): lambda: [REFERENCE],
}
MODEL_BY_KEY = {model.key: model for model in MODELS}
RELEASE_BY_KEY = {release.key: release for release in RELEASES}
_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")
_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class DiscoveredRoute:
    template: str
    name: str
    parameters: frozenset[str]
    methods: frozenset[str]


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(route template, name, callback) of every route; a namespaced include is one entry."""
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace:
                yield prefix + str(entry.pattern), entry.namespace, None
                continue
            yield from _walk(list(entry.url_patterns), prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.name or "", entry.callback


def _methods_of(callback: Any) -> frozenset[str]:
    view_class = getattr(callback, "view_class", None)
    if view_class is None:
        return frozenset({"get"})  # a function view: the pages, which only read
    return frozenset(method for method in _METHODS if hasattr(view_class, method))


def discovered_routes() -> list[DiscoveredRoute]:
    return [
        DiscoveredRoute(
            "/" + template,
            name,
            frozenset(_PARAMETER.findall(template)),
            _methods_of(callback) if callback is not None else frozenset(),
        )
        for template, name, callback in _walk(list(get_resolver().url_patterns))
    ]


def unmatrixed_problems(route: DiscoveredRoute) -> list[str]:
    """Why the matrix cannot fill ``route`` (empty when it can)."""
    if route.name in OUT_OF_MATRIX:
        return []
    spec = ROUTES.get(route.name)
    problems = []
    if spec is None:
        problems.append(f"route {route.name or '(unnamed)'!r} ({route.template}) is unknown")
    elif set(spec.operations) != set(route.methods):
        problems.append(
            f"route {route.name!r} answers {sorted(route.methods)}, the matrix knows "
            f"{sorted(spec.operations)}"
        )
    if route.parameters not in _OBJECTS_BY_PARAMETERS:
        problems.append(f"path parameters {sorted(route.parameters)} of {route.template}")
    return [
        f"{problem}: add it to the matrix (tests/hub/test_access_matrix.py)" for problem in problems
    ]


@dataclass(frozen=True)
class Cell:
    route: str
    template: str
    method: str
    actor: str
    obj: ObjectKey
    query: str = ""
    problem: str = ""

    @property
    def id(self) -> str:
        return f"{self.route}|{self.method.upper()}|{self.actor}|{self.obj}"


def cells() -> list[Cell]:
    found: list[Cell] = []
    for route in discovered_routes():
        if route.name in OUT_OF_MATRIX:
            continue
        problems = unmatrixed_problems(route)
        if problems:
            found.append(
                Cell(route.name, route.template, "?", "-", "-", problem="; ".join(problems))
            )
            continue
        spec = ROUTES[route.name]
        variants = (
            spec.queries()
            if spec.queries is not None
            else [(obj, "") for obj in _OBJECTS_BY_PARAMETERS[route.parameters]()]
        )
        for method in spec.operations:
            for actor in ACTORS:
                for obj, query in variants:
                    found.append(Cell(route.name, route.template, method, actor.key, obj, query))
    return found


# Cells where the hub disagrees with docs/access.md: (route, method, actor, object) patterns,
# "*" any, each strictly expected to fail with its reason until the hub (or the docs) is fixed;
# the entry goes with the fix. None today.
KNOWN_DISCREPANCIES: dict[tuple[str, str, str, str], str] = {}


def _discrepancy(cell: Cell) -> str | None:
    for pattern, reason in KNOWN_DISCREPANCIES.items():
        values = (cell.route, cell.method, cell.actor, cell.obj)
        if all(want in ("*", got) for want, got in zip(pattern, values, strict=True)):
            return reason
    return None


def _params() -> list[Any]:
    params = []
    for cell in cells():
        reason = _discrepancy(cell)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(cell, id=cell.id, marks=marks))
    return params


# --- the world ----------------------------------------------------------------------------


@dataclass
class World:
    users: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # actor key -> raw token key
    token_ids: dict[str, int] = field(default_factory=dict)  # actor key -> token id
    bystander_token_id: int = 0
    bystander_key: str = ""
    # Catalogue serial each scope should report: public, signed-in, acme member or admin.
    serials: dict[str, int] = field(default_factory=dict)


def _matrix_storage(media: Path) -> dict[str, Any]:
    from django.conf import settings

    return {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(media)},
        },
    }


def _build_world() -> World:
    world = World()
    users = world.users
    for username in ("outsider", "org-reader", SUBMITTER, "org-reviewer", "bystander"):
        users[username] = factories.user(username)
    users["hub-reviewer"] = factories.user("hub-reviewer", reviewer=True)
    users["hub-admin"] = account_services.user_get_or_create(
        username="hub-admin", is_staff=True, is_superuser=True
    )
    owner = users["org-owner"] = factories.user("org-owner")
    organisation = account_services.organisation_create(user=owner, name=ORG, title=ORG_TITLE)
    for actor in ACTORS:
        if actor.role is not None and actor.role is not OrgRole.OWNER and actor.username:
            account_services.organisation_member_set(
                organisation=organisation, user=users[actor.username], role=actor.role
            )
    account_services.namespace_create(user=users[SUBMITTER], name=OTHER)

    for release in RELEASES:
        row = factories.release_row(
            submitter=users[SUBMITTER],
            model_id=release.model.model_id,
            version=release.version,
            state=release.state.value,
            grid=False,
            package=release.package,
        )
        row.card["description"]["title"] = release.title
        row.save(update_fields=["card"])
        row.sample_grid.save(f"{release.key}.png", ContentFile(release.grid))
        if release.metric is not None:
            _finished_evaluation(row, release.metric)
    for model in MODELS:
        GenerativeModel.objects.filter(namespace=ORG, name=model.name).update(
            visibility=model.visibility.value,
            requested_visibility="public" if model.pending_public else "",
            requested_by=owner if model.pending_public else None,
        )
    # Publishing bumps the serial: public first, then internal, then the private ones, so each
    # scope's serial tells which changes it was told of.
    for release in RELEASES:
        if release.state is State.PUBLISHED:
            row = Release.objects.get(
                generative_model__name=release.model.name, version=release.version
            )
            registry_services.catalog_serial_bump(
                kind="release_published", generative_model=row.generative_model, release=row
            )
    world.serials = {"public": 1, "internal": 2, "member": 4}

    for actor in ACTORS:
        if actor.username is None:
            continue
        token, key = account_services.api_token_create(
            user=users[actor.username],
            name=actor.token_name,
            scopes=sorted(actor.scopes),
            namespace=actor.token_namespace,
            expires_in_days=30,
        )
        if actor.credential is Credential.REVOKED:
            account_services.api_token_revoke(token=token)
        if actor.credential is Credential.EXPIRED:
            ApiToken.objects.filter(pk=token.pk).update(
                expires_at=timezone.now() - timedelta(days=1)
            )
        world.keys[actor.key] = key
        world.token_ids[actor.key] = token.pk
    bystander_token, world.bystander_key = account_services.api_token_create(
        user=users["bystander"], name=BYSTANDER_TOKEN
    )
    world.bystander_token_id = bystander_token.pk
    return world


def _finished_evaluation(release: Release, fid_rs: float) -> Evaluation:
    from hub.evaluations.models import ReferenceSet

    reference = ReferenceSet.objects.filter(slug=REFERENCE).first()
    return Evaluation.objects.create(
        release=release,
        reference_set=reference or factories.reference_set_row(REFERENCE),
        extractor_id="medical-cnn",
        preprocess={"resize_filter": "bilinear", "normalise": True},
        preprocess_key="bilinear-normalised",
        num_samples=100,
        status=Evaluation.Status.SUCCEEDED,
        fid_rs=fid_rs,
        fid_rr_mean=3.0,
        provenance={"generation": {"samples_sha256": "ab" * 32}, "num_reference": 10},
        finished_at=timezone.now(),
    )


@pytest.fixture(scope="module")
def matrix_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("matrix-media")


@pytest.fixture(scope="module")
def world(django_db_setup: Any, django_db_blocker: Any, matrix_media: Path) -> Iterator[World]:
    """The organisation, its models, the actors and their tokens, once for the module.

    Built inside a transaction that the module's end rolls back, so nothing outlives it; each
    test's own transaction nests inside it.
    """
    with (
        django_db_blocker.unblock(),
        override_settings(
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            MEDIA_ROOT=str(matrix_media),
            STORAGES=_matrix_storage(matrix_media),
        ),
    ):
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield _build_world()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _matrix_settings(
    _eager_celery_and_private_storage: None, settings: Any, matrix_media: Path
) -> Iterator[None]:
    # The world's files live in the module's folder, not in each test's.
    settings.MEDIA_ROOT = str(matrix_media)
    settings.STORAGES = _matrix_storage(matrix_media)
    settings.MEDIGAN_AUTH_FAILURE_LIMIT = AUTH_FAILURE_LIMIT
    snapshot.snapshot_cache_clear()
    registry_selectors.catalog_search_clear()
    yield
    snapshot.snapshot_cache_clear()
    registry_selectors.catalog_search_clear()


# --- sending a cell -----------------------------------------------------------------------


def _path(cell: Cell, world: World, *, ghost: bool = False) -> str:
    """The cell's URL; ``ghost`` names an object that does not exist in the same place."""
    values: dict[str, str] = {}
    if cell.obj in MODEL_BY_KEY or cell.obj in RELEASE_BY_KEY:
        release = RELEASE_BY_KEY.get(cell.obj)
        model = release.model if release is not None else MODEL_BY_KEY[cell.obj]
        name = "ghost-model" if ghost else model.name
        values = {"namespace": ORG, "name": name}
        if release is not None:
            values["version"] = release.version
            values["filename"] = f"{name}-{release.version}.zip"
    elif cell.obj in ("own", "foreign"):
        own = world.token_ids.get(cell.actor, world.bystander_token_id)
        token_id = own if cell.obj == "own" else world.bystander_token_id
        values = {"token_id": str(987654321 if ghost else token_id)}
    elif cell.obj == ORG:
        values = {"name": "ghost-org" if ghost else ORG}
    elif cell.obj == f"{ORG}:org-reader":
        values = {"name": "ghost-org" if ghost else ORG, "username": "org-reader"}
    elif cell.obj == REFERENCE:
        values = {"reference": REFERENCE}
    path = _PARAMETER.sub(lambda match: values[match.group(1)], cell.template)
    return f"{path}?{cell.query}" if cell.query else path


def _request(
    cell: Cell, world: World, *, path: str, tmp_path: Callable[[], Path]
) -> HttpResponseBase:
    actor = ACTOR_BY_KEY[cell.actor]
    spec = ROUTES[cell.route]
    operation = spec.operations[cell.method]
    http = HttpClient()
    headers: dict[str, Any] = {}
    if actor.key in world.keys:
        # Pages get the header too: it must change nothing there.
        headers["HTTP_AUTHORIZATION"] = f"Token {world.keys[actor.key]}"
    if spec.page and actor.session and actor.username:
        http.force_login(world.users[actor.username])
    if operation.push:
        archive, sha256, card = factories.package_zip(tmp_path(), model_id=f"{ORG}/matrix-pushed")
        with archive.open("rb") as package:
            return http.post(
                path, {"card": json.dumps(card), "package": package, "sha256": sha256}, **headers
            )
    if cell.method == "get":
        return http.get(path, **headers)
    if cell.method == "delete":
        return http.delete(path, **headers)
    body = operation.body(cell.obj) if operation.body is not None else {}
    return http.generic(
        cell.method.upper(), path, json.dumps(body), content_type="application/json", **headers
    )


def _content(response: HttpResponseBase) -> bytes:
    if getattr(response, "streaming", False):
        # Reading the stream to its end closes the response the way the test client does;
        # closing it again here would close the database connection of the test's transaction.
        return b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return bytes(response.content)  # type: ignore[attr-defined]


_YAML_CODE = re.compile(rb"^code: (\S+)$", re.MULTILINE)


def _code(content: bytes) -> str | None:
    """The error code of an answer: JSON, or YAML where the route speaks it (the schema)."""
    try:
        document = json.loads(content)
    except ValueError:
        match = _YAML_CODE.search(content)
        return match.group(1).decode() if match else None
    return document.get("code") if isinstance(document, dict) else None


# --- what an answer may hold --------------------------------------------------------------


def _markers(release: ReleaseSpec) -> list[bytes]:
    markers = [release.title.encode(), release.package, release.grid]
    if release.metric is not None:
        markers.append(repr(release.metric).encode())
    return markers


def _leaks(cell: Cell, caller: Caller, world: World, content: bytes) -> list[str]:
    """Markers in ``content`` of things ``caller`` may not see."""
    kind = ROUTES[cell.route].operations[cell.method].kind
    named = RELEASE_BY_KEY[cell.obj].model if cell.obj in RELEASE_BY_KEY else None
    named = MODEL_BY_KEY.get(cell.obj, named)
    found: list[str] = []
    for release in RELEASES:
        if kind is Kind.CATALOGUE:
            allowed = release.state is State.PUBLISHED and in_catalogue(caller, release.model)
        else:
            allowed = sees_release(caller, release)
        if not allowed:
            found += [
                f"{release.key}: {marker[:40]!r}"
                for marker in _markers(release)
                if marker in content
            ]
    for model in MODELS:
        allowed = (
            in_catalogue(caller, model) if kind is Kind.CATALOGUE else sees_model(caller, model)
        )
        # The caller named this model in the URL: the name in an answer tells them nothing.
        if not allowed and model != named and model.name.encode() in content:
            found.append(f"model name {model.name}")
    if not sees_organisation(caller) and ORG_TITLE.encode() in content:
        found.append("organisation title")
    # A user's tokens are theirs to list, whichever of them asks; nobody else's ever show (but
    # an answer may name the token the request came with).
    for actor in ACTORS:
        if actor.username and actor.username != caller.username and actor.key != cell.actor:
            key = world.keys[actor.key]
            if actor.token_name.encode() in content or key[:12].encode() in content:
                found.append(f"token of {actor.key}")
    if BYSTANDER_TOKEN.encode() in content or world.bystander_key[:12].encode() in content:
        found.append("token of bystander")
    found += [f"token key {key[:12]}" for key in world.keys.values() if key.encode() in content]
    return found


def _anonymised(content: bytes, names: dict[str, str]) -> Any:
    text = content.decode("utf-8", "replace")
    for value, placeholder in sorted(names.items(), key=lambda item: -len(item[0])):
        text = text.replace(value, placeholder)
    return json.loads(text) if text.startswith("{") else text


def _ghost_names(cell: Cell, world: World) -> tuple[dict[str, str], dict[str, str]]:
    """Real and ghost values of the cell's path parameters, each to the same placeholder."""
    real = _path(cell, world).strip("/").split("/")
    ghost = _path(cell, world, ghost=True).strip("/").split("/")
    pairs = [(r, g) for r, g in zip(real, ghost, strict=True) if r != g]
    real_names = {r: f"<{index}>" for index, (r, _) in enumerate(pairs)}
    ghost_names = {g: f"<{index}>" for index, (_, g) in enumerate(pairs)}
    return real_names, ghost_names


def _scope_serial(caller: Caller, world: World) -> int:
    if sees_everything(caller) or org_role(caller) is not None:
        return world.serials["member"]
    return world.serials["internal" if caller.signed_in else "public"]


def _presence_problems(cell: Cell, caller: Caller, world: World, content: bytes) -> list[str]:
    """What an answer that the caller may have must hold (so the leak check is not vacuous)."""
    problems: list[str] = []
    published = [r for r in RELEASES if r.state is State.PUBLISHED]
    scope = [r for r in published if in_catalogue(caller, r.model)]
    if cell.route in ("catalog-snapshot", "catalog-changes"):
        problems += [f"{r.key} title" for r in scope if r.title.encode() not in content]
        problems += [f"{r.key} metric" for r in scope if repr(r.metric).encode() not in content]
    elif cell.route in ("leaderboards", "leaderboard"):
        problems += [f"{r.key} metric" for r in scope if repr(r.metric).encode() not in content]
    elif cell.route in ("catalog-page", "leaderboard-page"):
        problems += [f"{r.key} model" for r in scope if r.model.model_id.encode() not in content]
    elif cell.route == "model-list":
        searched = [r for r in scope if cell.obj in ("all", f"q={r.model.key}")]
        problems += [f"{r.key} model" for r in searched if r.model.model_id.encode() not in content]
    elif cell.route == "hub-status":
        if json.loads(content)["serial"] != _scope_serial(caller, world):
            problems.append(f"serial {json.loads(content)['serial']}")
    elif (
        cell.route
        in (
            "release",
            "release-review",
            "release-deprecate",
            "release-yank",
            "release-withdraw",
        )
        and cell.obj in RELEASE_BY_KEY
    ):
        if RELEASE_BY_KEY[cell.obj].title.encode() not in content:
            problems.append("its title")
    elif cell.route == "release-artifact":
        if content != RELEASE_BY_KEY[cell.obj].package:
            problems.append("its package bytes")
    elif cell.route == "release-sample-grid":
        if content != RELEASE_BY_KEY[cell.obj].grid:
            problems.append("its grid")
    elif cell.route == "release-evaluations":
        metric = RELEASE_BY_KEY[cell.obj].metric
        if metric is not None and repr(metric).encode() not in content:
            problems.append("its metric")
    elif cell.route == "model-page" and cell.obj in MODEL_BY_KEY:
        if MODEL_BY_KEY[cell.obj].model_id.encode() not in content:
            problems.append("its model id")
    elif cell.route in ("model-version-page", "review-release") and cell.obj in RELEASE_BY_KEY:
        if RELEASE_BY_KEY[cell.obj].title.encode() not in content:
            problems.append("its title")
    elif cell.route == "review-queue":
        waiting = [r for r in RELEASES if r.state is State.IN_REVIEW and may_review(caller, r)]
        problems += [f"{r.key} model" for r in waiting if r.model.model_id.encode() not in content]
    elif cell.route == "model" and cell.obj in MODEL_BY_KEY:
        seen = [r for r in RELEASES if r.model.key == cell.obj and sees_release(caller, r)]
        problems += [f"{r.key} title" for r in seen if r.title.encode() not in content]
    return problems


def _header_problems(
    cell: Cell, caller: Caller, world: World, response: HttpResponseBase
) -> list[str]:
    problems: list[str] = []
    if cell.route in ("catalog-snapshot", "catalog-changes"):
        public = not caller.signed_in
        cache_control = response.get("Cache-Control", "")
        if public == ("private" in cache_control):
            problems.append(f"Cache-Control {cache_control!r}")
        if not {"Authorization", "Cookie"} <= {
            part.strip() for part in response.get("Vary", "").split(",")
        }:
            problems.append(f"Vary {response.get('Vary')!r}")
        if response.get("X-Hub-Serial") != str(_scope_serial(caller, world)):
            problems.append(f"X-Hub-Serial {response.get('X-Hub-Serial')}")
    if cell.route in ("release-artifact", "release-sample-grid"):
        release = RELEASE_BY_KEY[cell.obj]
        public = release.state is State.PUBLISHED and release.model.visibility is Visibility.PUBLIC
        if not public and response.get("Cache-Control") != "private, no-store":
            problems.append(f"Cache-Control {response.get('Cache-Control')!r}")
    return problems


# --- the tests ----------------------------------------------------------------------------


def test_every_route_is_in_the_matrix() -> None:
    routes = discovered_routes()
    problems = [problem for route in routes for problem in unmatrixed_problems(route)]

    assert problems == []
    matrixed = {route.name for route in routes if route.name not in OUT_OF_MATRIX}
    assert matrixed == set(ROUTES), "a route of the matrix is gone from the hub"
    for route in routes:
        in_scope = route.template.lstrip("/").startswith(MATRIX_PREFIXES)
        assert in_scope or route.name in PAGE_ROUTES or route.name in OUT_OF_MATRIX, route


@pytest.mark.parametrize("cell", _params())
def test_access_matrix(cell: Cell, world: World, request: pytest.FixtureRequest) -> None:
    assert not cell.problem, cell.problem
    spec = ROUTES[cell.route]
    operation = spec.operations[cell.method]
    caller = caller_of(ACTOR_BY_KEY[cell.actor], page=spec.page)
    obj: Any = RELEASE_BY_KEY.get(cell.obj) or MODEL_BY_KEY.get(cell.obj) or cell.obj
    expected = Expected(*caller.refused) if caller.refused else operation.expect(caller, obj)

    def tmp_path() -> Path:
        path: Path = request.getfixturevalue("tmp_path")
        return path

    response = _request(cell, world, path=_path(cell, world), tmp_path=tmp_path)
    content = _content(response)

    got = Expected(response.status_code, _code(content) if expected.code else None)
    assert got == expected, content[:300]
    assert _leaks(cell, caller, world, content) == []
    if response.status_code < 300:
        assert _presence_problems(cell, caller, world, content) == []
        assert _header_problems(cell, caller, world, response) == []
    if response.status_code == 404:
        ghost = _request(cell, world, path=_path(cell, world, ghost=True), tmp_path=tmp_path)
        real_names, ghost_names = _ghost_names(cell, world)
        assert ghost.status_code == 404
        assert _anonymised(content, real_names) == _anonymised(_content(ghost), ghost_names)


# --- pushing with a narrow token (acceptance: scopes and namespace restrictions) -------------


def _push(tmp_path: Path, key: str, model_id: str) -> Any:
    archive, sha256, card = factories.package_zip(tmp_path, model_id=model_id)
    with archive.open("rb") as package:
        return HttpClient().post(
            "/api/v1/releases",
            {"card": json.dumps(card), "package": package, "sha256": sha256},
            HTTP_AUTHORIZATION=f"Token {key}",
        )


def test_a_read_only_token_cannot_push(
    world: World, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    key = factories.token(world.users[SUBMITTER], scopes=("read",))

    with django_capture_on_commit_callbacks(execute=False):
        response = _push(tmp_path, key, f"{ORG}/read-only-push")

    assert response.status_code == 403
    assert response.json()["code"] == "scope_missing"
    assert not Release.objects.filter(generative_model__name="read-only-push").exists()


def test_a_push_token_restricted_to_acme_cannot_push_to_another_namespace(
    world: World, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    # The maintainer owns "other" and maintains acme: only the restriction stands in the way.
    key = factories.token(world.users[SUBMITTER], scopes=("read", "push"), namespace=ORG)

    with django_capture_on_commit_callbacks(execute=False):
        refused = _push(tmp_path / "other", key, f"{OTHER}/escaped")
        accepted = _push(tmp_path / "acme", key, f"{ORG}/inside")

    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert not Release.objects.filter(generative_model__namespace=OTHER).exists()
    # The same token pushes where it is allowed: the refusal was the restriction's.
    assert accepted.status_code == 202
    assert Release.objects.filter(generative_model__name="inside").exists()
