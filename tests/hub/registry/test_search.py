"""Search of the registry: answered from a search index built once per catalogue serial."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client as HttpClient

from hub.registry import selectors, services
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_search_index() -> Iterator[None]:
    selectors.catalog_search_clear()
    yield
    selectors.catalog_search_clear()


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [entry["model_id"] for entry in response.json()["results"]]


def test_the_index_is_built_once_per_serial_and_again_after_a_publication(
    medigan_global: dict[str, Any],
) -> None:
    services.medigan_catalog_import(raw_catalog=medigan_global, actor=None, source="test")
    http = HttpClient()
    first = selectors.catalog_search()

    assert _ids(http.get("/api/v1/models", {"q": "alice"})) == []
    assert selectors.catalog_search() is first

    release = factories.release_row(submitter=factories.user("alice"), state="approved")
    services.release_publish(release_id=release.pk)

    assert _ids(http.get("/api/v1/models", {"q": "alice"})) == ["alice/noise-16"]
    rebuilt = selectors.catalog_search()
    assert rebuilt is not first
    assert rebuilt.serial == first.serial + 1
    assert len(rebuilt.index) == len(rebuilt.entries) == 24


def test_before_any_serial_nothing_is_kept() -> None:
    alice = factories.user("alice")
    factories.release_row(submitter=alice, model_id="alice/noise-16")
    http = HttpClient()
    assert _ids(http.get("/api/v1/models", {"q": "noise"})) == ["alice/noise-16"]

    # Rows written without a serial (no publication ran) are still seen at once.
    factories.release_row(submitter=alice, model_id="alice/noise-32")
    assert _ids(http.get("/api/v1/models", {"q": "noise"})) == [
        "alice/noise-16",
        "alice/noise-32",
    ]


def test_both_semantics_answer_from_the_index(medigan_global: dict[str, Any]) -> None:
    services.medigan_catalog_import(raw_catalog=medigan_global, actor=None, source="test")
    http = HttpClient()

    def search(**params: str) -> list[str]:
        return [model_id.split("/")[1][:5] for model_id in _ids(http.get("/api/v1/models", params))]

    # medigan's whole-value matching, in catalogue order; WGANGP is 00018's own spelling.
    assert search(q="mammography dcgan", semantics="medigan") == ["00001", "00002", "00005"]
    assert search(q="wgangp", semantics="medigan") == ["00018"]
    assert search(q="mammo", semantics="medigan") == []
    # The hub's search: prefixes and compacted spellings, best first.
    assert search(q="wgan-gp") == ["00006", "00018"]
    assert search(q="polyp", operator="AND")[:2] == ["00009", "00010"]
    both = search(q="brain polyp", operator="OR")
    assert set(search(q="brain")) | set(search(q="polyp")) == set(both)
    assert search(q="brain polyp", operator="XOR") == both
    assert len(search()) == 23
