"""Fixtures of the zoo tests; the shared checks themselves are in ``zoo_checks.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.zoo.zoo_checks import load_package, unload_package


@pytest.fixture
def import_package() -> Iterator[Callable[[Path], ModuleType]]:
    """``load_package``, unloading what it imported when the test ends."""
    loaded: list[ModuleType] = []

    def _import(directory: Path) -> ModuleType:
        module = load_package(directory)
        loaded.append(module)
        return module

    yield _import
    for module in loaded:
        unload_package(module)
