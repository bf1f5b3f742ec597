"""The search index: cards turned into inverted postings once, so that a query reads postings.

Both search faces of :mod:`medigan_catalog.search` are answered here, by the rules they always
had; this module owns them (how a card is tokenised, how a query splits, what medigan compares):

- **own search** (:meth:`SearchIndex.search`): title tokens (title, model id, name) and body
  tokens (every string and number of ``selection`` except ``performance``), each held as
  ``token -> entries`` with the tokens sorted, so that a prefix is a :mod:`bisect` range.
  Filters (``key=value``) read per-field postings: ``namespace``, ``runtime`` and every path of
  ``selection`` that ends in a list or a scalar (a filter on a dict unions the paths below it);
- **medigan's semantics** (:meth:`SearchIndex.medigan_find_matching`): the text of every value
  and list item of the selection as medigan holds it (``str(value)``, imports undone), and of
  every key, as ``text -> entries``; lower-cased lookups go through a map built on first use.

Entries are the newest release of each model, in catalogue order; results are positions in
that order, and :class:`IndexHit` carries the entry's model id, version and title, so a caller
that only prints those never parses a card. The index is updated one entry at a time
(:meth:`SearchIndex.add` gives an entry a new card in its place or inserts a new entry,
:meth:`SearchIndex.remove` drops one), which is what a change feed needs; a removed entry stays
in the postings, ignored, until :meth:`SearchIndex.compact` renumbers them.

:meth:`SearchIndex.dumps` writes a header line (format, the caller's key, the payload's sha256)
and a JSON payload whose postings are base64 delta lists; :meth:`SearchIndex.loads` refuses a
document of another format or key, or one whose bytes changed, rather than trust it. A loaded
index decodes a token's postings when a query first reads them, so loading costs one JSON parse.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import operator as op
import re
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Final, NamedTuple

if TYPE_CHECKING:
    # Only read here, never built: a search answered from a stored index imports no pydantic.
    from medigan_catalog.schema import Card

OPERATORS: Final = ("AND", "OR", "XOR")

# Score of one query term: an exact token match beats a prefix match, and a hit in the title or
# the model id beats a hit in the selection values.
EXACT_MATCH: Final = 2.0
PREFIX_MATCH: Final = 1.0
TITLE_WEIGHT: Final = 2.0
BODY_WEIGHT: Final = 1.0

# Changed whenever a tokenising rule or the document's layout changes, so that an index written
# by another version is rebuilt rather than read with the wrong rules.
INDEX_FORMAT: Final = "medigan-search-index/1"

# Filter keys that name a field of the card itself rather than a path in ``selection``.
CARD_FIELDS: Final = ("namespace", "runtime")

_QUERY_RE = re.compile(r'"(?P<phrase>[^"]*)"|(?P<word>[^\s,]+)')
_WORD_SPLIT_RE = re.compile(r"[^A-Za-z0-9]+")
_SLOT_TYPE: Final = "I"  # uint32
_EMPTY: Final[tuple[int, ...]] = ()

FieldPath = tuple[str, ...]


class SearchIndexInvalidError(ValueError):
    """A stored index that cannot be used: another format, another key, or damaged bytes."""


# ---------------------------------------------------------------------------------------------
# The rules: what a card's tokens are, how a query splits, what medigan compares


def compact(text: str) -> str:
    """Lower-case letters and digits only, so ``WGAN-GP``, ``wgan gp`` and ``WGANGP`` agree."""
    return _WORD_SPLIT_RE.sub("", text).lower()


@lru_cache(maxsize=1 << 16)
def _text_tokens(text: str) -> frozenset[str]:
    # Catalogues repeat their values (modalities, organs, licences) from card to card, so the
    # tokens of a text are kept rather than split again.
    tokens = {word.lower() for word in _WORD_SPLIT_RE.split(text) if word}
    whole = compact(text)
    if whole:
        tokens.add(whole)
    return frozenset(tokens)


def tokens_of(texts: Iterable[str]) -> set[str]:
    """Each text's words and the whole text, all compacted (``"x-ray mammo"`` -> x, ray, ...)."""
    tokens: set[str] = set()
    for text in texts:
        tokens |= _text_tokens(text)
    return tokens


