"""Identity and access on a hub: tokens, the signed-in account, organisations, namespaces,
and who may see a model.

Each function is one call of the hub's API on a :class:`~medigan_client.http.HubSession`: the
request is built and checked with the catalog's documents (:mod:`medigan_catalog.access`)
before anything is sent, so a malformed name or scope fails here with ``BadRequestError``, and
the answer is parsed with them, so a hub answering something else raises ``ServerError``.
Refusals arrive as the typed errors of :mod:`medigan_client.errors` (``ScopeMissingError``,
``TokenExpiredError``, ``NamespaceTakenError``, ``ThrottledError`` ...).

:func:`create_token_with_password` is the one call that sends a password: HTTP Basic, to
``POST /api/v1/tokens`` only, on a session that carries no token (``medigan-client login``).
Every other call authenticates with the session's token.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from medigan_catalog.access import (
    AccountInfo,
    MemberRequest,
    Namespace,
    NamespaceList,
    NamespaceRequest,
    Organisation,
    OrganisationList,
    OrganisationRequest,
    OrgRole,
    TokenCreated,
    TokenInfo,
    TokenList,
    TokenRequest,
    TokenScope,
    Visibility,
    VisibilityRequest,
    VisibilityReview,
    VisibilityState,
)
from medigan_catalog.snapshot import (
    ME_PATH,
    NAMESPACES_PATH,
    ORGANISATIONS_PATH,
    TOKENS_PATH,
    member_path,
    members_path,
    organisation_path,
    token_path,
    visibility_path,
    visibility_review_path,
)
from medigan_client.errors import BadRequestError, ServerError
from medigan_client.http import HubSession
from medigan_client.settings import ClientSettings
from medigan_client.sync import split_model_ref

Document = TypeVar("Document", bound=BaseModel)

_JSON = {"Accept": "application/json"}


def _request(document: type[Document], what: str, **fields: Any) -> Document:
    """A request document built from ``fields``; invalid values raise ``BadRequestError``."""
    try:
        return document.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or what}: {problem['msg']}"
            for problem in exc.errors()
        )
        raise BadRequestError(f"invalid {what}: {problems}") from None


def _parse(document: type[Document], answer: object, path: str) -> Document:
    """The hub's answer at ``path`` as ``document``; anything else raises ``ServerError``."""
    try:
        return document.model_validate(answer)
    except ValidationError as exc:
        raise ServerError(
            f"the hub's answer to {path} is not a {document.__name__}: "
            f"{exc.error_count()} problem(s), first {exc.errors()[0]['msg']}"
        ) from None


def _model_id(model: str) -> str:
    """``ns/name`` of a model reference; a version is refused (visibility is per model)."""
    model_id, version = split_model_ref(model)
    if version is not None:
        raise BadRequestError(
            f"{model!r} names a version; who sees a model is set for all its releases: "
            f"write {model_id}"
        )
    return model_id


def _payload(document: BaseModel) -> dict[str, Any]:
    return document.model_dump(mode="json")


# --- tokens and the account -----------------------------------------------------------------


def token_request(
    name: str,
    *,
    scopes: Iterable[TokenScope | str] | None = None,
    namespace: str | None = None,
    days: int | None = None,
) -> TokenRequest:
    """A checked ``TokenRequest``; unset fields take the hub's defaults (read and push, 90 days)."""
    fields: dict[str, Any] = {"name": name, "namespace": namespace}
    if scopes is not None:
        fields["scopes"] = tuple(dict.fromkeys(str(scope) for scope in scopes))
    if days is not None:
        fields["expires_in_days"] = days
    return _request(TokenRequest, "token request", **fields)


def create_token(session: HubSession, request: TokenRequest) -> TokenCreated:
    """A new token for the session's user, no wider than the session's own token.

    Its key is in the answer, this once only.
    """
    answer = session.post_json(TOKENS_PATH, _payload(request), headers=_JSON)
    return _parse(TokenCreated, answer, TOKENS_PATH)


def basic_credentials(username: str, password: str) -> str:
    """The ``Authorization`` value of HTTP Basic for a username and password."""
    pair = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def create_token_with_password(
    settings: ClientSettings, username: str, password: str, request: TokenRequest
) -> TokenCreated:
    """Sign in with a password and get a new token (what ``medigan-client login`` does).

    The password goes to ``POST /api/v1/tokens`` only, as HTTP Basic, on a session of its own
    that carries no token. A wrong password raises ``AuthenticationRequiredError``; too many
    wrong ones ``ThrottledError`` (never retried: each try would count as another failure).
    """
    if not username or not password:
        raise BadRequestError("signing in needs a username and a password")
    with HubSession(replace(settings, token=None)) as session:
        answer = session.post_json(
            TOKENS_PATH,
            _payload(request),
            headers={**_JSON, "Authorization": basic_credentials(username, password)},
        )
    return _parse(TokenCreated, answer, TOKENS_PATH)


