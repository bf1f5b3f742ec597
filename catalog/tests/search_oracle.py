"""Today's linear search, kept as the oracle the index is tested against.

This is ``medigan_catalog.search`` as it was before the search index: every query walks every
card (``model_dump`` and tokenising each time). It is slow and obviously right, so the property
tests in ``test_search_index.py`` compare the index's answers with it, hit for hit, score for
score. Do not "fix" it to match the index: a difference is a bug in the index.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medigan_catalog.schema import Card

OPERATORS = ("AND", "OR", "XOR")

EXACT_MATCH = 2.0
PREFIX_MATCH = 1.0
TITLE_WEIGHT = 2.0
BODY_WEIGHT = 1.0

_QUERY_RE = re.compile(r'"(?P<phrase>[^"]*)"|(?P<word>[^\s,]+)')
_WORD_SPLIT_RE = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True)
class OracleHit:
    """One result of the oracle: the card, its score and the query terms it matched."""

    card: Card
    score: float
    matched_terms: tuple[str, ...]


def _medigan_text(value: object, case_sensitive: bool) -> str:
    """How medigan compares a config value: ``str(value)``, lower-cased unless case-sensitive.

    Like medigan this turns ``None`` into ``"none"`` and ``True`` into ``"true"``, so those words
    match models with such values.
    """
    text = str(value)
    return text if case_sensitive else text.lower()


def _medigan_matches(
    node: Mapping[str, Any], targets: frozenset[str], match_keys: bool, case_sensitive: bool
) -> Iterator[str]:
    """Yield each target found in a selection dict, walking it as medigan does.

    Nested dicts are searched recursively; list items are compared one by one as strings (a list
    inside a list is compared as its string form, not entered); every other value is compared as
    its string form. Comparison is whole-string equality. With ``match_keys`` every dict key is
    compared too.
    """
    for key, value in node.items():
        if match_keys:
            key_text = _medigan_text(key, case_sensitive)
            if key_text in targets:
                yield key_text
        if isinstance(value, Mapping):
            yield from _medigan_matches(value, targets, match_keys, case_sensitive)
        elif isinstance(value, list):
            for item in value:
                item_text = _medigan_text(item, case_sensitive)
                if item_text in targets:
                    yield item_text
        else:
            text = _medigan_text(value, case_sensitive)
            if text in targets:
                yield text


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
    targets = frozenset(_medigan_text(value, case_sensitive) for value in values)
    matching: list[Card] = []
    for card in cards:
        found = set(_medigan_matches(_medigan_selection(card), targets, match_keys, case_sensitive))
        if not found:
            continue
        if (
            operator == "OR"
            or (operator == "AND" and targets <= found)
            or (operator == "XOR" and len(found) == 1)
        ):
            matching.append(card)
    return matching


def _medigan_selection(card: Card) -> dict[str, Any]:
    """The card's ``selection`` as medigan holds it: imported values restored to the original."""
    selection: dict[str, Any] = card.selection.model_dump(mode="json")
    if card.compat is None:
        return selection
    for path, original in card.compat.original_values.items():
        block, _, rest = path.partition(".")
        if block != "selection" or not rest:
            continue
        *parents, leaf = rest.split(".")
        node: Any = selection
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[leaf] = original
    return selection


def _compact(text: str) -> str:
    """Lower-case letters and digits only, so ``WGAN-GP``, ``wgan gp`` and ``WGANGP`` agree."""
    return _WORD_SPLIT_RE.sub("", text).lower()


def _tokens(texts: Sequence[str]) -> frozenset[str]:
    """Each text's words and the whole text, all compacted (``"x-ray mammo"`` -> x, ray, ...)."""
    tokens: set[str] = set()
    for text in texts:
        tokens.update(word.lower() for word in _WORD_SPLIT_RE.split(text) if word)
        whole = _compact(text)
        if whole:
            tokens.add(whole)
    return frozenset(tokens)


