"""The search index answers what the linear search answered, and stays right entry by entry.

``search_oracle`` is the search as it was before the index (every card walked per query). The
differential tests draw seeded random queries (words, prefixes, phrases, punctuation, case,
commas), operators and filters from the real medigan catalogue, the zoo's cards and a few cards
built to hit the corners (dotted keys, empty and punctuation-only values, lists of dicts,
booleans and nulls), and require the same hits, scores, matched terms and order.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from medigan_catalog.medigan_compat import ImportResult
from medigan_catalog.schema import Card, card_from_json
from medigan_catalog.search import medigan_find_matching, search
from medigan_catalog.search_index import (
    INDEX_FORMAT,
    IndexHit,
    SearchIndex,
    SearchIndexInvalidError,
)


def _load_oracle() -> ModuleType:
    # Loaded by path: the catalog's tests are not a package, and run from two working folders.
    path = Path(__file__).with_name("search_oracle.py")
    spec = importlib.util.spec_from_file_location("search_oracle", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


oracle = _load_oracle()


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible test draws, not secrets


ROUNDS = 400
JUNK = ["zzz", "x", "0", "1", "2021", "none", "true", "ROI", "gan", "-", "a.b", "Röntgen"]
OPERATORS = ["AND", "OR", "XOR", "and", "or", "xor"]


def _edge_card(name: str, selection: dict[str, Any], title: str | None = None) -> Card:
    return card_from_json(
        {
            "model_id": f"edge/{name}",
            "version": "1.0.0",
            "runtime": {"kind": "medigan-legacy" if name.endswith("legacy") else "v2"},
            "output": {"height": 8, "width": 8},
            "selection": selection,
            "description": {"title": title} if title else {},
        }
    )


def _edge_cards() -> list[Card]:
    return [
        _edge_card(
            "dotted-keys",
            {
                "a.b": "dotted value",
                "a": {"b": "nested value", "c": ["x-ray", "CT"]},
                "performance": {"FID.v2": 3.5, "FID": {"v2": 4.5}, "note": "n/a"},
                "namespace": "shadowed",
            },
            title="Dotted: keys & values",
        ),
        _edge_card(
            "empty-values-legacy",
            {
                "modality": ["", "---", "MRI"],
                "type": "",
                "tags": [],
                "organ": None,
                "year": "2021",
                "": "empty key",
                "extra": {"deep": {"deeper": ["Röntgen", "T1-weighted"]}},
            },
            title="  ",
        ),
        _edge_card(
            "lists-of-dicts",
            {
                "dataset": ["INbreast"],
                "sites": [{"name": "Barcelona", "n": 12}, ["nested", "list"], True, None, 0.5],
                "flags": {"public": True, "count": 0, "ratio": 1e-05},
                "performance": {"SSIM": None, "IS": [1, 2.5], "turing_test": {"AUC": 0.5}},
            },
            title="Lists, dicts, WGAN-GP and x-ray mammography",
        ),
        _edge_card("bare", {}),
    ]


def _zoo_cards(repo_root: Path) -> list[Card]:
    paths = sorted(repo_root.glob("zoo/*/package/card.json"))
    return [card_from_json(json.loads(path.read_text(encoding="utf-8"))) for path in paths]


@pytest.fixture(scope="module")
def cards(medigan_import: ImportResult, repo_root: Path) -> list[Card]:
    zoo = _zoo_cards(repo_root)
    assert zoo, "the zoo's cards are missing"
    return [*medigan_import.cards, *zoo, *_edge_cards()]


@pytest.fixture(scope="module")
def index(cards: list[Card]) -> SearchIndex:
    return SearchIndex.build(cards)


def _walk(node: object, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, str(key)))


class Vocabulary:
    """Words, values, keys and field paths of the cards, to draw queries from."""

    def __init__(self, cards: list[Card]) -> None:
        words: set[str] = set()
        values: set[str] = set()
        paths: set[str] = {"namespace", "runtime", " modality ", "vendor", "performance.FID.v2"}
        for card in cards:
            selection = card.selection.model_dump(mode="json")
            for path, node in _walk(selection):
                if path:
                    paths.add(".".join(path))
                if isinstance(node, list):
                    values.update(str(item) for item in node)
                elif not isinstance(node, dict):
                    values.add(str(node))
            for path, node in _walk(oracle._medigan_selection(card)):
                values.update(path)
                if not isinstance(node, dict | list):
                    values.add(str(node))
            for text in [card.title, card.model_id, card.name, *values]:
                words.update(part for part in text.replace("-", " ").split() if part)
        self.words = sorted(words | set(JUNK))
        self.values = sorted(values | set(JUNK))
        self.paths = sorted(paths)

    def term(self, rng: random.Random) -> str:
        word = rng.choice(self.words)
        roll = rng.random()
        if roll < 0.3:
            return word[: rng.randint(1, len(word))]
        if roll < 0.4:
            return f'"{word} {rng.choice(self.words)}"'
        if roll < 0.5:
            return f'"{rng.choice(self.values)}"'
        if roll < 0.6:
            return rng.choice([word.upper(), word.lower(), f"{word}-", f"-{word[:3]}.{word[3:]}"])
        if roll < 0.65:
            return rng.choice(['""', "-", ",", '"', "''"])
        return word

    def query(self, rng: random.Random) -> str:
        terms = [self.term(rng) for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4]))]
        return rng.choice([" ", ", ", ",", "  "]).join(terms)

    def filters(self, rng: random.Random) -> dict[str, str] | None:
        count = rng.choice([0, 0, 1, 1, 2])
        if not count:
            return rng.choice([None, {}])
        found: dict[str, str] = {}
        for _ in range(count):
            word = rng.choice(self.words)
            value = rng.choice(
                [
                    word[: rng.randint(1, len(word))],
                    word,
                    f"{word},{rng.choice(self.words)[:3]}",
                    "",
                    ",",
                    rng.choice(self.values),
                ]
            )
            found[rng.choice(self.paths)] = value
        return found

    def medigan_values(self, rng: random.Random) -> list[str]:
        picked = [rng.choice(self.values) for _ in range(rng.randint(1, 3))]
        return [rng.choice([value, value.lower(), value.upper()]) for value in picked]


def _oracle_hits(cards: list[Card], query: str, **options: Any) -> list[tuple[Any, ...]]:
    positions = {id(card): position for position, card in enumerate(cards)}
    return [
        (positions[id(hit.card)], hit.score, hit.matched_terms)
        for hit in oracle.search(cards, query, **options)
    ]


def _index_hits(hits: list[IndexHit]) -> list[tuple[Any, ...]]:
    return [(hit.position, hit.score, hit.matched_terms) for hit in hits]


def test_own_search_equals_the_linear_search(cards: list[Card], index: SearchIndex) -> None:
    vocabulary = Vocabulary(cards)
    rng = _rng(20240611)
    nonempty = 0
    for _ in range(ROUNDS):
        query = vocabulary.query(rng)
        filters = vocabulary.filters(rng)
        operator = rng.choice(OPERATORS)
        expected = _oracle_hits(cards, query, filters=filters, operator=operator)
        found = _index_hits(index.search(query, filters=filters, operator=operator))
        assert found == expected, (query, filters, operator)
        nonempty += 0 < len(expected) < len(cards)
    # The draws must exercise matching, not only "everything" and "nothing".
    assert nonempty > ROUNDS // 4


def test_medigan_semantics_equal_the_linear_search(cards: list[Card], index: SearchIndex) -> None:
    vocabulary = Vocabulary(cards)
    rng = _rng(1_000_2021)
    nonempty = 0
    for _ in range(ROUNDS):
        values = vocabulary.medigan_values(rng)
        operator = rng.choice([*OPERATORS, "NAND"])
        options = {"match_keys": rng.random() < 0.4, "case_sensitive": rng.random() < 0.3}
        expected = oracle.medigan_find_matching(cards, values, operator, **options)
        found = index.medigan_find_matching(values, operator, **options)
        assert [cards[position] for position in found] == expected, (values, operator, options)
        nonempty += bool(expected)
    assert nonempty > ROUNDS // 4


def test_card_level_functions_answer_through_an_index(cards: list[Card]) -> None:
    rng = _rng(7)
    vocabulary = Vocabulary(cards)
    for _ in range(40):
        query, filters = vocabulary.query(rng), vocabulary.filters(rng)
        hits = search(cards, query, filters=filters, operator="OR")
        expected = oracle.search(cards, query, filters=filters, operator="OR")
        assert [(h.card, h.score, h.matched_terms) for h in hits] == [
            (h.card, h.score, h.matched_terms) for h in expected
        ]
        values = vocabulary.medigan_values(rng)
        assert medigan_find_matching(cards, values, "OR") == oracle.medigan_find_matching(
            cards, values, "OR"
        )


def test_two_cards_of_one_model_stay_two_hits(cards: list[Card]) -> None:
    newer = cards[0].model_copy(update={"version": "2.0.0"})
    both = [cards[0], newer]
    assert [hit.card for hit in search(both, "dcgan")] == both
    assert medigan_find_matching(both, ["dcgan"]) == both


def test_operators_and_empty_values_are_checked_as_before(index: SearchIndex) -> None:
    with pytest.raises(ValueError, match="operator"):
        index.search("x", operator="NAND")
    with pytest.raises(ValueError, match="at least one value"):
        index.medigan_find_matching([])
    assert index.medigan_find_matching(["dcgan"], "NAND") == []


def test_hits_carry_what_the_command_line_prints(cards: list[Card], index: SearchIndex) -> None:
    hit = index.search("00001_DCGAN_MMG_CALC_ROI")[0]
    card = cards[hit.position]
    assert (hit.entry.model_id, hit.entry.version, hit.entry.title) == (
        card.model_id,
        card.version,
        card.title,
    )
    assert hit.entry.release_id == card.release_id


# -- updates ----------------------------------------------------------------------------------


def test_updates_one_entry_at_a_time_equal_a_rebuild(cards: list[Card]) -> None:
    rng = _rng(99)
    vocabulary = Vocabulary(cards)
    current: list[Card] = list(cards[:20])
    spare: list[Card] = list(cards[20:])
    index = SearchIndex.build(current)
    for step in range(300):
        roll = rng.random()
        if roll < 0.3 and current:
            gone = current.pop(rng.randrange(len(current)))
            assert index.remove(gone.model_id)
            spare.append(gone)
        elif roll < 0.6 and spare:
            card = spare.pop(rng.randrange(len(spare)))
            position = rng.randint(0, len(current))
            index.add(card, position=position)
            current.insert(position, card)
        elif current:
            # A new release of a model already indexed keeps the model's place.
            place = rng.randrange(len(current))
            release = current[place].model_copy(update={"version": f"{step + 2}.0.0"})
            index.add(release)
            current[place] = release
        if step % 50 == 0:
            query, filters = vocabulary.query(rng), vocabulary.filters(rng)
            expected = _oracle_hits(current, query, filters=filters, operator="OR")
            assert _index_hits(index.search(query, filters=filters, operator="OR")) == expected
    assert not index.remove("nobody/nothing")
    assert index.to_json() == SearchIndex.build(current).to_json()
    assert [entry.release_id for entry in index.entries] == [c.release_id for c in current]


def test_a_removed_then_added_entry_equals_a_rebuild(cards: list[Card]) -> None:
    index = SearchIndex.build(cards)
    index.remove(cards[3].model_id)
    index.add(cards[3], position=3)
    assert index.to_json() == SearchIndex.build(cards).to_json()


def test_a_loaded_index_is_updated_like_a_built_one(cards: list[Card]) -> None:
    loaded = SearchIndex.loads(SearchIndex.build(cards[:-1]).dumps("k"), "k")
    loaded.remove(cards[0].model_id)
    loaded.add(cards[0], position=0)
    loaded.add(cards[-1])
    assert loaded.to_json() == SearchIndex.build(cards).to_json()


# -- storing ----------------------------------------------------------------------------------


def test_a_stored_index_answers_as_the_built_one(cards: list[Card], index: SearchIndex) -> None:
    loaded = SearchIndex.loads(index.dumps("serial-7"), "serial-7")
    rng = _rng(3)
    vocabulary = Vocabulary(cards)
    for _ in range(60):
        query, filters = vocabulary.query(rng), vocabulary.filters(rng)
        assert _index_hits(loaded.search(query, filters=filters)) == _index_hits(
            index.search(query, filters=filters)
        )
        values = vocabulary.medigan_values(rng)
        assert loaded.medigan_find_matching(values, "OR") == index.medigan_find_matching(
            values, "OR"
        )
    assert loaded.entries == index.entries
    assert loaded.to_json() == index.to_json()


def test_a_stored_index_of_another_key_or_format_is_refused(index: SearchIndex) -> None:
    stored = index.dumps("serial-7")
    with pytest.raises(SearchIndexInvalidError, match="another catalogue"):
        SearchIndex.loads(stored, "serial-8")
    other_format = stored.replace(INDEX_FORMAT.encode(), b"medigan-search-index/0", 1)
    with pytest.raises(SearchIndexInvalidError, match="not a"):
        SearchIndex.loads(other_format, "serial-7")


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: data[:-40] + bytes(reversed(data[-40:])),
        lambda data: data.replace(b'"title":{', b'"title":[', 1),
        lambda data: b"",
        lambda data: b"\x00\xff" * 10,
    ],
)
def test_damaged_bytes_are_refused(index: SearchIndex, damage: Any) -> None:
    with pytest.raises(SearchIndexInvalidError):
        SearchIndex.loads(damage(index.dumps("k")), "k")


def test_a_document_with_bad_postings_is_refused(index: SearchIndex) -> None:
    document = index.to_json()
    token = next(iter(document["title"]))
    document["title"][token] = "B" + "/w=="  # position 255: beyond a 30-odd entry index
    broken = SearchIndex.from_json(document)
    with pytest.raises(SearchIndexInvalidError, match="does not have"):
        broken.search(token)
    with pytest.raises(SearchIndexInvalidError, match="damaged"):
        SearchIndex.from_json({"format": INDEX_FORMAT, "entries": []})
