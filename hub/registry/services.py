"""Writes on the registry: submitting, validating, reviewing, publishing and importing releases.

``release_transition`` is the only function that changes a release's state. Everything else that
moves a release goes through it, so every change is checked against the lifecycle table and leaves
an audit event.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from hub.registry import signals, validation
from hub.registry.models import (
    Artifact,
    CatalogSerial,
    GenerativeModel,
    Release,
    ReleaseCheck,
    ReleaseEvent,
)
from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.lifecycle import ReleaseState, check_transition
from medigan_catalog.schema import Artifact as CardArtifact
from medigan_catalog.schema import Card
from medigan_catalog.validation import validate_card

logger = logging.getLogger(__name__)

# Namespaces that only staff may publish into: the project's own zoo and the imported medigan
# catalogue. Anyone else's push there would impersonate them.
RESERVED_NAMESPACES = frozenset({"zoo", "medigan"})
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


def catalog_serial_bump() -> int:
    """Increase the catalogue serial by one (inside the caller's transaction) and return it."""
    row, _ = CatalogSerial.objects.select_for_update().get_or_create(pk=1)
    CatalogSerial.objects.filter(pk=row.pk).update(serial=F("serial") + 1)
    row.refresh_from_db()
    return row.serial


def release_transition(
    *,
    release_id: int,
    target: ReleaseState,
    actor: User | None = None,
    note: str = "",
) -> Release:
    """Move a release to ``target`` if the lifecycle table allows it, and record the event.

    Runs in a transaction with the release row locked, so two reviewers or two workers cannot
    both move the same release. Publishing and deprecating bump the catalogue serial.
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
        if target in {ReleaseState.PUBLISHED, ReleaseState.DEPRECATED}:
            catalog_serial_bump()
        if target is ReleaseState.PUBLISHED:
            published_id = release.pk
            transaction.on_commit(
                lambda: signals.release_published.send(sender=Release, release_id=published_id)
            )
        release.save(update_fields=update_fields)
        ReleaseEvent.objects.create(
            release=release,
            actor=actor,
            from_state=current.value,
            to_state=target.value,
            note=note,
        )
    logger.info("release %s: %s -> %s", release.release_id, current.value, target.value)
    return release


def _model_for_push(*, card: Card, user: User) -> GenerativeModel:
    is_staff = bool(getattr(user, "is_staff", False))
    if card.namespace in RESERVED_NAMESPACES and not is_staff:
        raise NamespaceForbiddenError(
            f"the namespace {card.namespace!r} is reserved for the hub's operators"
        )
    generative_model, created = GenerativeModel.objects.get_or_create(
        namespace=card.namespace, name=card.name, defaults={"owner": user}
    )
    if not created and generative_model.owner_id != user.pk and not is_staff:
        raise NamespaceForbiddenError(f"{card.model_id} belongs to another user")
    return generative_model


def _store_upload(upload: IO[bytes], *, name: str) -> tuple[str, str, int]:
    """Store an upload through the storage API while hashing it: (stored name, sha256, size)."""
    from django.core.files.storage import default_storage

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
) -> Release:
    """Store a pushed package with its card as a new ``submitted`` release.

    The card is validated before anything is stored. Validation of the package itself runs on the
    ``validation`` queue once the transaction commits.
    """
    card = validate_card(card_data)
    with transaction.atomic():
        generative_model = _model_for_push(card=card, user=user)
        if generative_model.releases.filter(version=card.version).exists():
            raise ReleaseExistsError(
                f"{card.release_id} exists already; releases are immutable, push a new version"
            )
        filename = f"{card.name}-{card.version}.zip"
        stored_name, sha256, size = _store_upload(
            package,
            name=f"releases/{card.namespace}/{card.name}/{card.version}/{filename}",
        )
        card = card.with_artifacts(
            [CardArtifact(role="package", filename=filename, sha256=sha256, size=size, urls=())]
        )
        release = Release.objects.create(
            generative_model=generative_model,
            version=card.version,
            card=card.to_json(),
            submitted_by=user,
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
        transaction.on_commit(lambda: _queue_validation(release.pk))
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


def release_requeue_stale(*, older_than_seconds: float) -> list[int]:
    """Queue validation again for releases left ``submitted`` longer than the given age."""
    from datetime import timedelta

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = list(
        Release.objects.filter(state=ReleaseState.SUBMITTED, updated_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for release_id in stale:
        _queue_validation(release_id)
    return stale


def _record_check(release: Release, outcome: validation.CheckOutcome) -> None:
    ReleaseCheck.objects.create(
        release=release,
        name=outcome.name,
        status=outcome.status,
        message=outcome.message,
        duration_seconds=round(outcome.duration_seconds, 3),
    )


def release_validate(*, release_id: int) -> Release | None:
    """Run the named checks on a submitted release and move it to ``in_review`` or ``rejected``.

    Returns None without doing anything when the release is no longer ``submitted`` (a repeated
    or late task), so the task can be delivered twice safely.
    """
    if not Release.objects.filter(pk=release_id, state=ReleaseState.SUBMITTED).exists():
        return None
    release = release_transition(release_id=release_id, target=ReleaseState.VALIDATING)
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
                    save=True,
                )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    elapsed = time.monotonic() - started
    if failure is not None:
        return release_transition(
            release_id=release_id,
            target=ReleaseState.REJECTED,
            note=f"check {failure.name} failed: {failure.message}",
        )
    return release_transition(
        release_id=release_id,
        target=ReleaseState.IN_REVIEW,
        note=f"all checks passed in {elapsed:.1f} s",
    )


def _work_root() -> Path:
    root = Path(settings.MEDIGAN_WORK_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return root


def release_package_extract(*, release: Release, destination: Path) -> Path:
    """Copy a release's stored package out of storage, verify its sha256 and unpack it safely.

    Returns the package directory. Used by work that runs a published package (evaluations);
    the bytes are checked again because storage is outside the database's guarantees.
    """
    from medigan_catalog.packaging import ArchiveLimits, safe_extract, verify_file

    artifact = release.artifacts.filter(role="package").exclude(file="").first()
    if artifact is None:
        raise CatalogError(
            f"{release.release_id} has no package stored on this hub",
            code=ErrorCode.ARTIFACT_UNREACHABLE,
        )
    destination.mkdir(parents=True, exist_ok=True)
    archive = destination / artifact.filename
    with artifact.file.open("rb") as source, archive.open("wb") as target:
        shutil.copyfileobj(source, target, _HASH_CHUNK_BYTES)
    verify_file(archive, sha256=artifact.sha256, size=artifact.size)
    package_dir = destination / "package"
    safe_extract(archive, package_dir, ArchiveLimits())
    return package_dir


def release_approve(*, release_id: int, reviewer: User, note: str = "") -> Release:
    """Approve a release in review and publish it.

    DOI pinning is not part of publishing yet: the release is recorded as unpinned, and the
    published event says so.
    """
    release_transition(
        release_id=release_id, target=ReleaseState.APPROVED, actor=reviewer, note=note
    )
    return release_publish(release_id=release_id, actor=reviewer)


def release_publish(*, release_id: int, actor: User | None = None) -> Release:
    """Publish an approved release: it enters the catalogue and the serial goes up."""
    Release.objects.filter(pk=release_id).update(pinned=False)
    return release_transition(
        release_id=release_id,
        target=ReleaseState.PUBLISHED,
        actor=actor,
        note="published unpinned (no DOI pinned)",
    )


def release_reject(*, release_id: int, reviewer: User, note: str) -> Release:
    """Reject a release in review; the note tells the contributor why."""
    return release_transition(
        release_id=release_id, target=ReleaseState.REJECTED, actor=reviewer, note=note
    )


def release_review(*, release_id: int, reviewer: User, decision: str, note: str = "") -> Release:
    """Apply a reviewer's decision, ``approve`` or ``reject``."""
    if decision == "approve":
        return release_approve(release_id=release_id, reviewer=reviewer, note=note)
    if decision == "reject":
        return release_reject(release_id=release_id, reviewer=reviewer, note=note)
    raise CatalogError(
        f"decision must be 'approve' or 'reject', not {decision!r}", code=ErrorCode.BAD_REQUEST
    )


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
        )
        for artifact in card.artifacts:
            Artifact.objects.create(
                release=release,
                role=artifact.role,
                filename=artifact.filename,
                sha256=artifact.sha256 or "",
                size=artifact.size,
                external_urls=list(artifact.urls),
            )
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

    Used to seed the project's zoo models; nothing is skipped, so a zoo model that fails a check
    is rejected like any contributor's. Validation runs in this process (the seed must finish
    before the worker starts).
    """
    import json

    from medigan_catalog.packaging import build_deterministic_zip

    card_data = json.loads((package_dir / "card.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="seed-", dir=_work_root()) as scratch:
        archive = Path(scratch) / "package.zip"
        info = build_deterministic_zip(package_dir, archive)
        with archive.open("rb") as package:
            release = release_submit(
                user=operator, card_data=card_data, package=package, declared_sha256=info.sha256
            )
    validated = release_validate(release_id=release.pk)
    if validated is None or validated.state != ReleaseState.IN_REVIEW:
        return Release.objects.get(pk=release.pk)
    return release_approve(release_id=release.pk, reviewer=operator, note=note)
