"""Celery tasks of GitHub-linked submissions: thin wrappers that take ids and call a service.

Both talk to GitHub, so both retry what GitHub asks them to retry: a rate limit after the time
GitHub names (``X-RateLimit-Reset`` or ``Retry-After``), GitHub's own failures and lost
connections with a growing delay, at most ``MEDIGAN_GITHUB_MAX_RETRIES`` times. A submission that
runs out of retries is marked failed with the last error's code; a status that cannot be posted
stays recorded with its error.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings

from hub.github import remote, services
from hub.work import BUSY_RETRY

logger = logging.getLogger(__name__)


def _retry_or_give_up(
    task: Task, error: remote.GithubRateLimitedError | remote.GithubFailedError
) -> bool:
    """Whether the error is worth another try that is still allowed."""
    retryable = isinstance(error, remote.GithubRateLimitedError) or error.retryable
    return retryable and task.request.retries < settings.MEDIGAN_GITHUB_MAX_RETRIES


@shared_task(
    name="hub.github.tasks.github_submission_run_task", bind=True, acks_late=True, **BUSY_RETRY
)
def github_submission_run_task(self: Task, submission_id: int) -> str:
    """Fetch a GitHub release's package asset and submit it (queue ``default``)."""
    try:
        submission = services.github_submission_run(submission_id=submission_id)
    except (remote.GithubRateLimitedError, remote.GithubFailedError) as error:
        if not _retry_or_give_up(self, error):
            return services.github_submission_fail(submission_id=submission_id, error=error).state
        raise self.retry(
            exc=error,
            countdown=services.retry_delay(error, self.request.retries),
            max_retries=settings.MEDIGAN_GITHUB_MAX_RETRIES,
        ) from error
    return "skipped" if submission is None else submission.state


@shared_task(name="hub.github.tasks.github_status_post_task", bind=True, **BUSY_RETRY)
def github_status_post_task(self: Task, submission_id: int) -> str:
    """Post the commit status of a submission's current state (queue ``default``)."""
    try:
        status = services.github_status_post(submission_id=submission_id)
    except (remote.GithubRateLimitedError, remote.GithubFailedError) as error:
        if not _retry_or_give_up(self, error):
            logger.warning("gave up posting the status of submission %s: %s", submission_id, error)
            return "failed"
        raise self.retry(
            exc=error,
            countdown=services.retry_delay(error, self.request.retries),
            max_retries=settings.MEDIGAN_GITHUB_MAX_RETRIES,
        ) from error
    return "unchanged" if status is None else status.state
