"""Writes of DOI pinning: a release's bytes tied to a Zenodo record, before it is published.

Three ways lead to a pin (``DoiPin.kind``):

- *minted*: on approval, when the hub's policy (``MEDIGAN_ZENODO_MINT``) or the contributor
  (``push --mint-doi``) asks for it, the hub deposits the package on Zenodo: a new deposition,
  or the next version of the model's previous deposit (same concept DOI); the package streamed
  into its bucket, metadata from the card, published; then the record is read back and its
  file's md5 and size must be the package's;
- *provided*: the push (``doi``) or the card (a Zenodo DOI in ``provenance.dois``) names the
  record; the hub reads its file list, downloads the files that could be the package and pins
  the DOI only when one has the package's sha256, otherwise the ``doi_pin`` check fails;
- *imported*: medigan's catalogue names its packages' Zenodo records; ``manage.py pin_verify``
  downloads each, checks it against Zenodo's md5, records its sha256 and size, stores the bytes
  for clients that cannot reach Zenodo, and pins the DOI.

The first two run between approval and publication (``docs/architecture.md``, step 4): the
registry asks this app's publication gate whether it takes an approved release over; the pin
task then pins and publishes in one transaction, so a release is never published unpinned when a
pin was asked for, and a pin is never half recorded. Zenodo being unreachable or slow is retried
with backoff (the task), resuming from what Zenodo holds (a deposition made, a publication that
went through); what cannot succeed by trying again (a mismatch, a refusal) fails at once. A
failed pin leaves the release ``approved`` with a failed ``doi_pin`` check that says why.

A beat task re-checks every pinned record (``pin_recheck``): a file changed or gone, or the
record deleted, flags the release (``pin_broken``); a record found whole again clears the flag.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import IO, Final
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hub.pinning import selectors
from hub.pinning.models import DoiPin, PinEvent, PinnedFile
from hub.pinning.zenodo import (
    CHUNK_BYTES,
    Deposition,
    RecordFile,
    RecordGoneError,
    ZenodoClient,
    ZenodoFailedError,
    ZenodoRecord,
    ZenodoUnavailableError,
)
from hub.registry import selectors as registry_selectors
from hub.registry import services as registry_services
from hub.registry.models import Artifact, Release
from hub.storage import stored_open
from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.lifecycle import ReleaseState
from medigan_catalog.schema import DOI_PATTERN, Card

logger = logging.getLogger(__name__)

CHECK_NAME: Final = "doi_pin"
# A Zenodo DOI names its record: 10.5281/zenodo.<record id> on zenodo.org, 10.5072/... on the
# sandbox; any registrant prefix is read the same way (an instance's own test prefix).
ZENODO_DOI: Final = re.compile(r"^10\.\d{4,9}/zenodo\.(\d+)$", re.IGNORECASE)
# A record's page or file on Zenodo (``/record/<id>/files/<key>``, ``/records/<id>``), and the
# DOI prefix of the instances whose DOIs follow from the record id.
_RECORD_URL: Final = re.compile(r"^/(?:api/)?records?/(?P<id>\d+)(?:/files/(?P<key>[^/?#]+))?")
_DOI_PREFIX_BY_HOST: Final = {
    "zenodo.org": "10.5281",
    "www.zenodo.org": "10.5281",
    "sandbox.zenodo.org": "10.5072",
}
# A pin task that claimed a pin this long ago and never let go is taken to be dead.
_CLAIM_STALE: Final = timedelta(hours=2)
_RETRY_MAX_SECONDS: Final = 3600.0


class MintPolicy(StrEnum):
    """``MEDIGAN_ZENODO_MINT``: when the hub deposits an approved release on Zenodo."""

    NEVER = "never"
    ON_REQUEST = "on_request"
    ALWAYS = "always"


class PinDeferredError(CatalogError):
    """Another version of the same model is being deposited: Zenodo keeps one draft of a new
    version at a time, so this one waits for its turn (retried like an unreachable Zenodo)."""

    code = ErrorCode.HUB_BUSY


# What trying again later may cure; everything else fails the pin at once.
TRANSIENT_ERRORS: Final = (ZenodoUnavailableError, PinDeferredError)


def zenodo_record_id(doi: str) -> str | None:
    """The record id a Zenodo DOI names (``10.5281/zenodo.7031735`` -> ``7031735``), or None.

    Only Zenodo DOIs map to a record without asking doi.org, which an offline hub cannot do:
    other DOIs (a paper's, an InvenioRDM instance's own) are cited, never pinned.
    """
    match = ZENODO_DOI.fullmatch(doi.strip())
    return match.group(1) if match else None


def mint_unavailable_reason() -> str | None:
    """Why this hub deposits nothing on Zenodo now, or None when it can."""
    if MintPolicy(settings.MEDIGAN_ZENODO_MINT) is MintPolicy.NEVER:
        return "this hub deposits nothing on Zenodo (its operator set MEDIGAN_ZENODO_MINT=never)"
    if not settings.MEDIGAN_ZENODO_TOKEN:
        return (
            "this hub has no Zenodo token (MEDIGAN_ZENODO_TOKEN), so it deposits nothing on "
            f"{settings.MEDIGAN_ZENODO_URL}"
        )
    return None


def _client(base_url: str | None = None) -> ZenodoClient:
    """A client of ``base_url`` (the configured instance by default); the hub's token goes to
    the configured instance only."""
    if base_url is None or base_url.rstrip("/") == settings.MEDIGAN_ZENODO_URL.rstrip("/"):
        return ZenodoClient.from_settings()
    return ZenodoClient(
        base_url=base_url,
        connect_timeout=settings.MEDIGAN_ZENODO_CONNECT_TIMEOUT_SECONDS,
        read_timeout=settings.MEDIGAN_ZENODO_READ_TIMEOUT_SECONDS,
        retries=settings.MEDIGAN_ZENODO_HTTP_RETRIES,
        backoff_seconds=settings.MEDIGAN_ZENODO_HTTP_BACKOFF_SECONDS,
    )


# --- the registry's hooks --------------------------------------------------------------------


class ZenodoPublicationGate:
    """The registry's publication gate (``registry.services.publication_gate_register``)."""

    def push_refusal(self, *, doi: str, mint_doi: bool) -> CatalogError | None:
        """Refuse a push whose DOI cannot be pinned here, before its package is stored."""
        if doi and not re.fullmatch(DOI_PATTERN, doi):
            return CatalogError(
                f"{doi!r} is not a bare DOI such as 10.5281/zenodo.7031735",
                [{"loc": "doi", "msg": "a bare DOI"}],
                code=ErrorCode.BAD_REQUEST,
            )
        if doi and zenodo_record_id(doi) is None:
            return CatalogError(
                f"{doi} is not a Zenodo DOI (10.NNNN/zenodo.N): the hub pins the Zenodo record "
                "that holds a package, which it reads without asking doi.org; cite other DOIs "
                "in the card's provenance.dois",
                {"doi": doi},
                code=ErrorCode.DOI_UNRESOLVABLE,
            )
        if mint_doi and (reason := mint_unavailable_reason()) is not None:
            return CatalogError(
                f"{reason}; push without --mint-doi", code=ErrorCode.DOI_MINT_UNAVAILABLE
            )
        return None

    def takes_over(self, *, release_id: int) -> bool:
        """Take an approved release over when a DOI is to be pinned for it."""
        return pin_start(release_id=release_id)


