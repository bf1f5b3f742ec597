"""Hub-computed metrics carried by the catalogue snapshot: rank by them, show them.

Each published release in a snapshot may list the hub's evaluations: FID against a named
reference set (``fid_rs``), the real-vs-real baseline (``fid_rr_mean``), their ratio ``r_fid``,
KID, precision and recall, with the extractor, preprocessing and sample counts needed to compare
two numbers. Numbers are comparable only for the same reference set, extractor and preprocessing.
The fields, the metric table and each metric's direction are the wire format's
(:mod:`medigan_catalog.snapshot`); this module only ranks and describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from medigan_catalog.schema import Card
from medigan_catalog.snapshot import EvaluationSummary, Metric, UnknownMetricError, metric_named
from medigan_client.errors import BadRequestError

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
    preprocessing), the first listed by the hub (its newest) is used.
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
