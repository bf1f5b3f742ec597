"""Fixtures of the evaluations tests: the demo reference sets, as the project ships them."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from hub.evaluations.management.commands.reference_sets_load import default_shared_dir


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder; tests that need it skip with the reason when it is absent."""
    data = default_shared_dir() / "data"
    if not data.is_dir():
        pytest.skip(f"the shared data sets are not at {data} (a fresh clone without ../shared)")
    return data


@pytest.fixture
def reference_sets(db: None) -> None:
    """The demo reference sets, loaded by the management command from the shipped files."""
    call_command("reference_sets_load", stdout=StringIO())
