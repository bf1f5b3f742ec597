"""medigan's model search and ranking over the hub catalogue, returning medigan's shapes.

Which models match and in which order they rank is decided by
:meth:`medigan_catalog.search_index.SearchIndex.medigan_find_matching` (the rules of
:func:`medigan_catalog.search.medigan_find_matching`, over an index of the catalogue built once
per selector and rebuilt when the catalogue's models change) and
:func:`medigan_catalog.search.medigan_rank` (medigan 1.0.0's semantics, kept in one place). This
module dresses their answers the way medigan's ``ModelSelector`` returns them: a list of
:class:`ModelMatchCandidate` (with the :class:`MatchedEntry` that explain each match) for a
search, a list of ``{"model_id": ..., <metric>: value}`` dicts for a ranking, and the selection
dicts of ``global.json``. Values are read from each model's ``global.json`` entry, so the numbers
and strings returned are the ones medigan's file holds.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from operator import is_
from typing import Any

from medigan_catalog.schema import Card
from medigan_catalog.search import medigan_rank
from medigan_catalog.search_index import OPERATORS, SearchIndex
from medigan_client.compat.catalogue import CatalogueModel, MediganCatalogue
from medigan_client.compat.errors import ConfigKeyNotFoundError
from medigan_client.errors import BadRequestError

MODEL_ID_KEY = "model_id"
SELECTION_KEY = "selection"
PERFORMANCE_KEY = "performance"
# medigan's key of a MatchedEntry that matched a dict key rather than a value.
KEY_MATCH = "key"


class MatchedEntry:
    """One key or value of a model's selection config that equals a search value."""

    def __init__(self, key: str, value: object, matching_element: str | None = None):
        self.key = key
        self.value = value
        self.matching_element = str(value) if matching_element is None else matching_element

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MatchedEntry):
            return NotImplemented
        return (self.key, self.value, self.matching_element) == (
            other.key,
            other.value,
            other.matching_element,
        )

    def __hash__(self) -> int:
        return hash((self.key, repr(self.value), self.matching_element))

    def __str__(self) -> str:
        return json.dumps(
            {"key": self.key, "value": self.value, "matching_element": self.matching_element}
        )

    def __repr__(self) -> str:
        return (
            f"MatchedEntry(key={self.key}, value={self.value}, "
            f"matching_element={self.matching_element})"
        )


class ModelMatchCandidate:
    """A model that was compared with search values, with every entry that matched one."""

    def __init__(
        self,
        model_id: str,
        target_values: list[str],
        target_values_operator: str = "AND",
        is_case_sensitive: bool = False,
        are_keys_also_matched: bool = False,
        is_match: bool = False,
    ):
        self.model_id = model_id
        self.target_values = target_values
        self.target_values_operator = target_values_operator
        self.is_case_sensitive = is_case_sensitive
        self.are_keys_also_matched = are_keys_also_matched
        self.matched_entries: list[MatchedEntry] = []
        self.is_match = is_match

    def add_matched_entry(self, matched_entry: MatchedEntry) -> None:
        """Record one more matching entry."""
        self.matched_entries.append(matched_entry)

    def get_all_matching_elements(self) -> list[str]:
        """The search value each matched entry matched, in the order they were found."""
        return [entry.matching_element for entry in self.matched_entries]

    def check_if_is_match(self) -> bool:
        """Whether the matched entries satisfy the operator over the target values."""
        found = set(self.get_all_matching_elements())
        if found:
            operator = self.target_values_operator
            self.is_match = (
                operator == "OR"
                or (operator == "AND" and all(value in found for value in self.target_values))
                or (operator == "XOR" and len(found & set(self.target_values)) == 1)
            )
        return self.is_match

    def __str__(self) -> str:
        return json.dumps(
            {
                "model_id": self.model_id,
                "is_match": self.is_match,
                "target_values": self.target_values,
                "operator": self.target_values_operator,
                "are_keys_also_matched": self.are_keys_also_matched,
                "is_case_sensitive": self.is_case_sensitive,
                "matched_entries": {
                    str(index): json.loads(str(entry))
                    for index, entry in enumerate(self.matched_entries)
                },
            }
        )

    def __repr__(self) -> str:
        return (
            f"ModelMatchCandidate(model_id={self.model_id}, is_match={self.is_match}, "
            f"operator: {self.target_values_operator}, target_values={self.target_values})"
        )

    def __len__(self) -> int:
        return len(self.matched_entries)

    def __getitem__(self, index: int) -> MatchedEntry:
        return self.matched_entries[index]