def strings_in(value: object) -> Iterator[str]:
    """Every string and number inside a JSON value, as text (not booleans, not nulls)."""
    # Exact JSON types rather than the ABCs: this runs on every value of every card indexed.
    if isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)


def parse_query(query: str) -> list[str]:
    """Split a query into terms: words separated by spaces or commas, ``"quoted phrases"`` whole.

    A term without a letter or digit (``-``, ``""``) is dropped: it could match nothing.
    """
    terms: list[str] = []
    for match in _QUERY_RE.finditer(query):
        term = match.group("phrase") if match.group("phrase") is not None else match.group("word")
        if term and compact(term):
            terms.append(term)
    return terms


def filter_alternatives(wanted: str) -> list[str]:
    """The compacted alternatives of a filter value: ``"mri, CT"`` -> ``["mri", "ct"]``."""
    return [option for option in (compact(part) for part in wanted.split(",")) if option]


def medigan_text(value: object, case_sensitive: bool) -> str:
    """How medigan compares a config value: ``str(value)``, lower-cased unless case-sensitive.

    Like medigan this turns ``None`` into ``"none"`` and ``True`` into ``"true"``, so those words
    match models with such values.
    """
    text = str(value)
    return text if case_sensitive else text.lower()


def _with_originals(card: Card, selection: dict[str, Any]) -> dict[str, Any]:
    """The card's ``selection`` (its JSON dump) as medigan holds it: the import's original
    values put back. The dicts on the way to a restored value are copied, so ``selection``
    itself is left as it was."""
    if card.compat is None:
        return selection
    restored = dict(selection)
    for path, original in card.compat.original_values.items():
        block, _, rest = path.partition(".")
        if block != "selection" or not rest:
            continue
        *parents, leaf = rest.split(".")
        node: Any = restored
        for part in parents:
            child = node.get(part) if isinstance(node, dict) else None
            if isinstance(child, dict):
                child = dict(child)
                node[part] = child
            node = child
        if isinstance(node, dict):
            node[leaf] = original
    return restored


def _medigan_texts(node: dict[str, Any], values: set[str], keys: set[str]) -> None:
    """Collect what medigan compares in a selection dict: key texts and value texts.

    medigan walks nested dicts, compares list items one by one (a list inside a list as its
    string form, not entered) and every other value as its string form.
    """
    for key, value in node.items():
        keys.add(str(key))
        if isinstance(value, dict):
            _medigan_texts(value, values, keys)
        elif isinstance(value, list):
            values.update(map(str, value))
        else:
            values.add(str(value))


def _field_paths(
    node: dict[str, Any], prefix: FieldPath, found: dict[FieldPath, list[str]]
) -> dict[FieldPath, list[str]]:
    """Each path below a dict that ends in a list or a scalar, with the strings found there.

    A filter on a path that ends in a dict reads every string below it, which is the union of
    the end paths below it; so only end paths are indexed.
    """
    for key, value in node.items():
        path = (*prefix, str(key))
        if isinstance(value, dict):
            _field_paths(value, path, found)
        elif isinstance(value, str):
            found[path] = [value]
        else:
            found[path] = list(strings_in(value))
    return found


@dataclass(frozen=True)
class _CardTexts:
    """Everything the index keeps of one card, computed once."""

    entry: IndexEntry
    title: set[str]
    body: set[str]
    card_fields: dict[FieldPath, list[str]]
    selection_fields: dict[FieldPath, list[str]]
    medigan_values: set[str]
    medigan_keys: set[str]


def _card_texts(card: Card, key: str) -> _CardTexts:
    selection: dict[str, Any] = card.selection.model_dump(mode="json")
    fields = _field_paths(selection, (), {})
    # The body is every string of the selection but its metrics: the end paths outside
    # ``performance`` hold exactly those.
    body: set[str] = set()
    for path, strings in fields.items():
        if path[0] != "performance":
            body |= tokens_of(strings)
    medigan_values: set[str] = set()
    medigan_keys: set[str] = set()
    _medigan_texts(_with_originals(card, selection), medigan_values, medigan_keys)
    return _CardTexts(
        entry=IndexEntry(key, card.model_id, card.version, card.title),
        title=tokens_of([card.title, card.model_id, card.name]),
        body=body,
        card_fields={("namespace",): [card.namespace], ("runtime",): [card.runtime.kind.value]},
        selection_fields=fields,
        medigan_values=medigan_values,
        medigan_keys=medigan_keys,
    )