def external_package_doi(card: Card) -> str | None:
    """The DOI of the Zenodo record an imported package lives on, read from its URL.

    A record on zenodo.org (or its sandbox) has the DOI ``<prefix>/zenodo.<record id>``; a URL
    anywhere else names no DOI the hub can tell.
    """
    package = card.package_artifact
    for artifact in (package, *card.artifacts) if package is not None else card.artifacts:
        for url in artifact.urls:
            parts = urlsplit(url)
            match = _RECORD_URL.match(parts.path)
            prefix = _DOI_PREFIX_BY_HOST.get((parts.hostname or "").lower())
            if match and prefix:
                return f"{prefix}/zenodo.{match['id']}"
    return None


def pinned_artifact_fetch(artifact: Artifact) -> Iterator[bytes] | None:
    """The bytes of an artifact the hub serves from its pinned Zenodo record, or None when it
    is not pinned here (``registry.services.artifact_fetcher_register``); the registry checks
    them against the recorded sha256 before it stores and serves them."""
    pinned = selectors.pinned_file_of_artifact(artifact.pk)
    if pinned is None:
        return None
    return _stream_and_close(_client(pinned.pin.zenodo_url), pinned.content_url)


def _stream_and_close(client: ZenodoClient, url: str) -> Iterator[bytes]:
    with client:
        yield from client.file_stream(url)


# --- starting and retrying a pin ---------------------------------------------------------------


