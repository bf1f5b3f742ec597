"""Writes of GitHub-linked submissions: links, webhook deliveries, fetch-and-submit, statuses.

The walk of one GitHub release (docs/github.md):

1. ``github_link_create``: a maintainer of the model links ``owner/repo``; the hub makes the
   webhook secret, answers it once and keeps it encrypted.
2. ``github_webhook_receive``: GitHub posts a ``release`` event; its signature is verified
   before anything is read or written (a bad one is refused and leaves no trace), the delivery
   id is recorded once (a replay is refused), a ``published`` release with a semver tag becomes a
   queued :class:`GithubSubmission`. ``github_submission_request`` queues the same on demand.
3. ``github_submission_run`` (in ``github_submission_run_task``): the tagged commit and the
   package asset are fetched with the hub's token, and the asset is submitted through the
   registry's ``release_submit`` as version = tag, in the name of the link's maintainer (or the
   maintainer who asked). A rate limit is raised to the task, which retries after GitHub's reset.
4. ``github_status_post`` (on every state change of the release, ``hub.github.receivers``):
   the commit status for the release's current state is posted to the tagged commit.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from hub.access import Viewer, model_visible_or_pending_q, viewer_for
from hub.accounts.models import RESERVED_NAMESPACES, Namespace
from hub.github import remote, webhooks
from hub.github.models import GithubCommitStatus, GithubDelivery, GithubLink, GithubSubmission
from hub.registry import services as registry_services
from hub.registry.models import GenerativeModel, Release
from medigan_catalog.access import TokenScope
from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.github import (
    DEFAULT_ASSET_NAME,
    asset_name_for,
    check_asset_name,
    parse_repository,
    version_from_tag,
)
from medigan_catalog.lifecycle import ReleaseState
from medigan_catalog.packaging import CARD_FILENAME
from medigan_catalog.schema import MODEL_ID_RE

logger = logging.getLogger(__name__)

DELIVERY_HEADER = "X-GitHub-Delivery"
EVENT_HEADER = "X-GitHub-Event"
_DELIVERY_ID_MAX = 100
# A card is a few kilobytes; a card.json larger than this in a package is not one.
_CARD_MAX_BYTES = 1024 * 1024


class GithubSignatureInvalidError(CatalogError):
    """A webhook without a valid ``X-Hub-Signature-256`` for the link it was sent to."""

    code = ErrorCode.GITHUB_SIGNATURE_INVALID


class GithubDeliveryReplayedError(CatalogError):
    """A webhook delivery id this link has received before."""

    code = ErrorCode.GITHUB_DELIVERY_REPLAYED


# -- links ------------------------------------------------------------------------------------


def _model_of(namespace: str, name: str) -> GenerativeModel | None:
    return GenerativeModel.objects.filter(namespace=namespace, name=name).first()


def github_link_access_check(*, viewer: Viewer, namespace: str, name: str) -> None:
    """Refuse unless ``viewer`` may manage the GitHub link of ``namespace/name``: the model's
    maintainers, who may push to its namespace (the model need not exist before its first
    release). Whoever may not see the model, or would not maintain it were it there, gets
    ``not_found``, worded as for no model at all, so the answer tells nothing of its existence."""
    if not MODEL_ID_RE.fullmatch(f"{namespace}/{name}"):
        raise CatalogError(f"{namespace}/{name} is not a model id", code=ErrorCode.BAD_REQUEST)
    not_found = CatalogError(f"no generative model {namespace}/{name}", code=ErrorCode.NOT_FOUND)
    reserved = namespace in RESERVED_NAMESPACES
    if _model_of(namespace, name) is not None:
        visible = (
            GenerativeModel.objects.filter(model_visible_or_pending_q(viewer))
            .filter(namespace=namespace, name=name)
            .exists()
        )
        if not visible:
            raise not_found
    else:
        if not reserved and not Namespace.objects.filter(name=namespace).exists():
            raise registry_services.NamespaceNotFoundError(
                f"the namespace {namespace!r} does not exist", {"namespace": namespace}
            )
        # Only a maintainer of the namespace learns more than "no such model" about a model
        # that is not there yet; the scope is checked next, as for a model that exists.
        as_pusher = replace(viewer, scopes=viewer.scopes | {TokenScope.PUSH})
        if not as_pusher.may_push_to(namespace, reserved=reserved):
            raise not_found
    registry_services.require_scope(viewer, TokenScope.PUSH, "link a GitHub repository")
    if not viewer.may_push_to(namespace, reserved=reserved):
        raise CatalogError(
            f"only the maintainers of {namespace}/{name} (who may push to {namespace!r}) manage "
            "its GitHub link",
            {"model_id": f"{namespace}/{name}"},
            code=ErrorCode.PERMISSION_DENIED,
        )


def github_link_check(
    *, viewer: Viewer, namespace: str, name: str, repository: str, asset_name: str
) -> tuple[str, str]:
    """Refuse a link ``viewer`` may not make or that is malformed; return the repository and
    asset name as they will be stored."""
    github_link_access_check(viewer=viewer, namespace=namespace, name=name)
    return parse_repository(repository), check_asset_name(asset_name)


def github_link_create(
    *,
    viewer: Viewer,
    user: User,
    namespace: str,
    name: str,
    repository: str,
    asset_name: str = DEFAULT_ASSET_NAME,
) -> tuple[GithubLink, str]:
    """Link ``namespace/name`` to ``repository``; return the link and its new webhook secret.

    Linking a model that is linked already replaces the link, secret included: that is how a
    maintainer changes the repository or rotates a secret that leaked. The secret is returned
    this once and stored only encrypted.
    """
    repository, asset_name = github_link_check(
        viewer=viewer, namespace=namespace, name=name, repository=repository, asset_name=asset_name
    )
    secret = webhooks.secret_generate()
    with transaction.atomic():
        link, created = GithubLink.objects.select_for_update().update_or_create(
            namespace=namespace,
            name=name,
            defaults={
                "repository": repository,
                "asset_name": asset_name,
                "secret_encrypted": webhooks.secret_encrypt(secret),
                "linked_by": user,
            },
        )
    logger.info(
        "%s %s/%s to GitHub %s", "linked" if created else "re-linked", namespace, name, repository
    )
    return link, secret


def github_link_secret_rotate(*, link_id: int) -> str:
    """Give a link a new webhook secret (an operator's action, after a leak); return it once.

    Deliveries signed with the old secret are refused from then on.
    """
    secret = webhooks.secret_generate()
    updated = GithubLink.objects.filter(pk=link_id).update(
        secret_encrypted=webhooks.secret_encrypt(secret), updated_at=timezone.now()
    )
    if not updated:
        raise CatalogError(f"no GitHub link {link_id}", code=ErrorCode.NOT_FOUND)
    logger.info("rotated the webhook secret of GitHub link %s", link_id)
    return secret


def github_link_delete(*, viewer: Viewer, namespace: str, name: str) -> None:
    """Remove the link of ``namespace/name``; its webhook is refused from then on."""
    github_link_access_check(viewer=viewer, namespace=namespace, name=name)
    deleted, _ = GithubLink.objects.filter(namespace=namespace, name=name).delete()
    if not deleted:
        raise CatalogError(f"{namespace}/{name} has no GitHub link", code=ErrorCode.NOT_FOUND)


# -- webhooks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookAnswer:
    """What the webhook answers GitHub: 200 (ping, ignored), 202 (queued), or an error code."""

    delivery_id: str
    event: str
    outcome: str
    message: str
    submission_id: int | None = None
    error_code: ErrorCode | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _verified_link(link_id: int, body: bytes, signature: str | None) -> GithubLink:
    """The link whose secret signed ``body``; the same refusal for an unknown link, a missing
    signature and a wrong one, so the answer tells an attacker nothing."""
    link = GithubLink.objects.filter(pk=link_id).select_related("linked_by").first()
    secret: str | None = None
    if link is not None:
        try:
            secret = webhooks.secret_decrypt(link.secret_encrypted)
        except webhooks.SecretUnreadableError:
            logger.error("the webhook secret of %s cannot be decrypted; link it again", link)
    if link is None or secret is None or not webhooks.signature_matches(body, secret, signature):
        raise GithubSignatureInvalidError(
            f"the delivery's {webhooks.SIGNATURE_HEADER} does not verify: it must be the "
            "HMAC-SHA256 of the body with the secret the hub gave when the repository was linked"
        )
    return link


def _payload(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise CatalogError(
            f"the delivery is not JSON ({error}); set the webhook's content type to "
            "application/json",
            code=ErrorCode.BAD_REQUEST,
        ) from error
    if not isinstance(data, dict):
        raise CatalogError("the delivery's body is not a JSON object", code=ErrorCode.BAD_REQUEST)
    return data


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def github_webhook_receive(
    *, link_id: int, body: bytes, headers: Mapping[str, str]
) -> WebhookAnswer:
    """Verify and record one webhook delivery; queue a submission for a published release.

    Nothing is written before the signature verified. Afterwards every delivery is recorded
    once per link and delivery id: a second one with the same id is refused with
    ``github_delivery_replayed`` and changes nothing. A refusal of a verified delivery (a tag
    that is not semver, a release of another repository) is recorded with its code.
    """
    link = _verified_link(link_id, body, headers.get(webhooks.SIGNATURE_HEADER))
    delivery_id = headers.get(DELIVERY_HEADER, "").strip()
    event = headers.get(EVENT_HEADER, "").strip()
    if not delivery_id or len(delivery_id) > _DELIVERY_ID_MAX:
        raise CatalogError(
            f"the delivery has no usable {DELIVERY_HEADER} header", code=ErrorCode.BAD_REQUEST
        )
    payload = _payload(body)
    action = _text(payload.get("action"))[:64]
    answer = _webhook_answer(link, delivery_id, event[:64], action, payload)
    try:
        with transaction.atomic():
            delivery = GithubDelivery.objects.create(
                link=link,
                delivery_id=delivery_id,
                event=event[:64],
                action=action,
                outcome=answer.outcome,
                error_code=answer.error_code.value if answer.error_code else "",
                message=answer.message,
            )
            GithubLink.objects.filter(pk=link.pk).update(last_delivery_at=timezone.now())
            if answer.outcome == GithubDelivery.Outcome.QUEUED:
                submission = GithubSubmission.objects.create(
                    link=link,
                    delivery=delivery,
                    requested_by=link.linked_by,
                    tag=answer.detail["tag"],
                    version=answer.detail["version"],
                )
                submission_id = submission.pk
                transaction.on_commit(lambda: _queue_submission(submission_id))
                answer = WebhookAnswer(
                    delivery_id=delivery_id,
                    event=answer.event,
                    outcome=answer.outcome,
                    message=answer.message,
                    submission_id=submission_id,
                    detail=answer.detail,
                )
    except IntegrityError as error:
        first = GithubDelivery.objects.filter(link=link, delivery_id=delivery_id).first()
        if first is None:
            raise
        raise GithubDeliveryReplayedError(
            f"the delivery {delivery_id} was received at {first.received_at.isoformat()} "
            f"({first.outcome}); a delivery is handled once",
            {"delivery": delivery_id, "outcome": first.outcome},
        ) from error
    logger.info("GitHub delivery %s (%s) for %s: %s", delivery_id, event, link, answer.outcome)
    return answer


def _webhook_answer(
    link: GithubLink, delivery_id: str, event: str, action: str, payload: dict[str, Any]
) -> WebhookAnswer:
    """What a verified delivery asks for; pure, so that the caller records it in one place."""
    if event == "ping":
        return WebhookAnswer(
            delivery_id, event, GithubDelivery.Outcome.PONG, f"linked to {link.model_id}"
        )
    if event != "release" or action != "published":
        return WebhookAnswer(
            delivery_id,
            event,
            GithubDelivery.Outcome.IGNORED,
            "the hub acts on release events with the action published only",
        )
    repository = payload.get("repository")
    full_name = _text(repository.get("full_name")) if isinstance(repository, dict) else ""
    if full_name.lower() != link.repository.lower():
        return WebhookAnswer(
            delivery_id,
            event,
            GithubDelivery.Outcome.REFUSED,
            f"this webhook is for {link.repository}, not {full_name or 'an unnamed repository'}",
            error_code=ErrorCode.BAD_REQUEST,
            detail={"repository": full_name},
        )
    release = payload.get("release")
    tag = _text(release.get("tag_name")) if isinstance(release, dict) else ""
    try:
        version = version_from_tag(tag)
    except CatalogError as error:
        return WebhookAnswer(
            delivery_id,
            event,
            GithubDelivery.Outcome.REFUSED,
            error.message,
            error_code=error.code,
            detail={"tag": tag},
        )
    return WebhookAnswer(
        delivery_id,
        event,
        GithubDelivery.Outcome.QUEUED,
        f"fetching {link.repository}@{tag} to submit {link.model_id}@{version}",
        detail={"tag": tag, "version": version},
    )


def _queue_submission(submission_id: int) -> None:
    from hub.github.tasks import github_submission_run_task

    try:
        github_submission_run_task.delay(submission_id)
    except Exception:
        # The submission is recorded as queued; a lost message must not fail GitHub's delivery
        # after the fact. Asking again on demand (push --from-github) fetches it.
        logger.exception("could not queue GitHub submission %s", submission_id)


# -- on demand --------------------------------------------------------------------------------


def github_submission_request(
    *, viewer: Viewer, user: User, repository: str, tag: str, model_id: str | None = None
) -> GithubSubmission:
    """Queue the fetch and submission of ``repository@tag`` for the caller, a maintainer of a
    model linked to that repository (``model_id`` chooses when several are)."""
    repository = parse_repository(repository)
    version = version_from_tag(tag)
    registry_services.require_scope(viewer, TokenScope.PUSH, "submit a GitHub release")
    links = [
        link
        for link in GithubLink.objects.filter(repository__iexact=repository).order_by("pk")
        if (model_id is None or link.model_id == model_id)
        and viewer.may_push_to(link.namespace, reserved=link.namespace in RESERVED_NAMESPACES)
    ]
    if not links:
        raise CatalogError(
            f"no model you maintain is linked to {repository}"
            + (f" as {model_id}" if model_id else "")
            + "; link one first (medigan-client github link NS/NAME OWNER/REPO)",
            {"repository": repository},
            code=ErrorCode.NOT_FOUND,
        )
    if len(links) > 1:
        raise CatalogError(
            f"several models you maintain are linked to {repository}: name one "
            f"({', '.join(link.model_id for link in links)})",
            {"models": [link.model_id for link in links]},
            code=ErrorCode.BAD_REQUEST,
        )
    with transaction.atomic():
        submission = GithubSubmission.objects.create(
            link=links[0], requested_by=user, tag=tag, version=version
        )
        submission_id = submission.pk
        transaction.on_commit(lambda: _queue_submission(submission_id))
    return submission


# -- fetch and submit -------------------------------------------------------------------------


def _work_dir() -> Path:
    path = Path(settings.MEDIGAN_WORK_DIR) / "github"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _card_of_package(path: Path, *, link: GithubLink, version: str) -> tuple[dict[str, Any], str]:
    """The card in the package zip's ``card.json`` as version = tag, checked against the link,
    and a note when the card said another version."""
    try:
        with zipfile.ZipFile(path) as archive:
            member = archive.getinfo(CARD_FILENAME)
            if member.file_size > _CARD_MAX_BYTES:
                raise CatalogError(
                    f"the package's {CARD_FILENAME} is too large to be a card",
                    code=ErrorCode.CARD_INVALID,
                )
            data = json.loads(archive.read(member).decode("utf-8"))
    except KeyError:
        raise CatalogError(
            f"the asset has no {CARD_FILENAME} at its root; zip the package folder's contents",
            code=ErrorCode.CARD_INVALID,
        ) from None
    except (zipfile.BadZipFile, UnicodeDecodeError, ValueError) as error:
        raise CatalogError(
            f"the asset is not a zip with a UTF-8 JSON {CARD_FILENAME}: {error}",
            code=ErrorCode.CARD_INVALID,
        ) from error
    if not isinstance(data, dict):
        raise CatalogError(f"{CARD_FILENAME} is not a JSON object", code=ErrorCode.CARD_INVALID)
    if data.get("model_id") != link.model_id:
        raise CatalogError(
            f"the package's card is for {data.get('model_id')!r}, but {link.repository} is "
            f"linked to {link.model_id}",
            {"model_id": data.get("model_id"), "linked": link.model_id},
            code=ErrorCode.CARD_INVALID,
        )
    # The tag decides the version: a card whose version was not bumped is submitted as the tag
    # says (the submission's message records the change), never as a version nobody tagged.
    carded = data.get("version")
    note = "" if carded == version else f" (its card said {carded!r}; the tag decides)"
    data["version"] = version
    description = data.get("description")
    if isinstance(description, dict) and "version" in description:
        data["description"] = {**description, "version": version}
    return data, note


def github_submission_run(*, submission_id: int) -> GithubSubmission | None:
    """Fetch a queued submission's tagged commit and package asset, and submit the package.

    Returns None when the submission is no longer queued (a repeated task). Raises
    :class:`~hub.github.remote.GithubRateLimitedError` and retryable
    :class:`~hub.github.remote.GithubFailedError` for the task to retry later, having recorded
    the attempt; every other failure is recorded on the submission, which then ``failed``.
    """
    submission = (
        GithubSubmission.objects.select_related("link", "requested_by")
        .filter(pk=submission_id)
        .first()
    )
    if submission is None or submission.state != GithubSubmission.State.QUEUED:
        return None
    link = submission.link
    GithubSubmission.objects.filter(pk=submission.pk).update(
        attempts=submission.attempts + 1, updated_at=timezone.now()
    )
    submission.attempts += 1
    fetched: remote.FetchedAsset | None = None
    try:
        if not submission.commit_sha:
            submission.commit_sha = remote.tag_commit_sha(link.repository, submission.tag)
            GithubSubmission.objects.filter(pk=submission.pk).update(
                commit_sha=submission.commit_sha
            )
        fetched = remote.release_asset_fetch(
            repository=link.repository,
            tag=submission.tag,
            asset_name=asset_name_for(
                link.asset_name, name=link.name, version=submission.version, tag=submission.tag
            ),
            max_bytes=int(settings.MEDIGAN_MAX_PACKAGE_BYTES),
            work_dir=_work_dir(),
        )
        card_data, note = _card_of_package(fetched.path, link=link, version=submission.version)
        user = submission.requested_by
        with fetched.path.open("rb") as package:
            # Validation is queued below, once the submission names its release: the commit
            # status follows the release from its first state on.
            release = registry_services.release_submit(
                user=user,
                card_data=card_data,
                package=package,
                viewer=viewer_for(user),
                queue_validation=False,
            )
    except remote.GithubRateLimitedError as error:
        _submission_note(submission, error)
        raise
    except remote.GithubFailedError as error:
        if error.retryable:
            _submission_note(submission, error)
            raise
        return github_submission_fail(submission_id=submission.pk, error=error)
    except CatalogError as error:
        return github_submission_fail(submission_id=submission.pk, error=error)
    finally:
        if fetched is not None:
            fetched.path.unlink(missing_ok=True)
    with transaction.atomic():
        GithubSubmission.objects.filter(pk=submission.pk).update(
            state=GithubSubmission.State.SUBMITTED,
            release=release,
            error_code="",
            message=f"submitted as {release.release_id}{note}",
            updated_at=timezone.now(),
        )
        release_pk = release.pk
        transaction.on_commit(lambda: _report_then_validate(submission_id, release_pk))
    submission.refresh_from_db()
    logger.info("GitHub %s@%s submitted as %s", link.repository, submission.tag, release)
    return submission


def _report_then_validate(submission_id: int, release_id: int) -> None:
    """Post the ``pending`` status now, then queue validation: GitHub shows the submission as
    received before any worker can have moved it on. A status GitHub refuses now is left to
    the status task and its retries; it never holds up validation."""
    try:
        github_status_post(submission_id=submission_id)
    except (remote.GithubRateLimitedError, remote.GithubFailedError):
        queue_status_post(submission_id)
    _queue_validation(release_id)


def _queue_validation(release_id: int) -> None:
    from hub.registry.tasks import release_validate_task

    try:
        release_validate_task.delay(release_id)
    except Exception:
        # The release is committed in `submitted`; the registry's janitor queues it again.
        logger.exception("could not queue validation of release %s", release_id)


def _submission_note(submission: GithubSubmission, error: CatalogError) -> None:
    """Record why an attempt will be retried; the submission stays queued."""
    GithubSubmission.objects.filter(pk=submission.pk).update(
        error_code=error.code.value,
        message=f"attempt {submission.attempts}: {error.message}; retrying",
        updated_at=timezone.now(),
    )


def github_submission_fail(*, submission_id: int, error: CatalogError) -> GithubSubmission:
    """Mark a queued submission failed with the error's code and message, and tell GitHub
    (a ``failure`` status on the tagged commit, when it is known)."""
    with transaction.atomic():
        GithubSubmission.objects.filter(
            pk=submission_id, state=GithubSubmission.State.QUEUED
        ).update(
            state=GithubSubmission.State.FAILED,
            error_code=error.code.value,
            message=error.message,
            updated_at=timezone.now(),
        )
        transaction.on_commit(lambda: queue_status_post(submission_id))
    logger.warning("GitHub submission %s failed: %s", submission_id, error.message)
    return GithubSubmission.objects.get(pk=submission_id)


def github_submission_retry(*, submission_id: int) -> bool:
    """Queue a failed submission again (an operator's action once GitHub is back, or the asset
    is attached); False when it had not failed."""
    with transaction.atomic():
        updated = GithubSubmission.objects.filter(
            pk=submission_id, state=GithubSubmission.State.FAILED
        ).update(
            state=GithubSubmission.State.QUEUED,
            error_code="",
            message="queued again",
            updated_at=timezone.now(),
        )
        if updated:
            transaction.on_commit(lambda: _queue_submission(submission_id))
    return bool(updated)


def retry_delay(error: CatalogError, retries: int) -> float:
    """Seconds before the next try after ``error``: past GitHub's rate-limit reset (plus a
    margin for clocks that differ), else doubling from the minimum; within the settings' bounds."""
    low = float(settings.MEDIGAN_GITHUB_RETRY_MIN_SECONDS)
    high = float(settings.MEDIGAN_GITHUB_RETRY_MAX_SECONDS)
    if isinstance(error, remote.GithubRateLimitedError):
        wanted = error.retry_after + 5.0
    else:
        wanted = low * 2.0 ** min(retries, 16)
    return min(high, max(low, wanted))