def _strings(value: object) -> Iterator[str]:
    """Every string and number inside a JSON value, as text."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)


def _searchable(card: Card) -> tuple[frozenset[str], frozenset[str]]:
    """The card's title tokens (title, model id) and body tokens (selection without metrics)."""
    selection = card.selection.model_dump(mode="json")
    selection.pop("performance", None)
    title = _tokens([card.title, card.model_id, card.name])
    body = _tokens(list(_strings(selection)))
    return title, body


def _parse_query(query: str) -> list[str]:
    """Split a query into terms: words separated by spaces or commas, ``"quoted phrases"`` whole."""
    terms: list[str] = []
    for match in _QUERY_RE.finditer(query):
        term = match.group("phrase") if match.group("phrase") is not None else match.group("word")
        if term and _compact(term):
            terms.append(term)
    return terms


def _term_score(term: str, title: frozenset[str], body: frozenset[str]) -> float:
    """The best score of one term against the card's tokens; 0 when it matches nothing."""
    wanted = _compact(term)
    best = 0.0
    for tokens, weight in ((title, TITLE_WEIGHT), (body, BODY_WEIGHT)):
        if wanted in tokens:
            best = max(best, EXACT_MATCH * weight)
        elif any(token.startswith(wanted) for token in tokens):
            best = max(best, PREFIX_MATCH * weight)
    return best


def _field_values(card: Card, key: str) -> list[str]:
    """The texts a filter key refers to: ``namespace``, ``runtime`` or a (dotted) selection key."""
    if key == "namespace":
        return [card.namespace]
    if key == "runtime":
        return [card.runtime.kind.value]
    node: Any = card.selection.model_dump(mode="json")
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return []
        node = node[part]
    return list(_strings(node))


def _passes_filters(card: Card, filters: Mapping[str, str]) -> bool:
    """Every filter must hold; a filter holds when a token of the field starts with its value.

    Tokens are a value's words and the whole value, so ``modality=mri`` keeps "Brain MRI" and
    ``type=wgan-gp`` keeps "WGANGP". A filter value may list alternatives separated by commas
    (``modality=mri,ct``). A card without the field fails the filter.
    """
    for key, wanted in filters.items():
        alternatives = [_compact(option) for option in wanted.split(",")]
        alternatives = [option for option in alternatives if option]
        values = _field_values(card, key.strip())
        if not values:
            return False
        tokens = _tokens(values)
        if alternatives and not any(
            token.startswith(option) for token in tokens for option in alternatives
        ):
            return False
    return True


def search(
    cards: Sequence[Card],
    query: str = "",
    *,
    filters: Mapping[str, str] | None = None,
    operator: str = "AND",
) -> list[OracleHit]:
    """Search cards by words and filters; best hits first, ties in catalogue order.

    A query term matches a card when, compared without case or punctuation, it equals or
    starts one of the card's tokens: the words and whole values of its title, model id and
    ``selection`` (metrics excluded), so ``mammo`` finds mammography and ``wgan-gp`` finds
    ``WGANGP``. ``operator`` is ``AND`` (every term), ``OR`` (any term) or ``XOR`` (exactly one
    term). ``filters`` such as ``{"modality": "mri", "type": "dcgan"}`` keep cards whose field
    has a value starting with the given one. With neither query nor filters every card is a hit.
    """
    mode = operator.upper()
    if mode not in OPERATORS:
        raise ValueError(f"operator must be one of {', '.join(OPERATORS)}, not {operator!r}")
    terms = _parse_query(query)
    hits: list[tuple[float, int, OracleHit]] = []
    for position, card in enumerate(cards):
        if filters and not _passes_filters(card, filters):
            continue
        score = 0.0
        matched: list[str] = []
        if terms:
            title, body = _searchable(card)
            for term in terms:
                term_score = _term_score(term, title, body)
                if term_score > 0:
                    score += term_score
                    matched.append(term)
            if mode == "AND" and len(matched) < len(terms):
                continue
            if mode == "OR" and not matched:
                continue
            if mode == "XOR" and len({_compact(term) for term in matched}) != 1:
                continue
        hits.append((score, position, OracleHit(card, score, tuple(matched))))
    hits.sort(key=lambda entry: (-entry[0], entry[1]))
    return [hit for _, _, hit in hits]