def _event(pin_id: int, kind: str, note: str = "") -> None:
    PinEvent.objects.create(pin_id=pin_id, kind=kind, note=note)


def pin_start(*, release_id: int) -> bool:
    """Take an approved release over if a DOI is to be pinned for it: record the pin as pending
    and queue the pin task once the approval commits. False when nothing is to be pinned."""
    release = Release.objects.select_related("generative_model").get(pk=release_id)
    plan = selectors.release_pin_plan(release)
    if plan is None:
        return False
    with transaction.atomic():
        pin, created = DoiPin.objects.select_for_update().get_or_create(
            release=release,
            defaults={
                "kind": plan.kind,
                "requested_doi": plan.doi,
                "zenodo_url": settings.MEDIGAN_ZENODO_URL,
            },
        )
        if not created:
            # Approved again after an earlier pin failed: start over, keeping a deposition
            # made already (never a second one for the same release).
            pin.kind, pin.requested_doi, pin.status = plan.kind, plan.doi, DoiPin.Status.PENDING
            pin.attempts, pin.last_error = 0, ""
            pin.save(update_fields=["kind", "requested_doi", "status", "attempts", "last_error"])
        DoiPin.objects.filter(pk=pin.pk).update(task_due_at=timezone.now())
        _event(pin.pk, "queued", plan.describe())
        transaction.on_commit(lambda: _queue_pin(release_id))
    logger.info("release %s: %s", release.release_id, plan.describe())
    return True


def pin_retry(*, release_id: int) -> DoiPin:
    """Queue the pin of an approved release again (an operator's decision after a failure)."""
    with transaction.atomic():
        pin = (
            DoiPin.objects.select_for_update().select_related("release").get(release_id=release_id)
        )
        if pin.release.state != ReleaseState.APPROVED:
            raise CatalogError(
                f"{pin.release} is {pin.release.state}: only an approved release waits for its pin",
                code=ErrorCode.TRANSITION_NOT_ALLOWED,
            )
        pin.status, pin.attempts, pin.last_error = DoiPin.Status.PENDING, 0, ""
        pin.running_since, pin.task_due_at = None, timezone.now()
        pin.save(update_fields=["status", "attempts", "last_error", "running_since", "task_due_at"])
        _event(pin.pk, "queued", "queued again by an operator")
        transaction.on_commit(lambda: _queue_pin(release_id))
    return pin


def pins_requeue_lost() -> list[int]:
    """Queue again the pins whose task was lost (the janitor's pass); their release ids.

    A task delivered after all finds the pin taken or done and leaves it (``_claim``).
    """
    requeued = []
    now = timezone.now()
    lost = selectors.pins_lost(now, claim_stale=_CLAIM_STALE)
    for release_id in list(lost.values_list("release_id", flat=True)):
        with transaction.atomic():
            # Locked and asked again: a task may have taken or finished it since the list.
            pin = lost.select_for_update(of=("self",)).filter(release_id=release_id).first()
            if pin is None:
                continue
            DoiPin.objects.filter(pk=pin.pk).update(task_due_at=timezone.now(), running_since=None)
            _event(pin.pk, "queued", "its task was lost; queued again by the janitor")
            transaction.on_commit(partial(_queue_pin, release_id))
        requeued.append(release_id)
    if requeued:
        logger.warning("pins queued again after their tasks were lost: releases %s", requeued)
    return requeued


def _queue_pin(release_id: int) -> None:
    from hub.pinning.tasks import release_pin_task

    try:
        release_pin_task.delay(release_id)
    except Exception:
        # The approval stands and the release waits, approved: `manage.py pin_retry` queues it.
        logger.exception("could not queue the pin of release %s", release_id)


def pin_retry_delay(failed_before: int) -> float:
    """Seconds before the attempt that follows ``failed_before + 1`` failed ones: doubling from
    MEDIGAN_ZENODO_RETRY_SECONDS, at most an hour."""
    return float(min(settings.MEDIGAN_ZENODO_RETRY_SECONDS * 2**failed_before, _RETRY_MAX_SECONDS))


# --- one attempt -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Digests:
    sha256: str
    md5: str
    size: int


@dataclass(frozen=True)
class _PinnedFileFound:
    file: RecordFile
    sha256: str
    artifact_id: int | None


@dataclass(frozen=True)
class _Found:
    record: ZenodoRecord
    files: tuple[_PinnedFileFound, ...]
    note: str


