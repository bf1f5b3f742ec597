"""medigan 1.0.0's ``Generators`` API on top of a hub: old medigan scripts run unchanged.

``from medigan_client import Generators`` (or ``from medigan_client.compat import Generators``)
instead of ``from medigan import Generators``; see ``docs/medigan-compat.md``.

The names below are imported on first use, so that light submodules (the id resolution that
``Client.show`` uses, the ``import-medigan`` command) load without the whole compatibility layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medigan_client.compat.catalogue import MediganCatalogue
    from medigan_client.compat.contributor import ModelContributor
    from medigan_client.compat.dataset import SyntheticDataset
    from medigan_client.compat.executor import ModelExecutor
    from medigan_client.compat.generators import Generators
    from medigan_client.compat.selection import MatchedEntry, ModelMatchCandidate, ModelSelector

_MODULE_OF = {
    "Generators": "generators",
    "MatchedEntry": "selection",
    "MediganCatalogue": "catalogue",
    "ModelContributor": "contributor",
    "ModelExecutor": "executor",
    "ModelMatchCandidate": "selection",
    "ModelSelector": "selection",
    "SyntheticDataset": "dataset",
}

__all__ = [
    "Generators",
    "MatchedEntry",
    "MediganCatalogue",
    "ModelContributor",
    "ModelExecutor",
    "ModelMatchCandidate",
    "ModelSelector",
    "SyntheticDataset",
]


def __getattr__(name: str) -> object:
    # PEP 562, as in medigan_client/__init__.py.
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'medigan_client.compat' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"medigan_client.compat.{module}"), name)
    globals()[name] = value
    return value
