"""Every page is inert to hostile card text, runs only the hub's own scripts, and loads nothing
from another origin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client as HttpClient

from tests import factories

pytestmark = pytest.mark.django_db

HUB = Path(__file__).resolve().parents[3] / "hub"
TITLE = '<script>alert("title")</script>'
COMMENT = "<img src=x onerror=alert(1)>"
MODALITY = '<svg onload=alert("modality")>'


@pytest.fixture
def hostile_release() -> object:
    release = factories.release_row(
        submitter=factories.user("mallory"),
        model_id="mallory/hostile",
        description={"title": TITLE, "comment": COMMENT, "version": "1.0.0"},
        selection={"modality": [MODALITY], "organ": [TITLE], "type": COMMENT, "tags": []},
    )
    factories.evaluation_row(release, fid_rs=5.0)
    return release


def _staff() -> HttpClient:
    from django.contrib.auth.models import User

    http = HttpClient()
    http.force_login(User.objects.create_superuser("root", "root@example.org", "x"))
    return http


@pytest.mark.usefixtures("hostile_release")
@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?q=hostile",
        "/?modality=%3Csvg%20onload%3Dalert(%22modality%22)%3E",
        "/models/mallory/hostile/",
        "/leaderboard/",
        "admin:release-change",
        "admin:release-list",
    ],
)
def test_card_text_is_shown_escaped_and_never_as_markup(path: str, hostile_release: object) -> None:
    http = HttpClient()
    if path == "admin:release-change":
        http, path = _staff(), f"/admin/registry/release/{hostile_release.pk}/change/"  # type: ignore[attr-defined]
    elif path == "admin:release-list":
        http, path = _staff(), "/admin/registry/release/"

    page = http.get(path)

    body = page.content.decode()
    assert page.status_code == 200
    for hostile in (TITLE, COMMENT, MODALITY):
        assert hostile not in body
    assert not re.search(r"<(script|img|svg)[^>]*(alert|onerror|onload)", body)


def test_a_hostile_title_is_visible_as_text_on_its_page(hostile_release: object) -> None:
    body = HttpClient().get("/models/mallory/hostile/").content.decode()

    assert "&lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body


@pytest.mark.parametrize("path", ["/", "/leaderboard/", "/api/docs/", "/admin/login/"])
def test_every_page_carries_a_content_security_policy_without_inline_code(path: str) -> None:
    factories.release_row(submitter=factories.user("alice"))

    page = HttpClient().get(path)

    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


@pytest.mark.parametrize("path", ["/", "/models/alice/noise-16/", "/leaderboard/", "/api/docs/"])
def test_the_hubs_pages_hold_no_inline_script_or_style(path: str) -> None:
    factories.release_row(submitter=factories.user("alice"))

    body = HttpClient().get(path).content.decode()

    scripts = re.findall(r"<script\b[^>]*>", body)
    assert all(" src=" in tag for tag in scripts), scripts
    assert "<style" not in body
    assert not re.search(r"\sstyle=", body)
    assert not re.search(r"\son[a-z]+=", body)


def test_no_template_of_the_hub_loads_anything_from_another_origin() -> None:
    templates = sorted(HUB.rglob("templates/**/*.html"))
    assert len(templates) >= 5

    for template in templates:
        text = template.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:script|link|img|iframe)\b[^>]*(?:src|href)="(?:https?:)?//', text)
        assert not remote, f"{template}: {remote}"


def test_the_admins_release_pages_hold_no_inline_script_or_style() -> None:
    release = factories.release_row(submitter=factories.user("alice"))
    http = _staff()

    for path in [
        "/admin/",
        "/admin/registry/release/",
        f"/admin/registry/release/{release.pk}/change/",
    ]:
        body = http.get(path).content.decode()

        assert all(" src=" in tag for tag in re.findall(r"<script\b[^>]*>", body)), path
        assert not re.search(r"\sstyle=", body) and "<style" not in body, path
    assert 'class="review-grid-large"' in body


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/login/",
        "/accounts/signup/",
        "/accounts/tokens/",
        "/submit/",
        "/submissions/",
        "/submissions/alice/noise-16/1.0.0/",
    ],
)
def test_the_contributors_pages_hold_no_inline_script_or_style(path: str) -> None:
    alice = factories.user("alice")
    factories.release_row(submitter=alice, state="validating")
    http = HttpClient()
    if "accounts/log" not in path and "signup" not in path:
        http.force_login(alice)

    page = http.get(path)

    body = page.content.decode()
    assert page.status_code == 200
    assert all(" src=" in tag for tag in re.findall(r"<script\b[^>]*>", body))
    assert not re.search(r"\sstyle=", body) and "<style" not in body
    assert not re.search(r"\son[a-z]+=", body)
    assert 'name="csrfmiddlewaretoken"' in body