def list_tokens(session: HubSession) -> tuple[TokenInfo, ...]:
    """The session user's tokens, newest first, revoked ones included (never their keys)."""
    return _parse(TokenList, session.get_json(TOKENS_PATH, headers=_JSON), TOKENS_PATH).tokens


def revoke_token(session: HubSession, token_id: int) -> None:
    """Revoke one of the session user's tokens (404 ``NotFoundError`` when it is not theirs)."""
    try:
        path = token_path(token_id)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None
    session.send("DELETE", path, headers=_JSON)


def whoami(session: HubSession) -> AccountInfo:
    """The account of the session's token: user, namespaces, organisations, the token itself."""
    return _parse(AccountInfo, session.get_json(ME_PATH, headers=_JSON), ME_PATH)


# --- organisations and namespaces -----------------------------------------------------------


def create_organisation(session: HubSession, name: str, title: str = "") -> Organisation:
    """A new organisation, and its namespace of the same name; the caller becomes its owner.

    Needs a token with the ``admin`` scope; a taken name raises ``NamespaceTakenError``.
    """
    request = _request(OrganisationRequest, "organisation", name=name, title=title)
    answer = session.post_json(ORGANISATIONS_PATH, _payload(request), headers=_JSON)
    return _parse(Organisation, answer, ORGANISATIONS_PATH)


def list_organisations(session: HubSession) -> tuple[Organisation, ...]:
    """The organisations the session's user belongs to, with their role in each."""
    answer = session.get_json(ORGANISATIONS_PATH, headers=_JSON)
    return _parse(OrganisationList, answer, ORGANISATIONS_PATH).organisations


def get_organisation(session: HubSession, name: str) -> Organisation:
    """One organisation and its members (``NotFoundError`` for one the user is not in)."""
    path = organisation_path(name)
    return _parse(Organisation, session.get_json(path, headers=_JSON), path)


def add_member(
    session: HubSession, organisation: str, username: str, role: OrgRole | str = OrgRole.READER
) -> Organisation:
    """Add a user to an organisation, or change their role (owners only)."""
    request = _request(MemberRequest, "member", username=username, role=str(role))
    path = members_path(organisation)
    return _parse(Organisation, session.post_json(path, _payload(request), headers=_JSON), path)


def remove_member(session: HubSession, organisation: str, username: str) -> Organisation:
    """Remove a user from an organisation (owners only); the organisation as it is now."""
    path = member_path(organisation, username)
    return _parse(Organisation, _json_answer(session.send("DELETE", path, headers=_JSON)), path)


def create_namespace(session: HubSession, name: str) -> Namespace:
    """A namespace of the session user's own (``NamespaceTakenError`` when the name is taken)."""
    request = _request(NamespaceRequest, "namespace", name=name)
    answer = session.post_json(NAMESPACES_PATH, _payload(request), headers=_JSON)
    return _parse(Namespace, answer, NAMESPACES_PATH)


def list_namespaces(session: HubSession) -> tuple[Namespace, ...]:
    """The namespaces the session's user may push into."""
    answer = session.get_json(NAMESPACES_PATH, headers=_JSON)
    return _parse(NamespaceList, answer, NAMESPACES_PATH).namespaces


# --- visibility -----------------------------------------------------------------------------


def get_visibility(session: HubSession, model: str) -> VisibilityState:
    """Who may see ``ns/name``, and a change that waits for a hub reviewer, if any."""
    path = visibility_path(_model_id(model))
    return _parse(VisibilityState, session.get_json(path, headers=_JSON), path)


def set_visibility(
    session: HubSession, model: str, visibility: Visibility | str, note: str = ""
) -> VisibilityState:
    """Change who may see ``ns/name``.

    The answer says what happened: ``requested`` is ``None`` when the change is made, and names
    the visibility asked for when it waits for a hub reviewer (making a model public does,
    unless a hub reviewer asks).
    """
    request = _request(VisibilityRequest, "visibility", visibility=str(visibility), note=note)
    path = visibility_path(_model_id(model))
    return _parse(VisibilityState, session.post_json(path, _payload(request), headers=_JSON), path)


def review_visibility(
    session: HubSession, model: str, decision: str, note: str = ""
) -> VisibilityState:
    """A hub reviewer's ``approve`` or ``reject`` of the change that waits on ``ns/name``."""
    request = _request(VisibilityReview, "visibility review", decision=decision, note=note)
    path = visibility_review_path(_model_id(model))
    return _parse(VisibilityState, session.post_json(path, _payload(request), headers=_JSON), path)


def _json_answer(response: httpx.Response) -> object:
    try:
        answer: object = response.json()
    except ValueError:
        raise ServerError(f"{response.request.url} answered with a body that is not JSON") from None
    return answer
