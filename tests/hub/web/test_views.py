"""Tests of the catalogue page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client as HttpClient

from hub.registry import services
from tests import factories

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


def test_the_catalogue_page_shows_sample_grids_through_the_checked_view() -> None:
    factories.release_row(submitter=factories.user("alice"))

    page = HttpClient().get("/")

    grid_url = b"/api/v1/models/alice/noise-16/releases/1.0.0/sample-grid"
    assert page.status_code == 200
    assert b'<img src="' + grid_url + b'"' in page.content
    assert b"/media/" not in page.content
