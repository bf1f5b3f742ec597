"""GitHub-linked submissions from the client: link a repository to a model, and submit a GitHub
release on demand.

The hub does the GitHub side with its own token (docs/github.md): :func:`push_from_github` only
asks it to fetch ``owner/repo@tag``'s package asset and submit it, so the client needs no GitHub
credential and the hub checks exactly what GitHub serves. :func:`wait_for_submission` follows
the fetch until the hub has made the release (or says why it could not).
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.github import (
    DEFAULT_ASSET_NAME,
    GITHUB_SUBMISSIONS_PATH,
    GithubLinkInfo,
    GithubLinkRequest,
    GithubSubmissionInfo,
    GithubSubmissionRequest,
    github_link_path,
    github_submission_path,
    parse_github_release_ref,
    parse_repository,
)
from medigan_catalog.schema import MODEL_ID_RE
from medigan_client.errors import BadRequestError, HubBusyError, ServerError, error_class_for
from medigan_client.http import HubSession

_JSON = {"Accept": "application/json"}
_Document = TypeVar("_Document", bound=BaseModel)


def _parse(document: type[_Document], answer: object, path: str) -> _Document:
    try:
        return document.model_validate(answer)
    except ValidationError as exc:
        raise ServerError(
            f"the hub's answer to {path} is not a {document.__name__}: "
            f"{exc.error_count()} problem(s), first {exc.errors()[0]['msg']}"
        ) from None


def _checked(call: Any, *args: Any) -> Any:
    """Run a catalog check; its refusal becomes the client exception of the same code."""
    try:
        return call(*args)
    except CatalogError as exc:
        cls = error_class_for(exc.code.value) or BadRequestError
        raise cls(exc.message, detail=exc.detail) from None


def _model_id(model: str) -> str:
    if not MODEL_ID_RE.fullmatch(model):
        raise BadRequestError(f"{model!r} is not a model id: write namespace/name")
    return model


def link_repository(
    session: HubSession, model: str, repository: str, *, asset_name: str = DEFAULT_ASSET_NAME
) -> GithubLinkInfo:
    """Link ``repository`` (``owner/repo``) to ``model``; the answer's ``secret`` is the
    webhook's secret, shown this once. Linking again replaces the link and its secret."""
    request = GithubLinkRequest(
        repository=_checked(parse_repository, repository), asset_name=asset_name
    )
    path = github_link_path(_model_id(model))
    answer = session.post_json(path, request.model_dump(mode="json"), headers=_JSON)
    return _parse(GithubLinkInfo, answer, path)


def get_link(session: HubSession, model: str) -> GithubLinkInfo:
    """The GitHub link of ``model`` (never its secret)."""
    path = github_link_path(_model_id(model))
    return _parse(GithubLinkInfo, session.get_json(path, headers=_JSON), path)


def unlink_repository(session: HubSession, model: str) -> None:
    """Remove the GitHub link of ``model``; its webhook is refused from then on."""
    session.send("DELETE", github_link_path(_model_id(model)), headers=_JSON)


def push_from_github(
    session: HubSession, release_ref: str, *, model: str | None = None
) -> GithubSubmissionInfo:
    """Ask the hub to fetch ``owner/repo@tag``'s package asset and submit it as version = tag.

    ``model`` chooses among several models linked to the repository. The tag is checked here
    first (``GithubTagNotSemverError``), as the hub would.
    """
    repository, tag = _checked(parse_github_release_ref, release_ref)
    request = GithubSubmissionRequest(
        repository=repository, tag=tag, model_id=_model_id(model) if model else None
    )
    answer = session.post_json(
        GITHUB_SUBMISSIONS_PATH, request.model_dump(mode="json"), headers=_JSON
    )
    return _parse(GithubSubmissionInfo, answer, GITHUB_SUBMISSIONS_PATH)


def submission_status(session: HubSession, submission_id: int) -> GithubSubmissionInfo:
    """The hub's state of one submission from GitHub."""
    path = github_submission_path(submission_id)
    return _parse(GithubSubmissionInfo, session.get_json(path, headers=_JSON), path)


def wait_for_submission(
    session: HubSession,
    submission: GithubSubmissionInfo,
    *,
    timeout: float = 600.0,
    poll_seconds: float = 1.0,
) -> GithubSubmissionInfo:
    """Wait until the hub has fetched and submitted the release; return the submission.

    A failed submission raises the exception of its error code (``GithubAssetMissingError``,
    ``GithubRateLimitedError`` once the hub gave up, ``CardInvalidError`` ...); one still queued
    after ``timeout`` seconds (GitHub's rate limit can hold it for long) raises ``HubBusyError``.
    """
    deadline = time.monotonic() + timeout
    current = submission
    while current.state == "queued":
        if time.monotonic() >= deadline:
            raise HubBusyError(
                f"the hub has not fetched {current.repository}@{current.tag} after {timeout:g} s"
                + (f" ({current.message})" if current.message else "")
                + f"; see it later with `medigan-client github status {current.id}`",
                detail=current.model_dump(mode="json"),
            )
        time.sleep(poll_seconds)
        current = submission_status(session, current.id)
    if current.state == "failed":
        cls = error_class_for(current.error_code or ErrorCode.BAD_REQUEST.value) or BadRequestError
        raise cls(
            f"the hub could not submit {current.repository}@{current.tag}: {current.message}",
            detail=current.model_dump(mode="json"),
        )
    return current
