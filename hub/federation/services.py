"""Writes of federation: configuring upstreams, syncing them, and fetching mirrored artifacts.

``upstream_sync`` is the mirror. It reads an upstream's change feed from the serial it applied
last, page by page, verifies each page's signature against the keys pinned for the upstream, and
applies the page in one transaction together with the new serial, so a sync that dies half-way
resumes at the last whole page and applying a page twice changes nothing. A page holds at most
``MEDIGAN_MIRROR_PAGE`` changes, and artifacts stream to storage, so memory stays bounded at any
catalogue size.

Applying a change (``_apply_change``):

- an entry that passes the upstream's filters becomes a mirrored release (through the registry's
  ``release_mirror_create``), published or left in review as the upstream's policy says (after
  this hub's own validation in the sandbox first, when the upstream asks for ``revalidate``),
  with its origin recorded and its origin attestation kept; an entry already mirrored must carry the
  same package sha256 (releases are immutable on both sides);
- a deprecated or yanked release becomes so here, with the upstream's notice; a withdrawn one
  becomes withdrawn here, and so does one the upstream's token merely stopped seeing (its
  stored artifacts stay for audit);
- a clash (a local model or namespace of the same name, another upstream's, an attestation that
  does not verify) refuses that entry, records an ``entry_refused`` event, and goes on.

An upstream that fails (unreachable, an error answer, a bad signature) keeps what it had: the
failure is recorded, the next attempt waits longer each time (up to an hour), and a later sync
catches up from where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from hub.accounts.models import Namespace
from hub.federation.filters import ReleaseFilter
from hub.federation.models import MirroredRelease, Upstream, UpstreamEvent
from hub.federation.upstream import (
    FeedGoneError,
    Signed,
    UpstreamClient,
    UpstreamError,
    trusted_keys,
)
from hub.registry import services as registry_services
from hub.registry.models import Artifact, GenerativeModel, Release
from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.lifecycle import ReleaseState, allowed_targets
from medigan_catalog.signing import is_key_id
from medigan_catalog.snapshot import (
    CatalogChange,
    ChangePage,
    SnapshotRelease,
    artifact_path,
    release_key,
)

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS: Final = 3600
_LOCK_SECONDS: Final = 3600


class UpstreamConfigError(CatalogError):
    """An upstream configuration that cannot work (a bad URL, a clashing namespace)."""

    code = ErrorCode.BAD_REQUEST


@dataclass
class SyncReport:
    """What one sync of an upstream did."""

    upstream: str
    ok: bool = True
    pages: int = 0
    mirrored: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    serial: int = 0
    latest: int = 0
    error: str = ""
    skipped: str = ""


# --- configuration -------------------------------------------------------------------------


def _clean_list(values: Sequence[str]) -> list[str]:
    return sorted({value.strip() for value in values if value.strip()})


def upstream_add(
    *,
    name: str,
    url: str,
    token: str = "",
    pinned_keys: Sequence[str] = (),
    namespaces: Sequence[str] = (),
    modalities: Sequence[str] = (),
    licences: Sequence[str] = (),
    model_ids: Sequence[str] = (),
    mode: str = Upstream.Mode.METADATA,
    policy: str = Upstream.Policy.PUBLISH,
    revalidate: bool = False,
    interval_seconds: int = 300,
) -> Upstream:
    """Configure an upstream hub to mirror.

    The namespaces of its filter are marked as carried by it at once, so the shadowing guard
    holds before the first sync: a local namespace of that name that already holds releases is
    refused (an operator decides first whether it tracks the upstream).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise UpstreamConfigError(f"an upstream URL is http(s)://host[:port][/path], not {url!r}")
    for key in pinned_keys:
        if not is_key_id(key):
            raise UpstreamConfigError(f"{key!r} is not a key id (ed25519:<32 hex digits>)")
    if mode not in Upstream.Mode.values or policy not in Upstream.Policy.values:
        raise UpstreamConfigError(f"unknown mode {mode!r} or policy {policy!r}")
    with transaction.atomic():
        if Upstream.objects.filter(name=name).exists():
            raise UpstreamConfigError(f"an upstream named {name!r} exists already")
        upstream = Upstream.objects.create(
            name=name,
            url=url.rstrip("/"),
            token=token,
            pinned_keys=_clean_list(pinned_keys),
            namespaces=_clean_list(namespaces),
            modalities=_clean_list(modalities),
            licences=_clean_list(licences),
            model_ids=_clean_list(model_ids),
            mode=mode,
            policy=policy,
            revalidate=revalidate,
            interval_seconds=interval_seconds,
        )
        for namespace in upstream.namespaces:
            problem = _namespace_claim(upstream, namespace)
            if problem:
                raise UpstreamConfigError(problem, {"namespace": namespace})
    return upstream


