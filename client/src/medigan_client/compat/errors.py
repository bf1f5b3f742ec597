"""Errors of the medigan API that old scripts catch as ``KeyError``, as medigan raised them.

medigan failed a lookup of an unknown model id or config key with a ``KeyError``; scripts
written for it say ``except KeyError``. These errors are the client's typed errors (with their
stable codes, caught by ``except ClientError``) and ``KeyError`` at once. ``str()`` is the
message as written: ``KeyError`` alone would quote it (``str(KeyError("x"))`` is ``"'x'"``).
"""

from __future__ import annotations

from medigan_client.errors import AmbiguousModelIdError, ModelNotFoundError, NotFoundError

__all__ = ["AmbiguousModelIdError", "ConfigKeyNotFoundError", "ModelNotFoundError"]


class ConfigKeyNotFoundError(NotFoundError, KeyError):
    """A model's config (or selection) has no such key (code ``not_found``); a ``KeyError``."""

    def __str__(self) -> str:
        return self.message
