"""Client of medigan hub: sync the catalogue, search and rank it, download and generate.

``from medigan_client import Client`` is the Python face; ``medigan-client`` the command line.
Importing this package costs next to nothing: ``Client``, ``Generators`` and ``__version__`` are
imported on first use, and torch only when a model actually runs.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medigan_client.api import Client
    from medigan_client.compat import Generators
    from medigan_client.version import __version__

__all__ = ["Client", "Generators", "__version__"]


def __getattr__(name: str) -> object:
    # PEP 562: the package's names resolve on first use, so that ``import medigan_client`` (and
    # every ``medigan_client.x`` submodule import, which runs this file first) stays cheap.
    if name == "Client":
        from medigan_client.api import Client

        return Client
    if name == "Generators":
        from medigan_client.compat import Generators

        return Generators
    if name == "__version__":
        from medigan_client.version import __version__

        return __version__
    raise AttributeError(f"module 'medigan_client' has no attribute {name!r}")
