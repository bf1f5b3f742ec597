"""GitHub's REST API as the hub uses it, through PyGithub: read a release, fetch its package
asset, find the tagged commit, post a commit status.

Every call goes to ``MEDIGAN_GITHUB_API_URL`` with the hub's token (``MEDIGAN_GITHUB_TOKEN``),
which never leaves the hub. PyGithub's own retrying is off (``retry=None``): its default sleeps in
the calling process until a rate limit resets, which would hold a Celery worker for up to an
hour. A rate limit is raised instead as :class:`GithubRateLimitedError` with the seconds to wait,
and the task retries later (``hub.github.tasks``). Other failures of GitHub become
:class:`GithubFailedError`, with ``retryable`` set for those worth another try (GitHub's 5xx, a
connection that failed).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from github import Auth, Github, GithubException
from github.GitReleaseAsset import GitReleaseAsset
from github.Repository import Repository

from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.github import STATUS_CONTEXT

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1024 * 1024
# GitHub's commit status description holds at most 140 characters.
DESCRIPTION_MAX_LENGTH = 140
_USER_AGENT = "medigan-hub"


class GithubRateLimitedError(CatalogError):
    """GitHub refused for its rate limit; ``retry_after`` is how long it asks to wait (s)."""

    code = ErrorCode.GITHUB_RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, {"retry_after_seconds": round(retry_after)})
        self.retry_after = retry_after


class GithubFailedError(CatalogError):
    """GitHub's API failed: no such repository, release or commit, or an error of GitHub's."""

    code = ErrorCode.GITHUB_FAILED

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message, {"status": status})
        self.status = status
        self.retryable = retryable


class GithubAssetMissingError(CatalogError):
    """The release carries no asset of the name its link expects."""

    code = ErrorCode.GITHUB_ASSET_MISSING


@dataclass(frozen=True)
class FetchedAsset:
    """A release's package asset, downloaded into ``path`` (the caller removes it)."""

    path: Path
    name: str
    size: int


def _github() -> Github:
    token = settings.MEDIGAN_GITHUB_TOKEN
    return Github(
        base_url=settings.MEDIGAN_GITHUB_API_URL,
        auth=Auth.Token(token) if token else None,
        timeout=int(settings.MEDIGAN_GITHUB_TIMEOUT_SECONDS),
        retry=None,
        user_agent=_USER_AGENT,
    )


def _header(headers: Mapping[str, Any] | None, name: str) -> str:
    if not headers:
        return ""
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return ""


def _rate_limit_wait(status: int, headers: Mapping[str, Any] | None) -> float | None:
    """Seconds GitHub asks to wait when ``status``/``headers`` are a rate limit, else None.

    The primary limit answers 403 (or 429) with ``X-RateLimit-Remaining: 0`` and the reset time
    in ``X-RateLimit-Reset`` (epoch seconds); a secondary limit answers with ``Retry-After``.
    """
    if status not in (403, 429):
        return None
    retry_after = _header(headers, "retry-after")
    if retry_after:
        with contextlib.suppress(ValueError):
            return max(0.0, float(retry_after))
    if _header(headers, "x-ratelimit-remaining") == "0":
        reset = _header(headers, "x-ratelimit-reset")
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return 60.0
    return None


@contextlib.contextmanager
def _translated(doing: str) -> Iterator[None]:
    """Turn PyGithub's and requests' exceptions into the hub's, saying what was being done."""
    try:
        yield
    except GithubException as error:
        wait = _rate_limit_wait(error.status, error.headers)
        if wait is not None:
            raise GithubRateLimitedError(
                f"GitHub's rate limit refused {doing}; it resets in {wait:.0f} s",
                retry_after=wait,
            ) from error
        message = error.message or (error.data or {}).get("message") or str(error.data)
        raise GithubFailedError(
            f"GitHub answered {error.status} to {doing}: {message}",
            status=error.status,
            retryable=error.status >= 500,
        ) from error
    except requests.HTTPError as error:
        response = error.response
        status = response.status_code if response is not None else 0
        wait = _rate_limit_wait(status, response.headers if response is not None else None)
        if wait is not None:
            raise GithubRateLimitedError(
                f"GitHub's rate limit refused {doing}; it resets in {wait:.0f} s",
                retry_after=wait,
            ) from error
        raise GithubFailedError(
            f"GitHub answered {status} to {doing}", status=status, retryable=status >= 500
        ) from error
    except (requests.RequestException, OSError) as error:
        raise GithubFailedError(
            f"GitHub could not be reached for {doing}: {error}", retryable=True
        ) from error