def _namespace_claim(upstream: Upstream, name: str) -> str:
    """Mark a namespace as carried by ``upstream``; say why not when another owns it."""
    namespace = Namespace.objects.filter(name=name).first()
    if namespace is not None and namespace.mirrored_from == upstream.name:
        return ""
    if namespace is not None and namespace.mirrored_from:
        return (
            f"the namespace {name!r} is mirrored from the upstream {namespace.mirrored_from!r} "
            f"already; it cannot also come from {upstream.name!r}"
        )
    local_models = GenerativeModel.objects.filter(namespace=name).exclude(
        mirrored_from=upstream.name
    )
    if local_models.exists():
        return (
            f"the namespace {name!r} holds local models; a mirrored release there could be "
            "confused with them. An operator may declare that it tracks the upstream (admin: "
            "Namespaces, mirrored from + tracks upstream)"
        )
    if namespace is None:
        Namespace.objects.create(name=name, mirrored_from=upstream.name)
    else:
        namespace.mirrored_from = upstream.name
        namespace.save(update_fields=["mirrored_from"])
    return ""


# --- the sync ------------------------------------------------------------------------------


def _client(upstream: Upstream) -> UpstreamClient:
    return UpstreamClient(
        url=upstream.url,
        token=upstream.token,
        name=upstream.name,
        keys=trusted_keys(upstream.public_keys),
    )


def record_event(upstream: Upstream, kind: str, message: str, serial: int | None = None) -> None:
    """Audit something that happened to an upstream (an ``UpstreamEvent``)."""
    UpstreamEvent.objects.create(upstream=upstream, kind=kind, message=message, serial=serial)


def _learn_keys(upstream: Upstream, client: UpstreamClient, *, rotation: bool) -> None:
    """Pin the upstream's key set (first use, or checked against the configured ids), or follow
    a rotation that a key already pinned vouches for."""
    key_set = client.key_set(pinned=upstream.pinned_keys)
    listed = {key.key_id: key.public_key for key in key_set.keys}
    before = set(upstream.public_keys)
    upstream.public_keys = listed
    upstream.hub_name = key_set.hub
    upstream.save(update_fields=["public_keys", "hub_name"])
    client.keys = trusted_keys(listed)
    added, dropped = sorted(set(listed) - before), sorted(before - set(listed))
    if rotation:
        record_event(upstream, "key_rotated", f"keys added {added}, retired {dropped}")
    else:
        record_event(upstream, "key_pinned", f"pinned {sorted(listed)} of hub {key_set.hub!r}")


def upstream_keys_forget(*, upstream_id: int, actor: str) -> None:
    """Drop the keys learned for an upstream, after its key changed outside a rotation overlap.

    The next sync pins the upstream's key set again: against the configured key ids when the
    upstream has any (set the new id first, confirmed out of band), on first use otherwise.
    """
    with transaction.atomic():
        upstream = Upstream.objects.select_for_update().get(pk=upstream_id)
        dropped = sorted(upstream.public_keys)
        upstream.public_keys = {}
        upstream.save(update_fields=["public_keys"])
        record_event(upstream, "keys_forgotten", f"{actor} dropped the stored keys {dropped}")


