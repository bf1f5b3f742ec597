"""Client of medigan hub: sync the catalogue, search and rank it, download and generate.

``from medigan_client import Client`` is the Python face; ``medigan-client`` the command line.
Importing this package stays light: torch is only imported when a model actually runs.
"""

from typing import TYPE_CHECKING

from medigan_client.api import Client
from medigan_client.version import __version__

if TYPE_CHECKING:
    from medigan_client.compat import Generators

__all__ = ["Client", "Generators", "__version__"]


def __getattr__(name: str) -> object:
    # medigan's Generators (``from medigan_client import Generators``) is imported on first
    # use, so that ``import medigan_client`` does not load the runtime and numpy.
    if name == "Generators":
        from medigan_client.compat import Generators

        return Generators
    raise AttributeError(f"module 'medigan_client' has no attribute {name!r}")