def _claim(pin: DoiPin) -> bool:
    """Mark the pin as worked on, unless a live task holds it (a message delivered twice)."""
    now = timezone.now()
    return bool(
        DoiPin.objects.filter(pk=pin.pk, status=DoiPin.Status.PENDING)
        .exclude(running_since__gt=now - _CLAIM_STALE)
        .update(running_since=now)
    )


def release_pin(*, release_id: int) -> str:
    """One attempt to pin an approved release's DOI and publish it (the pin task's work).

    Returns ``published``, ``failed`` (recorded: the release stays approved, its ``doi_pin``
    check failed), ``skipped`` (nothing pending, or the release moved on) or ``busy`` (another
    task holds it). Raises one of :data:`TRANSIENT_ERRORS` when trying again later may succeed,
    unless this is the final attempt, which records the failure instead.
    """
    pin = (
        DoiPin.objects.select_related("release__generative_model")
        .filter(release_id=release_id)
        .first()
    )
    if pin is None or pin.status != DoiPin.Status.PENDING:
        return "skipped"
    if pin.release.state != ReleaseState.APPROVED:
        return "skipped"
    if not _claim(pin):
        return "busy"
    # The pin counts its attempts, not the task: a task queued again (by an operator, or by the
    # janitor after a lost message) goes on from the pin's count.
    final_attempt = pin.attempts + 1 >= settings.MEDIGAN_ZENODO_PIN_ATTEMPTS
    try:
        with _client(pin.zenodo_url) as client:
            found = (
                _pin_minted(pin, client)
                if pin.kind == DoiPin.Kind.MINTED
                else _pin_provided(pin, client)
            )
        _pin_complete(pin, found)
        return "published"
    except TRANSIENT_ERRORS as error:
        _attempt_failed(pin, error, final=final_attempt)
        if final_attempt:
            return "failed"
        raise
    except CatalogError as error:
        _pin_failed(pin, error.message, code=error.code.value)
        return "failed"
    finally:
        DoiPin.objects.filter(pk=pin.pk).update(running_since=None)


def _attempt_failed(pin: DoiPin, error: CatalogError, *, final: bool) -> None:
    attempts = pin.attempts + 1
    if final:
        DoiPin.objects.filter(pk=pin.pk).update(attempts=attempts)
        _pin_failed(
            pin,
            f"Zenodo could not be reached after {attempts} attempts ({error.message}); the "
            "release stays approved and unpublished until an operator queues its pin again "
            "(manage.py pin_retry, or the admin)",
            code=error.code.value,
        )
        return
    # The pin says when its next attempt is due: the task waits until then, and the janitor
    # takes the pin back only well after it (selectors.pins_lost).
    DoiPin.objects.filter(pk=pin.pk).update(
        attempts=attempts,
        last_error=error.message,
        task_due_at=timezone.now() + timedelta(seconds=pin_retry_delay(attempts - 1)),
    )
    _event(pin.pk, "attempt_failed", f"attempt {attempts}: {error.message}; retried later")
    logger.warning("pin of %s, attempt %d failed: %s", pin.release, attempts, error.message)


def _pin_failed(pin: DoiPin, message: str, *, code: str) -> None:
    with transaction.atomic():
        DoiPin.objects.filter(pk=pin.pk).update(status=DoiPin.Status.FAILED, last_error=message)
        _event(pin.pk, "failed", message)
        registry_services.release_check_record(
            release_id=pin.release_id, name=CHECK_NAME, passed=False, message=message, detail=code
        )
    logger.error("pin of %s failed: %s", pin.release, message)


def _pin_complete(pin: DoiPin, found: _Found) -> None:
    """Record the pin and publish the release, all in one transaction."""
    record = found.record
    doi = record.doi or pin.requested_doi
    now = timezone.now()
    with transaction.atomic():
        locked = DoiPin.objects.select_for_update().get(pk=pin.pk)
        if locked.status != DoiPin.Status.PENDING:
            return
        DoiPin.objects.filter(pk=pin.pk).update(
            status=DoiPin.Status.PINNED,
            doi=doi,
            concept_doi=record.concept_doi,
            record_id=record.id,
            record_url=record.html_url,
            pinned_at=now,
            checked_at=now,
            last_error="",
        )
        _files_record(pin.pk, found.files)
        summary = ", ".join(
            f"{f.file.key} (md5 {f.file.md5}, sha256 {f.sha256})" for f in found.files
        )
        _event(pin.pk, "pinned", f"{doi}: {summary}" + (f"; {found.note}" if found.note else ""))
        registry_services.release_pin_record(release_id=pin.release_id, doi=doi)
        registry_services.release_check_record(
            release_id=pin.release_id,
            name=CHECK_NAME,
            passed=True,
            message=f"DOI {doi} pinned: Zenodo's record holds {summary}"
            + (f"; {found.note}" if found.note else ""),
        )
        registry_services.release_publish(release_id=pin.release_id)


