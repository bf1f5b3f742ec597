"""Writes on the registry: submitting, validating, reviewing, publishing and importing releases.

``release_transition`` is the only function that changes a release's state. Everything else that
moves a release goes through it, so every change is checked against the lifecycle table and leaves
an audit event.

The registry's share of surviving faults lives here too: the janitor (``registry_janitor_run``)
that re-queues releases whose validation was lost and removes what killed processes left behind,
and the storage audit behind ``manage.py storage_check``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

from hub import signals, signing
from hub.access import Viewer, viewer_for
from hub.accounts.models import RESERVED_NAMESPACES, Namespace
from hub.registry import validation
from hub.registry.models import (
    Artifact,
    CatalogChange,
    CatalogSerial,
    GenerativeModel,
    ModelEvent,
    Release,
    ReleaseCheck,
    ReleaseEvent,
)
from hub.storage import stored_open
from hub.work import StaleWork, paths_remove_stale
from medigan_catalog.access import TokenScope, Visibility
from medigan_catalog.errors import CatalogError, ErrorCode, TransitionNotAllowedError
from medigan_catalog.lifecycle import (
    CATALOGUE_STATES,
    NOTICE_STATES,
    ReleaseState,
    check_transition,
)
from medigan_catalog.schema import Artifact as CardArtifact
from medigan_catalog.schema import Card, card_from_json
from medigan_catalog.validation import validate_card

logger = logging.getLogger(__name__)

__all__ = ["RESERVED_NAMESPACES"]  # defined with the other account rules, kept here for callers

_HASH_CHUNK_BYTES = 1024 * 1024


class ReleaseExistsError(CatalogError):
    """A release with this model id and version exists already; releases are immutable."""

    code = ErrorCode.RELEASE_EXISTS


class NamespaceForbiddenError(CatalogError):
    """The user may not publish under this namespace or model."""

    code = ErrorCode.PERMISSION_DENIED


class PackageTooLargeError(CatalogError):
    """The uploaded package is larger than the hub accepts."""

    code = ErrorCode.BAD_REQUEST


class SelfReviewError(CatalogError):
    """A reviewer tried to approve or reject a release they submitted themselves."""

    code = ErrorCode.PERMISSION_DENIED


class NamespaceNotFoundError(CatalogError):
    """A push names a namespace that does not exist."""

    code = ErrorCode.NAMESPACE_NOT_FOUND


class ScopeMissingError(CatalogError):
    """The token lacks the scope the operation needs."""

    code = ErrorCode.SCOPE_MISSING


class ReviewForbiddenError(CatalogError):
    """The caller sees the release or model but may not decide on it."""

    code = ErrorCode.PERMISSION_DENIED


class NamespaceShadowedError(CatalogError):
    """A local push into a namespace that an upstream hub's releases fill."""

    code = ErrorCode.NAMESPACE_SHADOWED


def require_scope(viewer: Viewer, scope: TokenScope, doing: str) -> None:
    """Refuse with ``scope_missing`` when the caller's token lacks ``scope``."""
    if not viewer.has_scope(scope):
        raise ScopeMissingError(
            f"this token lacks the {scope.value!r} scope needed to {doing}",
            {"scope": scope.value},
        )


def catalog_serial_bump(
    *,
    kind: str,
    generative_model: GenerativeModel,
    release: Release | None = None,
    visibility_before: str | None = None,
) -> int:
    """Give a catalogue change the next serial (inside the caller's transaction) and log it.

    The registry is the serial's only writer: publishing, deprecating and visibility changes
    call this, and a finished evaluation reaches it through ``hub.signals.evaluation_finished``.
    The change log row (``CatalogChange``) says whose catalogue changed, so each viewer's serial
    moves only with what they may see.
    """
    row, _ = CatalogSerial.objects.select_for_update().get_or_create(pk=1)
    # ``changed_at`` goes with the number: a cached snapshot is keyed by both, so a database
    # restored to an older serial that counts up again never serves the old document.
    CatalogSerial.objects.filter(pk=row.pk).update(
        serial=F("serial") + 1, changed_at=timezone.now()
    )
    row.refresh_from_db()
    CatalogChange.objects.create(
        serial=row.serial,
        kind=kind,
        generative_model=generative_model,
        release=release,
        namespace=generative_model.namespace,
        visibility_before=visibility_before or generative_model.visibility,
        visibility_after=generative_model.visibility,
    )
    return row.serial


def release_transition(
    *,
    release_id: int,
    target: ReleaseState,
    actor: User | None = None,
    note: str = "",
    replacement_model_id: str = "",
) -> Release:
    """Move a release to ``target`` if the lifecycle table allows it, and record the event.

    Runs in a transaction with the release row locked, so two reviewers or two workers cannot
    both move the same release. Every change of the catalogue (publishing, deprecating, yanking,
    a withdrawal after publication) bumps the catalogue serial, so the change feed carries it.
    A move to ``deprecated`` or ``yanked`` keeps ``note`` as the release's notice (with
    ``replacement_model_id`` for a deprecation), which the snapshot carries to clients. Once the
    transaction commits, the release's contributor is mailed about the change
    (:mod:`hub.registry.notifications`).
    """
    with transaction.atomic():
        release = (
            Release.objects.select_for_update()
            .select_related("generative_model")
            .get(pk=release_id)
        )
        current = ReleaseState(release.state)
        check_transition(current, target)
        release.state = target.value
        update_fields = ["state", "updated_at"]
        if target is ReleaseState.PUBLISHED:
            release.published_at = timezone.now()
            update_fields.append("published_at")
            # A mirrored release keeps its origin's attestation (or none): this hub did not
            # publish it first, so it does not vouch for it in its own name.
            if not release.attestation and not release.origin_hub:
                release.attestation = release_attestation_make(release)
                update_fields.append("attestation")
        if target in NOTICE_STATES:
            release.lifecycle_reason = note
            release.replacement_model_id = replacement_model_id
            release.lifecycle_at = timezone.now()
            update_fields += ["lifecycle_reason", "replacement_model_id", "lifecycle_at"]
        # A withdrawal before publication changes no catalogue; after it, it does.
        if target in CATALOGUE_STATES or (
            target is ReleaseState.WITHDRAWN and current in CATALOGUE_STATES
        ):
            catalog_serial_bump(
                kind=f"release_{target.value}",
                generative_model=release.generative_model,
                release=release,
            )
        if target is ReleaseState.PUBLISHED:
            published_id = release.pk
            transaction.on_commit(
                lambda: signals.release_published.send(sender=Release, release_id=published_id)
            )
        release.save(update_fields=update_fields)
        event = ReleaseEvent.objects.create(
            release=release,
            actor=actor,
            from_state=current.value,
            to_state=target.value,
            note=note,
        )
        event_id = event.pk
        if release.submitted_by_id is not None:
            transaction.on_commit(lambda: _queue_event_mail(event_id))
        changed = {
            "release_id": release.pk,
            "from_state": current.value,
            "to_state": target.value,
            "event_id": event_id,
        }
        # A receiver's failure is logged, not raised: the transition has committed.
        transaction.on_commit(
            lambda: _log_receiver_errors(
                signals.release_state_changed.send_robust(sender=Release, **changed)
            )
        )
    logger.info("release %s: %s -> %s", release.release_id, current.value, target.value)
    return release


def _log_receiver_errors(responses: list[tuple[Any, Any]]) -> None:
    for receiver, response in responses:
        if isinstance(response, Exception):
            logger.error(
                "a receiver of a release's state change failed: %r",
                receiver,
                exc_info=(type(response), response, response.__traceback__),
            )


def _queue_event_mail(event_id: int) -> None:
    from hub.registry.tasks import release_event_mail_task

    try:
        release_event_mail_task.delay(event_id)
    except Exception:
        # The transition stands; a lost notice must not undo it or fail the request.
        logger.exception("could not queue the mail of release event %s", event_id)


def release_attestation_make(release: Release) -> dict[str, Any]:
    """This hub's attestation of a release it publishes: its newest key's signature over the
    model id, the version and every artifact's sha256 (``medigan_catalog.signing``)."""
    return signing.release_attest(
        model_id=release.model_id, version=release.version, card=card_from_json(release.card)
    ).model_dump(mode="json")