def _compared(value: object, case_sensitive: bool) -> str:
    text = str(value)
    return text if case_sensitive else text.lower()


class _WalkedSelection:
    """One model's selection flattened in medigan's walking order, to read matched entries from.

    medigan walks a selection dict comparing each key (when keys are matched) before its value,
    entering dicts and comparing list items one by one. Each step is kept with its text and its
    lower-cased text, and looked up by either, so a search reads only the steps that match.
    """

    __slots__ = ("_by_text", "card", "steps")

    def __init__(self, card: Card, selection: Mapping[str, Any]) -> None:
        self.card = card
        # (is a key, key, value, text, lower-cased text)
        self.steps: list[tuple[bool, str, object, str, str]] = []
        self._walk(selection)
        # (is a key, case-sensitive) -> text -> step numbers, ascending
        self._by_text: dict[tuple[bool, bool], dict[str, list[int]]] = {}
        for number, (is_key, _, _, text, lowered) in enumerate(self.steps):
            for case_sensitive, compared in ((True, text), (False, lowered)):
                found = self._by_text.setdefault((is_key, case_sensitive), {})
                found.setdefault(compared, []).append(number)

    def _walk(self, node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            text = str(key)
            self.steps.append((True, key, key, text, text.lower()))
            if isinstance(value, Mapping):
                self._walk(value)
                continue
            for item in value if isinstance(value, list) else [value]:
                text = str(item)
                self.steps.append((False, key, item, text, text.lower()))

    def matched_entries(
        self, targets: frozenset[str], match_keys: bool, case_sensitive: bool
    ) -> list[MatchedEntry]:
        """The entries that equal a target, in medigan's walking order.

        Without case sensitivity an entry's value is the lower-cased text, as in medigan; a
        value handed out that is a list (an item of a list of lists) is a copy.
        """
        numbers: list[int] = []
        for is_key in (False, True) if match_keys else (False,):
            by_text = self._by_text.get((is_key, case_sensitive), {})
            for target in targets:
                numbers.extend(by_text.get(target, ()))
        numbers.sort()
        entries: list[MatchedEntry] = []
        for number in numbers:
            is_key, key, value, text, lowered = self.steps[number]
            compared = text if case_sensitive else lowered
            if is_key:
                entries.append(MatchedEntry(KEY_MATCH, key, compared))
            elif case_sensitive:
                shared = isinstance(value, list | dict)
                entries.append(MatchedEntry(key, copy.deepcopy(value) if shared else value, text))
            else:
                entries.append(MatchedEntry(key, lowered, lowered))
        return entries


_MISSING = object()


def _dotted_lookup(node: object, dotted_key: str) -> object:
    """The value at a dotted path; :data:`_MISSING` where the path does not exist."""
    for part in dotted_key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _dotted_get(node: object, dotted_key: str) -> object:
    """The value at a dotted path; ``None`` where the path does not exist."""
    value = _dotted_lookup(node, dotted_key)
    return None if value is _MISSING else value


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


def _check_operator(operator: str) -> str:
    normalised = operator.upper() if isinstance(operator, str) else operator
    if normalised not in OPERATORS:
        raise BadRequestError(
            f"target_values_operator must be one of {', '.join(OPERATORS)}, not {operator!r}"
        )
    return str(normalised)


class ModelSelector:
    """medigan's ``ModelSelector``: search, rank and selection lookups over a catalogue view."""

    def __init__(self, catalogue: MediganCatalogue):
        self.config_manager = catalogue
        # The search index over the catalogue's models, and the cards it was built from: a
        # local model added to the catalogue changes them, and the index is built again.
        self._index: SearchIndex | None = None
        self._indexed_cards: tuple[Card, ...] = ()
        # model id -> its selection walked once, for reading matched entries
        self._walked: dict[str, _WalkedSelection] = {}

    def __repr__(self) -> str:
        return f"ModelSelector(model_ids={self.config_manager.model_ids})"

    @property
    def model_selection_dicts(self) -> list[dict[str, Any]]:
        """``[{"model_id": ..., "selection": {...}}, ...]`` in catalogue order, as medigan keeps."""
        return [
            {MODEL_ID_KEY: model_id, SELECTION_KEY: self._selection(model_id)}
            for model_id in self.config_manager.model_ids
        ]

    def _selection(self, model_id: str) -> dict[str, Any]:
        selection = self.config_manager.entry(model_id).get(SELECTION_KEY)
        return selection if isinstance(selection, dict) else {}

    def get_selection_criteria_by_id(
        self, model_id: str, is_model_id_removed: bool = True
    ) -> dict[str, Any]:
        """The selection of ``model_id``, inside ``{"model_id", "selection"}`` unless removed."""
        selection = self._selection(self.config_manager.model(model_id).model_id)
        if is_model_id_removed:
            return selection
        return {MODEL_ID_KEY: model_id, SELECTION_KEY: selection}

    def get_selection_criteria_by_ids(
        self, model_ids: Sequence[str] | None = None, are_model_ids_removed: bool = True
    ) -> list[dict[str, Any]]:
        """The selection dicts of ``model_ids`` (all when ``None``), in catalogue order."""
        wanted = None if model_ids is None else set(model_ids)
        return [
            self.get_selection_criteria_by_id(model_id, is_model_id_removed=are_model_ids_removed)
            for model_id in self.config_manager.model_ids
            if wanted is None or model_id in wanted
        ]

    def get_selection_keys(self, model_id: str | None = None) -> list[str]:
        """The first-level selection keys of ``model_id``, or of all models (each key once)."""
        if model_id is not None:
            return list(self.get_selection_criteria_by_id(model_id))
        keys: list[str] = []
        for selection in self.get_selection_criteria_by_ids():
            keys.extend(key for key in selection if key not in keys)
        return keys

    def get_selection_values_for_key(self, key: str, model_id: str | None = None) -> list[Any]:
        """The value at a dotted selection ``key``: ``[value]`` of one model, or one per model.

        Across models, a model without the key contributes ``None`` (medigan raised
        ``KeyError`` when any model lacked a level of the path); for one model a missing key is
        a :class:`~medigan_client.compat.errors.ConfigKeyNotFoundError`, which is a
        ``KeyError`` (medigan ignored dots there).
        """
        if model_id is not None:
            value = _dotted_lookup(self.get_selection_criteria_by_id(model_id), key)
            if value is _MISSING:
                raise ConfigKeyNotFoundError(
                    f"the selection of {model_id} has no key {key!r}",
                    detail={"model_id": model_id, "config_key": key},
                )
            return [value]
        return [_dotted_get(selection, key) for selection in self.get_selection_criteria_by_ids()]

    def get_models_by_key_value_pair(
        self, key1: str, value1: object, is_case_sensitive: bool = False
    ) -> list[dict[str, Any]]:
        """``[{"model_id": ..., key1: value1}]`` of each model whose selection ``key1`` holds it.

        A list value holds ``value1`` when one of its items (as text) equals it; another value
        when its text equals ``value1``'s (ignoring case unless ``is_case_sensitive``); a dict
        value never does. As in medigan, once a list was compared without case sensitivity the
        value reported is the lower-cased one.
        """
        reported: object = value1
        matches: list[dict[str, Any]] = []
        for model_id in self.config_manager.model_ids:
            found = _dotted_get(self._selection(model_id), key1)
            if found is None or isinstance(found, Mapping):
                continue
            if isinstance(found, list):
                items = [str(item) for item in found]
                wanted = str(value1)
                if not is_case_sensitive:
                    items = [item.lower() for item in items]
                    wanted = wanted.lower()
                    reported = wanted
                is_match = wanted in items
            else:
                is_match = str(found) == str(value1) or (
                    not is_case_sensitive and str(found).lower() == str(value1).lower()
                )
            if is_match:
                matches.append({MODEL_ID_KEY: model_id, key1: reported})
        return matches

    def rank_models_by_performance(
        self, model_ids: Sequence[str] | None = None, metric: str = "SSIM", order: str = "asc"
    ) -> list[dict[str, Any]]:
        """``[{"model_id": ..., metric: value}]`` of models with a ``metric`` value, best first.

        ``metric`` is a dotted path below ``selection.performance``; ``order`` ``"asc"`` puts the
        smallest first, any other string the largest (medigan's rule); a list value counts as
        its smallest item ascending, its largest descending. Models without a numeric value are
        left out.
        """
        if model_ids is not None and len(model_ids) == 0:
            return []
        wanted = None if model_ids is None else set(model_ids)
        models = [
            model
            for model in self.config_manager.models
            if wanted is None or model.model_id in wanted
        ]
        by_card = {id(model.card): model.model_id for model in models}
        ascending = order == "asc"
        ranked: list[dict[str, Any]] = []
        for card in medigan_rank([model.card for model in models], metric, order):
            model_id = by_card[id(card)]
            performance = self._selection(model_id).get(PERFORMANCE_KEY)
            value = _dotted_get(performance, metric)
            if isinstance(value, list):
                numbers = [item for item in value if _is_number(item)]
                if numbers:
                    value = min(numbers) if ascending else max(numbers)
            ranked.append({MODEL_ID_KEY: model_id, metric: value})
        return ranked

    def search_index(self) -> SearchIndex:
        """The search index over :attr:`config_manager`'s models, in catalogue order.

        Built on first use and kept while the catalogue holds the same models (a local model
        added with ``add_model_to_config`` makes the next search build it again).
        """
        return self._index_of(self.config_manager.models)

    def _index_of(self, models: Sequence[CatalogueModel]) -> SearchIndex:
        cards = tuple(model.card for model in models)
        same = len(cards) == len(self._indexed_cards) and all(map(is_, cards, self._indexed_cards))
        if self._index is None or not same:
            keys = [model.model_id for model in models]
            self._index = SearchIndex.build(cards, keys=keys)
            self._indexed_cards = cards
        return self._index

    def _walked_selection(self, model: CatalogueModel) -> _WalkedSelection:
        """The selection of ``model`` as :meth:`_selection` reads it, walked once per card."""
        walked = self._walked.get(model.model_id)
        if walked is None or walked.card is not model.card:
            walked = _WalkedSelection(model.card, self._selection(model.model_id))
            self._walked[model.model_id] = walked
        return walked

    def find_matching_models_by_values(
        self,
        values: Sequence[object],
        target_values_operator: str = "AND",
        are_keys_also_matched: bool = False,
        is_case_sensitive: bool = False,
    ) -> list[ModelMatchCandidate]:
        """The models whose selection config holds the search values, as medigan finds them.

        Each value must equal (as text, ignoring case unless ``is_case_sensitive``) a whole
        selection value or list item somewhere in the model's selection, metrics included;
        ``are_keys_also_matched`` compares keys too. ``AND``: every value found; ``OR``: any;
        ``XOR``: exactly one distinct value found.
        """
        if isinstance(values, str) or not values:
            raise BadRequestError(f"give a non-empty list of values to search for, not {values!r}")
        operator = _check_operator(target_values_operator)
        targets = [_compared(value, is_case_sensitive) for value in values]
        target_set = frozenset(targets)
        models = self.config_manager.models
        positions = self._index_of(models).medigan_find_matching(
            [str(value) for value in values],
            operator,
            match_keys=are_keys_also_matched,
            case_sensitive=is_case_sensitive,
        )
        candidates: list[ModelMatchCandidate] = []
        for position in positions:
            model = models[position]
            # The index applied medigan's rule: every candidate it returns is a match.
            candidate = ModelMatchCandidate(
                model_id=model.model_id,
                target_values=targets,
                target_values_operator=operator,
                is_case_sensitive=is_case_sensitive,
                are_keys_also_matched=are_keys_also_matched,
                is_match=True,
            )
            candidate.matched_entries = self._walked_selection(model).matched_entries(
                target_set, are_keys_also_matched, is_case_sensitive
            )
            candidates.append(candidate)
        return candidates

    def find_models_and_rank(
        self,
        values: Sequence[object],
        target_values_operator: str = "AND",
        are_keys_also_matched: bool = False,
        is_case_sensitive: bool = False,
        metric: str = "SSIM",
        order: str = "asc",
    ) -> list[dict[str, Any]]:
        """Search as :meth:`find_matching_models_by_values`, then rank the matches by ``metric``."""
        matching = self.find_matching_models_by_values(
            values, target_values_operator, are_keys_also_matched, is_case_sensitive
        )
        return self.rank_models_by_performance(
            [candidate.model_id for candidate in matching], metric=metric, order=order
        )
