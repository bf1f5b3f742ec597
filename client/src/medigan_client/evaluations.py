"""Hub-computed metrics carried by the catalogue snapshot: rank by them, show them.

Each published release in a snapshot may list the hub's evaluations: FID against a named
reference set (``fid_rs``), the real-vs-real baseline (``fid_rr_mean``), their ratio ``r_fid``,
KID, precision and recall, with the extractor, preprocessing and sample counts needed to compare
two numbers. Numbers are comparable only for the same reference set, extractor and preprocessing.
The fields, the metric table and each metric's direction are the wire format's
(:mod:`medigan_catalog.snapshot`); this module only ranks and describes.

A ranking says what its numbers are (:class:`Ranking`): :func:`rank_self_reported` ranks the
values the cards report themselves (``selection.performance``), :func:`rank_by_hub_metric` the
hub's own evaluations; each comes with caveats, sentences that say why two of its numbers may not
be comparable: self-reported values, values from different feature extractors, models of
different modalities. A reference set no ranked release was evaluated against is an error naming
the sets that are known, not a column of dashes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from medigan_catalog.schema import Card
from medigan_catalog.search import rank as rank_cards
from medigan_catalog.snapshot import EvaluationSummary, Metric, UnknownMetricError, metric_named
from medigan_client.errors import BadRequestError, NotFoundError

# The wire model is the catalog's; the client's name for it reads better in its own API.
HubEvaluation = EvaluationSummary


def hub_metric(metric: str) -> Metric:
    """The hub metric ``metric`` names (a field or an alias); raises BadRequestError naming the
    known ones."""
    try:
        return metric_named(metric)
    except UnknownMetricError as error:
        raise BadRequestError(error.message) from None


@dataclass(frozen=True)
class RankedRelease:
    """A release in a ranking by a hub metric; ``evaluation`` is None when it has no number."""

    card: Card
    evaluation: HubEvaluation | None

    def value(self, metric: str | Metric) -> float | None:
        """The ranked metric's value, or None."""
        return None if self.evaluation is None else self.evaluation.value(metric)


@dataclass(frozen=True)
class RankedRow:
    """One line of a ranking: the release, its value (``None``: none to rank by) and where the
    value comes from (``extractor`` is ``None`` for a self-reported value)."""

    card: Card
    value: float | None
    extractor: str | None = None


@dataclass(frozen=True)
class Ranking:
    """A ranking and what a reader must know before comparing its numbers.

    ``self_reported`` is true when the values are the cards' own (not computed by the hub);
    ``caveats`` are sentences saying why values may not be comparable, empty when nothing is
    known to differ. Rows without a value come last, in catalogue order.
    """

    metric: str
    rows: tuple[RankedRow, ...]
    self_reported: bool
    reference: str | None = None
    caveats: tuple[str, ...] = field(default=())


def modality_of(card: Card) -> str:
    """The modality a card is compared under: the first one its selection names (as the hub's
    leaderboards do), lower-cased; ``"unknown"`` when it names none."""
    modalities = card.selection.modality or []
    return modalities[0].strip().lower() if modalities and modalities[0].strip() else "unknown"


def _counted(values: Iterable[str]) -> str:
    counts = Counter(values)
    return ", ".join(f"{name} ({count})" for name, count in sorted(counts.items()))


def _modality_caveat(cards: Sequence[Card]) -> list[str]:
    modalities = {modality_of(card) for card in cards}
    if len(modalities) < 2:
        return []
    return [
        f"the ranked models are of different modalities: {_counted(map(modality_of, cards))}; "
        "a metric computed on one kind of image does not compare with another kind's"
    ]


def self_reported_value(card: Card, metric: str, *, largest: bool = False) -> float | None:
    """The number a card reports for ``metric`` (a dotted path under ``selection.performance``),
    or ``None``; a list counts as its smallest number (its largest with ``largest``), as the
    ranking counts it."""
    node: object = card.selection.performance or {}
    for part in metric.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, list):
        numbers = [v for v in node if isinstance(v, int | float) and not isinstance(v, bool)]
        node = (max(numbers) if largest else min(numbers)) if numbers else None
    if isinstance(node, bool) or not isinstance(node, int | float) or math.isnan(node):
        return None
    return float(node)


def rank_self_reported(
    cards: Sequence[Card],
    metric: str,
    *,
    descending: bool = False,
    known_references: Sequence[str] = (),
) -> Ranking:
    """Rank cards by the value each reports for ``metric`` under ``selection.performance``.

    Always caveated: the values are self-reported, and the extractor, reference images and
    sample counts behind them are not recorded; a second caveat names the modalities when the
    ranked models differ in modality. ``known_references`` (the sets the hub evaluated against)
    are suggested as the comparable alternative.
    """
    ordered = rank_cards(cards, metric, descending=descending)
    rows = tuple(
        RankedRow(card, self_reported_value(card, metric, largest=descending)) for card in ordered
    )
    valued = [row.card for row in rows if row.value is not None]
    alternative = (
        f"rank by the hub's own numbers with --reference ({', '.join(known_references)})"
        if known_references
        else "the hub has evaluated none of these releases itself"
    )
    caveats = [
        f"the {metric} values are self-reported by the model cards, not computed by the hub: "
        "the feature extractor, reference images and sample counts behind them are not "
        f"recorded and may differ between models; {alternative}"
    ]
    caveats.extend(_modality_caveat(valued))
    return Ranking(metric, rows, self_reported=True, caveats=tuple(caveats))