# ---------------------------------------------------------------------------------------------
# Postings


def _encode(posting: Sequence[int]) -> str:
    """Ascending slots as text: a width letter (B, H, I) and the base64 of the deltas."""
    deltas = array(_SLOT_TYPE, posting[:1])
    deltas.extend(map(op.sub, posting[1:], posting))
    top = max(deltas, default=0)
    width = "B" if top < 1 << 8 else "H" if top < 1 << 16 else _SLOT_TYPE
    packed = array(width, deltas)
    if sys.byteorder != "little":
        packed.byteswap()
    return width + base64.b64encode(packed.tobytes()).decode("ascii")


def _decode(text: object, size: int) -> array[int]:
    """The slots :func:`_encode` wrote; each must be below ``size``."""
    if not isinstance(text, str) or not text or text[0] not in "BHI":
        raise SearchIndexInvalidError("a posting is not a width letter and base64")
    try:
        raw = base64.b64decode(text[1:], validate=True)
        deltas = array(text[0])
        deltas.frombytes(raw)
        if sys.byteorder != "little":
            deltas.byteswap()
        posting = array(_SLOT_TYPE, accumulate(deltas))
    except (ValueError, OverflowError) as error:
        raise SearchIndexInvalidError(f"a posting is damaged: {error}") from None
    if posting and posting[-1] >= size:
        raise SearchIndexInvalidError("a posting names an entry the index does not have")
    return posting


def _decoded(raw: dict[Any, array[int] | str], key: Any, size: int) -> array[int] | None:
    found = raw.get(key)
    if isinstance(found, str):
        found = raw[key] = _decode(found, size)
    return found


def _remap(posting: Iterable[int], mapping: Sequence[int]) -> array[int]:
    return array(_SLOT_TYPE, sorted(p for p in (mapping[slot] for slot in posting) if p >= 0))


class _Postings:
    """``token -> slots`` (ascending), with the tokens sorted for prefix lookups.

    A loaded index holds each posting as its stored text until a query reads it.
    """

    __slots__ = ("_lowered", "_raw", "_size", "_sorted")

    def __init__(self, raw: dict[str, array[int] | str] | None = None, size: int = 0) -> None:
        self._raw: dict[str, array[int] | str] = raw if raw is not None else {}
        self._size = size  # entries of the stored index: what its postings may name
        self._sorted: list[str] | None = None
        self._lowered: dict[str, list[str]] | None = None

    def get(self, token: str) -> array[int] | None:
        return _decoded(self._raw, token, self._size)

    def exact(self, token: str) -> Sequence[int]:
        found = self.get(token)
        return _EMPTY if found is None else found

    def add(self, tokens: Iterable[str], slot: int) -> None:
        """Add ``slot`` to the posting of each token (slots only grow: arrays stay ascending)."""
        raw = self._raw
        for token in tokens:
            found = raw.get(token)
            if found is None:
                raw[token] = array(_SLOT_TYPE, (slot,))
                self._sorted = None
                self._lowered = None
            else:
                if isinstance(found, str):
                    found = raw[token] = _decode(found, self._size)
                found.append(slot)

    def prefixed(self, prefix: str) -> Iterator[array[int]]:
        """The postings of every token that starts with ``prefix`` (itself included)."""
        if self._sorted is None:
            # Stored indexes list their tokens sorted already, which timsort sees in one pass.
            self._sorted = sorted(self._raw)
        tokens = self._sorted
        for position in range(bisect.bisect_left(tokens, prefix), len(tokens)):
            token = tokens[position]
            if not token.startswith(prefix):
                break
            found = self.get(token)
            if found is not None:
                yield found

    def any_prefixed(self, prefixes: Iterable[str]) -> set[int]:
        found: set[int] = set()
        for prefix in prefixes:
            for posting in self.prefixed(prefix):
                found.update(posting)
        return found

    def lowered(self, text: str) -> list[str]:
        """The tokens whose lower-case form is ``text``."""
        if self._lowered is None:
            lowered: dict[str, list[str]] = {}
            for token in self._raw:
                lowered.setdefault(token.lower(), []).append(token)
            self._lowered = lowered
        return self._lowered.get(text, [])

    def remapped(self, mapping: Sequence[int]) -> _Postings:
        """These postings with each slot replaced by ``mapping[slot]`` (dropped where -1)."""
        raw: dict[str, array[int] | str] = {}
        for token in self._raw:
            kept = _remap(self.get(token) or (), mapping)
            if kept:
                raw[token] = kept
        return _Postings(raw)

    def to_json(self) -> dict[str, str]:
        # A posting still in its stored text is already in canonical form.
        return {
            token: value if isinstance(value, str) else _encode(value)
            for token, value in sorted(self._raw.items())
        }

    @classmethod
    def from_json(cls, data: object, size: int) -> _Postings:
        if not isinstance(data, dict):
            raise SearchIndexInvalidError("a postings section is not an object")
        return cls(data, size)