def _wanted(upstream: Upstream, entry: SnapshotRelease) -> bool:
    return ReleaseFilter.of(
        namespaces=upstream.namespaces,
        model_ids=upstream.model_ids,
        modalities=upstream.modalities,
        licences=upstream.licences,
    ).takes(entry)


def _refuse(upstream: Upstream, report: SyncReport, key: str, why: str, serial: int) -> None:
    report.refused.append(f"{key}: {why}")
    record_event(upstream, "entry_refused", f"{key}: {why}", serial)
    logger.warning("upstream %s: refused %s: %s", upstream.name, key, why)


def _origin_keys(upstream: Upstream, hub_name: str) -> dict[str, bytes] | None:
    """The keys this hub knows for the hub named ``hub_name`` (an upstream's), or None."""
    if hub_name == upstream.hub_name:
        return trusted_keys(upstream.public_keys)
    other = Upstream.objects.filter(hub_name=hub_name).exclude(pk=upstream.pk).first()
    return trusted_keys(other.public_keys) if other is not None else None


def _entry_problem(upstream: Upstream, entry: SnapshotRelease) -> str:
    """Why an entry of ``upstream`` may not be mirrored here, or ""."""
    attestation = entry.attestation
    if attestation is not None:
        card_artifacts = {a.filename: a.sha256 for a in entry.card.artifacts}
        if (attestation.model_id, attestation.version) != (entry.model_id, entry.version):
            return "its attestation names another release"
        if attestation.artifacts != card_artifacts:
            return "its card's artifacts differ from what its origin attested"
        keys = _origin_keys(upstream, attestation.hub)
        if keys is not None and not attestation.verify(keys):
            return f"its attestation by {attestation.hub} does not verify"
    namespace = Namespace.objects.filter(name=entry.card.namespace).first()
    if namespace is not None and namespace.mirrored_from != upstream.name:
        if namespace.mirrored_from:
            return f"the namespace is mirrored from the upstream {namespace.mirrored_from!r}"
        return "the namespace is a local one of this hub"
    model = GenerativeModel.objects.filter(
        namespace=entry.card.namespace, name=entry.card.name
    ).first()
    if model is not None and model.mirrored_from != upstream.name:
        return "a model of that id exists here and is not this upstream's"
    return ""


def _mirror_entry(
    upstream: Upstream, entry: SnapshotRelease, serial: int, report: SyncReport
) -> None:
    key = release_key(entry.model_id, entry.version)
    if not _wanted(upstream, entry):
        return
    problem = _entry_problem(upstream, entry)
    if problem:
        _refuse(upstream, report, key, problem, serial)
        return
    _namespace_claim(upstream, entry.card.namespace)
    existing = (
        Release.objects.filter(
            generative_model__namespace=entry.card.namespace,
            generative_model__name=entry.card.name,
            version=entry.version,
        )
        .select_related("generative_model")
        .first()
    )
    origin = entry.origin
    package = next((a for a in entry.card.artifacts if a.role == "package"), None)
    sha256 = (origin.sha256 if origin is not None else None) or (
        package.sha256 if package is not None else None
    )
    if existing is not None:
        if existing.origin_sha256 and sha256 and existing.origin_sha256 != sha256:
            _refuse(
                upstream,
                report,
                key,
                f"the upstream changed an immutable release (sha256 {existing.origin_sha256} "
                f"here, {sha256} there)",
                serial,
            )
        else:
            if existing.generative_model.visibility != entry.visibility.value:
                registry_services.model_visibility_follow(
                    model_id=existing.generative_model_id,
                    visibility=entry.visibility,
                    upstream=upstream.name,
                )
            _follow_state(existing, entry, report)
        return
    release = registry_services.release_mirror_create(
        card=entry.card,
        visibility=entry.visibility,
        origin=registry_services.MirroredOrigin(
            upstream=upstream.name,
            # A chain of mirrors keeps the first origin: that is whose release it is.
            hub=origin.hub if origin is not None else upstream.hub_name or upstream.name,
            url=origin.url if origin is not None else upstream.url,
            release_id=origin.release_id if origin is not None else key,
            serial=origin.serial if origin is not None else serial,
            sha256=sha256 or "",
            attestation=(
                entry.attestation.model_dump(mode="json") if entry.attestation is not None else {}
            ),
        ),
        publish=upstream.policy == Upstream.Policy.PUBLISH,
        revalidate=upstream.revalidate,
    )
    MirroredRelease.objects.create(upstream=upstream, release=release)
    report.mirrored.append(key)
    _follow_state(release, entry, report)


