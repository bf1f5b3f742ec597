"""A GitHub release webhook, end to end inside the hub, against the fake GitHub on 127.0.0.1:
signature, replay, tag, asset, rate limit, the submission, validation and the commit statuses.

Celery runs eagerly, and ``django_capture_on_commit_callbacks(execute=True)`` runs what the
hub queues once a transaction commits: the fetch, the validation and the statuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.access import viewer_for
from hub.github import services, webhooks
from hub.github.models import GithubCommitStatus, GithubDelivery, GithubLink, GithubSubmission
from hub.github.remote import GithubFailedError, GithubRateLimitedError
from hub.registry import services as registry_services
from hub.registry.models import Release
from tests import factories
from tests.github_server import GithubServer
from tests.hub.github.conftest import (
    MODEL,
    PUBLIC_URL,
    REPOSITORY,
    Linked,
    deliver,
    package_bytes,
    ping_body,
)

pytestmark = pytest.mark.django_db

ASSET = "noise-16-1.0.0.zip"


def test_a_signed_release_webhook_submits_the_asset_and_posts_statuses_to_the_commit(
    github: GithubServer, linked: Linked, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    sha = github.add_release(REPOSITORY, "v1.0.0", {ASSET: package_bytes(tmp_path)})

    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(
            linked.webhook_path, github.release_event(REPOSITORY, "v1.0.0"), secret=linked.secret
        )
    release = Release.objects.get()
    statuses = [status for status in github.statuses if status["sha"] == sha]

    assert response.status_code == 202, response.json()
    assert response.json()["outcome"] == "queued"
    assert (release.model_id, release.version, release.state) == (MODEL, "1.0.0", "in_review")
    assert release.submitted_by == linked.user
    assert release.artifacts.get().filename == ASSET
    submission = GithubSubmission.objects.get()
    assert (submission.state, submission.commit_sha, submission.release) == (
        "submitted",
        sha,
        release,
    )
    # Validation ran before the status of its first change was posted: each status reports the
    # release's state when it is posted, so the second one is already the success.
    assert [status["state"] for status in statuses] == ["pending", "success"]
    assert statuses[0]["description"] == "alice/noise-16@1.0.0 received"
    assert {status["context"] for status in statuses} == {"medigan-hub/validation"}
    assert statuses[-1]["target_url"] == f"{PUBLIC_URL}/submissions/alice/noise-16/1.0.0/"
    assert "passed its checks" in statuses[-1]["description"]
    # The token went to GitHub's API with every request; the asset was fetched as GitHub serves
    # it: the API URL asked for octet-stream, then the storage it redirects to.
    assert all(authorised for _, path, _, authorised in github.requests if "_storage" not in path)
    assert github.count("GET", r"^/repos/alice/noise-model/releases/assets/\d+$") == 1
    assert github.count("GET", r"^/_storage/") == 1

    with django_capture_on_commit_callbacks(execute=True):
        registry_services.release_review(
            release_id=release.pk,
            reviewer=factories.user("rita", reviewer=True),
            decision="approve",
        )

    assert github.statuses[-1]["state"] == "success"
    assert github.statuses[-1]["target_url"] == f"{PUBLIC_URL}/models/alice/noise-16/1.0.0/"
    assert GithubCommitStatus.objects.filter(posted=True).count() == len(github.statuses) == 3


def test_an_annotated_tag_reports_to_the_commit_it_tags(
    github: GithubServer, linked: Linked, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    sha = github.add_release(REPOSITORY, "1.0.0", {ASSET: package_bytes(tmp_path)}, annotated=True)
    github.statuses.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.github_submission_request(
            viewer=viewer_for(linked.user),
            user=linked.user,
            repository=REPOSITORY,
            tag="1.0.0",
        )

    assert GithubSubmission.objects.get().commit_sha == sha
    assert github.statuses[-1]["sha"] == sha
    assert github.count("GET", r"/git/tags/[0-9a-f]{40}$") == 1


@pytest.mark.parametrize(
    "signature",
    [
        "sha256=" + "0" * 64,
        "",  # none at all
        "sha1=0123456789abcdef0123456789abcdef01234567",
    ],
)
def test_a_wrong_or_missing_signature_is_refused_and_creates_nothing(
    github: GithubServer, linked: Linked, tmp_path: Path, signature: str
) -> None:
    github.add_release(REPOSITORY, "v1.0.0", {ASSET: package_bytes(tmp_path)})
    requests_before = len(github.requests)

    response = deliver(
        linked.webhook_path,
        github.release_event(REPOSITORY, "v1.0.0"),
        secret=linked.secret,
        signature=signature,
    )

    assert response.status_code == 401
    assert response.json()["code"] == "github_signature_invalid"
    assert Release.objects.count() == 0
    assert GithubDelivery.objects.count() == 0
    assert GithubSubmission.objects.count() == 0
    assert GithubLink.objects.get().last_delivery_at is None
    assert len(github.requests) == requests_before


def test_a_body_signed_with_another_secret_or_sent_to_an_unknown_link_reads_the_same(
    github: GithubServer, linked: Linked
) -> None:
    wrong = deliver(linked.webhook_path, ping_body(), secret="not-the-secret", event="ping")
    unknown = deliver(
        f"/api/v1/github/links/{linked.link_id + 1000}/webhook",
        ping_body(),
        secret=linked.secret,
        event="ping",
    )

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert GithubDelivery.objects.count() == 0


def test_a_ping_is_answered_and_its_replay_refused(github: GithubServer, linked: Linked) -> None:
    first = deliver(
        linked.webhook_path, ping_body(), secret=linked.secret, event="ping", delivery_id="d-1"
    )
    again = deliver(
        linked.webhook_path, ping_body(), secret=linked.secret, event="ping", delivery_id="d-1"
    )

    assert first.status_code == 200
    assert first.json()["outcome"] == "pong"
    assert again.status_code == 409
    assert again.json()["code"] == "github_delivery_replayed"
    assert GithubDelivery.objects.count() == 1
    assert GithubLink.objects.get().last_delivery_at is not None


def test_a_replayed_release_delivery_submits_nothing_again(
    github: GithubServer, linked: Linked, django_capture_on_commit_callbacks: Any
) -> None:
    # A release without the package asset: the first delivery's submission fails quickly.
    github.add_release(REPOSITORY, "v2.0.0", {"notes.txt": b"no package"})
    body = github.release_event(REPOSITORY, "v2.0.0")

    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(linked.webhook_path, body, secret=linked.secret, delivery_id="d-2")
        replay = deliver(linked.webhook_path, body, secret=linked.secret, delivery_id="d-2")

    assert first.status_code == 202
    assert replay.status_code == 409
    assert replay.json()["code"] == "github_delivery_replayed"
    assert replay.json()["detail"] == {"delivery": "d-2", "outcome": "queued"}
    assert GithubSubmission.objects.count() == 1
    assert github.count("GET", r"/releases/tags/v2\.0\.0$") == 1


@pytest.mark.parametrize("tag", ["latest", "v1.2", "release-1.0.0", "v01.0.0"])
def test_a_tag_that_is_not_semver_is_refused_and_recorded(
    github: GithubServer, linked: Linked, tag: str
) -> None:
    github.add_release(REPOSITORY, tag, {ASSET: b"zip"})
    requests_before = len(github.requests)

    response = deliver(
        linked.webhook_path, github.release_event(REPOSITORY, tag), secret=linked.secret
    )

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "github_tag_not_semver"
    assert "semantic version" in body["message"]
    assert body["detail"]["tag"] == tag
    delivery = GithubDelivery.objects.get()
    assert (delivery.outcome, delivery.error_code) == ("refused", "github_tag_not_semver")
    assert GithubSubmission.objects.count() == 0
    assert len(github.requests) == requests_before


def test_other_events_and_actions_are_ignored(github: GithubServer, linked: Linked) -> None:
    github.add_release(REPOSITORY, "v1.0.0", {ASSET: b"zip"})

    created = deliver(
        linked.webhook_path,
        github.release_event(REPOSITORY, "v1.0.0", action="created"),
        secret=linked.secret,
    )
    push = deliver(
        linked.webhook_path, b'{"ref": "refs/heads/main"}', secret=linked.secret, event="push"
    )

    assert (created.status_code, created.json()["outcome"]) == (200, "ignored")
    assert (push.status_code, push.json()["outcome"]) == (200, "ignored")
    assert GithubSubmission.objects.count() == 0


def test_a_release_of_another_repository_is_refused(github: GithubServer, linked: Linked) -> None:
    github.add_release("mallory/other", "v1.0.0", {ASSET: b"zip"})

    response = deliver(
        linked.webhook_path, github.release_event("mallory/other", "v1.0.0"), secret=linked.secret
    )

    assert response.status_code == 400
    assert "alice/noise-model" in response.json()["message"]
    assert GithubSubmission.objects.count() == 0


def test_a_release_without_the_package_asset_fails_with_a_clear_error_and_status(
    github: GithubServer, linked: Linked, django_capture_on_commit_callbacks: Any
) -> None:
    sha = github.add_release(REPOSITORY, "v1.0.0", {"model.zip": b"zip", "README.md": b"#"})

    with django_capture_on_commit_callbacks(execute=True):
        deliver(
            linked.webhook_path, github.release_event(REPOSITORY, "v1.0.0"), secret=linked.secret
        )
    submission = GithubSubmission.objects.get()

    assert submission.state == "failed"
    assert submission.error_code == "github_asset_missing"
    assert ASSET in submission.message
    assert "README.md, model.zip" in submission.message
    assert Release.objects.count() == 0
    assert [(status["sha"], status["state"]) for status in github.statuses] == [(sha, "error")]
    assert github.statuses[0]["target_url"] == f"{PUBLIC_URL}/submissions/"


@pytest.fixture
def eager_retries() -> Iterator[None]:
    """Let an eager task's ``retry`` run it again at once, as a worker would after the delay:
    Celery does so only when eager tasks do not propagate their exceptions (a ``Retry``
    included)."""
    from hub.celery import app

    previous = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = previous


@pytest.mark.usefixtures("eager_retries")
def test_a_rate_limited_fetch_is_retried_and_then_succeeds(
    github: GithubServer, linked: Linked, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    github.add_release(REPOSITORY, "v1.0.0", {ASSET: package_bytes(tmp_path)})
    github.rate_limit(2, reset_in=120)

    with django_capture_on_commit_callbacks(execute=True):
        deliver(
            linked.webhook_path, github.release_event(REPOSITORY, "v1.0.0"), secret=linked.secret
        )
    submission = GithubSubmission.objects.get()

    assert github.rate_limited_answers == 2
    assert submission.attempts == 3
    assert submission.state == "submitted"
    assert submission.release is not None
    assert submission.release.state == "in_review"
    assert github.statuses[-1]["state"] == "success"


@pytest.mark.usefixtures("eager_retries")
def test_a_fetch_still_rate_limited_after_the_last_retry_fails_with_its_code(
    github: GithubServer, linked: Linked, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIGAN_GITHUB_MAX_RETRIES = 2
    github.add_release(REPOSITORY, "v1.0.0", {ASSET: b"zip"})
    github.rate_limit(10)

    with django_capture_on_commit_callbacks(execute=True):
        deliver(
            linked.webhook_path, github.release_event(REPOSITORY, "v1.0.0"), secret=linked.secret
        )
    submission = GithubSubmission.objects.get()

    assert (submission.state, submission.error_code, submission.attempts) == (
        "failed",
        "github_rate_limited",
        3,
    )
    assert "rate limit" in submission.message


def test_the_retry_waits_for_githubs_reset_within_the_bounds(settings: Any) -> None:
    settings.MEDIGAN_GITHUB_RETRY_MIN_SECONDS = 30
    settings.MEDIGAN_GITHUB_RETRY_MAX_SECONDS = 3600

    assert services.retry_delay(GithubRateLimitedError("x", retry_after=100), 0) == 105
    assert services.retry_delay(GithubRateLimitedError("x", retry_after=0), 0) == 30
    assert services.retry_delay(GithubRateLimitedError("x", retry_after=10**6), 0) == 3600
    assert services.retry_delay(GithubFailedError("x", retryable=True), 3) == 240


def test_the_secret_is_stored_encrypted_and_a_rotated_one_replaces_it(
    github: GithubServer, linked: Linked
) -> None:
    link = GithubLink.objects.get()

    assert linked.secret not in link.secret_encrypted
    assert webhooks.secret_decrypt(link.secret_encrypted) == linked.secret

    new = services.github_link_secret_rotate(link_id=link.pk)
    old = deliver(linked.webhook_path, ping_body(), secret=linked.secret, event="ping")
    fresh = deliver(linked.webhook_path, ping_body(), secret=new, event="ping")

    assert (old.status_code, fresh.status_code) == (401, 200)
