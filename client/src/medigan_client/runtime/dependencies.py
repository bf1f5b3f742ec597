"""Which of a card's requirements an environment already satisfies, and which Python it needs.

A card names its pip requirements in ``runtime.dependencies`` (pinned strings such as
``torch==2.1.0``); cards imported from medigan also carry medigan's loose names (``torch``,
``numpy``) in ``execution.dependencies``. Both lists count. A requirement with a version
specifier is satisfied by an installed distribution whose version matches it; a bare name (or a
direct URL, whose version cannot be compared) is satisfied by any installed version. Environment
markers that do not apply here drop a requirement; strings pip could not parse either are
skipped with a warning rather than stopping the package from running.
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
from collections.abc import Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from medigan_catalog.schema import Card

logger = logging.getLogger(__name__)

# Shared by every model's environment instead of being downloaded per model: asking pip for one
# of these by bare name would fetch gigabytes; a model that needs it uses the caller's copy.
SHARED_HEAVY_PACKAGES = frozenset(
    {"torch", "torchvision", "torchaudio", "tensorflow", "jax", "jaxlib"}
)


def card_requirements(card: Card) -> list[Requirement]:
    """The card's requirements that apply on this platform, each once, in the card's order."""
    texts = list(card.runtime.dependencies) + list(card.execution.dependencies or [])
    requirements: list[Requirement] = []
    seen: set[str] = set()
    for text in texts:
        try:
            requirement = Requirement(text.strip())
        except InvalidRequirement as exc:
            logger.warning("%s: ignoring the requirement %r: %s", card.release_id, text, exc)
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        key = str(requirement)
        if key in seen:
            continue
        seen.add(key)
        requirements.append(requirement)
    return requirements


def installed_version(name: str, paths: Sequence[str] | None = None) -> str | None:
    """The version of distribution ``name`` that an import would find first on ``paths``.

    ``paths`` defaults to this interpreter's ``sys.path``.
    """
    name = canonicalize_name(name)
    found = (
        importlib.metadata.distributions(name=name)
        if paths is None
        else importlib.metadata.distributions(name=name, path=list(paths))
    )
    for distribution in found:
        version = distribution.version
        if version:
            return str(version)
    return None


def is_satisfied(requirement: Requirement, paths: Sequence[str] | None = None) -> bool:
    """Whether ``requirement`` holds for the distributions found on ``paths`` (or sys.path)."""
    version = installed_version(requirement.name, paths)
    if version is None:
        return False
    if requirement.url or not str(requirement.specifier):
        return True
    return requirement.specifier.contains(version, prereleases=True)


def unsatisfied(
    requirements: Sequence[Requirement], paths: Sequence[str] | None = None
) -> list[Requirement]:
    """The requirements that the distributions on ``paths`` (or sys.path) do not satisfy."""
    return [r for r in requirements if not is_satisfied(r, paths)]


def is_shared_heavy(requirement: Requirement) -> bool:
    """Whether this is a bare name of a framework that model environments share, not install."""
    return canonicalize_name(requirement.name) in SHARED_HEAVY_PACKAGES and not (
        requirement.url or str(requirement.specifier)
    )


def python_problem(card: Card) -> str | None:
    """Why this interpreter cannot run the card's package (``python_requires``), or ``None``."""
    wanted = card.runtime.python_requires
    if not wanted or not wanted.strip():
        return None
    try:
        specifier = SpecifierSet(wanted)
    except InvalidSpecifier:
        logger.warning("%s: ignoring python_requires %r", card.release_id, wanted)
        return None
    here = platform.python_version()
    if specifier.contains(here, prereleases=True):
        return None
    return (
        f"{card.release_id} needs Python {wanted}, but this is Python {here}; "
        "run it from an environment with a matching Python"
    )