def _files_record(pin_id: int, files: Iterable[_PinnedFileFound]) -> None:
    PinnedFile.objects.filter(pin_id=pin_id).delete()
    PinnedFile.objects.bulk_create(
        PinnedFile(
            pin_id=pin_id,
            key=found.file.key,
            size=found.file.size,
            md5=found.file.md5,
            sha256=found.sha256,
            content_url=found.file.content_url,
            artifact_id=found.artifact_id,
        )
        for found in files
    )


# --- the package as the hub holds it -------------------------------------------------------------


def _stored_package(release: Release) -> Artifact:
    package = release.artifacts.filter(role="package").exclude(file="").first()
    if package is None or not package.sha256:
        raise CatalogError(
            f"{release.release_id} has no package stored on this hub to pin",
            code=ErrorCode.ARTIFACT_UNREACHABLE,
        )
    return package


def _digests(chunks: Iterable[bytes], spool: IO[bytes] | None = None) -> _Digests:
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)  # Zenodo's checksum, compared, never trusted alone
    size = 0
    for chunk in chunks:
        sha256.update(chunk)
        md5.update(chunk)
        size += len(chunk)
        if spool is not None:
            spool.write(chunk)
    return _Digests(sha256.hexdigest(), md5.hexdigest(), size)


def _stored_digests(artifact: Artifact) -> _Digests:
    with stored_open(artifact.file.storage, str(artifact.file.name)) as handle:
        found = _digests(iter(lambda: handle.read(CHUNK_BYTES), b""))
    if found.sha256 != artifact.sha256:
        raise CatalogError(
            f"{artifact.filename} as stored has sha256 {found.sha256}, not the recorded "
            f"{artifact.sha256}; nothing is deposited",
            code=ErrorCode.CHECKSUM_MISMATCH,
        )
    return found


def _downloaded(client: ZenodoClient, file: RecordFile, spool: IO[bytes] | None = None) -> _Digests:
    """Download a record's file (streamed), checked against Zenodo's own md5 and size: a
    difference is a damaged transfer, worth trying again."""
    found = _digests(client.file_stream(file.content_url), spool)
    if (found.md5, found.size) != (file.md5, file.size):
        raise ZenodoUnavailableError(
            f"the download of {file.key} gave {found.size} bytes with md5 {found.md5}, not the "
            f"{file.size} bytes with md5 {file.md5} that Zenodo lists"
        )
    return found


def _describe_files(record: ZenodoRecord) -> str:
    return "; ".join(f"{f.key} ({f.size} bytes, md5 {f.md5})" for f in record.files) or "no files"


# --- minted ------------------------------------------------------------------------------------


def _deposit_metadata(release: Release, card: Card) -> dict[str, object]:
    """The deposition's metadata, from the card: what Zenodo shows and DataCite registers."""
    namespace, name = release.generative_model.namespace, release.generative_model.name
    page = f"{settings.MEDIGAN_PUBLIC_URL.rstrip('/')}/models/{namespace}/{name}/{release.version}/"
    comment = card.description.comment or ""
    description = (
        (f"<p>{html.escape(comment)}</p>" if comment else "")
        + f"<p>Generative model <code>{html.escape(card.model_id)}</code>, version "
        f"{html.escape(card.version)}: its package as published on the medigan hub "
        f'{html.escape(settings.MEDIGAN_HUB_NAME)}, with its model card at <a href="'
        f'{html.escape(page)}">{html.escape(page)}</a>.</p>'
    )
    selection = card.selection
    keywords = [
        *(selection.modality or []),
        *(selection.organ or []),
        *([selection.type] if selection.type else []),
        *(selection.tags or []),
        "generative model",
        "synthetic medical images",
        "medigan",
    ]
    related: list[dict[str, str]] = [{"identifier": page, "relation": "isDocumentedBy"}]
    related += [{"identifier": doi, "relation": "references"} for doi in card.provenance.dois]
    metadata: dict[str, object] = {
        "upload_type": "software",
        "title": card.title,
        "creators": [
            {"name": author} for author in card.provenance.authors or (settings.MEDIGAN_HUB_NAME,)
        ],
        "description": description,
        "access_right": "open",
        "version": card.version,
        "keywords": list(dict.fromkeys(keyword for keyword in keywords if keyword)),
        "related_identifiers": related,
    }
    licence = card.provenance.licence or card.selection.license
    if licence:
        # Zenodo's licence vocabulary is SPDX ids, lower-cased (cc-by-4.0, mit, apache-2.0).
        metadata["license"] = licence.strip().lower()
    return metadata


