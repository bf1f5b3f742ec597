"""Fixtures of the browser tests: one live hub and one Chromium for the session, a page per test.

The hub is the demo seeded with the chest X-ray PCA zoo model (and medigan's catalogue), its
static files collected before gunicorn starts (whitenoise serves what it finds at start-up, as
after ``make run``'s collectstatic). Before it starts, two rows are stored for the pages to show:
a release by ``mallory`` whose card carries HTML in its title and description, and a finished
evaluation of the zoo model, so the leaderboard has a row and a point. Its one Celery worker
validates but does not evaluate (no ``gpu`` queue): the browser tests need no evaluation run, and
the CPU stays with the browser.

Every test gets a fresh browser context whose requests off 127.0.0.1 are aborted and counted
(:class:`tests.browser.support.WatchedPage`). Without Debian's Chromium the tests skip; Playwright
never downloads a browser.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser.support import (
    HOSTILE_COMMENT,
    HOSTILE_MODEL_ID,
    HOSTILE_TITLE,
    ZOO_MODEL_ID,
    WatchedPage,
    find_chromium,
)
from tests.live_hub import LiveHub, live_hub

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

# Run in ``manage.py shell`` on the hub before it starts: the hostile release and an evaluation.
_SEED_PAGES = f"""
from hub.registry.models import Release
from tests.factories import evaluation_row, release_row, user

release_row(
    submitter=user("mallory"),
    model_id={HOSTILE_MODEL_ID!r},
    description={{"title": {HOSTILE_TITLE!r}, "comment": {HOSTILE_COMMENT!r}, "version": "1.0.0"}},
)
namespace, name = {ZOO_MODEL_ID!r}.split("/")
zoo = Release.objects.get(generative_model__namespace=namespace, generative_model__name=name)
evaluation_row(zoo, fid_rs=42.0)
print("seeded")
"""

# Files whitenoise must serve for the pages to render: the hub's style sheet and Swagger UI's.
_STATIC_FILES = (
    "/static/web/hub.css",
    "/static/web/api-docs.css",
    "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
    "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
)


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    """Debian's Chromium; the browser tests skip without it."""
    executable = find_chromium()
    if executable is None:
        pytest.skip(
            "the browser tests need Debian's Chromium (sudo apt-get install chromium); "
            "Playwright does not download a browser here"
        )
    return executable


@pytest.fixture(scope="session")
def browser_hub(
    chromium_executable: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveHub]:
    """The demo hub the browser visits, with its static files and the pages' extra rows."""
    with live_hub(
        data_dir=tmp_path_factory.mktemp("browser-hub"),
        seed=["--zoo", "chestxray_pca_64"],
        workers={"worker": "validation,default"},
        start=False,
    ) as hub:
        hub.manage("collectstatic", "--noinput", "--verbosity", "0")
        assert hub.shell(_SEED_PAGES) == "seeded"
        hub.ensure_running()
        for path in _STATIC_FILES:
            status = httpx.get(f"{hub.url}{path}", timeout=10).status_code
            assert status == 200, f"the hub answers {status} for {path}"
        yield hub


@pytest.fixture(scope="session")
def browser(chromium_executable: Path) -> Iterator[Browser]:
    """One headless Chromium for every test."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_executable)
        yield launched
        launched.close()


@pytest.fixture
def watched(browser: Browser, browser_hub: LiveHub) -> Iterator[WatchedPage]:
    """A page of a fresh context on the live hub (relative URLs go to it)."""
    context = browser.new_context(base_url=browser_hub.url, viewport={"width": 1280, "height": 900})
    try:
        yield WatchedPage.open(context)
    finally:
        context.close()


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``MEDIGAN_SCREENSHOT_DIR`` when set, else the test's tmp_path."""
    configured = os.environ.get("MEDIGAN_SCREENSHOT_DIR")
    if not configured:
        return tmp_path
    directory = Path(configured)
    directory.mkdir(parents=True, exist_ok=True)
    return directory
