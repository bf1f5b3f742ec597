"""medigan 1.0.0's ``Generators`` API on top of a hub: old medigan scripts run unchanged.

``from medigan_client import Generators`` (or ``from medigan_client.compat import Generators``)
instead of ``from medigan import Generators``; see ``docs/medigan-compat.md``.
"""

from medigan_client.compat.catalogue import MediganCatalogue
from medigan_client.compat.contributor import ModelContributor
from medigan_client.compat.dataset import SyntheticDataset
from medigan_client.compat.executor import ModelExecutor
from medigan_client.compat.generators import Generators
from medigan_client.compat.selection import MatchedEntry, ModelMatchCandidate, ModelSelector

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