def _deposition_for(pin: DoiPin, client: ZenodoClient) -> Deposition:
    """The deposition of this pin, made on first use and kept, so a retried pin continues with
    it (and a publication whose answer was lost is found published). A model whose previous
    release was deposited gets the next version of that deposit (same concept DOI)."""
    if pin.deposition_id:
        return client.deposition_get(pin.deposition_id)
    if selectors.pin_deposit_in_progress(pin):
        raise PinDeferredError(
            f"another version of {pin.release.model_id} is being deposited on Zenodo; this one "
            "follows it"
        )
    previous = selectors.pin_previous_minted(pin)
    if previous is not None:
        draft = client.deposition_new_version(previous.deposition_id)
        # The draft holds a copy of the previous version's files: this version brings its own.
        for inherited in draft.files:
            client.deposition_file_delete(inherited)
        how = f"new version of {previous.doi} (concept {previous.concept_doi or '-'})"
    else:
        draft = client.deposition_create()
        how = "new deposition"
    if not draft.bucket_url:
        raise ZenodoFailedError(
            f"Zenodo's deposition {draft.id} has no bucket link: this instance lacks the files "
            "API the hub uploads with"
        )
    DoiPin.objects.filter(pk=pin.pk).update(deposition_id=draft.id, bucket_url=draft.bucket_url)
    pin.deposition_id, pin.bucket_url = draft.id, draft.bucket_url
    _event(pin.pk, "deposition", f"deposition {draft.id}: {how}")
    return draft


def _pin_minted(pin: DoiPin, client: ZenodoClient) -> _Found:
    reason = mint_unavailable_reason()
    if reason is not None:
        raise CatalogError(
            f"the contributor asked for a minted DOI, but {reason}",
            code=ErrorCode.DOI_MINT_UNAVAILABLE,
        )
    release = pin.release
    package = _stored_package(release)
    local = _stored_digests(package)
    deposition = _deposition_for(pin, client)
    if not deposition.submitted:
        # Streamed from storage as it is uploaded: never the whole package in memory (S3 too).
        with stored_open(package.file.storage, str(package.file.name)) as handle:
            uploaded = client.bucket_upload(
                deposition.bucket_url or pin.bucket_url, package.filename, handle, local.size
            )
        _event(pin.pk, "uploaded", f"{uploaded.key}: {uploaded.size} bytes, md5 {uploaded.md5}")
        card = registry_selectors.release_card(release)
        client.deposition_metadata_set(deposition.id, _deposit_metadata(release, card))
        deposition = client.deposition_publish(deposition.id)
        _event(pin.pk, "published_on_zenodo", f"{deposition.doi} (record {deposition.record_id})")
    # (Else an earlier attempt published it and lost the answer: read what it made.)
    record = client.record_get(deposition.record_id or deposition.id)
    listed = next((f for f in record.files if f.key == package.filename), None)
    if listed is None or (listed.md5, listed.size) != (local.md5, local.size):
        raise CatalogError(
            f"Zenodo's record {record.doi or record.id} does not hold the package as deposited "
            f"({package.filename}, {local.size} bytes, md5 {local.md5}); it holds "
            f"{_describe_files(record)}",
            code=ErrorCode.CHECKSUM_MISMATCH,
        )
    return _Found(record, (_PinnedFileFound(listed, local.sha256, package.pk),), "")


# --- provided ---------------------------------------------------------------------------------


