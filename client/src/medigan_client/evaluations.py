"""Hub-computed metrics carried by the catalogue snapshot: parse them, rank by them, show them.

Each published release in a snapshot may list the hub's evaluations: FID against a named
reference set (``fid_rs``), the real-vs-real baseline (``fid_rr_mean``), their ratio ``r_fid``,
KID, precision and recall, with the extractor, preprocessing and sample counts needed to compare
two numbers. Numbers are comparable only for the same reference set, extractor and preprocessing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medigan_catalog.schema import Card
from medigan_client.errors import BadRequestError

# Metric names users type, the snapshot field each reads, and whether larger is better.
METRIC_ALIASES: Mapping[str, str] = {
    "fid": "fid_rs",
    "fid_rs": "fid_rs",
    "fid_rr": "fid_rr_mean",
    "fid_rr_mean": "fid_rr_mean",
    "r_fid": "r_fid",
    "rfid": "r_fid",
    "kid": "kid_mean",
    "kid_mean": "kid_mean",
    "precision": "precision",
    "recall": "recall",
}
LARGER_IS_BETTER = frozenset({"r_fid", "precision", "recall"})
_FLOAT_FIELDS = (
    "fid_rs",
    "fid_rr_mean",
    "fid_rr_std",
    "r_fid",
    "kid_mean",
    "kid_std",
    "precision",
    "recall",
)


@dataclass(frozen=True)
class HubEvaluation:
    """One hub-computed evaluation of a release against a reference set."""

    reference: str
    extractor: str
    comparable_with_published: bool
    metrics: Mapping[str, float | None]
    num_samples: int | None = None
    seed: int | None = None
    preprocess: Mapping[str, Any] = field(default_factory=dict)
    extractor_weights_sha256: str | None = None
    reference_sha256: str | None = None
    num_reference: int | None = None
    finished_at: str | None = None

    def value(self, metric: str) -> float | None:
        """The value of ``metric`` (an alias such as ``fid`` or a field name), or None."""
        return self.metrics.get(metric_field(metric))


def metric_field(metric: str) -> str:
    """The snapshot field of a metric name; raises BadRequestError naming the known ones."""
    name = metric.strip().lower()
    if name not in METRIC_ALIASES:
        known = ", ".join(sorted(METRIC_ALIASES))
        raise BadRequestError(f"unknown hub metric {metric!r}; known: {known}")
    return METRIC_ALIASES[name]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_evaluations(raw: object) -> tuple[HubEvaluation, ...]:
    """Parse a snapshot entry's ``evaluations`` list; malformed items are left out."""
    if not isinstance(raw, list):
        return ()
    parsed: list[HubEvaluation] = []
    for item in raw:
        if not isinstance(item, dict) or not item.get("reference") or not item.get("extractor"):
            continue
        preprocess = item.get("preprocess")
        parsed.append(
            HubEvaluation(
                reference=str(item["reference"]),
                extractor=str(item["extractor"]),
                comparable_with_published=bool(item.get("comparable_with_published")),
                metrics={name: _number(item.get(name)) for name in _FLOAT_FIELDS},
                num_samples=_int_or_none(item.get("num_samples")),
                seed=_int_or_none(item.get("seed")),
                preprocess=preprocess if isinstance(preprocess, dict) else {},
                extractor_weights_sha256=_str_or_none(item.get("extractor_weights_sha256")),
                reference_sha256=_str_or_none(item.get("reference_sha256")),
                num_reference=_int_or_none(item.get("num_reference")),
                finished_at=_str_or_none(item.get("finished_at")),
            )
        )
    return tuple(parsed)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: object) -> str | None:
    return str(value) if value else None


@dataclass(frozen=True)
class RankedRelease:
    """A release in a ranking by a hub metric; ``evaluation`` is None when it has no number."""

    card: Card
    evaluation: HubEvaluation | None

    def value(self, metric: str) -> float | None:
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
    field_name = metric_field(metric)
    larger_first = field_name in LARGER_IS_BETTER if descending is None else descending
    ranked: list[RankedRelease] = []
    unranked: list[RankedRelease] = []
    for card, evaluations in releases:
        chosen = next(
            (
                evaluation
                for evaluation in evaluations
                if evaluation.reference == reference
                and (extractor is None or evaluation.extractor == extractor)
                and evaluation.value(field_name) is not None
            ),
            None,
        )
        (ranked if chosen is not None else unranked).append(RankedRelease(card, chosen))
    ranked.sort(key=lambda item: item.value(field_name) or 0.0, reverse=larger_first)
    return ranked + unranked


def describe(evaluation: HubEvaluation) -> list[str]:
    """Lines for ``medigan-client show``: the numbers and what they were computed with."""

    def fmt(name: str) -> str:
        value = evaluation.metrics.get(name)
        return "-" if value is None else f"{value:.4g}"

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
        f"reference sha256 {evaluation.reference_sha256}; finished {evaluation.finished_at}",
    ]