def _follow_state(release: Release, entry: SnapshotRelease, report: SyncReport) -> None:
    """Deprecate or yank the mirrored copy as the upstream did, with the upstream's notice.

    Only a copy published here follows (one still in local review follows at a later change),
    and only forward: the lifecycle has no way back from deprecated or yanked.
    """
    target = ReleaseState(entry.state)
    current = ReleaseState(release.state)
    if target is current or target not in allowed_targets(current):
        return
    notice = entry.notice
    reason = notice.reason if notice is not None else "no reason given"
    registry_services.release_transition(
        release_id=release.pk,
        target=target,
        note=reason,
        replacement_model_id=(notice.replacement or "") if notice is not None else "",
    )
    report.retired.append(f"{release_key(entry.model_id, entry.version)}: {target.value}")


# Why a release left an upstream's feed: withdrawn (or, from hubs that took deprecated
# releases out of their catalogue, deprecated); a release that merely left the token's sight is
# withdrawn here, since it can no longer be served from there.
_RETIRE_TARGETS: Final = {
    ReleaseState.DEPRECATED.value: ReleaseState.DEPRECATED,
    ReleaseState.YANKED.value: ReleaseState.YANKED,
    ReleaseState.WITHDRAWN.value: ReleaseState.WITHDRAWN,
}


def _retire(
    upstream: Upstream, key: str, state: str | None, serial: int, report: SyncReport
) -> None:
    mirror = (
        MirroredRelease.objects.filter(upstream=upstream, release__origin_release_id=key)
        .select_related("release")
        .first()
    )
    if mirror is None:
        model_id, _, version = key.rpartition("@")
        namespace, _, name = model_id.partition("/")
        mirror = (
            MirroredRelease.objects.filter(
                upstream=upstream,
                release__generative_model__namespace=namespace,
                release__generative_model__name=name,
                release__version=version,
            )
            .select_related("release")
            .first()
        )
    if mirror is None:
        return
    release = mirror.release
    # A release the upstream's token no longer sees cannot be served from it any more.
    target = _RETIRE_TARGETS.get(state or "", ReleaseState.WITHDRAWN)
    current = ReleaseState(release.state)
    if current == target or current in (ReleaseState.WITHDRAWN, ReleaseState.REJECTED):
        return
    if target not in allowed_targets(current):
        target = ReleaseState.WITHDRAWN
    note = (
        f"{state or 'no longer visible to this hub'} on the upstream {upstream.name} "
        f"(serial {serial})"
    )
    registry_services.release_transition(release_id=release.pk, target=target, note=note)
    report.retired.append(f"{key}: {target.value}")


def apply_change(upstream: Upstream, change: CatalogChange, report: SyncReport) -> None:
    """Apply one verified change of ``upstream``: retire what it removed, mirror its entries."""
    for removed in change.removed:
        _retire(upstream, removed, change.removed_states.get(removed), change.serial, report)
    for entry in change.releases:
        _mirror_entry(upstream, entry, change.serial, report)