# -- commit statuses --------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusPlan:
    """The commit status a submission's current state calls for."""

    state: str
    description: str
    target_url: str
    release_state: str


_SUCCESS_STATES = frozenset({ReleaseState.IN_REVIEW, ReleaseState.APPROVED, ReleaseState.PUBLISHED})
_PENDING_STATES = frozenset({ReleaseState.SUBMITTED, ReleaseState.VALIDATING})


def _public_url(path: str) -> str:
    return settings.MEDIGAN_PUBLIC_URL.rstrip("/") + path


def release_page_url(release: Release) -> str:
    """The hub page of a release: its public page once published, before that the submitter's
    page of the submission (checks, reviewers' notes), which others cannot see."""
    namespace, name = release.generative_model.namespace, release.generative_model.name
    if release.state in {ReleaseState.PUBLISHED, ReleaseState.DEPRECATED, ReleaseState.YANKED}:
        return _public_url(
            reverse(
                "model-version-page",
                kwargs={"namespace": namespace, "name": name, "version": release.version},
            )
        )
    return _public_url(
        reverse(
            "web-submission",
            kwargs={"namespace": namespace, "name": name, "version": release.version},
        )
    )


def status_plan(submission: GithubSubmission) -> StatusPlan | None:
    """The status to post for ``submission`` now, or None when there is nothing to say."""
    release = submission.release
    if release is None:
        if submission.state != GithubSubmission.State.FAILED:
            return None
        return StatusPlan(
            "error",
            f"not submitted: {submission.message}",
            _public_url(reverse("web-submissions")),
            "",
        )
    state = ReleaseState(release.state)
    url = release_page_url(release)
    if state in _PENDING_STATES:
        what = "received" if state is ReleaseState.SUBMITTED else "being validated"
        return StatusPlan("pending", f"{release.release_id} {what}", url, state.value)
    if state in _SUCCESS_STATES:
        what = "published" if state is ReleaseState.PUBLISHED else "passed its checks, in review"
        return StatusPlan("success", f"{release.release_id} {what}", url, state.value)
    if state is ReleaseState.REJECTED:
        return StatusPlan("failure", f"{release.release_id} was rejected", url, state.value)
    if state is ReleaseState.WITHDRAWN:
        return StatusPlan("error", f"{release.release_id} was withdrawn", url, state.value)
    # Deprecating or yanking a published release says nothing new about the commit.
    return None


