"""Find and rank cards, offline, two ways: medigan 1.0.0's exact semantics and a better search.

The medigan face (:func:`medigan_find_matching`, :func:`medigan_rank`) reproduces what
``Generators.find_matching_models_by_values`` and ``Generators.rank_models_by_performance`` do
(read in medigan's ``src/medigan/select_model/model_selector.py``,
``select_model/model_match_candidate.py`` and ``utils.py``), so that old scripts get the same
models in the same order. Matching runs on the values medigan itself holds: for a card imported
from medigan's catalogue, the normalisations of the import are undone first (``WGANGP`` still
matches 00018 whole-string), so results equal medigan's exactly. Ranking runs on the normalised
metrics (numbers where medigan stored strings).

The better face (:func:`search`, :func:`rank`) is what the client's ``search`` command, the hub's
``/api/v1/models?q=`` and the web page use: word and prefix matching over titles, ids and
selection values, ``key=value`` filters, scored results, and ranking that keeps unranked models.

Matching is answered by :class:`medigan_catalog.search_index.SearchIndex`, which owns the
matching rules; the functions here build one for the cards they are given, which suits a
handful of cards. Whoever searches a catalogue more than once (the client, the hub) keeps an
index and queries it directly.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medigan_catalog.search_index import OPERATORS, SearchIndex

if TYPE_CHECKING:
    from medigan_catalog.schema import Card

__all__ = [
    "OPERATORS",
    "SearchHit",
    "medigan_find_matching",
    "medigan_rank",
    "parse_filter_terms",
    "rank",
    "search",
    "split_query",
]

_FILTER_RE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_.]*)=(?P<value>.*)$", re.DOTALL)


def _index_of(cards: Sequence[Card]) -> SearchIndex:
    """An index over exactly ``cards``, each its own entry (keyed by position, so that two cards
    of one model stay two entries)."""
    return SearchIndex.build(cards, keys=(str(position) for position in range(len(cards))))


# ---------------------------------------------------------------------------------------------
# medigan 1.0.0 semantics


def medigan_find_matching(
    cards: Sequence[Card],
    values: Sequence[str],
    operator: str = "AND",
    *,
    match_keys: bool = False,
    case_sensitive: bool = False,
) -> list[Card]:
    """The cards medigan's ``find_matching_models_by_values`` would return, in catalogue order.

    Reproduced deliberately, as medigan 1.0.0 does it:

    - each search value is compared by whole-string equality with every value in the card's
      ``selection`` (recursively, metrics included), not by substring;
    - unless ``case_sensitive``, values and selection values are lower-cased first;
    - ``match_keys`` (medigan's ``are_keys_also_matched``, default False) also compares keys;
    - ``AND``: every value matched somewhere; ``OR``: at least one match; ``XOR``: exactly one
      distinct value matched; any other operator string matches nothing (medigan's behaviour);
    - an empty ``values`` list is an error (medigan asserts); here it raises ``ValueError``.

    One difference: values are always compared as ``str(value)`` (medigan does that only when
    case-insensitive), so ``2021`` and ``"2021"`` behave the same.
    """
    if not values:
        raise ValueError("give at least one value to search for")
    positions = _index_of(cards).medigan_find_matching(
        values, operator, match_keys=match_keys, case_sensitive=case_sensitive
    )
    return [cards[position] for position in positions]


def _performance_value(card: Card, metric: str) -> Any:
    """The value at a dotted path under ``selection.performance``; ``None`` when absent."""
    node: Any = card.selection.model_dump(mode="json").get("performance")
    for part in metric.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


def _best_of(value: object, ascending: bool) -> float | None:
    """A rankable number: the number itself, or a list's best (min ascending, max descending)."""
    if isinstance(value, list):
        numbers = [item for item in value if _is_number(item)]
        if not numbers:
            return None
        return float(min(numbers) if ascending else max(numbers))
    if isinstance(value, int | float) and _is_number(value):
        return float(value)
    return None


def medigan_rank(cards: Sequence[Card], metric: str = "SSIM", order: str = "asc") -> list[Card]:
    """The cards medigan's ``rank_models_by_performance`` would return, best first.

    Reproduced deliberately, as medigan 1.0.0 does it: defaults ``metric="SSIM"``,
    ``order="asc"``; ``metric`` is a dotted path under ``selection.performance``
    (``"CLF.trained_on_real.accuracy"``); ``order == "asc"`` sorts ascending and *any* other
    string descending; a card without the metric (missing or null) is dropped; a list value
    counts as its minimum when ascending and its maximum when descending; ties keep catalogue
    order (medigan's sort is stable too).

    Where medigan would crash (text, booleans, dicts or empty lists as metric values, compared
    with numbers) such cards are dropped instead.
    """
    ascending = order == "asc"
    ranked: list[tuple[float, Card]] = []
    for card in cards:
        value = _best_of(_performance_value(card, metric), ascending)
        if value is not None:
            ranked.append((value, card))
    ranked.sort(key=lambda pair: pair[0], reverse=not ascending)
    return [card for _, card in ranked]


# ---------------------------------------------------------------------------------------------
# The better search


@dataclass(frozen=True)
class SearchHit:
    """One search result: the card, its score (higher is better) and the query terms it matched."""

    card: Card
    score: float
    matched_terms: tuple[str, ...]


def search(
    cards: Sequence[Card],
    query: str = "",
    *,
    filters: Mapping[str, str] | None = None,
    operator: str = "AND",
) -> list[SearchHit]:
    """Search cards by words and filters; best hits first, ties in catalogue order.

    A query term matches a card when, compared without case or punctuation, it equals or
    starts one of the card's tokens: the words and whole values of its title, model id and
    ``selection`` (metrics excluded), so ``mammo`` finds mammography and ``wgan-gp`` finds
    ``WGANGP``. ``operator`` is ``AND`` (every term), ``OR`` (any term) or ``XOR`` (exactly one
    term). ``filters`` such as ``{"modality": "mri", "type": "dcgan"}`` keep cards whose field
    (``namespace``, ``runtime`` or a dotted ``selection`` key) has a word or whole value starting
    with the given one; a value may list alternatives (``modality=mri,ct``); a card without the
    field fails the filter. With neither query nor filters every card is a hit.
    """
    if operator.upper() not in OPERATORS:
        raise ValueError(f"operator must be one of {', '.join(OPERATORS)}, not {operator!r}")
    hits = _index_of(cards).search(query, filters=filters, operator=operator)
    return [SearchHit(cards[hit.position], hit.score, hit.matched_terms) for hit in hits]


def rank(cards: Sequence[Card], metric: str, *, descending: bool = False) -> list[Card]:
    """Order cards by a metric under ``selection.performance`` (dotted path such as ``FID``).

    Unlike medigan, cards without a numeric value for the metric are kept, after the ranked
    ones, in catalogue order. A list value counts as its best element for the direction (its
    minimum ascending, its maximum descending). Ties keep catalogue order.
    """
    ranked: list[tuple[float, Card]] = []
    unranked: list[Card] = []
    for card in cards:
        value = _best_of(_performance_value(card, metric), not descending)
        if value is None:
            unranked.append(card)
        else:
            ranked.append((value, card))
    ranked.sort(key=lambda pair: pair[0], reverse=descending)
    return [card for _, card in ranked] + unranked


def split_query(query: str) -> list[str]:
    """Words of a typed query, keeping ``"quoted phrases"`` together (unbalanced quotes: plain
    split); the words then go to :func:`parse_filter_terms`."""
    try:
        return shlex.split(query)
    except ValueError:
        return query.split()


def parse_filter_terms(tokens: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Split CLI words into query terms and ``key=value`` filters.

    ``["mammography", "type=dcgan", "chest x-ray"]`` gives ``["mammography", '"chest x-ray"']``
    and ``{"type": "dcgan"}``: a term with spaces comes back quoted so that
    ``" ".join(terms)`` is a query that keeps it a phrase. A key given twice keeps both values
    as alternatives (``modality=mri modality=ct`` is ``{"modality": "mri,ct"}``).
    """
    terms: list[str] = []
    filters: dict[str, str] = {}
    for token in tokens:
        match = _FILTER_RE.match(token.strip())
        if match:
            key = match.group("key")
            value = match.group("value").strip()
            filters[key] = f"{filters[key]},{value}" if key in filters else value
            continue
        text = token.strip().replace('"', "")
        if not text:
            continue
        terms.append(f'"{text}"' if any(ch.isspace() for ch in text) else text)
    return terms, filters