def known_references(releases: Sequence[tuple[Card, Sequence[HubEvaluation]]]) -> list[str]:
    """The reference sets the hub evaluated any of ``releases`` against, sorted."""
    return sorted({evaluation.reference for _card, evals in releases for evaluation in evals})


def rank_hub_metric(
    releases: Sequence[tuple[Card, Sequence[HubEvaluation]]],
    metric: str,
    *,
    reference: str,
    extractor: str | None = None,
    descending: bool | None = None,
) -> Ranking:
    """:func:`rank_by_hub_metric` as a :class:`Ranking` with its caveats.

    Raises :class:`NotFoundError` naming the known sets (those ``releases`` were evaluated
    against) when none of ``releases`` was evaluated against ``reference`` (and
    ``BadRequestError`` for an unknown metric, before that). Caveats name the
    extractors when the ranked values come from several (``--extractor`` picks one) and the
    modalities when the ranked models differ in modality.
    """
    chosen_metric = hub_metric(metric)
    known = known_references(releases)
    if reference not in known:
        raise NotFoundError(
            f"no release ranked was evaluated against the reference set {reference!r}; "
            + (
                f"known reference sets: {', '.join(known)}"
                if known
                else "the hub has evaluated none of them yet"
            ),
            detail={"reference": reference, "known": known},
        )
    ranked = rank_by_hub_metric(
        releases, metric, reference=reference, extractor=extractor, descending=descending
    )
    rows = tuple(
        RankedRow(
            item.card,
            item.value(chosen_metric),
            None if item.evaluation is None else item.evaluation.extractor,
        )
        for item in ranked
    )
    valued = [row for row in rows if row.value is not None]
    caveats: list[str] = []
    extractors = {row.extractor for row in valued}
    if len(extractors) > 1:
        caveats.append(
            f"the {metric} values come from different feature extractors: "
            f"{_counted(str(row.extractor) for row in valued)}; pass --extractor to compare "
            "values of one extractor"
        )
    caveats.extend(_modality_caveat([row.card for row in valued]))
    return Ranking(metric, rows, self_reported=False, reference=reference, caveats=tuple(caveats))


def rank_by_hub_metric(
    releases: Sequence[tuple[Card, Sequence[HubEvaluation]]],
    metric: str,
    *,
    reference: str,
    extractor: str | None = None,
    descending: bool | None = None,
) -> list[RankedRelease]:
    """Order releases by a hub metric against ``reference`` (and ``extractor``, if given).

    The direction is the metric's natural one (lower FID/KID first; higher r_FID, precision and
    recall first) unless ``descending`` says otherwise. Releases without such an evaluation are
    kept, at the end, in catalogue order. When several evaluations match (other extractors or
    preprocessing), the first listed by the hub (its newest) is used. See :func:`rank_hub_metric`
    for the same ranking with its caveats.
    """
    chosen_metric = hub_metric(metric)
    larger_first = chosen_metric.larger_is_better if descending is None else descending
    ranked: list[RankedRelease] = []
    unranked: list[RankedRelease] = []
    for card, evaluations in releases:
        chosen = next(
            (
                evaluation
                for evaluation in evaluations
                if evaluation.reference == reference
                and (extractor is None or evaluation.extractor == extractor)
                and evaluation.value(chosen_metric) is not None
            ),
            None,
        )
        (ranked if chosen is not None else unranked).append(RankedRelease(card, chosen))
    ranked.sort(key=lambda item: item.value(chosen_metric) or 0.0, reverse=larger_first)
    return ranked + unranked


def describe(evaluation: HubEvaluation) -> list[str]:
    """Lines for ``medigan-client show``: the numbers and what they were computed with."""

    def fmt(name: str) -> str:
        value = getattr(evaluation, name)
        return "-" if value is None else f"{value:.4g}"

    finished = evaluation.finished_at.isoformat() if evaluation.finished_at else None
    comparable = (
        "comparable with published FID"
        if evaluation.comparable_with_published
        else "NOT comparable with published FID values"
    )
    return [
        f"  evaluation:  {evaluation.reference} with {evaluation.extractor} ({comparable})",
        f"    FID_rs {fmt('fid_rs')}  FID_rr {fmt('fid_rr_mean')} ± {fmt('fid_rr_std')}  "
        f"r_FID {fmt('r_fid')}  KID {fmt('kid_mean')} ± {fmt('kid_std')}  "
        f"precision {fmt('precision')}  recall {fmt('recall')}",
        f"    {evaluation.num_samples} samples (seed {evaluation.seed}) vs "
        f"{evaluation.num_reference} reference images; preprocessing {dict(evaluation.preprocess)}",
        f"    extractor weights sha256 {evaluation.extractor_weights_sha256}; "
        f"reference sha256 {evaluation.reference_sha256}; finished {finished}",
    ]
