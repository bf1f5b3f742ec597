"""The routes of ``hub/urls.py`` that are pages of their own: the API docs work offline.

``/api/docs/`` is drf-spectacular's Swagger UI. Its scripts, styles and favicon come from the
hub's own static files (drf-spectacular-sidecar), never from a CDN, so the page works on a hub
without internet access; the script that starts it is served by the page's own view
(``?script=``), since the Content-Security-Policy allows no inline script.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

STATIC_PREFIX = "/static/"
INIT_SCRIPT = "/api/docs/?script="


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
    assert all(url.startswith(STATIC_PREFIX) or url == INIT_SCRIPT for url in page.urls), page.urls
    assert not page.script.strip(), "an inline script"
    # The script that starts Swagger UI names no remote host either.
    init = Client().get(INIT_SCRIPT)
    assert init.status_code == 200
    assert not re.search(r"https?://", init.content.decode())
    assert "swagger-ui-bundle.js" in " ".join(page.urls)


def test_every_file_the_api_docs_load_is_a_static_file_of_the_hub() -> None:
    page = _page_references("/api/docs/")

    for url in page.urls:
        if url == INIT_SCRIPT:
            continue
        found = finders.find(url.removeprefix(STATIC_PREFIX))
        assert found, f"{url} is not among the hub's static files"


@pytest.mark.django_db
def test_api_docs_point_at_the_hubs_own_schema() -> None:
    init = Client().get(INIT_SCRIPT).content.decode()

    assert '"/api/schema/"' in init
    assert Client().get("/api/schema/").status_code == 200
