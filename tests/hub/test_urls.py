"""The routes of ``hub/urls.py`` that are pages of their own: the API docs work offline.

``/api/docs/`` is drf-spectacular's Swagger UI. Its scripts, styles and favicon come from the
hub's own static files (drf-spectacular-sidecar), never from a CDN, so the page works on a hub
without internet access.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

STATIC_PREFIX = "/static/"


class _References(HTMLParser):
    """Every URL the page makes the browser load: src and href attributes, and JS string URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.script = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script += data


def _page_references(path: str) -> _References:
    response = Client().get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    parser = _References()
    parser.feed(response.content.decode())
    return parser


def test_api_docs_load_only_the_hubs_own_static_files() -> None:
    page = _page_references("/api/docs/")

    assert page.urls, "the page loads no scripts or styles at all"
    assert all(url.startswith(STATIC_PREFIX) for url in page.urls), page.urls
    # The inline script that starts Swagger UI names no remote host either.
    assert not re.search(r"https?://", page.script), page.script
    assert "swagger-ui-bundle.js" in " ".join(page.urls)


def test_every_file_the_api_docs_load_is_a_static_file_of_the_hub() -> None:
    page = _page_references("/api/docs/")

    for url in page.urls:
        found = finders.find(url.removeprefix(STATIC_PREFIX))
        assert found, f"{url} is not among the hub's static files"


@pytest.mark.django_db
def test_api_docs_point_at_the_hubs_own_schema() -> None:
    page = _page_references("/api/docs/")

    assert '"/api/schema/"' in page.script
    assert Client().get("/api/schema/").status_code == 200
