"""Which model a medigan-style id names: ``00102_NAME`` or ``102``, in any namespace.

medigan knew a model by its id (``00001_DCGAN_MMG_CALC_ROI``) or by the number in front of it
(``1``, ``"00001"``). On a hub every model is ``namespace/name``; a contributor's model imported
from medigan's template is ``alice/00102_MY_GAN``. This module lets the medigan forms name a
model of any namespace, once, for :class:`~medigan_client.compat.Generators` and for
:meth:`medigan_client.Client.show` (hence every ``Client`` lookup by id and the CLI):

- ``namespace/name`` (and ``namespace/name@version``) is taken as written;
- a name (``00102_MY_GAN``) matches the models of that name; a short id of up to five
  characters (``102``, ``"00102"``) matches the models whose name starts with it zero-padded
  to five characters (medigan's rule);
- a model of namespace ``medigan`` wins over the others, so medigan's ids keep meaning what
  they meant in medigan; otherwise the match must be unique, and several matches raise
  :class:`~medigan_client.errors.AmbiguousModelIdError` listing them.

Nothing here loads the card schema: ``Client.show`` runs it on every lookup.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from medigan_client.errors import AmbiguousModelIdError, ModelNotFoundError

# medigan matches ids of up to five characters against the five-digit prefix of its ids.
SHORT_ID_LENGTH = 5


def _medigan_namespace() -> str:
    # Imported here: medigan_compat loads the card schema, which a plain lookup never needs.
    from medigan_catalog.medigan_compat import MEDIGAN_NAMESPACE

    return MEDIGAN_NAMESPACE


def _preferred(matches: Sequence[str], text: str) -> str | None:
    """The one match (medigan's first); ``None`` for none; ambiguous matches raise."""
    if not matches:
        return None
    medigan = [m for m in matches if m.partition("/")[0] == _medigan_namespace()]
    if medigan:
        return medigan[0]
    if len(matches) > 1:
        raise AmbiguousModelIdError(text, sorted(matches))
    return matches[0]


def find_model_id(text: str, model_ids: Iterable[str]) -> str | None:
    """The ``namespace/name`` among ``model_ids`` that the medigan-style id ``text`` names.

    ``text`` has no namespace (``00102_MY_GAN``, ``102``); ``None`` when no model matches.
    Raises :class:`AmbiguousModelIdError` when several namespaces hold a match and none is
    ``medigan``.
    """
    known = list(dict.fromkeys(model_ids))
    named = [m for m in known if m.partition("/")[2] == text]
    found = _preferred(named, text)
    if found is None and 0 < len(text) <= SHORT_ID_LENGTH:
        padded = text.zfill(SHORT_ID_LENGTH)
        numbered = [m for m in known if m.partition("/")[2][:SHORT_ID_LENGTH] == padded]
        found = _preferred(numbered, text)
    return found


def resolve_model_ref(model: str, model_ids: Iterable[str]) -> str:
    """``model`` as ``namespace/name[@version]``: as written, or the model its medigan id names.

    Raises :class:`ModelNotFoundError` (a ``KeyError``) naming close ids when a medigan-style
    id names no model, and :class:`AmbiguousModelIdError` when it names several.
    """
    text = model.strip()
    base, at, version = text.partition("@")
    if "/" in base or not base:
        return text
    known = list(dict.fromkeys(model_ids))
    found = find_model_id(base, known)
    if found is None:
        names = [m.partition("/")[2] for m in known]
        close = difflib.get_close_matches(base, names, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelNotFoundError(
            f"no model {base!r} in any namespace of the catalogue; write namespace/name{hint}",
            detail={"model_id": base},
        )
    return f"{found}{at}{version}"
