"""The hub's catalogue seen as medigan's ``global.json``: model ids, config entries, id matching.

medigan keys everything by its own model id (``00001_DCGAN_MMG_CALC_ROI``) and reads one
``config/global.json``. Here the same view is built from the synced hub catalogue: a model of
the ``medigan`` namespace is known by its medigan id (``medigan/00001_DCGAN_MMG_CALC_ROI`` ->
``00001_DCGAN_MMG_CALC_ROI``), every other model by its full ``namespace/name``
(``zoo/chestxray-dcgan-64``), and each model's config entry is the card exported back to
medigan's shape (:func:`medigan_catalog.medigan_compat.card_to_medigan_entry`), which for a model
imported from medigan equals its ``global.json`` entry exactly. Local models added with
``add_model_to_config`` live beside the hub's, in this process only.
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
from medigan_client.errors import BadRequestError, NotFoundError

# medigan matches ids of up to five characters against the five-digit prefix of its ids.
SHORT_ID_LENGTH = 5


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

    ``model_ids`` and ``config_dict`` are what medigan's ``ConfigManager`` holds; the order is the
    hub catalogue's (the hub lists medigan's imported models in ``global.json`` order).
    """

    def __init__(self, cards: Sequence[Card]):
        self._models: dict[str, CatalogueModel] = {}
        self._entries: dict[str, dict[str, Any]] = {}
        for card in cards:
            model_id = compat_id_of(card)
            # The first (hub) entry wins when two namespaces would give the same id.
            self._models.setdefault(model_id, CatalogueModel(model_id, card))
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
        """The model known by exactly ``model_id`` (no matching); :class:`NotFoundError` if none."""
        found = self._models.get(model_id)
        if found is None:
            raise NotFoundError(self._unknown_message(model_id))
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

    def match_model_id(self, provided_model_id: object) -> str:
        """The id of the model ``provided_model_id`` names, as medigan's ``match_model_id`` does.

        Accepted: an id of :attr:`model_ids`; a short id of up to five characters (``1``,
        ``"1"``, ``"00001"``) matched against the first five characters of medigan's ids after
        zero-padding; a medigan id written with its namespace (``medigan/00001_...``); any
        ``namespace/name``. Unknown ids raise :class:`NotFoundError` naming close matches
        (medigan returned the id unchanged and failed later with a ``KeyError``).
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
        if len(text) <= SHORT_ID_LENGTH:
            padded = text.zfill(SHORT_ID_LENGTH)
            for model_id in self._models:
                if model_id[:SHORT_ID_LENGTH] == padded:
                    return model_id
        namespace, slash, name = text.partition("/")
        if slash and namespace == MEDIGAN_NAMESPACE and name in self._models:
            return name
        raise NotFoundError(self._unknown_message(text))

    def get_config_by_id(self, model_id: str, config_key: str | None = None) -> Any:
        """The entry of ``model_id``, or the part below a dotted ``config_key`` in it."""
        return config_at(self.entry(model_id), config_key, model_id)

    def _unknown_message(self, model_id: str) -> str:
        close = difflib.get_close_matches(model_id, self.model_ids, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"no model {model_id!r} in the catalogue ({len(self._models)} models){hint}"


def config_at(entry: dict[str, Any], config_key: str | None, model_id: str) -> Any:
    """The part of a ``global.json`` entry below a dotted ``config_key`` (all of it for None)."""
    value: Any = entry
    if config_key is None:
        return value
    walked: list[str] = []
    for key in config_key.split("."):
        walked.append(key)
        if not isinstance(value, dict) or key not in value:
            raise NotFoundError(
                f"the config of {model_id} has no key {'.'.join(walked)!r}",
                detail={"model_id": model_id, "config_key": config_key},
            )
        value = value[key]
    return value