class _Fields:
    """Per-field postings for filters: each end path's tokens, and the entries with any string.

    Paths are tuples of keys, so a key that itself contains a dot never answers a dotted filter
    (``selection["a.b"]`` is not ``a.b``, as in a walk of the dict).
    """

    __slots__ = ("_present", "_size", "_tokens", "_under")

    def __init__(
        self,
        tokens: dict[FieldPath, _Postings] | None = None,
        present: dict[FieldPath, array[int] | str] | None = None,
        size: int = 0,
    ) -> None:
        self._tokens: dict[FieldPath, _Postings] = tokens if tokens is not None else {}
        self._present: dict[FieldPath, array[int] | str] = present if present is not None else {}
        self._size = size
        self._under: dict[FieldPath, list[FieldPath]] = {}

    def add(self, fields: Mapping[FieldPath, list[str]], slot: int) -> None:
        # A path without strings answers no filter, so only paths with strings are kept.
        for path, strings in fields.items():
            if not strings:
                continue
            postings = self._tokens.get(path)
            if postings is None:
                postings = self._tokens[path] = _Postings()
                self._present[path] = array(_SLOT_TYPE)
                self._under.clear()
            present = self._present[path]
            if isinstance(present, str):
                present = self._present[path] = _decode(present, self._size)
            present.append(slot)
            postings.add(tokens_of(strings), slot)

    def _paths_under(self, path: FieldPath) -> list[FieldPath]:
        """The indexed end paths equal to ``path`` or below it."""
        found = self._under.get(path)
        if found is None:
            depth = len(path)
            found = [known for known in self._tokens if known[:depth] == path]
            self._under[path] = found
        return found

    def matching(self, path: FieldPath, alternatives: Sequence[str]) -> set[int]:
        """Slots whose field at ``path`` has a token that starts with one of ``alternatives``;
        without alternatives, the slots whose field holds any string at all."""
        found: set[int] = set()
        for known in self._paths_under(path):
            if alternatives:
                found |= self._tokens[known].any_prefixed(alternatives)
            else:
                found.update(_decoded(self._present, known, self._size) or ())
        return found

    def remapped(self, mapping: Sequence[int]) -> _Fields:
        tokens: dict[FieldPath, _Postings] = {}
        present: dict[FieldPath, array[int] | str] = {}
        for path, postings in self._tokens.items():
            kept = _remap(_decoded(self._present, path, self._size) or (), mapping)
            if kept:
                tokens[path] = postings.remapped(mapping)
                present[path] = kept
        return _Fields(tokens, present)

    def to_json(self) -> list[Any]:
        documents: list[Any] = []
        for path in sorted(self._tokens):
            present = self._present[path]
            documents.append(
                [
                    list(path),
                    present if isinstance(present, str) else _encode(present),
                    self._tokens[path].to_json(),
                ]
            )
        return documents

    @classmethod
    def from_json(cls, data: object, size: int) -> _Fields:
        if not isinstance(data, list):
            raise SearchIndexInvalidError("a fields section is not a list")
        tokens: dict[FieldPath, _Postings] = {}
        present: dict[FieldPath, array[int] | str] = {}
        for item in data:
            if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], list)):
                raise SearchIndexInvalidError("a field is not [path, present, tokens]")
            path = tuple(str(part) for part in item[0])
            if not isinstance(item[1], str):
                raise SearchIndexInvalidError("a field's present posting is not text")
            present[path] = item[1]
            tokens[path] = _Postings.from_json(item[2], size)
        return cls(tokens, present, size)


