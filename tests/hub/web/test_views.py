"""Tests of the catalogue page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client as HttpClient

from hub.registry import services

pytestmark = pytest.mark.django_db


def test_the_catalogue_page_lists_published_models_and_searches(
    medigan_global: dict[str, Any],
) -> None:
    services.medigan_catalog_import(raw_catalog=medigan_global, actor=None, source="test")
    http = HttpClient()

    everything = http.get("/")
    brain = http.get("/", {"q": "brain"})

    assert everything.status_code == 200
    assert everything.content.count(b"<tr><td><a href=") == 23
    assert b"00007_INPAINT_BRAIN_MRI" in brain.content
    assert b"00001_DCGAN_MMG_CALC_ROI" not in brain.content