def github_status_post(*, submission_id: int) -> GithubCommitStatus | None:
    """Post the commit status that the submission's current state calls for, unless the same
    status was posted already. The state is read now, not taken from the event that queued
    this, so statuses that arrive late or twice still leave GitHub showing the newest."""
    submission = (
        GithubSubmission.objects.select_related("link", "release__generative_model")
        .filter(pk=submission_id)
        .first()
    )
    if submission is None or not submission.commit_sha:
        return None
    plan = status_plan(submission)
    if plan is None:
        return None
    last = submission.statuses.filter(posted=True).order_by("-pk").first()
    if last is not None and (last.state, last.release_state, last.target_url) == (
        plan.state,
        plan.release_state,
        plan.target_url,
    ):
        return None
    description = plan.description[: remote.DESCRIPTION_MAX_LENGTH]
    try:
        remote.commit_status_post(
            repository=submission.link.repository,
            sha=submission.commit_sha,
            state=plan.state,
            target_url=plan.target_url,
            description=description,
        )
    except (remote.GithubRateLimitedError, remote.GithubFailedError) as error:
        GithubCommitStatus.objects.create(
            submission=submission,
            sha=submission.commit_sha,
            state=plan.state,
            description=description,
            target_url=plan.target_url,
            release_state=plan.release_state,
            error=error.message,
        )
        raise
    return GithubCommitStatus.objects.create(
        submission=submission,
        sha=submission.commit_sha,
        state=plan.state,
        description=description,
        target_url=plan.target_url,
        release_state=plan.release_state,
        posted=True,
    )


def queue_status_post(submission_id: int) -> None:
    """Queue the commit status of a submission (called once a change has committed)."""
    from hub.github.tasks import github_status_post_task

    try:
        github_status_post_task.delay(submission_id)
    except Exception:
        # A status is GitHub's view of the hub's state; losing one never undoes the change.
        logger.exception("could not queue the commit status of GitHub submission %s", submission_id)


def github_release_state_changed(*, release_id: int) -> None:
    """A release changed state: queue the commit status of the submission that made it."""
    for submission_id in GithubSubmission.objects.filter(release_id=release_id).values_list(
        "pk", flat=True
    ):
        queue_status_post(submission_id)
