"""A contributor's and a reviewer's walk through the web hub, in Chromium, against a live hub.

A contributor signs up, creates a token, submits the zoo's chest X-ray PCA package through the
form (its card typed into the form under their own namespace, checked as typed) and watches the
release reach review on its live page; a reviewer signs in, approves it from the queue with a
note; the model page then shows version 1.0.0 published. A package with a broken card shows the
field's error. Every page of the walk is screenshotted and checked by axe-core.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from medigan_catalog.packaging import build_deterministic_zip
from tests.browser.support import (
    WatchedPage,
    assert_nontrivial_png,
    blocking_violations,
    image_loaded_width,
)
from tests.live_hub import REPO_ROOT, LiveHub

pytestmark = pytest.mark.integration

ZOO_PACKAGE = REPO_ROOT / "zoo" / "chestxray_pca_64" / "package"
CONTRIBUTOR = "dana"
PASSWORD = "a long passphrase for the walk 42"
REVIEWER = "rita"
MODEL_ID = f"{CONTRIBUTOR}/chestxray-pca-64"
# Validation runs the package's smoke generation in the sandbox on the hub's worker.
VALIDATION_MS = 180_000


def _zoo_package(tmp_path: Path) -> tuple[Path, str]:
    """The zoo PCA package as a zip, and its card renamed into the contributor's namespace."""
    archive = tmp_path / "chestxray-pca-64.zip"
    build_deterministic_zip(ZOO_PACKAGE, archive)
    card = json.loads((ZOO_PACKAGE / "card.json").read_text(encoding="utf-8"))
    card["model_id"] = MODEL_ID
    return archive, json.dumps(card, indent=2)


def _checked(watched: WatchedPage, screenshot_dir: Path, name: str) -> None:
    """Screenshot the page and hold it to axe-core and the Content-Security-Policy."""
    path = screenshot_dir / f"{name}.png"
    watched.page.screenshot(path=path, full_page=True)
    assert_nontrivial_png(path)
    assert blocking_violations(watched.page) == [], name
    assert watched.csp_errors == [], name


def _sign_up(page: Page, username: str) -> None:
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.org")
    page.locator("#id_password1").fill(PASSWORD)
    page.locator("#id_password2").fill(PASSWORD)
    page.get_by_role("button", name="Create the account").click()
    expect(page).to_have_url(re.compile(r"/accounts/tokens/$"))


def _sign_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=f"Sign out {username}")).to_be_visible()


def test_a_contributor_submits_the_zoo_package_and_a_reviewer_approves_it(
    watched: WatchedPage, browser_hub: LiveHub, tmp_path: Path, screenshot_dir: Path
) -> None:
    page = watched.page
    archive, card_text = _zoo_package(tmp_path)

    _sign_up(page, CONTRIBUTOR)
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create the token").click()
    expect(page.locator("#new-token")).to_have_text(re.compile(r"^\S{20,}$"))
    _checked(watched, screenshot_dir, "tokens")

    page.get_by_role("link", name="Submit a model").click()
    page.get_by_label("Package").set_input_files(str(archive))
    page.get_by_label("Card").fill(card_text)
    expect(page.locator("#card-problems")).to_have_text("The card passes the schema.")
    _checked(watched, screenshot_dir, "submit")
    page.get_by_role("button", name="Submit").click()

    expect(page).to_have_url(re.compile(rf"/submissions/{MODEL_ID}/1\.0\.0/$"))
    expect(page.locator("#state-badge")).to_have_text("in_review", timeout=VALIDATION_MS)
    expect(page.locator("#checks")).to_contain_text("smoke_generation")
    page.reload()
    _checked(watched, screenshot_dir, "submission")

    browser_hub.shell(
        "from hub.accounts.services import user_get_or_create; "
        f"user_get_or_create(username={REVIEWER!r}, password={PASSWORD!r}, reviewer=True); "
        "print('ok')"
    )
    assert page.context.browser is not None
    reviewer = WatchedPage.open(page.context.browser.new_context(base_url=browser_hub.url))
    _sign_in(reviewer.page, REVIEWER)
    reviewer.page.get_by_role("link", name=re.compile(r"^Review queue \(\d+\)$")).click()
    _checked(reviewer, screenshot_dir, "review-queue")
    reviewer.page.get_by_role("row").filter(has_text=MODEL_ID).get_by_role(
        "link", name="Review"
    ).click()
    assert image_loaded_width(reviewer.page, "img.grid-large") > 0
    _checked(reviewer, screenshot_dir, "review-release")
    reviewer.page.get_by_label("Note (required)").fill("Checked the grid and the checks: fine.")
    reviewer.page.get_by_role("button", name="Approve and publish").click()
    expect(reviewer.page.locator(".messages")).to_contain_text("approved")
    reviewer.page.context.close()

    # The contributor's page follows the release and reloads itself once it is published; wait
    # for that reload to finish before leaving, or the navigation below would race it.
    expect(page.locator("#state-badge")).to_have_text("published", timeout=VALIDATION_MS)
    expect(page.locator("#live-note")).to_have_count(0, timeout=VALIDATION_MS)
    page.goto(f"/models/{MODEL_ID}/")
    version = page.get_by_role("row").filter(has_text="(shown)")
    expect(version).to_contain_text("1.0.0")
    expect(version).to_contain_text("published")
    assert image_loaded_width(page, "img.grid-large") > 0
    assert watched.dialogs == []


def test_a_broken_card_shows_its_field_error_as_typed_and_after_submitting(
    watched: WatchedPage, tmp_path: Path, screenshot_dir: Path
) -> None:
    page = watched.page
    archive, card_text = _zoo_package(tmp_path)
    broken = json.loads(card_text)
    broken["version"] = "one"
    broken["model_id"] = "erin/chestxray-pca-64"
    _sign_up(page, "erin")

    page.goto("/submit/")
    page.get_by_label("Package").set_input_files(str(archive))
    page.get_by_label("Card").fill(json.dumps(broken, indent=2))
    expect(page.locator("#card-problems")).to_contain_text("version")
    page.get_by_role("button", name="Submit").click()

    problems = page.locator("#card-problems")
    expect(problems).to_contain_text("version")
    expect(page.locator("#id_card_error")).to_contain_text("does not pass the schema")
    expect(page).to_have_url(re.compile(r"/submit/$"))
    _checked(watched, screenshot_dir, "submit-broken-card")
