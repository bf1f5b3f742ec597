"""Reads of GitHub-linked submissions: links, submissions a caller may see, their documents."""

from __future__ import annotations

from django.db.models import QuerySet

from hub.access import Viewer
from hub.accounts.models import RESERVED_NAMESPACES
from hub.github.models import GithubLink, GithubSubmission
from medigan_catalog.github import GithubLinkInfo, GithubSubmissionInfo, github_webhook_path
from medigan_catalog.snapshot import release_path


def github_link_get(*, namespace: str, name: str) -> GithubLink | None:
    """The GitHub link of ``namespace/name``, if it has one."""
    return (
        GithubLink.objects.select_related("linked_by")
        .filter(namespace=namespace, name=name)
        .first()
    )


def github_link_info(
    link: GithubLink, *, base_url: str, secret: str | None = None
) -> GithubLinkInfo:
    """The wire document of a link; ``secret`` only in the answer that made it."""
    return GithubLinkInfo(
        id=link.pk,
        model_id=link.model_id,
        repository=link.repository,
        asset_name=link.asset_name,
        webhook_url=base_url.rstrip("/") + github_webhook_path(link.pk),
        linked_by=link.linked_by.get_username() if link.linked_by_id else None,
        created_at=link.created_at,
        last_delivery_at=link.last_delivery_at,
        secret=secret,
    )


def github_submission_get_visible(*, submission_id: int, viewer: Viewer) -> GithubSubmission | None:
    """A submission the viewer may follow: one they asked for, or one of a model they maintain."""
    submission = (
        GithubSubmission.objects.select_related("link", "release__generative_model", "delivery")
        .filter(pk=submission_id)
        .first()
    )
    if submission is None or not viewer.signed_in:
        return None
    namespace = submission.link.namespace
    if submission.requested_by_id == viewer.user_id and viewer.within_token(namespace):
        return submission
    if viewer.may_push_to(namespace, reserved=namespace in RESERVED_NAMESPACES):
        return submission
    return None


def github_submission_info(submission: GithubSubmission, *, base_url: str) -> GithubSubmissionInfo:
    """The wire document of a submission, with its release's status URL once there is one."""
    release = submission.release
    return GithubSubmissionInfo(
        id=submission.pk,
        model_id=submission.link.model_id,
        repository=submission.link.repository,
        tag=submission.tag,
        version=submission.version,
        state=submission.state,
        origin=submission.origin,
        commit_sha=submission.commit_sha,
        attempts=submission.attempts,
        error_code=submission.error_code,
        message=submission.message,
        release=release.release_id if release is not None else None,
        release_state=release.state if release is not None else None,
        release_url=(
            base_url.rstrip("/") + release_path(release.model_id, release.version)
            if release is not None
            else None
        ),
        created_at=submission.created_at,
        updated_at=submission.updated_at,
    )


def github_submissions_of_link(link: GithubLink) -> QuerySet[GithubSubmission]:
    """A link's submissions, newest first."""
    return link.submissions.select_related("release").order_by("-created_at", "-pk")