def _check_may_maintain(release: Release, viewer: Viewer, doing: str) -> None:
    """Deprecating and yanking are the model's maintainers' (who may push to its namespace)."""
    require_scope(viewer, TokenScope.PUSH, doing)
    namespace = release.generative_model.namespace
    if release.generative_model.mirrored_from:
        raise CatalogError(
            f"{release.model_id} is mirrored from the upstream hub "
            f"{release.generative_model.mirrored_from!r}; its lifecycle follows the upstream's",
            {"model_id": release.model_id},
            code=ErrorCode.PERMISSION_DENIED,
        )
    reserved = namespace in RESERVED_NAMESPACES
    if not viewer.may_push_to(namespace, reserved=reserved):
        raise NamespaceForbiddenError(
            f"only the maintainers of {namespace!r} {doing} its releases",
            {"namespace": namespace},
        )


def _check_replacement(replacement_model_id: str, release: Release, viewer: Viewer) -> str:
    replacement = replacement_model_id.strip()
    if not replacement:
        return ""
    namespace, _, name = replacement.partition("/")
    if "@" in replacement or not namespace or not name:
        raise CatalogError(
            f"the replacement {replacement!r} is not a model id; write namespace/name",
            {"replacement": replacement},
            code=ErrorCode.BAD_REQUEST,
        )
    if replacement == release.model_id:
        raise CatalogError(
            "a release cannot be replaced by its own model; name another model",
            {"replacement": replacement},
            code=ErrorCode.BAD_REQUEST,
        )
    model = GenerativeModel.objects.filter(namespace=namespace, name=name).first()
    if model is None or not viewer.sees_model(model.namespace, model.visibility):
        raise CatalogError(
            f"the replacement {replacement} is not a model of this hub",
            {"replacement": replacement},
            code=ErrorCode.NOT_FOUND,
        )
    return replacement


def _required_reason(reason: str, doing: str) -> str:
    if not reason.strip():
        raise CatalogError(f"say why the release is {doing}", code=ErrorCode.BAD_REQUEST)
    return reason.strip()


def release_deprecate(
    *, release_id: int, viewer: Viewer, actor: User, reason: str, replacement_model_id: str = ""
) -> Release:
    """A maintainer deprecates a published release, with a reason and maybe the model to use
    instead.

    The release stays in the catalogue and downloadable, marked: clients warn whoever uses it
    and name the replacement, and a bare model id resolves to it only when no published release
    of the model is left (:func:`medigan_catalog.lifecycle.selection_rank`).
    """
    release = Release.objects.select_related("generative_model").get(pk=release_id)
    _check_may_maintain(release, viewer, "deprecate")
    return release_transition(
        release_id=release_id,
        target=ReleaseState.DEPRECATED,
        actor=actor,
        note=_required_reason(reason, "deprecated"),
        replacement_model_id=_check_replacement(replacement_model_id, release, viewer),
    )


def release_yank(*, release_id: int, viewer: Viewer, actor: User, reason: str) -> Release:
    """A maintainer yanks a published or deprecated release (PEP 592), with a reason.

    The release stays downloadable by its exact version, for whoever pinned it, and is never
    chosen for a model named without a version, nor ranked on leaderboards.
    """
    release = Release.objects.select_related("generative_model").get(pk=release_id)
    _check_may_maintain(release, viewer, "yank")
    return release_transition(
        release_id=release_id,
        target=ReleaseState.YANKED,
        actor=actor,
        note=_required_reason(reason, "yanked"),
        replacement_model_id=release.replacement_model_id,
    )


def release_withdraw(*, release_id: int, viewer: Viewer, actor: User, reason: str) -> Release:
    """Withdraw a release: its contributor before publication, an administrator after it.

    One entry point for the API, the CLI and the admin, which picks
    :func:`release_withdraw_submission` or :func:`release_withdraw_published` by the state.
    """
    release = Release.objects.get(pk=release_id)
    if release.state in CATALOGUE_STATES:
        if not (actor.is_superuser and viewer.has_scope(TokenScope.ADMIN)):
            raise CatalogError(
                "only the hub's administrators withdraw a published release (with a token of "
                "the admin scope); a maintainer may deprecate or yank it",
                code=ErrorCode.PERMISSION_DENIED,
            )
        return release_withdraw_published(release_id=release_id, actor=actor, note=reason)
    require_scope(viewer, TokenScope.PUSH, "withdraw")
    return release_withdraw_submission(release_id=release_id, actor=actor, note=reason)


def release_lifecycle_act(
    *,
    action: str,
    release_id: int,
    viewer: Viewer,
    actor: User,
    reason: str,
    replacement_model_id: str = "",
) -> Release:
    """Do one of ``LIFECYCLE_ACTIONS`` (deprecate, yank, withdraw) on a release: the one entry
    point of the API and the admin, so that both apply the same service and rules."""
    if action == "deprecate":
        return release_deprecate(
            release_id=release_id,
            viewer=viewer,
            actor=actor,
            reason=reason,
            replacement_model_id=replacement_model_id,
        )
    if action == "yank":
        return release_yank(release_id=release_id, viewer=viewer, actor=actor, reason=reason)
    if action == "withdraw":
        return release_withdraw(release_id=release_id, viewer=viewer, actor=actor, reason=reason)
    raise CatalogError(f"{action!r} is not a lifecycle action", code=ErrorCode.BAD_REQUEST)


def release_withdraw_published(*, release_id: int, actor: User, note: str) -> Release:
    """Take a published or deprecated release out of the hub: an admin's decision, with a reason.

    The release leaves every catalogue (a change-feed entry tells clients and mirrors) and is no
    longer served, but its stored artifacts stay for audit until an operator purges them.
    """
    if not actor.is_superuser:
        raise CatalogError(
            "only the hub's administrators withdraw a published release",
            code=ErrorCode.PERMISSION_DENIED,
        )
    if not note.strip():
        raise CatalogError("say why the release is withdrawn", code=ErrorCode.BAD_REQUEST)
    return release_transition(
        release_id=release_id, target=ReleaseState.WITHDRAWN, actor=actor, note=note
    )


def release_withdraw_submission(*, release_id: int, actor: User, note: str = "") -> Release:
    """The submitter takes back a release before it is published (submitted or in review).

    Only the account that pushed it may; a release being validated finishes first (withdraw it
    once it is in review), and a published one is withdrawn by an administrator
    (:func:`release_withdraw_published`).
    """
    release = Release.objects.get(pk=release_id)
    if release.submitted_by_id != actor.pk:
        raise CatalogError(
            "only the contributor who pushed a release withdraws it",
            code=ErrorCode.PERMISSION_DENIED,
        )
    if release.state not in (ReleaseState.SUBMITTED, ReleaseState.IN_REVIEW):
        raise CatalogError(
            f"a release {release.state} cannot be withdrawn by its contributor; only one that is "
            "submitted or in review",
            code=ErrorCode.TRANSITION_NOT_ALLOWED,
        )
    return release_transition(
        release_id=release_id,
        target=ReleaseState.WITHDRAWN,
        actor=actor,
        note=note.strip() or "withdrawn by its contributor",
    )


# --- artifacts served before they are held ---------------------------------------------------

# A fetcher gives the bytes of an artifact this hub serves but does not hold yet (a mirrored
# release in ``metadata`` mode), or None when the artifact is not its to fetch. The federation
# app registers one; the registry knows nothing of upstreams.
ArtifactFetcher = Callable[[Artifact], Iterator[bytes] | None]
_artifact_fetchers: list[ArtifactFetcher] = []


class ArtifactChecksumError(CatalogError):
    """Bytes fetched for an artifact whose sha256 is not the one the release records."""

    code = ErrorCode.CHECKSUM_MISMATCH


MirrorValidatedHook = Callable[[Release], None]
_mirror_validated_hooks: list[MirrorValidatedHook] = []


def mirror_validated_hook_register(hook: MirrorValidatedHook) -> None:
    """Call ``hook`` with each mirrored release that passed this hub's own validation.

    The registry does not know upstreams or their policies; federation registers the hook that
    publishes such a release when its upstream's policy says so.
    """
    if hook not in _mirror_validated_hooks:
        _mirror_validated_hooks.append(hook)


def artifact_fetcher_register(fetcher: ArtifactFetcher) -> None:
    """Let ``fetcher`` provide artifacts the hub serves but does not hold (once per fetcher)."""
    if fetcher not in _artifact_fetchers:
        _artifact_fetchers.append(fetcher)


