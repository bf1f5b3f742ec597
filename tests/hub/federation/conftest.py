"""Fixtures of the federation tests: one live upstream hub for the session, and the mirror's name.

The upstream is a demo hub (its own gunicorn, worker and SQLite database) seeded with medigan's
catalogue and one zoo model with a stored package. Tests change it only in medigan's namespace
(deprecating, withdrawing), and read the zoo namespace as it was seeded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hub import signing, snapshot
from tests.live_hub import LiveHub, live_hub


@pytest.fixture(scope="session")
def upstream_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    with live_hub(
        env={"MEDIGAN_HUB_NAME": "public", "MEDIGAN_SMOKE_TIMEOUT_SECONDS": "120"},
        data_dir=tmp_path_factory.mktemp("upstream"),
        seed=["--zoo", "chestxray_pca_64"],
    ) as hub:
        yield hub


@pytest.fixture(autouse=True)
def _mirror_hub(settings: Any) -> Iterator[None]:
    """The hub of the test process plays the institution's mirror."""
    settings.MEDIGAN_HUB_NAME = "institution"
    signing.forget_loaded_keys()
    snapshot.snapshot_cache_clear()
    yield
    signing.forget_loaded_keys()
    snapshot.snapshot_cache_clear()