# ---------------------------------------------------------------------------------------------
# The index


@dataclass(frozen=True)
class IndexEntry:
    """What the index keeps of an entry: its key, and model id, version and title for display.

    The key names the entry in :meth:`SearchIndex.add` and :meth:`SearchIndex.remove`; it is the
    model id unless the builder chose others (one entry per model is the usual index).
    """

    key: str
    model_id: str
    version: str
    title: str

    @property
    def release_id(self) -> str:
        """``namespace/name@version``."""
        return f"{self.model_id}@{self.version}"


class IndexHit(NamedTuple):
    """One search result: the entry's position in catalogue order, the entry, score and terms.

    A named tuple: a broad search makes thousands, and a tuple is the cheapest record to make.
    """

    position: int
    entry: IndexEntry
    score: float
    matched_terms: tuple[str, ...]


def _entry_from_json(item: object) -> IndexEntry:
    if not isinstance(item, list) or len(item) not in (3, 4):
        raise SearchIndexInvalidError("an entry is not [model id, version, title(, key)]")
    model_id, version, title = (str(part) for part in item[:3])
    key = str(item[3]) if len(item) == 4 else model_id
    return IndexEntry(key, model_id, version, title)


class SearchIndex:
    """Postings over the newest release of each model, in catalogue order.

    Build one with :meth:`build` (or :meth:`loads` a stored one), query it with :meth:`search`
    and :meth:`medigan_find_matching`, keep it current with :meth:`add` and :meth:`remove`.
    Writers need one thread; queries only fill caches (decoded postings, sorted token lists)
    whose racing fills agree, so threads may share an index that is no longer being updated.
    """

    def __init__(self) -> None:
        # Slot i is the i-th entry ever added (None once removed); postings hold slots.
        self._slots: list[IndexEntry | None] = []
        self._by_key: dict[str, int] = {}
        self._order: list[int] = []  # live slots in catalogue order
        self._positions: list[int] | None = []  # slot -> position; -1 for a removed slot
        self._title = _Postings()
        self._body = _Postings()
        self._card_fields = _Fields()
        self._selection_fields = _Fields()
        self._medigan_values = _Postings()
        self._medigan_keys = _Postings()

    # -- building and updating ---------------------------------------------------------------

    @classmethod
    def build(cls, cards: Iterable[Card], *, keys: Iterable[str] | None = None) -> SearchIndex:
        """The index of ``cards`` in catalogue order, each under its model id (or under the
        matching item of ``keys``); a key given twice keeps its later card in the first's place.
        """
        index = cls()
        if keys is None:
            for card in cards:
                index.add(card)
        else:
            for card, key in zip(cards, keys, strict=True):
                index.add(card, key=key)
        return index

    def __len__(self) -> int:
        return len(self._order)

    def add(self, card: Card, *, key: str | None = None, position: int | None = None) -> None:
        """Index ``card`` as the entry ``key`` (default: its model id).

        An entry already in the index keeps its place and gets the new card (a model's new
        release); a new one goes to ``position`` in catalogue order (default: the end).
        """
        key = card.model_id if key is None else key
        texts = _card_texts(card, key)
        old = self._by_key.get(key)
        slot = len(self._slots)
        self._slots.append(texts.entry)
        self._by_key[key] = slot
        if old is not None:
            self._order[self._slot_positions()[old]] = slot
            self._slots[old] = None
        elif position is None or position >= len(self._order):
            self._order.append(slot)
        else:
            self._order.insert(max(position, 0), slot)
        self._positions = None
        self._title.add(texts.title, slot)
        self._body.add(texts.body, slot)
        self._card_fields.add(texts.card_fields, slot)
        self._selection_fields.add(texts.selection_fields, slot)
        self._medigan_values.add(texts.medigan_values, slot)
        self._medigan_keys.add(texts.medigan_keys, slot)
        self._compact_when_sparse()

    def remove(self, key: str) -> bool:
        """Drop the entry ``key`` (a model id, unless the builder chose keys); False if absent."""
        slot = self._by_key.pop(key, None)
        if slot is None:
            return False
        del self._order[self._slot_positions()[slot]]
        self._slots[slot] = None
        self._positions = None
        self._compact_when_sparse()
        return True

    def _compact_when_sparse(self) -> None:
        # Removed entries stay in the postings until compaction; once they outnumber the live
        # ones the postings cost twice what they should, so renumber.
        if len(self._slots) > 2 * len(self._order) + 64:
            self.compact()

    def compact(self) -> None:
        """Renumber the postings by catalogue position, dropping removed entries."""
        if len(self._slots) == len(self._order) and all(
            slot == position for position, slot in enumerate(self._order)
        ):
            return
        mapping = self._slot_positions()
        self._slots = [self._slots[slot] for slot in self._order]
        self._by_key = {
            entry.key: position for position, entry in enumerate(self._slots) if entry is not None
        }
        self._order = list(range(len(self._slots)))
        self._positions = list(self._order)
        self._title = self._title.remapped(mapping)
        self._body = self._body.remapped(mapping)
        self._card_fields = self._card_fields.remapped(mapping)
        self._selection_fields = self._selection_fields.remapped(mapping)
        self._medigan_values = self._medigan_values.remapped(mapping)
        self._medigan_keys = self._medigan_keys.remapped(mapping)

    def _slot_positions(self) -> list[int]:
        if self._positions is None:
            positions = [-1] * len(self._slots)
            for position, slot in enumerate(self._order):
                positions[slot] = position
            self._positions = positions
        return self._positions

    # -- reading -------------------------------------------------------------------------------

    @property
    def entries(self) -> list[IndexEntry]:
        """Every entry, in catalogue order."""
        return [self.entry(position) for position in range(len(self._order))]

    def entry(self, position: int) -> IndexEntry:
        """The entry at ``position`` in catalogue order."""
        entry = self._slots[self._order[position]]
        assert entry is not None  # the order lists live slots only
        return entry

    def _hit_positions(self, slots: Iterable[int]) -> list[int]:
        """The catalogue positions of the live ``slots``, ascending."""
        positions = self._slot_positions()
        return sorted(p for p in (positions[slot] for slot in slots) if p >= 0)

    def medigan_find_matching(
        self,
        values: Sequence[str],
        operator: str = "AND",
        *,
        match_keys: bool = False,
        case_sensitive: bool = False,
    ) -> list[int]:
        """The positions medigan's ``find_matching_models_by_values`` would return, in order.

        The rules are :func:`medigan_catalog.search.medigan_find_matching`'s: whole-string
        equality with every value and list item of the selection as medigan holds it, metrics
        included; keys too with ``match_keys``; ``AND``, ``OR``, ``XOR`` (exactly one distinct
        value found), any other operator matches nothing; empty ``values`` is a ``ValueError``.
        """
        if not values:
            raise ValueError("give at least one value to search for")
        if operator not in OPERATORS:
            return []
        targets = {medigan_text(value, case_sensitive) for value in values}
        per_target = [self._medigan_slots(target, match_keys, case_sensitive) for target in targets]
        if operator == "AND":
            per_target.sort(key=len)
            found = per_target[0]
            for slots in per_target[1:]:
                found &= slots
        elif operator == "OR":
            found = set().union(*per_target)
        else:
            counts = Counter(slot for slots in per_target for slot in slots)
            found = {slot for slot, count in counts.items() if count == 1}
        return self._hit_positions(found)

    def _medigan_slots(self, target: str, match_keys: bool, case_sensitive: bool) -> set[int]:
        """Slots holding ``target`` as a value (or as a key), compared as medigan compares."""
        slots: set[int] = set()
        sections = [self._medigan_values, self._medigan_keys][: 2 if match_keys else 1]
        for section in sections:
            for text in [target] if case_sensitive else section.lowered(target):
                slots.update(section.exact(text))
        return slots

    def search(
        self,
        query: str = "",
        *,
        filters: Mapping[str, str] | None = None,
        operator: str = "AND",
    ) -> list[IndexHit]:
        """Search by words and filters; best hits first, ties in catalogue order.

        The rules are :func:`medigan_catalog.search.search`'s: a term matches an entry when,
        compacted, it equals or starts one of its tokens (exact beats prefix, title beats body);
        ``AND``, ``OR`` or ``XOR`` (exactly one distinct term) combine the terms; every filter
        must hold. With neither query nor filters every entry is a hit.
        """
        mode = operator.upper()
        if mode not in OPERATORS:
            raise ValueError(f"operator must be one of {', '.join(OPERATORS)}, not {operator!r}")
        terms = parse_query(query)
        allowed = self._filtered(filters) if filters else None
        if not terms:
            slots: Iterable[int] = range(len(self._slots)) if allowed is None else allowed
            return [self._hit(position, 0.0, ()) for position in self._hit_positions(slots)]

        wanted = [compact(term) for term in terms]
        scores = {key: self._term_scores(key) for key in dict.fromkeys(wanted)}
        if mode == "AND":
            ordered = sorted(scores.values(), key=len)
            candidates = set(ordered[0])
            for term_scores in ordered[1:]:
                candidates.intersection_update(term_scores)
        else:
            candidates = set().union(*scores.values())
        if allowed is not None:
            candidates &= allowed

        positions = self._slot_positions()
        # (-score, position, matched terms): sorted as tuples, best first, then catalogue order.
        ranked: list[tuple[float, int, tuple[str, ...]]] = []
        if len(terms) == 1:
            # One term: its score is the score, and it is the one term matched (XOR holds too).
            term_scores, matched_one = scores[wanted[0]], (terms[0],)
            ranked = [
                (-term_scores[slot], positions[slot], matched_one)
                for slot in candidates
                if positions[slot] >= 0
            ]
        else:
            per_term = [(term, key, scores[key]) for term, key in zip(terms, wanted, strict=True)]
            for slot in candidates:
                position = positions[slot]
                if position < 0:
                    continue
                score = 0.0
                matched: list[str] = []
                distinct: set[str] = set()
                for term, key, term_scores in per_term:
                    term_score = term_scores.get(slot)
                    if term_score is not None:
                        score += term_score
                        matched.append(term)
                        distinct.add(key)
                if mode == "XOR" and len(distinct) != 1:
                    continue
                ranked.append((-score, position, tuple(matched)))
        ranked.sort()
        return [self._hit(position, -score, matched) for score, position, matched in ranked]

    def _hit(self, position: int, score: float, matched: tuple[str, ...]) -> IndexHit:
        entry = self._slots[self._order[position]]
        assert entry is not None  # the order lists live slots only
        return IndexHit(position, entry, score, matched)

    def _term_scores(self, wanted: str) -> dict[int, float]:
        """slot -> the best score of one compacted term: exact beats prefix, title beats body."""
        scores: dict[int, float] = {}
        # Written from the lowest score to the highest, so that each slot keeps its best.
        levels = (
            (self._body.prefixed(wanted), PREFIX_MATCH * BODY_WEIGHT),
            ((self._body.exact(wanted),), EXACT_MATCH * BODY_WEIGHT),
            (self._title.prefixed(wanted), PREFIX_MATCH * TITLE_WEIGHT),
            ((self._title.exact(wanted),), EXACT_MATCH * TITLE_WEIGHT),
        )
        for postings, score in levels:
            for posting in postings:
                scores.update(dict.fromkeys(posting, score))
        return scores

    def _filtered(self, filters: Mapping[str, str]) -> set[int]:
        """Slots for which every filter holds (see :func:`medigan_catalog.search.search`)."""
        allowed: set[int] | None = None
        for key, wanted in filters.items():
            name = key.strip()
            if name in CARD_FIELDS:
                passing = self._card_fields.matching((name,), filter_alternatives(wanted))
            else:
                path = tuple(name.split("."))
                passing = self._selection_fields.matching(path, filter_alternatives(wanted))
            allowed = passing if allowed is None else allowed & passing
            if not allowed:
                return set()
        return allowed if allowed is not None else set(range(len(self._slots)))

    # -- storing -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The canonical document of this index: equal indexes give equal documents.

        Positions replace slots, so an index updated entry by entry and one built afresh from
        the same cards in the same order give the same document.
        """
        self.compact()
        return {
            "format": INDEX_FORMAT,
            # The key is left out where it is the model id, as it is in a catalogue's index.
            "entries": [
                [e.model_id, e.version, e.title, *([e.key] if e.key != e.model_id else [])]
                for e in self.entries
            ],
            "title": self._title.to_json(),
            "body": self._body.to_json(),
            "card_fields": self._card_fields.to_json(),
            "selection_fields": self._selection_fields.to_json(),
            "medigan_values": self._medigan_values.to_json(),
            "medigan_keys": self._medigan_keys.to_json(),
        }

    @classmethod
    def from_json(cls, data: object) -> SearchIndex:
        """The index a :meth:`to_json` document describes; :class:`SearchIndexInvalidError`
        when it is of another format or damaged."""
        if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
            raise SearchIndexInvalidError(f"not a {INDEX_FORMAT} document")
        try:
            entries = [_entry_from_json(item) for item in data["entries"]]
            size = len(entries)
            index = cls()
            index._slots = list(entries)
            index._by_key = {entry.key: slot for slot, entry in enumerate(entries)}
            if len(index._by_key) != size:
                raise SearchIndexInvalidError("two entries have the same key")
            index._order = list(range(size))
            index._positions = list(range(size))
            index._title = _Postings.from_json(data["title"], size)
            index._body = _Postings.from_json(data["body"], size)
            index._card_fields = _Fields.from_json(data["card_fields"], size)
            index._selection_fields = _Fields.from_json(data["selection_fields"], size)
            index._medigan_values = _Postings.from_json(data["medigan_values"], size)
            index._medigan_keys = _Postings.from_json(data["medigan_keys"], size)
        except (KeyError, TypeError) as error:
            raise SearchIndexInvalidError(f"damaged index: {error!r}") from None
        return index

    def dumps(self, key: str, *, notes: Mapping[str, Any] | None = None) -> bytes:
        """The stored form: a JSON header line (format, ``key``, the payload's sha256, and the
        caller's ``notes``), then :meth:`to_json` as compact JSON. ``key`` names what the index
        was built from; :meth:`stored_header` reads the header back without the payload."""
        payload = json.dumps(self.to_json(), separators=(",", ":")).encode()
        header = {
            **(notes or {}),
            "format": INDEX_FORMAT,
            "key": key,
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
        return json.dumps(header, separators=(",", ":")).encode() + b"\n" + payload

    @staticmethod
    def stored_header(data: bytes) -> dict[str, Any]:
        """The header line of a stored index; :class:`SearchIndexInvalidError` if it has none."""
        head, newline, _ = data.partition(b"\n")
        try:
            header = json.loads(head)
        except ValueError:
            header = None
        if not newline or not isinstance(header, dict) or header.get("format") != INDEX_FORMAT:
            raise SearchIndexInvalidError(f"not a {INDEX_FORMAT} document")
        return header

    @classmethod
    def loads(cls, data: bytes, key: str) -> SearchIndex:
        """The index :meth:`dumps` stored for ``key``.

        Raises :class:`SearchIndexInvalidError` when it is of another format, was built for
        another key, or its bytes are not the ones written.
        """
        header = cls.stored_header(data)
        payload = data.partition(b"\n")[2]
        if header.get("key") != key:
            raise SearchIndexInvalidError("the index was built from another catalogue")
        if header.get("sha256") != hashlib.sha256(payload).hexdigest():
            raise SearchIndexInvalidError("the index's bytes are not the ones written")
        try:
            document = json.loads(payload)
        except ValueError as error:
            raise SearchIndexInvalidError(f"the index is not JSON: {error}") from None
        return cls.from_json(document)
