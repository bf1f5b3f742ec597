"""Client of medigan hub: sync the catalogue, search and rank it, download and generate.

``from medigan_client import Client`` is the Python face; ``medigan-client`` the command line.
Importing this package stays light: torch is only imported when a model actually runs.
"""

from medigan_client.api import Client
from medigan_client.version import __version__

__all__ = ["Client", "__version__"]
