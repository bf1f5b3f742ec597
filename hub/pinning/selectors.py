"""Reads of DOI pinning: which DOI an approved release is to pin, the pins to re-check, and the
pin as the snapshot, the model page and the download path see it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from hub.pinning.models import DoiPin, PinnedFile
from hub.registry.models import Release
from medigan_catalog.lifecycle import CATALOGUE_STATES, ReleaseState
from medigan_catalog.schema import card_from_json
from medigan_catalog.snapshot import ReleasePin

_ZENODO_DOI = re.compile(r"^10\.\d{4,9}/zenodo\.\d+$", re.IGNORECASE)
_CATALOGUE = [state.value for state in CATALOGUE_STATES]


@dataclass(frozen=True)
class PinPlan:
    """What an approved release is to pin: a DOI the hub deposits, or one it was given."""

    kind: DoiPin.Kind
    doi: str = ""

    def describe(self) -> str:
        if self.kind == DoiPin.Kind.MINTED:
            return "the hub deposits the package on Zenodo and pins the DOI it gets"
        return f"the hub checks that {self.doi} holds the package and pins it"


def release_pin_plan(release: Release) -> PinPlan | None:
    """The pin an approved release needs before it is published, or None.

    A DOI the push named, else a Zenodo DOI in the card's ``provenance.dois``, is checked and
    pinned (unless ``MEDIGAN_ZENODO_PIN_PROVIDED`` is off: then it stays recorded, unpinned).
    Without one, the hub deposits the package when its contributor asked for it or the hub's
    policy is ``always``; a contributor's request is never dropped, even where the hub has since
    stopped depositing (the pin then fails and says so, and the release is not published).
    """
    if release.pinned:
        return None
    provided = release.doi or next(
        (doi for doi in card_from_json(release.card).provenance.dois if _ZENODO_DOI.fullmatch(doi)),
        "",
    )
    if provided:
        if not settings.MEDIGAN_ZENODO_PIN_PROVIDED:
            return None
        return PinPlan(DoiPin.Kind.PROVIDED, provided)
    if release.doi_mint_requested or settings.MEDIGAN_ZENODO_MINT == "always":
        return PinPlan(DoiPin.Kind.MINTED)
    return None


def pin_previous_minted(pin: DoiPin) -> DoiPin | None:
    """The newest deposit this hub made of another release of the same model on the same Zenodo
    instance: a new release becomes its next version."""
    return (
        DoiPin.objects.filter(
            kind=DoiPin.Kind.MINTED,
            status__in=[DoiPin.Status.PINNED, DoiPin.Status.BROKEN],
            release__generative_model_id=pin.release.generative_model_id,
            zenodo_url=pin.zenodo_url,
        )
        .exclude(pk=pin.pk)
        .exclude(deposition_id="")
        .order_by("-pinned_at", "-pk")
        .first()
    )


def pin_deposit_in_progress(pin: DoiPin) -> bool:
    """Whether another release of the same model has a deposition on Zenodo that is not
    published yet (Zenodo keeps one draft of a new version at a time)."""
    return (
        DoiPin.objects.filter(
            kind=DoiPin.Kind.MINTED,
            status=DoiPin.Status.PENDING,
            release__generative_model_id=pin.release.generative_model_id,
            zenodo_url=pin.zenodo_url,
        )
        .exclude(pk=pin.pk)
        .exclude(deposition_id="")
        .exists()
    )


def pins_recheck_due(now: datetime) -> list[int]:
    """The pins whose last check is older than ``MEDIGAN_ZENODO_RECHECK_SECONDS`` at ``now``."""
    return pins_checked_before(now - timedelta(seconds=settings.MEDIGAN_ZENODO_RECHECK_SECONDS))


def pin_retry_countdown(release_id: int, now: datetime) -> float:
    """Seconds from ``now`` until the next attempt of a release's pin is due (0: due now), as
    its last failed attempt recorded."""
    due = DoiPin.objects.filter(release_id=release_id).values_list("task_due_at", flat=True).first()
    return max(0.0, (due - now).total_seconds()) if due is not None else 0.0


def pins_lost(now: datetime, *, claim_stale: timedelta) -> QuerySet[DoiPin]:
    """The pending pins that wait for a task that is not coming.

    A pin of an approved release is lost when its task was due more than
    ``MEDIGAN_ZENODO_PIN_LOST_SECONDS`` before ``now`` (its message dropped with a killed worker
    or never queued) and no task holds it, or the one that did has held it longer than
    ``claim_stale`` (its worker died in the middle of the pin).
    """
    cutoff = now - timedelta(seconds=settings.MEDIGAN_ZENODO_PIN_LOST_SECONDS)
    return (
        DoiPin.objects.filter(status=DoiPin.Status.PENDING, release__state=ReleaseState.APPROVED)
        .filter(Q(task_due_at__lt=cutoff) | Q(task_due_at__isnull=True, created_at__lt=cutoff))
        .filter(Q(running_since__isnull=True) | Q(running_since__lt=now - claim_stale))
        .order_by("pk")
    )


def pins_checked_before(cutoff: datetime) -> list[int]:
    """The pinned (or broken) pins last checked before ``cutoff``, or never."""
    return list(
        DoiPin.objects.filter(status__in=[DoiPin.Status.PINNED, DoiPin.Status.BROKEN])
        .filter(Q(checked_at__isnull=True) | Q(checked_at__lt=cutoff))
        .order_by("checked_at", "pk")
        .values_list("pk", flat=True)
    )


def pins_all_kept() -> list[int]:
    """Every pinned (or broken) pin, oldest check first."""
    return list(
        DoiPin.objects.filter(status__in=[DoiPin.Status.PINNED, DoiPin.Status.BROKEN])
        .order_by("checked_at", "pk")
        .values_list("pk", flat=True)
    )


def pinned_file_of_artifact(artifact_id: int) -> PinnedFile | None:
    """The pinned record's file that holds an artifact, where the hub pinned one."""
    return (
        PinnedFile.objects.select_related("pin")
        .filter(
            artifact_id=artifact_id,
            pin__status__in=[DoiPin.Status.PINNED, DoiPin.Status.BROKEN],
        )
        .first()
    )