def _repository(client: Github, repository: str) -> Repository:
    return client.get_repo(repository)


def tag_commit_sha(repository: str, tag: str) -> str:
    """The commit a tag points to (through an annotated tag object when it is one)."""
    client = _github()
    try:
        with _translated(f"reading the tag {tag!r} of {repository}"):
            repo = _repository(client, repository)
            target = repo.get_git_ref(f"tags/{tag}").object
            # An annotated tag's ref points to a tag object, whose object is the commit.
            while target.type == "tag":
                target = repo.get_git_tag(target.sha).object
            return str(target.sha)
    finally:
        client.close()


def _asset_named(assets: list[GitReleaseAsset], name: str) -> GitReleaseAsset | None:
    for asset in assets:
        if asset.name == name:
            return asset
    return None


def release_asset_fetch(
    *, repository: str, tag: str, asset_name: str, max_bytes: int, work_dir: Path
) -> FetchedAsset:
    """Download the asset ``asset_name`` of the release tagged ``tag`` into ``work_dir``.

    GitHub answers the asset's API URL asked with ``Accept: application/octet-stream`` by a
    redirect to the file's storage; PyGithub follows it (without the token when the storage is
    another host). The size is checked against ``max_bytes`` before and while downloading.
    """
    client = _github()
    try:
        with _translated(f"reading the release {tag!r} of {repository}"):
            release = _repository(client, repository).get_release(tag)
            assets = list(release.get_assets())
        asset = _asset_named(assets, asset_name)
        if asset is None:
            present = sorted(found.name for found in assets)
            raise GithubAssetMissingError(
                f"the release {tag!r} of {repository} has no asset {asset_name!r} "
                f"(it has: {', '.join(present) or 'none'}); attach the package zip under that "
                "name, or change the link's asset name",
                {"asset_name": asset_name, "assets": present},
            )
        if asset.size > max_bytes:
            raise CatalogError(
                f"the asset {asset_name!r} has {asset.size} bytes; the hub accepts at most "
                f"{max_bytes}",
                {"size": asset.size, "limit": max_bytes},
                code=ErrorCode.PAYLOAD_TOO_LARGE,
            )
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the caller owns the file
            dir=work_dir, prefix="github-asset-", suffix=".zip", delete=False
        )
        path = Path(handle.name)
        size = 0
        try:
            with handle, _translated(f"downloading {asset_name!r} of {repository}@{tag}"):
                _, _, chunks = asset.download_asset(chunk_size=_CHUNK_BYTES)
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise CatalogError(
                            f"the asset {asset_name!r} is larger than the {max_bytes} bytes "
                            "the hub accepts",
                            {"limit": max_bytes},
                            code=ErrorCode.PAYLOAD_TOO_LARGE,
                        )
                    handle.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return FetchedAsset(path=path, name=asset_name, size=size)
    finally:
        client.close()


def commit_status_post(
    *, repository: str, sha: str, state: str, target_url: str, description: str
) -> None:
    """Post a commit status (``pending``, ``success``, ``failure``, ``error``) to ``sha``,
    under the context :data:`~medigan_catalog.github.STATUS_CONTEXT`."""
    client = _github()
    try:
        with _translated(f"posting a {state} status to {repository}@{sha[:12]}"):
            commit = _repository(client, repository).get_commit(sha)
            commit.create_status(
                state,
                target_url=target_url,
                description=description[:DESCRIPTION_MAX_LENGTH],
                context=STATUS_CONTEXT,
            )
    finally:
        client.close()
