"""Every page that shows a sample grid links the access-checked API view, never a storage URL."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client as HttpClient

from tests import factories

pytestmark = pytest.mark.django_db

_GRID = b"/api/v1/models/alice/noise-16/releases/1.0.0/sample-grid"


def _reviewer_session() -> HttpClient:
    http = HttpClient()
    http.force_login(factories.user("rita", reviewer=True))
    return http


def test_the_admin_change_page_shows_the_grid_through_the_checked_view() -> None:
    release = factories.release_row(submitter=factories.user("alice"), state="in_review")
    http = _reviewer_session()

    page = http.get(f"/admin/registry/release/{release.pk}/change/")
    grid = http.get(_GRID.decode())
    grid.close()  # a FileResponse holds the file open until it is closed

    assert page.status_code == 200
    assert re.search(rb'<img [^>]*src="' + re.escape(_GRID) + rb'"', page.content)
    assert b"/media/grids/" not in page.content
    assert grid.status_code == 200
    assert grid["Content-Type"] == "image/png"


def test_the_review_confirmation_shows_each_releases_grid() -> None:
    release = factories.release_row(submitter=factories.user("alice"), state="in_review")

    confirmation = _reviewer_session().post(
        "/admin/registry/release/", {"action": "reject", ACTION_CHECKBOX_NAME: [release.pk]}
    )

    assert confirmation.status_code == 200
    assert re.search(rb'<img [^>]*src="' + re.escape(_GRID) + rb'"', confirmation.content)
