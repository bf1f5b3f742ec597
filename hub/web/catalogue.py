"""The catalogue page's facets, sorting and rows: plain functions over the search's entries.

A facet is a property of a model's newest release that a visitor narrows by (modality, organ,
model type, licence, runtime, whether the hub evaluated it, which hub it comes from). Values are
compared without case, and shown as first spelled; a model with several values (two modalities)
counts under each. Counts are taken over the entries that the other chosen facets leave, so a
visitor sees how many models each further choice would keep.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from hub.registry.selectors import CatalogEntry
from medigan_catalog.modality import modality_family

_NEVER: Final = datetime.min.replace(tzinfo=UTC)
EVALUATED: Final = "evaluated"
NOT_EVALUATED: Final = "not evaluated"


@dataclass(frozen=True)
class FacetContext:
    """What the entries alone do not say: which releases the hub evaluated, and its name."""

    evaluated_release_ids: frozenset[int]
    hub_name: str


def _modality(entry: CatalogEntry, _: FacetContext) -> list[str]:
    # Families, not spellings: medigan's cards say MMG, Mammogram and full-field digital MMG
    # for one modality, which as facet values would split one choice into many.
    return [modality_family(entry.card.selection.modality)]


def _organ(entry: CatalogEntry, _: FacetContext) -> list[str]:
    return list(entry.card.selection.organ or [])


def _model_type(entry: CatalogEntry, _: FacetContext) -> list[str]:
    return [entry.card.selection.type] if entry.card.selection.type else []


def _licence(entry: CatalogEntry, _: FacetContext) -> list[str]:
    # medigan's cards name it under selection.license; ours under provenance.licence.
    licence = entry.card.provenance.licence or entry.card.selection.license
    return [licence] if licence else []


def _runtime(entry: CatalogEntry, _: FacetContext) -> list[str]:
    return [entry.card.runtime.kind.value]


def _evaluation(entry: CatalogEntry, context: FacetContext) -> list[str]:
    evaluated = entry.release.pk in context.evaluated_release_ids
    return [EVALUATED if evaluated else NOT_EVALUATED]


def _hub(entry: CatalogEntry, context: FacetContext) -> list[str]:
    return [entry.release.origin_hub or context.hub_name]


@dataclass(frozen=True)
class Facet:
    key: str
    label: str
    values_of: Callable[[CatalogEntry, FacetContext], list[str]]


FACETS: Final = (
    Facet("modality", "Modality", _modality),
    Facet("organ", "Organ", _organ),
    Facet("type", "Model type", _model_type),
    Facet("licence", "Licence", _licence),
    Facet("runtime", "Runtime", _runtime),
    Facet("evaluation", "Evaluation", _evaluation),
    Facet("hub", "Hub", _hub),
)
FACET_KEYS: Final = tuple(facet.key for facet in FACETS)


@dataclass
class FacetValue:
    value: str
    count: int
    chosen: bool


@dataclass
class FacetCounts:
    facet: Facet
    values: list[FacetValue] = field(default_factory=list)


def _keeps(
    entry: CatalogEntry, chosen: Mapping[str, str], context: FacetContext, skip: str = ""
) -> bool:
    for facet in FACETS:
        wanted = chosen.get(facet.key, "")
        if not wanted or facet.key == skip:
            continue
        if wanted.casefold() not in {value.casefold() for value in facet.values_of(entry, context)}:
            return False
    return True


def entries_narrowed(
    entries: Sequence[CatalogEntry], chosen: Mapping[str, str], context: FacetContext
) -> list[CatalogEntry]:
    """The entries that hold every chosen facet value."""
    return [entry for entry in entries if _keeps(entry, chosen, context)]


def facet_counts(
    entries: Sequence[CatalogEntry], chosen: Mapping[str, str], context: FacetContext
) -> list[FacetCounts]:
    """Each facet's values with the number of models choosing it would show, most first."""
    result = []
    for facet in FACETS:
        spelled: dict[str, str] = {}
        counts: dict[str, int] = {}
        for entry in entries:
            if not _keeps(entry, chosen, context, skip=facet.key):
                continue
            for value in dict.fromkeys(facet.values_of(entry, context)):
                key = value.casefold()
                spelled.setdefault(key, value)
                counts[key] = counts.get(key, 0) + 1
        wanted = chosen.get(facet.key, "").casefold()
        ordered = sorted(counts, key=lambda key: (-counts[key], spelled[key].casefold()))
        result.append(
            FacetCounts(
                facet,
                [FacetValue(spelled[key], counts[key], key == wanted) for key in ordered],
            )
        )
    return result


SORTS: Final = {
    "relevance": "best match",
    "name": "model id",
    "newest": "newest first",
}


def entries_sorted(entries: Sequence[CatalogEntry], sort: str) -> list[CatalogEntry]:
    """Entries in the chosen order; ``relevance`` keeps the search's (catalogue order without a
    query)."""
    if sort == "name":
        return sorted(entries, key=lambda entry: entry.card.model_id.casefold())
    if sort == "newest":
        return sorted(entries, key=lambda entry: entry.release.published_at or _NEVER, reverse=True)
    return list(entries)
