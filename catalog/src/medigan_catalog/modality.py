"""Imaging modalities as families: one name for the many ways cards spell a modality.

medigan's cards say ``MMG``, ``Mammogram``, ``full-field digital MMG`` and ``x-ray mammography``
for one modality, ``CXR`` and ``xray`` for another; ours add ``breast ultrasound``. Pages that
colour or group models by modality (the leaderboard's plot) use :func:`modality_family` so that
one modality gets one colour. The rules are ordered: a mammogram is an X-ray, but its family is
mammography.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["MODALITY_FAMILIES", "modality_family"]

# (family, pattern over one lower-cased modality value), first match wins.
_RULES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("mammography", re.compile(r"\bmmg\b|mammo")),
    ("MRI", re.compile(r"\bmri\b|\bflair\b|\bt1|\bt2\b|dce-mri|magnetic resonance")),
    ("CT", re.compile(r"\bct\b|computed tomography")),
    ("X-ray", re.compile(r"x-?ray|\bcxr\b|radiograph")),
    ("ultrasound", re.compile(r"ultrasound|\bus\b|sonograph")),
    ("dermoscopy", re.compile(r"dermoscop|dermatoscop|skin lesion")),
    ("endoscopy", re.compile(r"endoscop|colonoscop")),
    ("cardiac imaging", re.compile(r"cardi")),
)
MODALITY_FAMILIES: Final[tuple[str, ...]] = tuple(family for family, _ in _RULES)
OTHER: Final = "other"


def modality_family(modalities: Iterable[str] | str | None) -> str:
    """The family of a card's modality values (the first value that matches a rule decides),
    or ``"other"``."""
    values = [modalities] if isinstance(modalities, str) else list(modalities or ())
    for family, pattern in _RULES:
        if any(pattern.search(str(value).lower()) for value in values):
            return family
    return OTHER