def artifact_materialise(*, artifact_id: int) -> Artifact:
    """Store an artifact that the hub serves but does not hold yet, verified by its sha256.

    The bytes stream to a temporary file while they are hashed, so memory stays flat at any
    size; nothing is stored unless the digest equals the release's record. Two first downloads
    at once both fetch, and the first to finish is kept. Raises ``artifact_unreachable`` when no
    fetcher provides it and ``checksum_mismatch`` when the bytes are not the recorded ones.
    """
    artifact = Artifact.objects.select_related("release__generative_model").get(pk=artifact_id)
    if artifact.file:
        return artifact
    if not artifact.sha256:
        raise CatalogError(
            f"{artifact.filename} is hosted outside this hub and has no recorded sha256, so "
            "the hub cannot fetch and verify it",
            {"urls": artifact.external_urls},
            code=ErrorCode.ARTIFACT_UNREACHABLE,
        )
    for fetcher in _artifact_fetchers:
        chunks = fetcher(artifact)
        if chunks is not None:
            return artifact_store_verified(artifact_id=artifact.pk, chunks=chunks)
    raise CatalogError(
        f"{artifact.filename} is hosted outside this hub",
        {"urls": artifact.external_urls},
        code=ErrorCode.ARTIFACT_UNREACHABLE,
    )


def artifact_store_verified(*, artifact_id: int, chunks: Iterable[bytes]) -> Artifact:
    """Store the bytes of an artifact the hub records but does not hold, if their sha256 is the
    recorded one (a mirrored release's, from its upstream or a bundle).

    The bytes stream to a temporary file while they are hashed, so memory stays flat at any
    size; nothing is stored unless the digest matches. When two arrive at once, the first to
    finish is kept.
    """
    artifact = Artifact.objects.select_related("release__generative_model").get(pk=artifact_id)
    if artifact.file:
        return artifact
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as spool:
        digest = hashlib.sha256()
        size = 0
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            spool.write(chunk)
        if digest.hexdigest() != artifact.sha256:
            raise ArtifactChecksumError(
                f"{artifact.filename} as fetched has sha256 {digest.hexdigest()}, not the "
                f"recorded {artifact.sha256}; nothing was stored",
                {"expected": artifact.sha256, "actual": digest.hexdigest()},
            )
        spool.seek(0)
        release = artifact.release
        name = default_storage.save(
            f"releases/{release.generative_model.namespace}/{release.generative_model.name}/"
            f"{release.version}/{artifact.filename}",
            File(spool, name=artifact.filename),
        )
    with transaction.atomic():
        claimed = Artifact.objects.filter(pk=artifact.pk, file="").update(file=name, size=size)
    if not claimed:
        # Another download stored it first: keep that copy, drop this one.
        _stored_file_remove(name)
    artifact.refresh_from_db()
    logger.info("stored %s (%d bytes), verified by sha256", artifact, size)
    return artifact


def _push_namespace(namespace: str) -> Namespace:
    """The namespace a push goes to; the reserved ones exist for the hub from their first use."""
    if namespace in RESERVED_NAMESPACES:
        reserved, _ = Namespace.objects.get_or_create(name=namespace)
        return reserved
    found = Namespace.objects.select_related("organisation").filter(name=namespace).first()
    if found is None:
        raise NamespaceNotFoundError(
            f"the namespace {namespace!r} does not exist; create it first "
            f"(`medigan-client namespace create {namespace}`, or `org create {namespace}` for "
            "an organisation)",
            {"namespace": namespace},
        )
    return found


def _check_push_allowed(
    *,
    card: Card,
    viewer: Viewer,
    generative_model: GenerativeModel | None,
    visibility: Visibility | None,
) -> None:
    require_scope(viewer, TokenScope.PUSH, "push")
    namespace = _push_namespace(card.namespace)
    if namespace.mirrored_from and not namespace.tracks_upstream:
        raise NamespaceShadowedError(
            f"the namespace {card.namespace!r} holds releases mirrored from the upstream hub "
            f"{namespace.mirrored_from!r}; a local release there could shadow the upstream's. "
            "An operator may declare that the namespace tracks the upstream and takes local "
            "releases (docs/federation.md)",
            {"namespace": card.namespace, "upstream": namespace.mirrored_from},
        )
    if generative_model is not None and generative_model.mirrored_from:
        raise NamespaceShadowedError(
            f"{card.model_id} is mirrored from the upstream hub "
            f"{generative_model.mirrored_from!r}; its releases come from there only",
            {"model_id": card.model_id, "upstream": generative_model.mirrored_from},
        )
    if not viewer.within_token(card.namespace):
        raise NamespaceForbiddenError(
            f"this token is restricted to the namespace {viewer.token_namespace!r}; "
            f"it cannot push to {card.namespace!r}",
            {"namespace": card.namespace, "token_namespace": viewer.token_namespace},
        )
    reserved = card.namespace in RESERVED_NAMESPACES
    if not viewer.may_push_to(card.namespace, reserved=reserved):
        reason = (
            "reserved for the hub's operators"
            if reserved
            else "not yours: it belongs to another user"
            if namespace.organisation_id is None
            else f"not yours to push to: pushing needs the owner or maintainer role in the "
            f"organisation {card.namespace!r}"
        )
        raise NamespaceForbiddenError(
            f"the namespace {card.namespace!r} is {reason}", {"namespace": card.namespace}
        )
    if generative_model is None:
        if visibility == Visibility.PRIVATE and namespace.organisation_id is None:
            raise CatalogError(
                "private models belong to organisations (their members see them); push to an "
                "organisation's namespace, or choose internal",
                {"namespace": card.namespace},
                code=ErrorCode.BAD_REQUEST,
            )
        return
    if visibility is not None and visibility != generative_model.visibility:
        raise CatalogError(
            f"{card.model_id} is {generative_model.visibility}; a push does not change that "
            f"(`medigan-client visibility {card.model_id} {visibility.value}`)",
            code=ErrorCode.BAD_REQUEST,
        )
    if generative_model.releases.filter(version=card.version).exists():
        raise _release_exists(card)


def _release_exists(card: Card) -> ReleaseExistsError:
    return ReleaseExistsError(
        f"{card.release_id} exists already; releases are immutable, push a new version"
    )


def _model_for_push(
    *, card: Card, user: User, viewer: Viewer, visibility: Visibility | None
) -> GenerativeModel:
    generative_model, created = GenerativeModel.objects.get_or_create(
        namespace=card.namespace,
        name=card.name,
        defaults={"owner": user, "visibility": visibility or Visibility.PUBLIC},
    )
    if not created:
        _check_push_allowed(
            card=card, viewer=viewer, generative_model=generative_model, visibility=visibility
        )
    return generative_model


def _stored_file_remove(name: str) -> None:
    """Delete a stored file whose row never committed; never raise over the original error."""
    try:
        default_storage.delete(name)
    except Exception:
        logger.exception("could not remove %s after a failed push; storage_check lists it", name)


