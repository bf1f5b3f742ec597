"""Reads on evaluations: which reference sets fit a release, leaderboards, snapshot summaries.

Summaries and leaderboard rows are the wire format's own models
(``medigan_catalog.snapshot.EvaluationSummary`` and ``LeaderboardRow``); the metrics a
leaderboard sorts by, and their directions, are its ``METRICS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.db.models import QuerySet

from evaluation.references import reference_set_fits, selection_words
from hub.access import Viewer, model_visible_to
from hub.evaluations.models import Evaluation, ReferenceSet
from medigan_catalog.lifecycle import CATALOGUE_STATES, ReleaseState
from medigan_catalog.schema import card_from_json
from medigan_catalog.snapshot import EvaluationSummary, LeaderboardRow, metric_named

if TYPE_CHECKING:
    # Only for annotations: the registry's releases are reached through the evaluation's foreign
    # key, never imported (the import-linter independence contract).
    from hub.registry.models import Release

_CATALOGUE = sorted(state.value for state in CATALOGUE_STATES)


def reference_sets_matching(*, card: Mapping[str, Any]) -> list[ReferenceSet]:
    """Reference sets that fit the card's selection modality/organ/tags.

    The rule is ``evaluation.references.reference_set_fits``, the one the zoo's table uses: every
    group of a set's ``match_terms`` needs a term inside one of the card's words, e.g. ``[["chest",
    "thorax"], ["x-ray", "radiograph"]]`` fits a chest X-ray model, not an X-ray mammography one.
    """
    words = _card_words(card)
    return [
        reference_set
        for reference_set in ReferenceSet.objects.all()
        if reference_set_fits(reference_set.match_terms, words)
    ]


def _card_words(card: Mapping[str, Any]) -> list[str]:
    selection = card.get("selection") or {}
    return selection_words(
        modality=selection.get("modality"), organ=selection.get("organ"), tags=selection.get("tags")
    )


def releases_awaiting_evaluation(
    *, reference_set: ReferenceSet, extractor_id: str
) -> list[Release]:
    """Published releases with a package stored here that fit ``reference_set`` and have no
    evaluation against it with ``extractor_id`` yet, whatever that evaluation's status.

    A failed or running evaluation counts as one: this is what a newly loaded set still owes,
    and loading the set again owes nothing more (staff re-queue a failed run themselves).
    """
    release_model = cast("type[Release]", Evaluation._meta.get_field("release").related_model)
    evaluated = Evaluation.objects.filter(
        reference_set=reference_set, extractor_id=extractor_id
    ).values("release_id")
    candidates = (
        release_model.objects.filter(
            state=ReleaseState.PUBLISHED,
            # One artifact row both a package and stored here (medigan's live on Zenodo).
            artifacts__role="package",
            artifacts__file__gt="",
        )
        .exclude(pk__in=evaluated)
        .select_related("generative_model")
        .distinct()
        .order_by("pk")
    )
    return [
        release
        for release in candidates
        if reference_set_fits(reference_set.match_terms, _card_words(release.card))
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
    """Finished evaluations of releases in the catalogue (published, deprecated, yanked), newest
    first."""
    return (
        Evaluation.objects.filter(status=Evaluation.Status.SUCCEEDED, release__state__in=_CATALOGUE)
        .select_related("reference_set")
        .order_by("-finished_at", "-pk")
    )


# The phases of a run in the order they happen (``services._compute``). PostgreSQL's jsonb does
# not keep a document's key order, so readers put the phases back in this order.
TIMING_PHASES = (
    "package_s",
    "reference_load_s",
    "load_extractor_s",
    "features_reference_s",
    "generate_s",
    "features_generated_s",
    "metrics_s",
    "total_s",
)


def _phase_order(name: str) -> tuple[int, str]:
    """Known phases in run order, then any others by name."""
    return (TIMING_PHASES.index(name), "") if name in TIMING_PHASES else (len(TIMING_PHASES), name)


def evaluation_timings(evaluation: Evaluation) -> dict[str, float] | None:
    """Seconds of each phase of an evaluation's run, in run order; None for runs from before
    they were kept."""
    timings = (evaluation.provenance or {}).get("timings")
    if not isinstance(timings, Mapping):
        return None
    return {
        str(name): float(timings[name])
        for name in sorted(timings, key=lambda name: _phase_order(str(name)))
        if isinstance(timings[name], int | float) and not isinstance(timings[name], bool)
    }


def _summary_fields(evaluation: Evaluation, *, with_timings: bool = False) -> dict[str, Any]:
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
        "samples_sha256": (provenance.get("generation") or {}).get("samples_sha256"),
        "finished_at": evaluation.finished_at,
        "timings": evaluation_timings(evaluation) if with_timings else None,
    }


def evaluation_summary(evaluation: Evaluation, *, with_timings: bool = True) -> EvaluationSummary:
    """The figures of one evaluation as the snapshot, the leaderboard and clients show them.

    ``with_timings`` adds how long each phase of the run took, as a release's evaluations are
    answered; the catalogue snapshot and the leaderboards leave them out.
    """
    return EvaluationSummary.model_validate(_summary_fields(evaluation, with_timings=with_timings))


def _newest_per_run(evaluations: Iterable[Evaluation]) -> Iterable[Evaluation]:
    """The newest run of each release, reference set, extractor and preprocessing.

    ``evaluations`` come newest first.
    """
    seen: set[tuple[int, int, str, str]] = set()
    for evaluation in evaluations:
        key = (
            evaluation.release_id,
            evaluation.reference_set_id,
            evaluation.extractor_id,
            evaluation.preprocess_key,
        )
        if key not in seen:
            seen.add(key)
            yield evaluation


def evaluation_summaries_of_releases(
    release_ids: Iterable[int],
) -> dict[int, list[EvaluationSummary]]:
    """:func:`evaluation_summaries_of_catalogue` for some releases only (a feed page's)."""
    summaries: dict[int, list[EvaluationSummary]] = {}
    chosen = evaluations_succeeded().filter(release_id__in=list(release_ids))
    for evaluation in _newest_per_run(chosen):
        summaries.setdefault(evaluation.release_id, []).append(
            evaluation_summary(evaluation, with_timings=False)
        )
    return summaries


def evaluation_summaries_of_catalogue() -> dict[int, list[EvaluationSummary]]:
    """By release id: each catalogue release's newest finished evaluation per reference set,
    extractor and preprocessing.

    One query joined on the release's state, so it stays one statement at any catalogue size.
    """
    summaries: dict[int, list[EvaluationSummary]] = {}
    for evaluation in _newest_per_run(evaluations_succeeded()):
        summaries.setdefault(evaluation.release_id, []).append(
            evaluation_summary(evaluation, with_timings=False)
        )
    return summaries


def leaderboard(
    *,
    viewer: Viewer,
    reference: str | None = None,
    extractor: str | None = None,
    sort: str = "fid_rs",
    descending: bool | None = None,
) -> list[LeaderboardRow]:
    """Rows of the leaderboard: one per release, reference set, extractor and preprocessing.

    Only releases of models ``viewer`` sees (:mod:`hub.access`). Sorted by ``sort`` (a metric of
    ``medigan_catalog.snapshot.METRICS``, or an alias) in its natural direction unless told
    otherwise; rows without the metric come last. Raises ``UnknownMetricError`` for another name.
    """
    metric = metric_named(sort)
    queryset = (
        evaluations_succeeded()
        # A yanked release is not one to choose (PEP 592): it leaves the boards, its numbers stay.
        .exclude(release__state=ReleaseState.YANKED)
        .filter(model_visible_to(viewer, via="release__generative_model__"))
        .select_related("release__generative_model")
    )
    if reference:
        queryset = queryset.filter(reference_set__slug=reference)
    if extractor:
        queryset = queryset.filter(extractor_id=extractor)
    rows: list[LeaderboardRow] = []
    for evaluation in _newest_per_run(queryset):
        card = card_from_json(evaluation.release.card)
        rows.append(
            LeaderboardRow.model_validate(
                {
                    "model_id": card.model_id,
                    "version": card.version,
                    "title": card.title,
                    "modality": (card.selection.modality or ["?"])[0],
                    **_summary_fields(evaluation),
                }
            )
        )
    larger_is_better = metric.larger_is_better if descending is None else descending
    present = [row for row in rows if row.value(metric) is not None]
    missing = [row for row in rows if row.value(metric) is None]
    present.sort(key=lambda row: row.value(metric) or 0.0, reverse=larger_is_better)
    return present + missing


def evaluation_list_of_release(*, release_id: int) -> QuerySet[Evaluation]:
    """Every evaluation of a release, whatever its status, newest first."""
    return (
        Evaluation.objects.filter(release_id=release_id)
        .select_related("reference_set")
        .order_by("-created_at", "-pk")
    )


def reference_set_get(*, slug: str) -> ReferenceSet | None:
    """The reference set ``slug``, or None."""
    return ReferenceSet.objects.filter(slug=slug).first()


def reference_set_list() -> QuerySet[ReferenceSet]:
    """Every reference set, by slug."""
    return ReferenceSet.objects.order_by("slug")
