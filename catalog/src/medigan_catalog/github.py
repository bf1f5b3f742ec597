"""The GitHub-linked submissions part of the wire format: paths, documents, tag and asset rules.

A model's maintainer links a GitHub repository to it (``/api/v1/models/<ns>/<name>/github``);
GitHub then calls the link's webhook (``/api/v1/github/links/<id>/webhook``) when a release is
published, and a maintainer may ask for one release on demand
(``POST /api/v1/github/submissions``, ``medigan-client push --from-github owner/repo@tag``).
The hub renders :class:`GithubLinkInfo` and :class:`GithubSubmissionInfo`; the client parses
them. :func:`version_from_tag` is the one rule that turns a release tag into a version, and
:func:`asset_name_for` the one that names the package asset a release must carry.

docs/github.md describes the whole flow.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.schema import SEMVER_RE, VERSION_MAX_LENGTH
from medigan_catalog.snapshot import API_ROOT, model_path, path_segment

GITHUB_PATH: Final = f"{API_ROOT}/github"
GITHUB_SUBMISSIONS_PATH: Final = f"{GITHUB_PATH}/submissions"
# The package asset a release carries unless its link names another; ``{name}`` is the model's
# name, ``{version}`` the version taken from the tag, ``{tag}`` the tag as written.
DEFAULT_ASSET_NAME: Final = "{name}-{version}.zip"
# The commit status context the hub posts under, so a repository can require it.
STATUS_CONTEXT: Final = "medigan-hub/validation"
ASSET_NAME_MAX_LENGTH: Final = 255
# GitHub's own limits: an owner (user or organisation) of at most 39 characters, letters, digits
# and single hyphens; a repository name of at most 100 letters, digits, '.', '-' and '_'.
REPOSITORY_RE: Final = re.compile(
    r"(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38})/(?P<repo>[A-Za-z0-9._-]{1,100})"
)
_ASSET_FIELDS = re.compile(r"\{([^{}]*)\}")
_ASSET_PLACEHOLDERS = frozenset({"name", "version", "tag"})


class GithubTagNotSemverError(CatalogError):
    """A release tag that is not a semantic version, with or without a leading ``v``."""

    code = ErrorCode.GITHUB_TAG_NOT_SEMVER


def github_link_path(model_id: str) -> str:
    """``/api/v1/models/<ns>/<name>/github``: a model's GitHub link (GET, POST, DELETE)."""
    return f"{model_path(model_id)}/github"


def github_webhook_path(link_id: int) -> str:
    """``/api/v1/github/links/<id>/webhook``: where GitHub posts a link's events."""
    return f"{GITHUB_PATH}/links/{int(link_id)}/webhook"


def github_submission_path(submission_id: int | str) -> str:
    """``/api/v1/github/submissions/<id>``: one fetch-and-submit of a GitHub release."""
    return f"{GITHUB_SUBMISSIONS_PATH}/{path_segment(str(submission_id))}"


def parse_repository(text: str) -> str:
    """``owner/repo`` checked against GitHub's naming rules; raises ``bad_request`` otherwise."""
    value = text.strip()
    if not REPOSITORY_RE.fullmatch(value) or value.endswith((".git", "/")):
        raise CatalogError(
            f"{text!r} is not a GitHub repository: write it as owner/repo",
            {"repository": text},
            code=ErrorCode.BAD_REQUEST,
        )
    return value


def version_from_tag(tag: str) -> str:
    """The version a release tag stands for: ``v1.2.3`` and ``1.2.3`` are ``1.2.3``.

    Anything else (``latest``, ``v1.2``, ``release-1``) raises :class:`GithubTagNotSemverError`:
    a hub release is a semantic version, and guessing one from a tag would publish a version
    nobody chose.
    """
    version = tag[1:] if tag[:1] in ("v", "V") else tag
    if len(version) > VERSION_MAX_LENGTH or not SEMVER_RE.fullmatch(version):
        raise GithubTagNotSemverError(
            f"the tag {tag!r} is not a semantic version: tag releases MAJOR.MINOR.PATCH, "
            "optionally with a leading 'v' (v1.2.3)",
            {"tag": tag},
        )
    return version


def parse_github_release_ref(text: str) -> tuple[str, str]:
    """``owner/repo@tag`` as (repository, tag); the tag is checked by :func:`version_from_tag`."""
    repository, at, tag = text.partition("@")
    if not at or not tag:
        raise CatalogError(
            f"{text!r} names no release: write owner/repo@tag",
            {"ref": text},
            code=ErrorCode.BAD_REQUEST,
        )
    version_from_tag(tag)
    return parse_repository(repository), tag


def check_asset_name(template: str) -> str:
    """An asset name template: a file name with at most ``{name}``, ``{version}``, ``{tag}``."""
    unknown = set(_ASSET_FIELDS.findall(template)) - _ASSET_PLACEHOLDERS
    if (
        not template
        or len(template) > ASSET_NAME_MAX_LENGTH
        or "/" in template
        or unknown
        or template.count("{") != template.count("}")
    ):
        raise CatalogError(
            f"{template!r} is not an asset name: a file name that may use {{name}}, {{version}} "
            "and {tag}",
            {"asset_name": template},
            code=ErrorCode.BAD_REQUEST,
        )
    return template


def asset_name_for(template: str, *, name: str, version: str, tag: str) -> str:
    """The package asset's file name for one release of a link."""
    return template.replace("{name}", name).replace("{version}", version).replace("{tag}", tag)


class _GithubModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class GithubLinkRequest(_GithubModel):
    """``POST …/models/<ns>/<name>/github``: link (or link again) a repository to a model."""

    repository: str = Field(min_length=3, max_length=140)
    asset_name: str = Field(default=DEFAULT_ASSET_NAME, min_length=1, max_length=255)


class GithubSubmissionRequest(_GithubModel):
    """``POST /api/v1/github/submissions``: fetch ``repository@tag`` and submit it now;
    ``model_id`` chooses among several models linked to one repository."""

    repository: str = Field(min_length=3, max_length=140)
    tag: str = Field(min_length=1, max_length=255)
    model_id: str | None = Field(default=None, max_length=200)


class GithubLinkInfo(_GithubModel):
    """A model's GitHub link: the repository, the asset each release must carry, the webhook.

    ``secret`` is the webhook's secret, present only in the answer that created (or replaced)
    the link: the hub shows it once and keeps it encrypted.
    """

    id: int
    model_id: str
    repository: str
    asset_name: str = DEFAULT_ASSET_NAME
    webhook_url: str
    content_type: str = "application/json"
    events: tuple[str, ...] = ("release",)
    linked_by: str | None = None
    created_at: datetime | None = None
    last_delivery_at: datetime | None = None
    secret: str | None = None


class GithubSubmissionInfo(_GithubModel):
    """One fetch-and-submit of a GitHub release: ``queued`` until the hub has fetched the asset,
    then ``submitted`` (``release`` names the hub release) or ``failed`` (``error_code`` says
    why). ``attempts`` counts fetches, rate-limited ones included."""

    id: int
    model_id: str
    repository: str
    tag: str
    version: str
    state: str
    origin: str = Field(description="webhook or request")
    commit_sha: str = ""
    attempts: int = 0
    error_code: str = ""
    message: str = ""
    release: str | None = None
    release_state: str | None = None
    release_url: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
