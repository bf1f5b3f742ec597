"""Which releases a mirror takes from an upstream, or a bundle carries: one filter for both.

Four lists, each empty to take everything: namespaces, model ids, modalities (any of the card's,
case-insensitive) and licences (the card's ``provenance.licence``, exactly). On the command line
they are written ``KEY=VALUE[,VALUE...]`` (``namespace=zoo``, ``modality=xray,mri``), the
spelling of the client's ``key=value`` search filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.snapshot import SnapshotRelease

_KEYS: Final = {
    "namespace": "namespaces",
    "model": "model_ids",
    "modality": "modalities",
    "licence": "licences",
}


class FilterSyntaxError(CatalogError):
    """A filter that is not ``KEY=VALUE[,VALUE...]`` with a known key."""

    code = ErrorCode.BAD_REQUEST


def _clean(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted({value.strip() for value in values if value.strip()}))


@dataclass(frozen=True)
class ReleaseFilter:
    """A selection of catalogue entries; every non-empty list must match."""

    namespaces: tuple[str, ...] = field(default=())
    model_ids: tuple[str, ...] = field(default=())
    modalities: tuple[str, ...] = field(default=())
    licences: tuple[str, ...] = field(default=())

    @classmethod
    def of(
        cls,
        *,
        namespaces: Sequence[str] = (),
        model_ids: Sequence[str] = (),
        modalities: Sequence[str] = (),
        licences: Sequence[str] = (),
    ) -> ReleaseFilter:
        """A filter from lists as an operator typed them (blanks dropped, duplicates merged)."""
        return cls(_clean(namespaces), _clean(model_ids), _clean(modalities), _clean(licences))

    @classmethod
    def parse(cls, terms: Sequence[str]) -> ReleaseFilter:
        """A filter from ``KEY=VALUE[,VALUE...]`` terms; a key given twice adds its values."""
        lists: dict[str, list[str]] = {name: [] for name in _KEYS.values()}
        for term in terms:
            key, sep, value = term.partition("=")
            if not sep or key.strip() not in _KEYS or not value.strip():
                raise FilterSyntaxError(
                    f"a filter is KEY=VALUE[,VALUE...] with KEY one of {', '.join(_KEYS)}; "
                    f"not {term!r}",
                    {"filter": term},
                )
            lists[_KEYS[key.strip()]].extend(value.split(","))
        return cls.of(**lists)

    def to_dict(self) -> dict[str, list[str]]:
        """Plain form, for a bundle's manifest."""
        return {name: list(getattr(self, name)) for name in _KEYS.values()}

    def takes_model(self, model_id: str) -> bool:
        """Whether a model of this id may be taken at all (namespace and model id lists)."""
        namespace = model_id.partition("/")[0]
        return (not self.namespaces or namespace in self.namespaces) and (
            not self.model_ids or model_id in self.model_ids
        )

    def takes(self, entry: SnapshotRelease) -> bool:
        """Whether a catalogue entry passes every list."""
        if not self.takes_model(entry.model_id):
            return False
        card = entry.card
        if self.modalities:
            wanted = {modality.lower() for modality in self.modalities}
            if not wanted & {modality.lower() for modality in card.selection.modality or ()}:
                return False
        return not self.licences or card.provenance.licence in self.licences
