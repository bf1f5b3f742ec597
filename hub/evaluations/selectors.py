"""Reads on evaluations: which reference sets fit a release, leaderboards, snapshot summaries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import F, QuerySet

from hub.evaluations.models import Evaluation, ReferenceSet
from medigan_catalog.lifecycle import ReleaseState

# The metrics a leaderboard can be sorted by, and whether larger is better.
METRICS: Mapping[str, bool] = {
    "fid_rs": False,
    "fid_rr_mean": False,
    "r_fid": True,
    "kid_mean": False,
    "precision": True,
    "recall": True,
}


def _card_words(card: Mapping[str, Any]) -> list[str]:
    selection = card.get("selection") or {}
    words: list[str] = []
    for key in ("modality", "organ", "tags"):
        value = selection.get(key)
        values = value if isinstance(value, list) else [value]
        words.extend(str(item).lower() for item in values if item)
    return words


def reference_sets_matching(*, card: Mapping[str, Any]) -> list[ReferenceSet]:
    """Reference sets whose every group of match terms appears in the card's modality/organ/tags.

    ``match_terms`` is a list of groups of alternatives, e.g. ``[["chest", "thorax"], ["x-ray",
    "radiograph"]]``: a chest X-ray model matches, an X-ray mammography model does not.
    """
    words = _card_words(card)
    return [
        reference_set
        for reference_set in ReferenceSet.objects.all()
        if reference_set.match_terms
        and all(
            any(term in word for term in group for word in words)
            for group in reference_set.match_terms
        )
    ]


def extractor_weights_path(extractor_id: str) -> Path | None:
    """The configured weights file of an extractor, or None for one that ships its weights."""
    configured = {
        "inception-v3-fid": settings.MEDIGAN_INCEPTION_WEIGHTS,
        "radimagenet-inception": settings.MEDIGAN_RADIMAGENET_WEIGHTS,
    }.get(extractor_id)
    return Path(configured) if configured else None


def extractors_available() -> list[str]:
    """Extractors this hub can run: the project's own always, the inceptions when configured."""
    available = ["medical-cnn"]
    for extractor_id in ("inception-v3-fid", "radimagenet-inception"):
        path = extractor_weights_path(extractor_id)
        if path is not None and path.is_file():
            available.append(extractor_id)
    return available


def evaluations_succeeded() -> QuerySet[Evaluation]:
    """Finished evaluations of published releases, newest first."""
    return (
        Evaluation.objects.filter(
            status=Evaluation.Status.SUCCEEDED, release__state=ReleaseState.PUBLISHED.value
        )
        .select_related("release__generative_model", "reference_set")
        .order_by("-finished_at")
    )


def evaluation_summary(evaluation: Evaluation) -> dict[str, Any]:
    """The figures of one evaluation as clients and the leaderboard show them."""
    provenance = evaluation.provenance or {}
    return {
        "reference": evaluation.reference_set.slug,
        "reference_split": evaluation.reference_set.split,
        "extractor": evaluation.extractor_id,
        "comparable_with_published": evaluation.comparable_with_published,
        "fid_rs": evaluation.fid_rs,
        "fid_rr_mean": evaluation.fid_rr_mean,
        "fid_rr_std": evaluation.fid_rr_std,
        "r_fid": evaluation.r_fid,
        "kid_mean": evaluation.kid_mean,
        "kid_std": evaluation.kid_std,
        "precision": evaluation.precision,
        "recall": evaluation.recall,
        "num_samples": evaluation.num_samples,
        "seed": evaluation.seed,
        "preprocess": evaluation.preprocess,
        "extractor_weights_sha256": provenance.get("extractor_weights_sha256"),
        "reference_sha256": provenance.get("reference_sha256"),
        "num_reference": provenance.get("num_reference"),
        "software": provenance.get("software"),
        "finished_at": evaluation.finished_at.isoformat() if evaluation.finished_at else None,
    }


def evaluation_summaries_by_release(release_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """Each release's newest finished evaluation per reference, extractor and preprocessing."""
    summaries: dict[int, list[dict[str, Any]]] = {}
    seen: set[tuple[int, int, str, str]] = set()
    for evaluation in evaluations_succeeded().filter(release_id__in=list(release_ids)):
        key = (
            evaluation.release_id,
            evaluation.reference_set_id,
            evaluation.extractor_id,
            evaluation.preprocess_key,
        )
        if key in seen:
            continue
        seen.add(key)
        summaries.setdefault(evaluation.release_id, []).append(evaluation_summary(evaluation))
    return summaries


def leaderboard(
    *,
    reference: str | None = None,
    extractor: str | None = None,
    sort: str = "fid_rs",
    descending: bool | None = None,
) -> list[dict[str, Any]]:
    """Rows of the leaderboard: one per release, reference set, extractor and preprocessing.

    Sorted by ``sort`` (see ``METRICS``) in its natural direction unless told otherwise; rows
    without the metric come last.
    """
    if sort not in METRICS:
        raise ValueError(f"sort must be one of {', '.join(METRICS)}, not {sort!r}")
    queryset = evaluations_succeeded()
    if reference:
        queryset = queryset.filter(reference_set__slug=reference)
    if extractor:
        queryset = queryset.filter(extractor_id=extractor)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[int, int, str, str]] = set()
    for evaluation in queryset.annotate(model_namespace=F("release__generative_model__namespace")):
        key = (
            evaluation.release_id,
            evaluation.reference_set_id,
            evaluation.extractor_id,
            evaluation.preprocess_key,
        )
        if key in seen:
            continue
        seen.add(key)
        card = evaluation.release.card
        rows.append(
            {
                "model_id": evaluation.release.model_id,
                "version": evaluation.release.version,
                "title": (card.get("description") or {}).get("title")
                or evaluation.release.model_id,
                "modality": ((card.get("selection") or {}).get("modality") or ["?"])[0],
                **evaluation_summary(evaluation),
            }
        )
    larger_is_better = METRICS[sort] if descending is None else descending
    present = [row for row in rows if row[sort] is not None]
    missing = [row for row in rows if row[sort] is None]
    present.sort(key=lambda row: float(row[sort]), reverse=larger_is_better)
    return present + missing


def reference_set_list() -> QuerySet[ReferenceSet]:
    """Every reference set, by slug."""
    return ReferenceSet.objects.order_by("slug")