def _apply_page(upstream: Upstream, page: ChangePage, report: SyncReport) -> None:
    """Apply one verified page and record its serial, all in one transaction."""
    with transaction.atomic():
        locked = Upstream.objects.select_for_update().get(pk=upstream.pk)
        if locked.serial != page.since:
            # Another sync applied this page already (or a newer one): nothing to do twice.
            return
        for change in page.changes:
            apply_change(upstream, change, report)
        Upstream.objects.filter(pk=upstream.pk).update(
            serial=page.serial, latest_serial=page.latest, scope=page.scope or ""
        )
    upstream.serial, upstream.latest_serial, upstream.scope = (
        page.serial,
        page.latest,
        page.scope or "",
    )


def _apply_snapshot(upstream: Upstream, client: UpstreamClient, report: SyncReport) -> None:
    """Catch up from the upstream's whole snapshot (its feed does not reach back, or the
    token's scope changed): add what is new, and deprecate what it no longer lists."""
    snapshot, signed = client.snapshot()
    _follow_rotation(upstream, client, signed)
    listed = {release_key(entry.model_id, entry.version) for entry in snapshot.releases}
    with transaction.atomic():
        for entry in snapshot.releases:
            _mirror_entry(upstream, entry, snapshot.serial, report)
        gone = MirroredRelease.objects.filter(
            upstream=upstream,
            release__state__in=[ReleaseState.PUBLISHED.value, ReleaseState.DEPRECATED.value],
        ).select_related("release__generative_model")
        for mirror in gone:
            key = release_key(mirror.release.model_id, mirror.release.version)
            if key not in listed:
                # The snapshot does not say why it left; yanking keeps it reachable by exact
                # version and out of "newest", the cautious reading.
                _retire(upstream, key, ReleaseState.YANKED.value, snapshot.serial, report)
        Upstream.objects.filter(pk=upstream.pk).update(
            serial=snapshot.serial, latest_serial=snapshot.serial, scope=snapshot.scope or ""
        )
    upstream.serial = upstream.latest_serial = snapshot.serial
    upstream.scope = snapshot.scope or ""


def _follow_rotation(upstream: Upstream, client: UpstreamClient, signed: Signed) -> None:
    if signed.unknown_keys:
        _learn_keys(upstream, client, rotation=True)


def _fetch_artifacts(upstream: Upstream, report: SyncReport) -> None:
    """``full`` mode: store every artifact of this upstream's mirrored releases not held yet."""
    missing = Artifact.objects.filter(
        release__mirror__upstream=upstream,
        file="",
        release__state__in=[ReleaseState.PUBLISHED.value, ReleaseState.IN_REVIEW.value],
    ).values_list("pk", flat=True)
    for artifact_id in list(missing):
        artifact = registry_services.artifact_materialise(artifact_id=artifact_id)
        report.fetched.append(f"{artifact.release}/{artifact.filename}")


def _sync_pages(upstream: Upstream, report: SyncReport, max_pages: int | None) -> None:
    with _client(upstream) as client:
        if not upstream.public_keys:
            _learn_keys(upstream, client, rotation=False)
        while max_pages is None or report.pages < max_pages:
            try:
                page, signed = client.changes(upstream.serial, settings.MEDIGAN_MIRROR_PAGE)
            except FeedGoneError:
                _apply_snapshot(upstream, client, report)
                report.pages += 1
                continue
            _follow_rotation(upstream, client, signed)
            if upstream.scope and page.scope and page.scope != upstream.scope:
                # Another viewer's catalogue (a new token, new memberships there): the pages
                # from our serial are not ours to apply. Take the snapshot of the new scope.
                _apply_snapshot(upstream, client, report)
                report.pages += 1
                continue
            _apply_page(upstream, page, report)
            report.pages += 1
            if upstream.mode == Upstream.Mode.FULL:
                _fetch_artifacts(upstream, report)
            if not page.more:
                break
        if upstream.mode == Upstream.Mode.FULL:
            _fetch_artifacts(upstream, report)