def releases_with_unverified_dois(
    *, namespace: str | None = None, include_pinned: bool = False
) -> list[Release]:
    """Catalogue releases that name a DOI the hub has not verified (medigan's imports), or,
    with ``include_pinned``, every catalogue release with a DOI."""
    releases = Release.objects.filter(state__in=_CATALOGUE).exclude(doi="")
    if namespace is not None:
        releases = releases.filter(generative_model__namespace=namespace)
    if not include_pinned:
        releases = releases.filter(pinned=False)
    return list(
        releases.select_related("generative_model").order_by(
            "generative_model__namespace", "generative_model__name", "pk"
        )
    )


def release_pins_wire(releases: Iterable[Release]) -> dict[int, ReleasePin]:
    """The snapshot's ``pin`` of each pinned release among ``releases`` (one query)."""
    pinned = {release.pk: release for release in releases if release.pinned and release.doi}
    if not pinned:
        return {}
    rows: dict[int, tuple[str, datetime | None]] = {
        release_id: (concept_doi, checked_at)
        for release_id, concept_doi, checked_at in DoiPin.objects.filter(
            release_id__in=list(pinned)
        ).values_list("release_id", "concept_doi", "checked_at")
    }
    pins = {}
    for release_id, release in pinned.items():
        concept_doi, checked_at = rows.get(release_id, ("", None))
        pins[release_id] = ReleasePin(
            doi=release.doi,
            concept_doi=concept_doi or None,
            broken=release.pin_broken,
            note=release.pin_note or None,
            checked_at=checked_at,
        )
    return pins


@dataclass(frozen=True)
class PinSummary:
    """A release's DOI as its model page shows it."""

    doi: str
    pinned: bool
    broken: bool
    note: str
    concept_doi: str
    record_url: str
    checked_at: datetime | None
    kind: str


def release_pin_summary(release: Release) -> PinSummary | None:
    """The release's DOI, whether it is pinned and whether its pin broke; None without a DOI."""
    if not release.doi:
        return None
    pin = DoiPin.objects.filter(release_id=release.pk).first()
    return PinSummary(
        doi=release.doi,
        pinned=release.pinned,
        broken=release.pin_broken,
        note=release.pin_note,
        concept_doi=pin.concept_doi if pin is not None else "",
        record_url=pin.record_url if pin is not None else "",
        checked_at=pin.checked_at if pin is not None else None,
        kind=pin.get_kind_display() if pin is not None else "",
    )


def release_get_by_ref(ref: str) -> Release | None:
    """The release ``namespace/name@version`` names (an operator's command line), or None."""
    model_id, _, version = ref.rpartition("@")
    namespace, _, name = model_id.partition("/")
    return (
        Release.objects.select_related("generative_model")
        .filter(generative_model__namespace=namespace, generative_model__name=name, version=version)
        .first()
    )
