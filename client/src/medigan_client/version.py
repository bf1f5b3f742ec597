"""The installed version of medigan-client (used in the User-Agent and by ``--version``)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("medigan-client")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