def _pin_provided(pin: DoiPin, client: ZenodoClient) -> _Found:
    doi = pin.requested_doi
    record_id = zenodo_record_id(doi)
    if record_id is None:
        raise CatalogError(
            f"{doi} is not a Zenodo DOI (10.NNNN/zenodo.N); the hub does not resolve other "
            "DOIs through doi.org, so it cannot pin it",
            code=ErrorCode.DOI_UNRESOLVABLE,
        )
    try:
        record = client.record_get(record_id)
    except RecordGoneError as error:
        raise CatalogError(
            f"{doi} names no record on {client.base_url} ({error.message}); a concept DOI "
            "names every version of a record: name the version that holds this package",
            code=ErrorCode.DOI_UNRESOLVABLE,
        ) from error
    package = _stored_package(pin.release)
    # Only a file of the package's size can hold its bytes; the package's own name first.
    candidates = sorted(
        (f for f in record.files if package.size is None or f.size == package.size),
        key=lambda f: f.key != package.filename,
    )
    for candidate in candidates:
        found = _downloaded(client, candidate)
        if found.sha256 == package.sha256:
            note = (
                ""
                if not record.doi or record.doi.lower() == doi.lower()
                else f"{doi} named the record; its version {record.doi} is pinned"
            )
            return _Found(record, (_PinnedFileFound(candidate, found.sha256, package.pk),), note)
    raise CatalogError(
        f"the Zenodo record {record.doi or doi} holds no file with this release's package "
        f"({package.filename}, {package.size} bytes, sha256 {package.sha256}): it holds "
        f"{_describe_files(record)}; nothing was pinned",
        {"doi": doi, "sha256": package.sha256},
        code=ErrorCode.CHECKSUM_MISMATCH,
    )


# --- imported (medigan's catalogue) --------------------------------------------------------------


@dataclass(frozen=True)
class VerifyOutcome:
    """What ``pin_verify`` found for one release."""

    release_id: str
    doi: str
    key: str
    size: int
    md5: str
    sha256: str
    stored: bool


def _record_file_of(record: ZenodoRecord, artifact: Artifact) -> RecordFile:
    """The record's file that holds an imported artifact: the one its URL names, else the one
    of its name, else the record's only file."""
    keys = []
    for url in artifact.external_urls:
        match = _RECORD_URL.match(urlsplit(str(url)).path)
        if match and match["id"] == record.id and match["key"]:
            keys.append(unquote(match["key"]))
    keys.append(artifact.filename)
    for key in keys:
        found = next((f for f in record.files if f.key == key), None)
        if found is not None:
            return found
    if len(record.files) == 1:
        return record.files[0]
    raise CatalogError(
        f"the record {record.doi or record.id} holds no file named {' or '.join(keys)}: it "
        f"holds {_describe_files(record)}",
        code=ErrorCode.CHECKSUM_MISMATCH,
    )


def release_pin_imported(*, release_id: int, store: bool = True) -> VerifyOutcome:
    """Verify an imported release's package against the Zenodo record its DOI names, and pin it.

    The file is downloaded (streamed to a temporary file) and must have Zenodo's md5 and size
    (and the recorded sha256, where one is recorded). Its sha256 and size are recorded on the
    artifact, the bytes stored for clients that cannot reach Zenodo (unless ``store`` is false:
    then they are fetched from the record on first download), and the DOI pinned.
    """
    release = Release.objects.select_related("generative_model").get(pk=release_id)
    record_id = zenodo_record_id(release.doi) if release.doi else None
    if record_id is None:
        raise CatalogError(
            f"{release.release_id} names no Zenodo DOI to verify ({release.doi or 'none'})",
            code=ErrorCode.DOI_UNRESOLVABLE,
        )
    artifact = release.artifacts.filter(role="package").first()
    if artifact is None:
        raise CatalogError(
            f"{release.release_id} records no package", code=ErrorCode.ARTIFACT_UNREACHABLE
        )
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
    with (
        _client() as client,
        tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as spool,
    ):
        record = client.record_get(record_id)
        file = _record_file_of(record, artifact)
        found = _downloaded(client, file, spool)
        if artifact.sha256 and artifact.sha256 != found.sha256:
            raise CatalogError(
                f"{file.key} on {record.doi or release.doi} has sha256 {found.sha256}, not the "
                f"recorded {artifact.sha256}",
                code=ErrorCode.CHECKSUM_MISMATCH,
            )
        registry_services.artifact_checksum_fill(
            artifact_id=artifact.pk, sha256=found.sha256, size=found.size
        )
        stored = bool(artifact.file)
        if store and not stored:
            spool.seek(0)
            registry_services.artifact_store_verified(
                artifact_id=artifact.pk, chunks=iter(lambda: spool.read(CHUNK_BYTES), b"")
            )
            stored = True
    doi = release.doi
    now = timezone.now()
    with transaction.atomic():
        pin, _ = DoiPin.objects.select_for_update().get_or_create(
            release=release,
            defaults={
                "kind": DoiPin.Kind.IMPORTED,
                "requested_doi": doi,
                "zenodo_url": settings.MEDIGAN_ZENODO_URL,
            },
        )
        DoiPin.objects.filter(pk=pin.pk).update(
            status=DoiPin.Status.PINNED,
            doi=doi,
            concept_doi=record.concept_doi,
            record_id=record.id,
            record_url=record.html_url,
            zenodo_url=settings.MEDIGAN_ZENODO_URL,
            pinned_at=now,
            checked_at=now,
            last_error="",
        )
        _files_record(pin.pk, [_PinnedFileFound(file, found.sha256, artifact.pk)])
        _event(
            pin.pk,
            "verified",
            f"{doi}: {file.key} ({found.size} bytes, md5 {found.md5}, sha256 {found.sha256})"
            + ("; stored for clients" if stored else "; fetched from Zenodo on first download"),
        )
        registry_services.release_pin_record(release_id=release.pk, doi=doi)
        registry_services.release_check_record(
            release_id=release.pk,
            name=CHECK_NAME,
            passed=True,
            message=f"DOI {doi} pinned: {file.key} downloaded from Zenodo has its md5 "
            f"{found.md5}; sha256 {found.sha256} recorded",
        )
    return VerifyOutcome(
        release.release_id, doi, file.key, found.size, found.md5, found.sha256, stored
    )