def _backoff(upstream: Upstream) -> timedelta:
    seconds = min(MAX_BACKOFF_SECONDS, upstream.interval_seconds * 2 ** min(upstream.failures, 12))
    return timedelta(seconds=seconds)


def upstream_sync(*, upstream_id: int, max_pages: int | None = None) -> SyncReport:
    """Bring the mirror of one upstream up to the upstream's serial (or ``max_pages`` pages).

    One sync of an upstream runs at a time (a cache lock); a second returns at once. Failures
    are recorded on the upstream and never undo what earlier pages applied.
    """
    upstream = Upstream.objects.get(pk=upstream_id)
    report = SyncReport(upstream=upstream.name, serial=upstream.serial)
    lock = f"federation:sync:{upstream.pk}"
    if not cache.add(lock, "1", _LOCK_SECONDS):
        report.skipped = "another sync of this upstream is running"
        return report
    try:
        upstream.last_attempt_at = timezone.now()
        upstream.save(update_fields=["last_attempt_at"])
        try:
            _sync_pages(upstream, report, max_pages)
        except (UpstreamError, CatalogError) as error:
            upstream.refresh_from_db()
            upstream.failures += 1
            upstream.last_error = str(error)
            upstream.last_error_at = timezone.now()
            upstream.next_attempt_at = upstream.last_error_at + _backoff(upstream)
            upstream.save(
                update_fields=["failures", "last_error", "last_error_at", "next_attempt_at"]
            )
            record_event(upstream, "sync_failed", str(error), upstream.serial)
            logger.warning("upstream %s: sync failed: %s", upstream.name, error)
            report.ok, report.error = False, str(error)
        else:
            upstream.refresh_from_db()
            upstream.failures = 0
            upstream.last_success_at = timezone.now()
            upstream.next_attempt_at = upstream.last_success_at + timedelta(
                seconds=upstream.interval_seconds
            )
            upstream.save(update_fields=["failures", "last_success_at", "next_attempt_at"])
    finally:
        cache.delete(lock)
    report.serial, report.latest = upstream.serial, upstream.latest_serial
    return report


def upstreams_due(now: datetime | None = None) -> list[int]:
    """Ids of the enabled upstreams whose next sync is due."""
    moment = timezone.now() if now is None else now
    return [
        upstream.pk
        for upstream in Upstream.objects.filter(enabled=True)
        if upstream.next_attempt_at is None or upstream.next_attempt_at <= moment
    ]


def mirrored_release_validated(release: Release) -> None:
    """Publish a revalidated mirrored release that passed, when its upstream's policy says so.

    Registered with the registry, which calls it once this hub's own checks passed and the
    release is ``in_review``; under the ``review`` policy it stays there for local reviewers.
    """
    mirror = MirroredRelease.objects.filter(release=release).select_related("upstream").first()
    if mirror is None or mirror.upstream.policy != Upstream.Policy.PUBLISH:
        return
    note = (
        f"passed this hub's validation; the upstream {mirror.upstream.name}'s policy "
        "publishes mirrored releases directly"
    )
    for target in (ReleaseState.APPROVED, ReleaseState.PUBLISHED):
        registry_services.release_transition(release_id=release.pk, target=target, note=note)


# --- artifacts of mirrored releases ----------------------------------------------------------


def mirrored_artifact_fetch(artifact: Artifact) -> Iterator[bytes] | None:
    """The bytes of a mirrored release's artifact, from its upstream; None for other artifacts.

    Registered with the registry, which verifies the sha256 and stores them.
    """
    mirror = (
        MirroredRelease.objects.filter(release_id=artifact.release_id)
        .select_related("upstream", "release__generative_model")
        .first()
    )
    if mirror is None:
        return None
    upstream = mirror.upstream
    release = mirror.release
    path = artifact_path(release.model_id, release.version, artifact.filename)
    client = _client(upstream)

    def chunks() -> Iterator[bytes]:
        try:
            yield from client.stream(path)
        finally:
            client.close()

    return chunks()
