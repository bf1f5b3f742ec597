"""What the browser tests share beside fixtures: the browser, a watched page, screenshots, axe.

Chromium is Debian's (``apt-get install chromium``); Playwright never downloads a browser of its
own. A :class:`WatchedPage` records what a page did that a visitor would not see: dialogs,
console errors (Content-Security-Policy refusals among them), requests that tried to leave
127.0.0.1 (aborted) and responses that failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from PIL import Image
from playwright.sync_api import BrowserContext, ConsoleMessage, Dialog, Page, Response, Route

# Debian's launcher script first (Playwright drives it), then the binary it starts.
CHROMIUM_CANDIDATES = (Path("/usr/bin/chromium"), Path("/usr/lib/chromium/chromium"))
# The only host a page may reach: the live hub's.
HUB_HOST = "127.0.0.1"
# The models the pages show: the seeded zoo model, and a release whose card carries HTML.
ZOO_MODEL_ID = "zoo/chestxray-pca-64"
HOSTILE_MODEL_ID = "mallory/hostile"
HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_COMMENT = "<img src=x onerror=alert(2)>"
# axe-core's impacts that fail a page.
BLOCKING_IMPACTS = frozenset({"serious", "critical"})


def find_chromium() -> Path | None:
    """Debian's Chromium, if it is installed."""
    return next((path for path in CHROMIUM_CANDIDATES if path.is_file()), None)


@dataclass
class WatchedPage:
    """A page of a fresh browser context, and what it did behind the visitor's back."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    off_hub_requests: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, context: BrowserContext) -> WatchedPage:
        """A new page of ``context`` whose requests off 127.0.0.1 are aborted and counted."""
        watched = cls(context.new_page())
        context.route("**/*", watched._route)
        watched.page.on("dialog", watched._dialog)
        watched.page.on("console", watched._console)
        watched.page.on("response", watched._response)
        return watched

    def _route(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname == HUB_HOST:
            route.continue_()
        else:
            self.off_hub_requests.append(route.request.url)
            route.abort()

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed_responses.append(f"{response.status} {response.url}")

    @property
    def csp_errors(self) -> list[str]:
        """Console errors that report a Content-Security-Policy refusal."""
        return [text for text in self.console_errors if "Content Security Policy" in text]


def image_loaded_width(page: Page, selector: str) -> int:
    """Wait for the image ``selector`` to load; return its natural width (0 if it failed)."""
    width: int = page.locator(selector).evaluate(
        "img => img.decode().then(() => img.naturalWidth, () => img.naturalWidth)"
    )
    return width


def assert_nontrivial_png(path: Path) -> None:
    """``path`` is a PNG of a rendered page: page-sized, and not a single flat colour."""
    assert path.is_file(), f"no screenshot at {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        shades = [shade for shade, count in enumerate(image.convert("L").histogram()) if count]
    assert width >= 800 and height >= 400, f"{path} is only {width}x{height}"
    assert shades[-1] - shades[0] > 64, f"{path} is nearly one flat colour"


def blocking_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on ``page``, one entry a rule."""
    response: dict[str, Any] = Axe().run(page).response
    return [
        {
            "rule": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "targets": [node["target"] for node in violation["nodes"]],
        }
        for violation in response["violations"]
        if violation["impact"] in BLOCKING_IMPACTS
    ]
