"""The hub's catalogue seen as medigan's ``global.json``: model ids, config entries, id matching.

medigan keys everything by its own model id (``00001_DCGAN_MMG_CALC_ROI``) and reads one
``config/global.json``. Here the same view is built from the synced hub catalogue: a model of
the ``medigan`` namespace is known by its medigan id (``medigan/00001_DCGAN_MMG_CALC_ROI`` ->
``00001_DCGAN_MMG_CALC_ROI``), every other model by its full ``namespace/name``
(``zoo/chestxray-dcgan-64``), and each model's config entry is the card exported back to
medigan's shape (:func:`medigan_catalog.medigan_compat.card_to_medigan_entry`), which for a model
imported from medigan equals its ``global.json`` entry exactly. Local models added with
``add_model_to_config`` live beside the hub's, in this process only.

Order: medigan's models first, in the hub catalogue's order (``global.json``'s), then every
other model sorted by namespace and name, then local models in the order they were added.
A model of another namespace also answers to its medigan-style id (``00102_...`` or ``102``)
when no other model claims it (:mod:`medigan_client.compat.model_ids`).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medigan_catalog.medigan_compat import MEDIGAN_NAMESPACE, card_to_medigan_entry
from medigan_catalog.schema import Card
from medigan_client.compat.errors import ConfigKeyNotFoundError, ModelNotFoundError
from medigan_client.errors import BadRequestError
from medigan_client.model_refs import find_model_id


def compat_id_of(card: Card) -> str:
    """The id a medigan script uses for ``card``: the medigan id, or ``namespace/name``."""
    return card.name if card.namespace == MEDIGAN_NAMESPACE else card.model_id


@dataclass(frozen=True)
class CatalogueModel:
    """One model of the medigan view: its id there, its card, and a local package if it has one."""

    model_id: str
    card: Card
    local_package_dir: Path | None = None


class MediganCatalogue:
    """medigan's ``ConfigManager`` over the hub's newest releases (plus local models).

    ``model_ids`` and ``config_dict`` are what medigan's ``ConfigManager`` holds. Order:
    medigan's models first in the hub catalogue's order (``global.json``'s), then the other
    namespaces' models sorted by ``namespace/name``; local models follow as they are added.
    """

    def __init__(self, cards: Sequence[Card]):
        self._models: dict[str, CatalogueModel] = {}
        self._entries: dict[str, dict[str, Any]] = {}
        # namespace/name -> the id of the view, for resolving medigan-style ids of any namespace
        self._by_full_id: dict[str, str] = {}
        medigan = [card for card in cards if card.namespace == MEDIGAN_NAMESPACE]
        others = sorted(
            (card for card in cards if card.namespace != MEDIGAN_NAMESPACE),
            key=lambda card: (card.namespace, card.name),
        )
        for card in [*medigan, *others]:
            model_id = compat_id_of(card)
            # The first entry of an id wins (one release per model is expected).
            if model_id not in self._models:
                self._models[model_id] = CatalogueModel(model_id, card)
                self._by_full_id[card.model_id] = model_id
        self.is_config_loaded = True

    def __repr__(self) -> str:
        return f"MediganCatalogue(model_ids={self.model_ids})"

    def __len__(self) -> int:
        return len(self._models)

    def __getitem__(self, index: int) -> str:
        return self.model_ids[index]

    @property
    def model_ids(self) -> list[str]:
        """Every model's id as medigan scripts write it, in catalogue order."""
        return list(self._models)

    @property
    def models(self) -> list[CatalogueModel]:
        """Every model of the view, in catalogue order."""
        return list(self._models.values())

    @property
    def config_dict(self) -> dict[str, dict[str, Any]]:
        """The whole view as one ``global.json`` document (a copy; editing it changes nothing)."""
        return {model_id: self.entry(model_id) for model_id in self._models}

    def model(self, model_id: str) -> CatalogueModel:
        """The model known by exactly ``model_id`` (no matching); a ``KeyError`` if none.

        The error is :class:`~medigan_client.compat.errors.ModelNotFoundError`, a
        ``NotFoundError`` and a ``KeyError`` as medigan raised.
        """
        found = self._models.get(model_id)
        if found is None:
            raise ModelNotFoundError(self._unknown_message(model_id), detail={"model_id": model_id})
        return found

    def entry(self, model_id: str) -> dict[str, Any]:
        """The ``global.json`` entry of ``model_id`` (a deep copy: callers may change it)."""
        cached = self._entries.get(model_id)
        if cached is None:
            cached = card_to_medigan_entry(self.model(model_id).card)
            self._entries[model_id] = cached
        return copy.deepcopy(cached)

    def is_model_in_config(self, model_id: str) -> bool:
        """Whether ``model_id`` is exactly one of :attr:`model_ids`."""
        return model_id in self._models

    def add_local(
        self, model_id: str, card: Card, package_dir: Path, entry: dict[str, Any]
    ) -> None:
        """Add (or replace) a local model whose package lies in ``package_dir``."""
        self._models[model_id] = CatalogueModel(model_id, card, local_package_dir=package_dir)
        self._entries[model_id] = copy.deepcopy(entry)
        self._by_full_id[card.model_id] = model_id

    def match_model_id(self, provided_model_id: object) -> str:
        """The id of the model ``provided_model_id`` names, as medigan's ``match_model_id`` does.

        Accepted: an id of :attr:`model_ids`; any ``namespace/name`` (``medigan/00001_...``
        included); a model's name without its namespace (``00102_MY_GAN``) and a short id of up
        to five characters (``1``, ``"1"``, ``"00102"``) matched against the first five
        characters of names after zero-padding, in any namespace: ``medigan``'s model wins,
        otherwise the match must be unique (:mod:`medigan_client.compat.model_ids`). Unknown
        ids raise :class:`~medigan_client.compat.errors.ModelNotFoundError` naming close
        matches, ambiguous ones :class:`~medigan_client.compat.errors.AmbiguousModelIdError`
        listing the candidates; both are ``KeyError`` (medigan returned an unknown id unchanged
        and failed later with a ``KeyError``).
        """
        if isinstance(provided_model_id, bool) or not isinstance(provided_model_id, str | int):
            raise BadRequestError(
                f"a model id is a string or an integer, not {type(provided_model_id).__name__}"
            )
        text = str(provided_model_id).strip()
        if not text:
            raise BadRequestError("the model id is empty")
        if text in self._models:
            return text
        if "/" in text:
            known = self._by_full_id.get(text)
        else:
            found = find_model_id(text, self._by_full_id)
            known = None if found is None else self._by_full_id[found]
        if known is None:
            raise ModelNotFoundError(self._unknown_message(text), detail={"model_id": text})
        return known

    def get_config_by_id(self, model_id: str, config_key: str | None = None) -> Any:
        """The entry of ``model_id``, or the part below a dotted ``config_key`` in it."""
        return config_at(self.entry(model_id), config_key, model_id)

    def _unknown_message(self, model_id: str) -> str:
        close = difflib.get_close_matches(model_id, self.model_ids, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"no model {model_id!r} in the catalogue ({len(self._models)} models){hint}"


def config_at(entry: dict[str, Any], config_key: str | None, model_id: str) -> Any:
    """The part of a ``global.json`` entry below a dotted ``config_key`` (all of it for None).

    A missing key raises :class:`~medigan_client.compat.errors.ConfigKeyNotFoundError`, a
    ``KeyError`` as medigan raised.
    """
    value: Any = entry
    if config_key is None:
        return value
    walked: list[str] = []
    for key in config_key.split("."):
        walked.append(key)
        if not isinstance(value, dict) or key not in value:
            raise ConfigKeyNotFoundError(
                f"the config of {model_id} has no key {'.'.join(walked)!r}",
                detail={"model_id": model_id, "config_key": config_key},
            )
        value = value[key]
    return value