def _store_upload(upload: IO[bytes], *, name: str) -> tuple[str, str, int]:
    """Store an upload through the storage API while hashing it: (stored name, sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    upload.seek(0)
    while chunk := upload.read(_HASH_CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
        if size > settings.MEDIGAN_MAX_PACKAGE_BYTES:
            raise PackageTooLargeError(
                f"the package is larger than {settings.MEDIGAN_MAX_PACKAGE_BYTES} bytes"
            )
    upload.seek(0)
    stored_name = default_storage.save(name, File(upload))
    return stored_name, digest.hexdigest(), size


def release_submit(
    *,
    user: User,
    card_data: Mapping[str, Any],
    package: IO[bytes],
    declared_sha256: str | None = None,
    viewer: Viewer | None = None,
    visibility: Visibility | None = None,
    queue_validation: bool = True,
    doi: str = "",
    mint_doi: bool = False,
) -> Release:
    """Store a pushed package with its card as a new ``submitted`` release.

    ``viewer`` is the caller with their token (the API's); without one, ``user`` pushes with
    every scope of their account (the operator's commands). ``visibility`` is the new model's
    (public unless given); a push to an existing model does not change it. ``doi`` names the
    record that already holds the package, ``mint_doi`` asks the hub to deposit it: either is
    pinned on approval by the publication gate, which must accept it now (``_push_doi_check``).

    The card is validated and the push's permission and version checked before anything is
    stored. The file is stored before the transaction that records it, so no database lock is
    held while hundreds of MB are copied; if anything fails after that (a concurrent push of the
    same version, a locked database, a crash of the commit) the stored file is removed again, so
    no file is left without its row. Validation of the package itself runs on the ``validation``
    queue once the transaction commits, unless ``queue_validation`` is false: the caller then
    validates in its own process, and a worker must not race it for the release.
    """
    card = validate_card(card_data)
    viewer = viewer if viewer is not None else viewer_for(user)
    # Refuse what can be refused before storing anything (read only, no lock taken).
    _push_doi_check(doi=doi, mint_doi=mint_doi)
    _check_push_allowed(
        card=card,
        viewer=viewer,
        generative_model=GenerativeModel.objects.filter(
            namespace=card.namespace, name=card.name
        ).first(),
        visibility=visibility,
    )
    filename = f"{card.name}-{card.version}.zip"
    stored_name, sha256, size = _store_upload(
        package,
        name=f"releases/{card.namespace}/{card.name}/{card.version}/{filename}",
    )
    card = card.with_artifacts(
        [CardArtifact(role="package", filename=filename, sha256=sha256, size=size, urls=())]
    )
    try:
        with transaction.atomic():
            # Checked again under the transaction: another push may have won in between.
            generative_model = _model_for_push(
                card=card, user=user, viewer=viewer, visibility=visibility
            )
            release = Release.objects.create(
                generative_model=generative_model,
                version=card.version,
                card=card.to_json(),
                submitted_by=user,
                doi=doi,
                doi_mint_requested=mint_doi,
            )
            Artifact.objects.create(
                release=release,
                role="package",
                filename=filename,
                file=stored_name,
                sha256=sha256,
                size=size,
                declared_sha256=(declared_sha256 or "").lower(),
            )
            ReleaseEvent.objects.create(
                release=release,
                actor=user,
                to_state=ReleaseState.SUBMITTED.value,
                note=_declared_hash_note(declared_sha256, sha256),
            )
            release_pk = release.pk
            if queue_validation:
                transaction.on_commit(lambda: _queue_validation(release_pk))
    except IntegrityError as error:
        # Two pushes of one version raced past the checks; the unique constraint chose one.
        _stored_file_remove(stored_name)
        if Release.objects.filter(
            generative_model__namespace=card.namespace,
            generative_model__name=card.name,
            version=card.version,
        ).exists():
            raise _release_exists(card) from error
        raise
    except BaseException:
        _stored_file_remove(stored_name)
        raise
    return release


def _declared_hash_note(declared: str | None, actual: str) -> str:
    if not declared:
        return "pushed without a declared sha256"
    if declared.lower() == actual:
        return f"pushed; sha256 {actual} as declared"
    return f"pushed; declared sha256 {declared.lower()} but received {actual}"


def _queue_validation(release_id: int) -> None:
    from hub.registry.tasks import release_validate_task

    try:
        release_validate_task.delay(release_id)
    except Exception:
        # The release is stored and committed; failing the push now would tell the contributor
        # it was lost. It stays `submitted` and the periodic re-queue picks it up.
        logger.exception(
            "could not queue validation of release %s; it will be re-queued", release_id
        )


def validation_stale_seconds() -> float:
    """How long a release may stay ``validating`` before its validation is taken for lost."""
    configured = settings.MEDIGAN_VALIDATION_STALE_SECONDS
    if configured is not None:
        return float(configured)
    # A validation runs the smoke generation once, under its time limit; hashing, unpacking and
    # the grid are small beside it. Twice the limit plus the re-queue delay is past any
    # validation that is still alive.
    return 2 * float(settings.MEDIGAN_SMOKE_TIMEOUT_SECONDS) + float(
        settings.MEDIGAN_REQUEUE_AFTER_SECONDS
    )


def release_validation_recover(
    *, release_id: int, reason: str, force: bool = False
) -> Release | None:
    """Put a release whose validation was interrupted back in the queue, or give up on it.

    Moves a ``validating`` release back to ``submitted`` (its partial checks and grid removed)
    so that validation starts again cleanly; once validation has been started
    ``MEDIGAN_MAX_ATTEMPTS`` times (counted from the audit events) the release is rejected with
    a note that says why. Returns None, changing nothing, when the release is not
    ``validating``, or, unless ``force`` (the caller knows the previous run is dead), when its
    validation is younger than the stale deadline.
    """
    max_attempts = int(settings.MEDIGAN_MAX_ATTEMPTS)
    cutoff = timezone.now() - timedelta(seconds=validation_stale_seconds())
    with transaction.atomic():
        release = Release.objects.select_for_update().filter(pk=release_id).first()
        if release is None or release.state != ReleaseState.VALIDATING:
            return None
        if not force and release.updated_at >= cutoff:
            return None
        attempts = release.events.filter(to_state=ReleaseState.VALIDATING).count()
        if attempts >= max_attempts:
            return release_transition(
                release_id=release_id,
                target=ReleaseState.REJECTED,
                note=(
                    f"validation was started {attempts} times and never finished ({reason}); "
                    f"the hub gave up after {max_attempts} attempts. A package that crashes "
                    "or exhausts the worker running it ends like this; if yours does not, ask "
                    "the hub's operators, then push a new version."
                ),
            )
        # The interrupted run's partial results would sit beside the new run's full set.
        release.checks.all().delete()
        grid = release.sample_grid.name
        if grid:
            Release.objects.filter(pk=release_id).update(sample_grid="")
            transaction.on_commit(lambda: _stored_file_remove(grid))
        transaction.on_commit(lambda: _work_folders_remove(f"validate-{release_id}-"))
        return release_transition(
            release_id=release_id,
            target=ReleaseState.SUBMITTED,
            note=(
                f"validation attempt {attempts} of {max_attempts} did not finish ({reason}); "
                "it starts again"
            ),
        )


def release_requeue_stale() -> StaleWork:
    """Re-queue validations that were lost: releases left ``submitted`` or ``validating``.

    A release ``submitted`` longer than ``MEDIGAN_REQUEUE_AFTER_SECONDS`` gets its validation
    task again (its first message was lost, or never sent); one ``validating`` past the stale
    deadline goes back to ``submitted`` and is queued, or is rejected after too many attempts.
    A repeated task is harmless: validation only starts from ``submitted``.
    """
    now = timezone.now()
    requeue_cutoff = now - timedelta(seconds=float(settings.MEDIGAN_REQUEUE_AFTER_SECONDS))
    stale_cutoff = now - timedelta(seconds=validation_stale_seconds())
    requeued: list[int] = []
    restarted: list[int] = []
    given_up: list[int] = []
    waiting = Release.objects.filter(
        state=ReleaseState.SUBMITTED, updated_at__lt=requeue_cutoff
    ).values_list("pk", flat=True)
    for release_id in list(waiting):
        # Touching the row keeps the next pass from queueing it again while it waits its turn.
        if Release.objects.filter(pk=release_id, state=ReleaseState.SUBMITTED).update(
            updated_at=now
        ):
            _queue_validation(release_id)
            requeued.append(release_id)
    interrupted = Release.objects.filter(
        state=ReleaseState.VALIDATING, updated_at__lt=stale_cutoff
    ).values_list("pk", flat=True)
    for release_id in list(interrupted):
        seconds = round(validation_stale_seconds())
        recovered = release_validation_recover(
            release_id=release_id,
            reason=f"no result within {seconds} s: the worker running it was lost",
        )
        if recovered is None:
            continue
        if recovered.state == ReleaseState.SUBMITTED:
            _queue_validation(release_id)
            restarted.append(release_id)
        else:
            given_up.append(release_id)
    return StaleWork(requeued=requeued, restarted=restarted, given_up=given_up)


def _record_check(release: Release, outcome: validation.CheckOutcome) -> None:
    ReleaseCheck.objects.create(
        release=release,
        name=outcome.name,
        status=outcome.status,
        message=outcome.message,
        detail=outcome.detail,
        duration_seconds=round(outcome.duration_seconds, 3),
    )


def _validation_started_by(release_id: int, task_id: str) -> bool:
    """Whether the current validation of a release was started by the task ``task_id``."""
    last = (
        ReleaseEvent.objects.filter(release_id=release_id, to_state=ReleaseState.VALIDATING)
        .order_by("-id")
        .values_list("note", flat=True)
        .first()
    )
    return bool(task_id) and last is not None and last.endswith(f"[task {task_id}]")


def release_validate(
    *, release_id: int, task_id: str = "", previous_run_lost: bool = False
) -> Release | None:
    """Run the named checks on a submitted release and move it to ``in_review`` or ``rejected``.

    Returns None without doing anything when the release is no longer ``submitted`` (a repeated
    or late task), so the task can be delivered twice safely. A release found ``validating``
    is another run's: it is restarted cleanly when that run is known to be dead, and left alone
    otherwise until it passes the stale deadline. A run is known dead when the caller says so
    (``previous_run_lost``: a retry, or a message the broker marked redelivered) or when the
    validation was started by this very task (``task_id``, recorded in the ``validating``
    event): a message is delivered again only when the worker that held it was lost.
    """
    state = Release.objects.filter(pk=release_id).values_list("state", flat=True).first()
    if state == ReleaseState.VALIDATING:
        lost = previous_run_lost or _validation_started_by(release_id, task_id)
        recovered = release_validation_recover(
            release_id=release_id,
            reason=(
                "the worker running it was lost" if lost else "no result within the stale deadline"
            ),
            force=lost,
        )
        if recovered is None or recovered.state != ReleaseState.SUBMITTED:
            return recovered
    elif state != ReleaseState.SUBMITTED:
        return None
    package_problem = _mirrored_package_fetch(release_id)
    if package_problem is None:
        return None
    attempt = (
        Release.objects.get(pk=release_id).events.filter(to_state=ReleaseState.VALIDATING).count()
        + 1
    )
    note = "validation started" if attempt == 1 else f"validation attempt {attempt}"
    try:
        release = release_transition(
            release_id=release_id,
            target=ReleaseState.VALIDATING,
            # The task's id lets a redelivery of the same message know that it is one.
            note=f"{note} [task {task_id}]" if task_id else note,
        )
    except TransitionNotAllowedError:
        # Another delivery of this task started it between the read and the lock.
        return None
    if package_problem:
        _record_check(
            release,
            validation.CheckOutcome(
                "artifact_integrity", ReleaseCheck.Status.FAILED, package_problem, 0.0
            ),
        )
        return release_transition(
            release_id=release_id,
            target=ReleaseState.REJECTED,
            note=f"check artifact_integrity failed: {package_problem}",
        )
    work_dir = Path(tempfile.mkdtemp(prefix=f"validate-{release_id}-", dir=_work_root()))
    failure: validation.CheckOutcome | None = None
    started = time.monotonic()
    try:
        for outcome in validation.run_checks(release, work_dir=work_dir):
            _record_check(release, outcome)
            if outcome.status == ReleaseCheck.Status.FAILED and failure is None:
                failure = outcome
            if outcome.grid_png is not None:
                release.sample_grid.save(
                    f"{release.generative_model.namespace}-{release.generative_model.name}-"
                    f"{release.version}.png",
                    ContentFile(outcome.grid_png),
                    save=False,
                )
                # Only the grid column: a full save would write this run's copy of the state
                # back over whatever the janitor decided meanwhile.
                Release.objects.filter(pk=release_id).update(sample_grid=release.sample_grid.name)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    elapsed = time.monotonic() - started
    if failure is not None:
        target, note = ReleaseState.REJECTED, f"check {failure.name} failed: {failure.message}"
    else:
        target, note = ReleaseState.IN_REVIEW, f"all checks passed in {elapsed:.1f} s"
    try:
        validated = release_transition(release_id=release_id, target=target, note=note)
    except TransitionNotAllowedError:
        # The janitor took this run for lost (it outlived the stale deadline) and restarted the
        # release; the new run decides.
        logger.warning("release %s moved on while its validation ran; result dropped", release_id)
        return None
    if validated.state == ReleaseState.IN_REVIEW and validated.origin_hub:
        for hook in _mirror_validated_hooks:
            hook(validated)
        validated.refresh_from_db()
    return validated


def _mirrored_package_fetch(release_id: int) -> str | None:
    """Make sure a release's package is stored, fetching a mirrored one from its upstream first.

    Returns "" when the package is there (or the release is not a mirrored one), a message when
    the upstream served bytes that are not the attested ones (a verdict: validation fails on
    it), and None when the fetch failed otherwise (the upstream is down): the release stays
    ``submitted`` and the periodic re-queue tries again, for an unreachable upstream says
    nothing about the package.
    """
    package = Artifact.objects.filter(release_id=release_id, role="package").first()
    if package is None or package.file:
        return ""
    if not Release.objects.filter(pk=release_id).exclude(origin_hub="").exists():
        return ""
    try:
        artifact_materialise(artifact_id=package.pk)
    except ArtifactChecksumError as error:
        return str(error)
    except Exception as error:
        logger.warning(
            "validation of mirrored release %s waits: its package could not be fetched: %s",
            release_id,
            error,
        )
        return None
    return ""


def _work_root() -> Path:
    root = Path(settings.MEDIGAN_WORK_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _work_folders_remove(prefix: str) -> None:
    """Remove the work folders of one release or evaluation (those of this machine)."""
    root = Path(settings.MEDIGAN_WORK_DIR)
    if root.is_dir():
        for path in root.glob(f"{prefix}*"):
            shutil.rmtree(path, ignore_errors=True)


# Scratch folders of the sandboxed child (medigan_client.runtime.sandbox) in the system temp dir.
SANDBOX_SCRATCH_PREFIX = "medigan-sandbox-"
_VALIDATION_FOLDER = re.compile(r"^validate-(?P<id>\d+)-")


def _validation_folder_is_live(path: Path) -> bool:
    match = _VALIDATION_FOLDER.match(path.name)
    if match is None:
        return False
    cutoff = timezone.now() - timedelta(seconds=validation_stale_seconds())
    return Release.objects.filter(
        pk=int(match["id"]), state=ReleaseState.VALIDATING, updated_at__gte=cutoff
    ).exists()


def scratch_remove_stale() -> list[Path]:
    """Remove what killed processes left behind; return the paths removed.

    - ``validate-*`` work folders that no live validation owns;
    - ``seed-*`` work folders older than any validation may last;
    - sandbox scratch folders (system temp dir) older than any sandboxed run may last;
    - upload temp files (``FILE_UPLOAD_TEMP_DIR``) untouched for ``MEDIGAN_REQUEUE_AFTER_SECONDS``:
      an upload in progress keeps writing its file, so only a dead request's file gets that old.
    """
    requeue_after = float(settings.MEDIGAN_REQUEUE_AFTER_SECONDS)
    work_root = Path(settings.MEDIGAN_WORK_DIR)
    # The sandbox kills every run at its wall-clock limit, the smoke run's or an evaluation
    # batch's, and removes its scratch; one older than the longer limit belongs to no live run.
    sandbox_age = (
        max(
            float(settings.MEDIGAN_SMOKE_TIMEOUT_SECONDS),
            float(settings.MEDIGAN_EVALUATION_BATCH_TIMEOUT_SECONDS),
        )
        + requeue_after
    )
    removed = [
        *paths_remove_stale(
            root=work_root,
            prefix="validate-",
            older_than_seconds=requeue_after,
            keep=_validation_folder_is_live,
        ),
        *paths_remove_stale(
            root=work_root, prefix="seed-", older_than_seconds=validation_stale_seconds()
        ),
        *paths_remove_stale(
            root=Path(tempfile.gettempdir()),
            prefix=SANDBOX_SCRATCH_PREFIX,
            older_than_seconds=sandbox_age,
        ),
    ]
    upload_dir = getattr(settings, "FILE_UPLOAD_TEMP_DIR", None)
    if upload_dir:
        removed += paths_remove_stale(
            root=Path(upload_dir), prefix="", older_than_seconds=requeue_after
        )
    return removed


def registry_janitor_run() -> dict[str, Any]:
    """One pass of the registry's janitor: lost validations re-queued, leftovers removed."""
    stale = release_requeue_stale()
    removed = scratch_remove_stale()
    report = {
        "requeued": stale.requeued,
        "restarted": stale.restarted,
        "rejected": stale.given_up,
        "removed": [str(path) for path in removed],
    }
    if stale.requeued or stale.restarted or stale.given_up or removed:
        logger.info("registry janitor: %s", report)
    return report


def _check_four_eyes(*, release_id: int, reviewer: User) -> None:
    """Refuse a review by the release's own submitter: a second person must look at it."""
    submitted_by = (
        Release.objects.filter(pk=release_id).values_list("submitted_by_id", flat=True).first()
    )
    if submitted_by is not None and submitted_by == reviewer.pk:
        raise SelfReviewError(
            "nobody reviews their own release: another reviewer must approve or reject it",
            {"reviewer": reviewer.get_username()},
        )


def release_approve(*, release_id: int, reviewer: User, note: str = "") -> Release:
    """Approve a release in review and publish it; the reviewer may not be its submitter.

    When a publication gate takes the approved release over (``hub.pinning``: a DOI to pin, the
    contributor's or one the hub deposits), it stays ``approved`` until the gate has pinned the
    DOI and published it; otherwise it is published at once, recorded as unpinned.
    """
    _check_four_eyes(release_id=release_id, reviewer=reviewer)
    return _release_approve_and_publish(
        release_id=release_id, reviewer=reviewer, note=note, gated=True
    )


def _release_approve_and_publish(
    *, release_id: int, reviewer: User, note: str, gated: bool = False
) -> Release:
    release_transition(
        release_id=release_id, target=ReleaseState.APPROVED, actor=reviewer, note=note
    )
    if gated and _publication_taken_over(release_id):
        return Release.objects.select_related("generative_model").get(pk=release_id)
    return release_publish(release_id=release_id, actor=reviewer)


def release_publish(*, release_id: int, actor: User | None = None) -> Release:
    """Publish an approved release: it enters the catalogue and the serial goes up. Its event
    says whether a DOI is pinned for it."""
    release = Release.objects.only("doi", "pinned").get(pk=release_id)
    return release_transition(
        release_id=release_id,
        target=ReleaseState.PUBLISHED,
        actor=actor,
        note=(
            f"published with DOI {release.doi} pinned"
            if release.pinned
            else "published unpinned (no DOI pinned)"
        ),
    )


def release_reject(*, release_id: int, reviewer: User, note: str) -> Release:
    """Reject a release in review; the note tells the contributor why. Not by its submitter."""
    _check_four_eyes(release_id=release_id, reviewer=reviewer)
    return release_transition(
        release_id=release_id, target=ReleaseState.REJECTED, actor=reviewer, note=note
    )


def _check_may_review(*, release_id: int, viewer: Viewer) -> None:
    release = Release.objects.select_related("generative_model").get(pk=release_id)
    model = release.generative_model
    require_scope(viewer, TokenScope.REVIEW, "review releases")
    if viewer.may_review(
        namespace=model.namespace,
        visibility=model.visibility,
        submitted_by_id=release.submitted_by_id,
    ):
        return
    if release.submitted_by_id == viewer.user_id:
        # Four eyes, said as such (the check below would only say "not yours").
        _check_four_eyes(release_id=release_id, reviewer=User(pk=viewer.user_id))
    who = (
        "the hub's reviewers"
        if model.visibility == Visibility.PUBLIC
        else f"the hub's reviewers or the owners and reviewers of {model.namespace!r}"
        if model.visibility == Visibility.INTERNAL
        else f"the owners and reviewers of the organisation {model.namespace!r}"
    )
    raise ReviewForbiddenError(
        f"releases of {model.visibility} models like {model.model_id} are reviewed by {who}",
        {"model_id": model.model_id, "visibility": model.visibility},
    )


def release_review(
    *,
    release_id: int,
    reviewer: User,
    decision: str,
    note: str = "",
    viewer: Viewer | None = None,
) -> Release:
    """Apply a reviewer's decision, ``approve`` or ``reject``, if they may review this release.

    ``viewer`` is the reviewer with their token (the API's); without one, their account's own
    rights apply (the admin's session).
    """
    _check_may_review(
        release_id=release_id, viewer=viewer if viewer is not None else viewer_for(reviewer)
    )
    if decision == "approve":
        return release_approve(release_id=release_id, reviewer=reviewer, note=note)
    if decision == "reject":
        return release_reject(release_id=release_id, reviewer=reviewer, note=note)
    raise CatalogError(
        f"decision must be 'approve' or 'reject', not {decision!r}", code=ErrorCode.BAD_REQUEST
    )


# --- a model's visibility ------------------------------------------------------------------


def _check_may_manage(model: GenerativeModel, viewer: Viewer) -> None:
    require_scope(viewer, TokenScope.ADMIN, "change a model's visibility")
    if not viewer.may_manage_namespace(model.namespace):
        raise NamespaceForbiddenError(
            f"only the owner of {model.namespace!r} changes who sees {model.model_id}",
            {"model_id": model.model_id},
        )


def _visibility_apply(
    model: GenerativeModel, target: Visibility, *, actor: User | None, note: str
) -> None:
    before = model.visibility
    model.visibility = target.value
    model.requested_visibility = ""
    model.requested_by = None
    model.save(update_fields=["visibility", "requested_visibility", "requested_by"])
    ModelEvent.objects.create(
        generative_model=model,
        actor=actor,
        kind="visibility_changed",
        from_value=before,
        to_value=target.value,
        note=note,
    )
    catalog_serial_bump(kind="visibility_changed", generative_model=model, visibility_before=before)
    logger.info("model %s: visibility %s -> %s", model.model_id, before, target.value)


def _visibility_request_close(
    model: GenerativeModel, *, kind: str, actor: User | None, note: str
) -> None:
    """End a waiting request without applying it (withdrawn, rejected), and audit it."""
    ModelEvent.objects.create(
        generative_model=model,
        actor=actor,
        kind=kind,
        from_value=model.visibility,
        to_value=model.requested_visibility,
        note=note,
    )
    model.requested_visibility = ""
    model.requested_by = None
    model.save(update_fields=["requested_visibility", "requested_by"])


def model_visibility_request(
    *, model_id: int, viewer: Viewer, actor: User, target: Visibility, note: str = ""
) -> GenerativeModel:
    """Change who sees a model, or, to make it public, ask a hub reviewer to.

    Only the namespace's owner (a personal namespace's user, an organisation's owners) may. A
    change to ``public`` waits as a request that a hub reviewer other than the requester
    approves (:func:`model_visibility_review`); any other change applies at once. Each step is
    an audit event (``ModelEvent``), and an applied change gets a catalogue serial.
    """
    with transaction.atomic():
        model = GenerativeModel.objects.select_for_update().get(pk=model_id)
        _check_may_manage(model, viewer)
        if target == Visibility.PRIVATE:
            namespace = Namespace.objects.filter(name=model.namespace).first()
            if namespace is None or namespace.organisation_id is None:
                raise CatalogError(
                    "private models belong to organisations (their members see them); "
                    "choose internal for a personal namespace",
                    code=ErrorCode.BAD_REQUEST,
                )
        if target.value == model.visibility:
            if model.requested_visibility:
                _visibility_request_close(
                    model, kind="visibility_request_withdrawn", actor=actor, note=note
                )
            return model
        if target == Visibility.PUBLIC:
            model.requested_visibility = target.value
            model.requested_by = actor
            model.save(update_fields=["requested_visibility", "requested_by"])
            ModelEvent.objects.create(
                generative_model=model,
                actor=actor,
                kind="visibility_requested",
                from_value=model.visibility,
                to_value=target.value,
                note=note,
            )
            return model
        _visibility_apply(model, target, actor=actor, note=note)
        return model


def model_visibility_review(
    *, model_id: int, viewer: Viewer, reviewer: User, decision: str, note: str = ""
) -> GenerativeModel:
    """A hub reviewer's decision on a request to make a model public (not their own request)."""
    if decision not in {"approve", "reject"}:
        raise CatalogError(
            f"decision must be 'approve' or 'reject', not {decision!r}",
            code=ErrorCode.BAD_REQUEST,
        )
    with transaction.atomic():
        model = GenerativeModel.objects.select_for_update().get(pk=model_id)
        require_scope(viewer, TokenScope.REVIEW, "review a request to make a model public")
        if not viewer.reviews_hub:
            raise ReviewForbiddenError("only the hub's reviewers make a model public")
        if not model.requested_visibility:
            raise CatalogError(
                f"{model.model_id} has no request to change its visibility",
                code=ErrorCode.TRANSITION_NOT_ALLOWED,
            )
        if model.requested_by_id == reviewer.pk:
            raise SelfReviewError(
                "nobody approves their own request: another hub reviewer must decide",
                {"reviewer": reviewer.get_username()},
            )
        if decision == "approve":
            _visibility_apply(
                model, Visibility(model.requested_visibility), actor=reviewer, note=note
            )
            return model
        _visibility_request_close(
            model, kind="visibility_request_rejected", actor=reviewer, note=note
        )
        return model


def release_import_external(*, card: Card, actor: User | None, source: str) -> Release | None:
    """Record a release whose package lives outside the hub (medigan's catalogue on Zenodo).

    Such a release cannot be validated here, so it walks the lifecycle with events that say it was
    imported unvalidated. Idempotent: an existing release with the same id is left untouched and
    None is returned.
    """
    with transaction.atomic():
        generative_model, _ = GenerativeModel.objects.get_or_create(
            namespace=card.namespace, name=card.name, defaults={"owner": actor}
        )
        if generative_model.releases.filter(version=card.version).exists():
            return None
        release = Release.objects.create(
            generative_model=generative_model,
            version=card.version,
            card=card.to_json(),
            submitted_by=actor,
            # The DOI of the record its package lives under, as the registered resolvers read it
            # (not pinned: nothing here has checked the record's bytes).
            doi=_external_doi(card),
        )
        _artifacts_record_hosted_elsewhere(release, card)
        ReleaseEvent.objects.create(
            release=release,
            actor=actor,
            to_state=ReleaseState.SUBMITTED.value,
            note=f"imported from {source}",
        )
        ReleaseCheck.objects.create(
            release=release,
            name="external_package",
            status=ReleaseCheck.Status.SKIPPED,
            message="the package is hosted outside the hub and was not validated here",
        )
        steps: Iterable[tuple[ReleaseState, str]] = (
            (ReleaseState.VALIDATING, "imported release: checks skipped"),
            (ReleaseState.IN_REVIEW, "imported release: package hosted outside the hub"),
            (ReleaseState.APPROVED, f"imported from {source}"),
            (ReleaseState.PUBLISHED, "published unpinned (no DOI pinned by this hub)"),
        )
        for target, note in steps:
            release = release_transition(
                release_id=release.pk, target=target, actor=actor, note=note
            )
    return release


def _artifacts_record_hosted_elsewhere(release: Release, card: Card) -> None:
    """Record a card's artifacts by digest and URLs, without their bytes (fetched later)."""
    for artifact in card.artifacts:
        Artifact.objects.create(
            release=release,
            role=artifact.role,
            filename=artifact.filename,
            sha256=artifact.sha256 or "",
            size=artifact.size,
            external_urls=list(artifact.urls),
        )


@dataclass(frozen=True)
class MirroredOrigin:
    """Where a mirrored release comes from (``Release.origin_*``) and the attestation it carries."""

    upstream: str
    hub: str
    url: str
    release_id: str
    serial: int
    sha256: str
    attestation: Mapping[str, Any]


def _package_sha256(card: Card) -> str:
    package = next((a for a in card.artifacts if a.role == "package"), None)
    return (package.sha256 or "") if package is not None else ""


def release_mirror_create(
    *,
    card: Card,
    visibility: Visibility,
    origin: MirroredOrigin,
    publish: bool,
    revalidate: bool = False,
) -> Release:
    """Record a copy of an upstream hub's published release, in the namespace it has there.

    The model is created as mirrored from the upstream (local pushes to it are refused); its
    visibility follows the upstream's. The release walks the lifecycle with events that say where
    it came from, and ends published (``publish``) or in review for local reviewers. Its
    artifacts are recorded with their sha256 and the upstream's URLs; the bytes come later (on
    first download, or eagerly in ``full`` mode) and are verified against those digests.

    With ``revalidate`` the release stops at ``submitted`` and goes through this hub's own
    validation in the sandbox, as a push does (its package fetched from the upstream first);
    the hooks registered with :func:`mirror_validated_hook_register` decide what follows a pass.
    """
    with transaction.atomic():
        generative_model, created = GenerativeModel.objects.get_or_create(
            namespace=card.namespace,
            name=card.name,
            defaults={"visibility": visibility.value, "mirrored_from": origin.upstream},
        )
        if generative_model.mirrored_from != origin.upstream:
            raise CatalogError(
                f"{card.model_id} exists here and is not mirrored from {origin.upstream}",
                code=ErrorCode.MIRROR_CLASH,
            )
        if not created and generative_model.visibility != visibility.value:
            _visibility_apply(
                generative_model,
                visibility,
                actor=None,
                note=f"follows the upstream {origin.upstream}",
            )
        release = Release.objects.create(
            generative_model=generative_model,
            version=card.version,
            card=card.to_json(),
            attestation=dict(origin.attestation),
            origin_hub=origin.hub,
            origin_url=origin.url,
            origin_release_id=origin.release_id,
            origin_serial=origin.serial,
            origin_sha256=origin.sha256 or _package_sha256(card),
        )
        _artifacts_record_hosted_elsewhere(release, card)
        source = f"mirrored from {origin.upstream} ({origin.release_id} at serial {origin.serial})"
        ReleaseEvent.objects.create(
            release=release, to_state=ReleaseState.SUBMITTED.value, note=source
        )
        if revalidate:
            release_id = release.pk
            transaction.on_commit(lambda: _queue_validation(release_id))
            return release
        ReleaseCheck.objects.create(
            release=release,
            name="mirrored",
            status=ReleaseCheck.Status.PASSED,
            message=f"{source}; validated and reviewed on {origin.hub}, its artifacts are "
            "verified by sha256 when this hub fetches them",
        )
        steps: list[tuple[ReleaseState, str]] = [
            (ReleaseState.VALIDATING, source),
            (ReleaseState.IN_REVIEW, source),
        ]
        if publish:
            steps += [(ReleaseState.APPROVED, source), (ReleaseState.PUBLISHED, source)]
        for target, note in steps:
            release = release_transition(release_id=release.pk, target=target, note=note)
    return release


def model_visibility_follow(*, model_id: int, visibility: Visibility, upstream: str) -> None:
    """Give a mirrored model the visibility it has on its upstream (a feed's visibility change)."""
    with transaction.atomic():
        model = GenerativeModel.objects.select_for_update().get(pk=model_id)
        if model.visibility != visibility.value:
            _visibility_apply(
                model, visibility, actor=None, note=f"follows the upstream {upstream}"
            )


def medigan_catalog_import(
    *, raw_catalog: Mapping[str, Any], actor: User | None, source: str
) -> tuple[list[Release], list[str]]:
    """Import medigan's ``global.json`` as published releases in namespace ``medigan``.

    Returns the releases created (existing ones are left as they are) and the normalisation
    warnings of the import, one line each.
    """
    from medigan_catalog.medigan_compat import import_global_json

    result = import_global_json(raw_catalog)
    created = [
        release
        for card in result.cards
        if (release := release_import_external(card=card, actor=actor, source=source)) is not None
    ]
    return created, [str(warning) for warning in result.warnings]


def package_publish_as_operator(*, package_dir: Path, operator: User, note: str) -> Release:
    """Push a package directory through the hub's own path: submit, validate, approve, publish.

    Used to seed the project's zoo models; no check is skipped, so a zoo model that fails one
    is rejected like any contributor's. Validation runs in this process (the seed must finish
    before the worker starts).

    The one rule it does not apply is four eyes: the operator both submits and approves. That is
    deliberate: this path is reached only from ``manage.py`` (seed_demo), by whoever runs the
    hub, for the project's own models, where there is no second person to ask; no API or admin
    view leads here, and the events record the operator as both submitter and reviewer. Nor do
    the publication gates apply (no DOI is deposited for the project's own models): the seed
    publishes before any worker runs.
    """
    import json

    from medigan_catalog.packaging import build_deterministic_zip

    card_data = json.loads((package_dir / "card.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="seed-", dir=_work_root()) as scratch:
        archive = Path(scratch) / "package.zip"
        info = build_deterministic_zip(package_dir, archive)
        with archive.open("rb") as package:
            # Validated right below in this process: a running worker must not take it too.
            release = release_submit(
                user=operator,
                card_data=card_data,
                package=package,
                declared_sha256=info.sha256,
                queue_validation=False,
            )
    validated = release_validate(release_id=release.pk)
    if validated is None or validated.state != ReleaseState.IN_REVIEW:
        return Release.objects.get(pk=release.pk)
    return _release_approve_and_publish(release_id=release.pk, reviewer=operator, note=note)


@dataclass
class StorageReport:
    """What ``storage_check`` found: files checked, and every problem by kind."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def problems(self) -> int:
        """Problems that remain: missing or wrong files, and orphans not deleted."""
        remaining = [name for name in self.orphans if name not in set(self.deleted)]
        return len(self.missing) + len(self.mismatched) + len(remaining)


def _file_fields() -> list[tuple[type[models.Model], models.FileField]]:
    return [
        (model, model_field)
        for model in apps.get_models()
        for model_field in model._meta.get_fields()
        if isinstance(model_field, models.FileField)
        and isinstance(model_field.upload_to, str)
        and model_field.upload_to
    ]


def _storage_walk(storage: Storage, prefix: str) -> Iterable[str]:
    try:
        folders, files = storage.listdir(prefix)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{prefix.rstrip('/')}/{name}"
    for folder in folders:
        yield from _storage_walk(storage, f"{prefix.rstrip('/')}/{folder}")


def _stored_hash(storage: Storage, name: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    # Streamed out of storage: on S3 the object's body is read as it arrives, never held whole.
    with stored_open(storage, name) as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def storage_check(
    *, delete_orphans: bool = False, orphan_min_age_seconds: float = 0.0
) -> StorageReport:
    """Audit the hub's storage against the database, through the storage API (disk or S3).

    Every stored artifact's sha256 and size are compared with its row; every other stored file
    a row names (sample grids, reference sets) must exist; every file under a folder the models
    store into (``releases/``, ``grids/``, ``references/``) that no row names is an orphan. With
    ``delete_orphans``, orphans last modified longer than ``orphan_min_age_seconds`` ago are
    deleted: a younger one may be a push whose row is about to commit.
    """
    report = StorageReport()
    artifacts = {
        str(artifact.file.name): artifact
        for artifact in Artifact.objects.exclude(file="").only("file", "sha256", "size")
    }
    known: set[str] = set(artifacts)
    prefixes: set[str] = set()
    for model, file_field in _file_fields():
        if file_field.storage is not default_storage:
            # A field with a storage of its own is audited by whoever configured it.
            continue
        prefixes.add(str(file_field.upload_to).strip("/"))
        names = (
            model._default_manager.exclude(**{file_field.name: ""})
            .exclude(**{f"{file_field.name}__isnull": True})
            .values_list(file_field.name, flat=True)
        )
        known.update(str(name) for name in names)
    for name in sorted(known):
        report.checked += 1
        if not default_storage.exists(name):
            report.missing.append(f"{name}: named by a row but not in storage")
            continue
        artifact = artifacts.get(name)
        if artifact is None:
            continue
        sha256, size = _stored_hash(default_storage, name)
        if sha256 != artifact.sha256 or (artifact.size is not None and size != artifact.size):
            report.mismatched.append(
                f"{name}: stored sha256 {sha256}, {size} bytes; "
                f"its row says sha256 {artifact.sha256}, {artifact.size} bytes"
            )
    cutoff = timezone.now() - timedelta(seconds=orphan_min_age_seconds)
    for prefix in sorted(prefixes):
        for name in _storage_walk(default_storage, prefix):
            if name in known:
                continue
            report.orphans.append(name)
            if delete_orphans and _modified_before(default_storage, name, cutoff):
                default_storage.delete(name)
                report.deleted.append(name)
    return report


def _modified_before(storage: Storage, name: str, cutoff: datetime) -> bool:
    try:
        modified = storage.get_modified_time(name)
    except (NotImplementedError, OSError):
        # A file whose age the storage cannot tell is kept and still reported: deleting a push
        # that is about to commit would be worse than keeping an orphan.
        return False
    if timezone.is_naive(modified):
        modified = timezone.make_aware(modified, timezone.get_default_timezone())
    return modified < cutoff


# --- DOI pins: the hooks and writes of hub.pinning ----------------------------------------------
# The registry knows no Zenodo. hub.pinning registers a publication gate (asked whether a push's
# DOI request can be honoured, and, once a release is approved, whether it pins a DOI before
# publishing the release itself) and a resolver of the DOI an imported package lives under. What
# it pins or finds broken it records through the services below, which keep the release's pin
# fields and the catalogue serial in step (the snapshot carries the pin).


class PublicationGate(Protocol):
    """An app that may pin a release's DOI between its approval and its publication."""

    def push_refusal(self, *, doi: str, mint_doi: bool) -> CatalogError | None:
        """Why a push naming ``doi``, or asking for a minted DOI, cannot be honoured; or None."""

    def takes_over(self, *, release_id: int) -> bool:
        """Asked once a release is approved: True when the gate publishes it itself, later."""


_publication_gates: list[PublicationGate] = []

# Gives the DOI an imported release's package lives under (its record's, derived from the
# artifact's URL), or None when it cannot tell.
ExternalDoiResolver = Callable[[Card], str | None]
_external_doi_resolvers: list[ExternalDoiResolver] = []


def publication_gate_register(gate: PublicationGate) -> None:
    """Let ``gate`` take over the publication of approved releases that need a DOI pinned."""
    if gate not in _publication_gates:
        _publication_gates.append(gate)


def external_doi_resolver_register(resolver: ExternalDoiResolver) -> None:
    """Let ``resolver`` name the DOI of imported releases (``release_import_external``)."""
    if resolver not in _external_doi_resolvers:
        _external_doi_resolvers.append(resolver)


def _push_doi_check(*, doi: str, mint_doi: bool) -> None:
    """Refuse a push whose DOI request no gate of this hub can honour, before anything is stored."""
    if not doi and not mint_doi:
        return
    if not _publication_gates:
        raise CatalogError(
            "this hub pins no DOIs",
            code=ErrorCode.DOI_MINT_UNAVAILABLE if mint_doi else ErrorCode.DOI_UNRESOLVABLE,
        )
    for gate in _publication_gates:
        refusal = gate.push_refusal(doi=doi, mint_doi=mint_doi)
        if refusal is not None:
            raise refusal


def _publication_taken_over(release_id: int) -> bool:
    return any(gate.takes_over(release_id=release_id) for gate in _publication_gates)


def _external_doi(card: Card) -> str:
    for resolver in _external_doi_resolvers:
        doi = resolver(card)
        if doi:
            return doi
    return ""


def _in_catalogue(release: Release) -> bool:
    return ReleaseState(release.state) in CATALOGUE_STATES


def release_pin_record(*, release_id: int, doi: str, note: str = "") -> Release:
    """Record ``doi`` as pinned for a release: its record was found to hold the release's bytes.

    Clears a broken pin (a re-check found the record whole again). A release in the catalogue
    keeps the DOI it was published with: another one is refused. A change of what clients see
    gets the next catalogue serial.
    """
    with transaction.atomic():
        release = (
            Release.objects.select_for_update()
            .select_related("generative_model")
            .get(pk=release_id)
        )
        if _in_catalogue(release) and release.doi and release.doi.lower() != doi.lower():
            raise CatalogError(
                f"{release.release_id} was published with DOI {release.doi}; a published "
                f"release's DOI never changes, so {doi} is not pinned for it",
                {"doi": release.doi},
                code=ErrorCode.TRANSITION_NOT_ALLOWED,
            )
        before = (release.doi, release.pinned, release.pin_broken, release.pin_note)
        release.doi, release.pinned, release.pin_broken, release.pin_note = doi, True, False, note
        release.save(update_fields=["doi", "pinned", "pin_broken", "pin_note", "updated_at"])
        if before != (doi, True, False, note) and _in_catalogue(release):
            catalog_serial_bump(
                kind="release_pinned", generative_model=release.generative_model, release=release
            )
    logger.info("release %s: DOI %s pinned", release.release_id, doi)
    return release


def release_pin_flag_broken(*, release_id: int, note: str) -> Release:
    """Flag a release's pinned DOI as broken: its record no longer holds the release's bytes.

    The release stays as it is (the hub still serves its own verified copy); ``note`` says what
    was found, and clients see the flag with the next serial.
    """
    with transaction.atomic():
        release = (
            Release.objects.select_for_update()
            .select_related("generative_model")
            .get(pk=release_id)
        )
        if release.pin_broken and release.pin_note == note:
            return release
        release.pin_broken, release.pin_note = True, note
        release.save(update_fields=["pin_broken", "pin_note", "updated_at"])
        if _in_catalogue(release):
            catalog_serial_bump(
                kind="release_pin_broken",
                generative_model=release.generative_model,
                release=release,
            )
    logger.warning("release %s: pinned DOI %s broken: %s", release.release_id, release.doi, note)
    return release


def release_check_record(
    *, release_id: int, name: str, passed: bool, message: str, detail: str = ""
) -> ReleaseCheck:
    """Record the outcome of a named check made after validation (the DOI pin), replacing an
    earlier outcome of the same check: contributors and reviewers see the latest."""
    with transaction.atomic():
        ReleaseCheck.objects.filter(release_id=release_id, name=name).delete()
        return ReleaseCheck.objects.create(
            release_id=release_id,
            name=name,
            status=ReleaseCheck.Status.PASSED if passed else ReleaseCheck.Status.FAILED,
            message=message,
            detail=detail,
        )


def artifact_checksum_fill(*, artifact_id: int, sha256: str, size: int) -> Artifact:
    """Record the sha256 and size of an artifact recorded without them (an imported package
    whose bytes the hub verified against their record): a value already recorded is never
    replaced by another, which is a mismatch."""
    with transaction.atomic():
        artifact = Artifact.objects.select_for_update().get(pk=artifact_id)
        if (artifact.sha256 and artifact.sha256 != sha256) or (
            artifact.size is not None and artifact.size != size
        ):
            raise ArtifactChecksumError(
                f"{artifact.filename} is recorded with sha256 {artifact.sha256 or '-'} and "
                f"{artifact.size} bytes, not sha256 {sha256} and {size} bytes",
                {"expected": artifact.sha256, "actual": sha256},
            )
        artifact.sha256, artifact.size = sha256, size
        artifact.save(update_fields=["sha256", "size"])
    return artifact
