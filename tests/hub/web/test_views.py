"""The catalogue page (search, filters, facets, sorting, pages) and each model's page."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from django.test import Client as HttpClient

from hub.registry import services
from medigan_catalog.lifecycle import ReleaseState
from tests import factories

pytestmark = pytest.mark.django_db

_ROW_LINK = re.compile(rb'<td><a href="/models/[^"]+/">([^<]+)</a>')


def _listed(content: bytes) -> list[str]:
    return [match.decode() for match in _ROW_LINK.findall(content)]


@pytest.fixture
def medigan_catalogue(medigan_global: dict[str, Any]) -> None:
    services.medigan_catalog_import(raw_catalog=medigan_global, actor=None, source="test")


@pytest.mark.usefixtures("medigan_catalogue")
def test_the_catalogue_page_lists_published_models_and_searches() -> None:
    http = HttpClient()

    everything = http.get("/")
    brain = http.get("/", {"q": "brain"})

    assert everything.status_code == 200
    assert len(_listed(everything.content)) == 23
    assert "medigan/00007_INPAINT_BRAIN_MRI" in _listed(brain.content)
    assert "medigan/00001_DCGAN_MMG_CALC_ROI" not in _listed(brain.content)


@pytest.mark.usefixtures("medigan_catalogue")
def test_key_value_words_filter_on_the_page_and_in_the_api_as_on_the_cli() -> None:
    http = HttpClient()

    page = _listed(http.get("/", {"q": "modality=mri"}).content)
    api = http.get("/api/v1/models", {"q": "modality=mri"}).json()["results"]
    narrowed = _listed(http.get("/", {"q": "brain modality=mri"}).content)

    assert page and sorted(page) == sorted(row["model_id"] for row in api)
    assert "medigan/00001_DCGAN_MMG_CALC_ROI" not in page  # a mammography model
    assert set(narrowed) <= set(page) and "medigan/00007_INPAINT_BRAIN_MRI" in narrowed


@pytest.mark.usefixtures("medigan_catalogue")
def test_a_facet_narrows_the_list_and_each_value_shows_how_many_it_keeps() -> None:
    http = HttpClient()
    page = http.get("/").content.decode()
    match = re.search(r'modality=([^"&]+)">([^<]+)</a> <span class="muted">\((\d+)\)', page)
    assert match is not None
    value, count = match.group(2), int(match.group(3))

    narrowed = http.get("/", {"modality": value})

    assert len(_listed(narrowed.content)) == count < 23
    assert f'<span class="chosen">{value} ({count})</span>' in narrowed.content.decode()


def test_pages_of_25_keep_the_search_and_the_sort() -> None:
    alice = factories.user("alice")
    for index in range(30):
        factories.release_row(submitter=alice, model_id=f"alice/noise-{index:02d}", grid=False)
    http = HttpClient()

    first = http.get("/", {"q": "noise", "sort": "name"})
    second = http.get("/", {"q": "noise", "sort": "name", "page": 2})

    assert _listed(first.content) == [f"alice/noise-{index:02d}" for index in range(25)]
    assert _listed(second.content) == [f"alice/noise-{index:02d}" for index in range(25, 30)]
    assert b"page 1 of 2" in first.content
    assert b'href="?q=noise&amp;sort=name&amp;page=2"' in first.content


def test_each_row_shows_a_thumbnail_of_its_grid_through_the_checked_view() -> None:
    factories.release_row(submitter=factories.user("alice"))

    page = HttpClient().get("/")

    grid_url = b"/api/v1/models/alice/noise-16/releases/1.0.0/sample-grid"
    assert b'<img class="thumb" src="' + grid_url + b'"' in page.content
    assert b"/media/" not in page.content


def test_the_model_page_renders_the_card_grid_versions_arguments_snippets_and_download() -> None:
    alice = factories.user("alice")
    factories.release_row(submitter=alice, version="1.0.0")
    newest = factories.release_row(submitter=alice, version="1.1.0", package=b"zip bytes")
    newest.checks.create(name="smoke_generation", status="passed", message="4 samples in 0.2 s")

    page = HttpClient().get("/models/alice/noise-16/").content.decode()

    assert "<h1>Noise test model alice/noise-16</h1>" in page
    assert "version 1.1.0" in page
    assert (
        '<img class="grid-large" src="/api/v1/models/alice/noise-16/releases/1.1.0/sample-grid"'
        in page
    )
    assert page.index(">1.1.0</a>") < page.index(">1.0.0</a>")  # newest first
    assert "<code>brightness</code>" in page and "added to every pixel" in page
    assert "medigan-client generate alice/noise-16@1.1.0 -n 8 -o samples --arg brightness=0" in page
    assert "Generators().generate(model_id=&quot;alice/noise-16&quot;" in page
    assert (
        'href="/api/v1/models/alice/noise-16/releases/1.1.0/artifacts/noise-16-1.1.0.zip"' in page
    )
    assert "none (procedural noise)" in page and "CC0-1.0" in page
    assert "4 samples in 0.2 s" in page


def test_an_older_version_has_its_own_page() -> None:
    alice = factories.user("alice")
    factories.release_row(submitter=alice, version="1.0.0")
    factories.release_row(submitter=alice, version="1.1.0")

    page = HttpClient().get("/models/alice/noise-16/1.0.0/").content.decode()

    assert "version 1.0.0" in page and "(shown)" in page


def test_the_model_page_shows_the_evaluations_and_the_place_on_each_leaderboard() -> None:
    alice = factories.user("alice")
    better = factories.release_row(submitter=alice, model_id="alice/better")
    worse = factories.release_row(submitter=alice, model_id="alice/worse")
    factories.evaluation_row(better, fid_rs=10.0)
    factories.evaluation_row(worse, fid_rs=30.0)

    page = HttpClient().get("/models/alice/worse/").content.decode()

    assert "<td>30.000</td>" in page
    assert "position 2 of 2 by FID" in page
    assert 'href="/leaderboard/?reference=noise&amp;extractor=medical-cnn"' in page


@pytest.mark.usefixtures("medigan_catalogue")
def test_a_medigan_model_on_zenodo_says_so_plainly() -> None:
    page = HttpClient().get("/models/medigan/00001_DCGAN_MMG_CALC_ROI/").content.decode()

    assert "its package is hosted on Zenodo" in page
    assert "zenodo.org" in page
    assert "Download the package" not in page


def test_a_model_that_is_not_visible_has_no_page() -> None:
    factories.release_row(submitter=factories.user("alice"), state="in_review")

    assert HttpClient().get("/models/alice/noise-16/").status_code == 404
    assert HttpClient().get("/models/nobody/nothing/").status_code == 404


def test_the_leaderboard_links_each_model_to_its_page() -> None:
    release = factories.release_row(submitter=factories.user("alice"))
    factories.evaluation_row(release, fid_rs=12.0)

    page = HttpClient().get("/leaderboard/").content.decode()

    assert '<a href="/models/alice/noise-16/1.0.0/">alice/noise-16</a>' in page


def test_the_leaderboard_shows_one_reference_set_by_default_the_one_with_most_rows() -> None:
    alice = factories.user("alice")
    small, large = factories.reference_set_row("small"), factories.reference_set_row("large")
    for index in range(3):
        release = factories.release_row(submitter=alice, model_id=f"alice/model-{index}")
        factories.evaluation_row(release, fid_rs=10.0 + index, reference_set=large)
    factories.evaluation_row(
        factories.release_row(submitter=alice, model_id="alice/only-small"),
        fid_rs=1.0,
        reference_set=small,
    )
    http = HttpClient()

    default = http.get("/leaderboard/").content.decode()
    chosen = http.get("/leaderboard/", {"reference": "small"}).content.decode()

    assert '<option value="large" selected>large (3 rows)</option>' in default
    assert "alice/model-0" in default and "alice/only-small" not in default
    assert "alice/only-small" in chosen and "alice/model-0" not in chosen
    assert ">FID vs reference</a></th>" in default and ">fid_rs</a>" not in default


def test_the_leaderboard_plot_gives_one_colour_per_modality_family() -> None:
    alice = factories.user("alice")
    for name, modality in [("a", "CXR"), ("b", "x-ray"), ("c", "MMG")]:
        selection = {"modality": [modality], "organ": ["chest"], "type": "GAN", "tags": []}
        release = factories.release_row(
            submitter=alice, model_id=f"alice/{name}", selection=selection
        )
        factories.evaluation_row(release, fid_rs=10.0)

    page = HttpClient().get("/leaderboard/").content.decode()

    fills = re.findall(r'<circle class="point"[^>]*fill="(#[0-9A-Fa-f]{6})"', page)
    assert len(fills) == 3 and sorted(Counter(fills).values()) == [1, 2]
    assert ">X-ray</text>" in page and ">mammography</text>" in page
    assert 'aria-label="alice/a 1.0.0 (X-ray): FID vs reference 10.00' in page


def test_the_model_page_says_what_changed_in_the_card_since_the_previous_version() -> None:
    alice = factories.user("alice")
    factories.release_row(submitter=alice, version="1.0.0")
    factories.release_row(
        submitter=alice,
        version="1.1.0",
        provenance={"authors": ["a new author"], "licence": "MIT", "dois": [], "training_data": []},
    )

    page = HttpClient().get("/models/alice/noise-16/").content.decode()

    assert "What changed in the card since 1.0.0" in page
    assert '<span class="diff-add">+      &quot;a new author&quot;' in page


def test_the_model_page_shows_the_release_notes_as_text() -> None:
    factories.release_row(
        submitter=factories.user("alice"), release_notes="Sharper.\n<script>x()</script>"
    )

    page = HttpClient().get("/models/alice/noise-16/").content.decode()

    assert "What's new in 1.0.0" in page
    assert "Sharper.<br>&lt;script&gt;x()&lt;/script&gt;" in page


def test_a_deprecated_release_page_says_why_and_links_its_replacement() -> None:
    alice = factories.user("alice")
    release = factories.release_row(submitter=alice, model_id="alice/noise-16")
    factories.release_row(submitter=alice, model_id="alice/noise-32")
    services.release_transition(
        release_id=release.pk,
        target=ReleaseState.DEPRECATED,
        actor=alice,
        note="mode <b>collapse</b>",
        replacement_model_id="alice/noise-32",
    )

    page = HttpClient().get("/models/alice/noise-16/")

    notice = re.search(rb'<p class="warn" id="lifecycle-notice">(.*?)</p>', page.content, re.S)
    assert notice is not None
    assert b"<strong>deprecated</strong>" in notice.group(1)
    assert b"mode &lt;b&gt;collapse&lt;/b&gt;" in notice.group(1)
    assert b'<a href="/models/alice/noise-32/">alice/noise-32</a>' in notice.group(1)


def test_the_model_page_shows_the_newest_release_that_is_not_yanked() -> None:
    alice = factories.user("alice")
    factories.release_row(submitter=alice, version="1.0.0")
    newer = factories.release_row(submitter=alice, version="1.1.0")
    services.release_transition(release_id=newer.pk, target=ReleaseState.YANKED, note="wrong range")

    page = HttpClient().get("/models/alice/noise-16/")
    pinned = HttpClient().get("/models/alice/noise-16/1.1.0/")

    assert b"version 1.0.0" in page.content
    assert b"lifecycle-notice" not in page.content
    assert b"<strong>yanked</strong>" in pinned.content
    assert b"never chosen as the newest" in pinned.content