# --- re-checks ------------------------------------------------------------------------------------


def _record_problems(
    client: ZenodoClient, record: ZenodoRecord, pinned: Iterable[PinnedFile], download: bool
) -> list[str]:
    listed = {file.key: file for file in record.files}
    problems = []
    for kept in pinned:
        now = listed.get(kept.key)
        if now is None:
            problems.append(f"{kept.key} is no longer in the record")
        elif (now.md5, now.size) != (kept.md5, kept.size):
            problems.append(
                f"{kept.key} changed: pinned with md5 {kept.md5} ({kept.size} bytes), Zenodo now "
                f"lists md5 {now.md5} ({now.size} bytes)"
            )
        elif download:
            sha256 = _digests(client.file_stream(now.content_url)).sha256
            if sha256 != kept.sha256:
                problems.append(
                    f"{kept.key} changed: its bytes have sha256 {sha256}, pinned {kept.sha256}"
                )
    return problems


def pin_recheck(*, pin_id: int, download: bool | None = None) -> str:
    """Fetch a pinned record again and compare its files with the pin's.

    Returns ``intact``, ``broken`` (a file changed or gone, or the record deleted: the release
    is flagged), ``restored`` (a broken pin found whole again) or ``unreachable`` (Zenodo did
    not answer; nothing changes, the next re-check tries again). ``download`` also compares the
    bytes' sha256 (``MEDIGAN_ZENODO_RECHECK_DOWNLOAD`` unless given).
    """
    pin = DoiPin.objects.select_related("release").get(pk=pin_id)
    if pin.status not in {DoiPin.Status.PINNED, DoiPin.Status.BROKEN}:
        return "skipped"
    download = settings.MEDIGAN_ZENODO_RECHECK_DOWNLOAD if download is None else download
    try:
        with _client(pin.zenodo_url) as client:
            record = client.record_get(pin.record_id)
            problems = _record_problems(client, record, pin.files.all(), download)
    except RecordGoneError as error:
        problems = [f"the record is gone from Zenodo ({error.message})"]
    except (ZenodoUnavailableError, ZenodoFailedError) as error:
        _event(pin.pk, "unreachable", error.message)
        logger.warning("re-check of %s: %s", pin.doi, error.message)
        return "unreachable"
    now = timezone.now()
    with transaction.atomic():
        if problems:
            note = f"the record of {pin.doi} no longer holds this release: " + "; ".join(problems)
            DoiPin.objects.filter(pk=pin.pk).update(status=DoiPin.Status.BROKEN, checked_at=now)
            if pin.status != DoiPin.Status.BROKEN or pin.release.pin_note != note:
                _event(pin.pk, "broken", note)
            registry_services.release_pin_flag_broken(release_id=pin.release_id, note=note)
            return "broken"
        DoiPin.objects.filter(pk=pin.pk).update(status=DoiPin.Status.PINNED, checked_at=now)
        if pin.status == DoiPin.Status.BROKEN:
            _event(pin.pk, "restored", f"the record of {pin.doi} holds the pinned files again")
            registry_services.release_pin_record(release_id=pin.release_id, doi=pin.doi)
            return "restored"
    return "intact"
