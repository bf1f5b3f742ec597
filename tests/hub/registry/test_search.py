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


def test_changes_update_the_kept_index_to_what_a_rebuild_gives(
    medigan_global: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import transaction

    from hub.access import viewer_for
    from hub.registry.models import GenerativeModel
    from medigan_catalog.access import Visibility

    services.medigan_catalog_import(raw_catalog=medigan_global, actor=None, source="test")
    selectors.catalog_search()
    builds: list[int] = []
    real_build = selectors._catalog_search_build
    monkeypatch.setattr(
        selectors,
        "_catalog_search_build",
        lambda state: builds.append(state.serial) or real_build(state),
    )
    alice = factories.user("alice")
    for model_id, version in (
        ("alice/noise-16", "1.0.0"),
        ("alice/noise-16", "1.1.0"),  # a new version replaces the entry in place
        ("aaa/first-model", "1.0.0"),  # sorts first in catalogue order
    ):
        if model_id.startswith("aaa/"):
            factories.user("aaa")
        release = factories.release_row(
            submitter=alice if model_id.startswith("alice") else factories.user("aaa"),
            model_id=model_id,
            version=version,
            state="approved",
        )
        services.release_publish(release_id=release.pk)
        selectors.catalog_search()
    with transaction.atomic():
        model = GenerativeModel.objects.get(namespace="alice")
        services.model_visibility_request(
            model_id=model.pk,
            viewer=viewer_for(alice),
            actor=alice,
            target=Visibility.INTERNAL,
        )
    updated = selectors.catalog_search()

    assert builds == []  # every change was an update, none a rebuild
    selectors.catalog_search_clear()
    rebuilt = selectors.catalog_search()
    assert [entry.key for entry in updated.index.entries] == [
        entry.key for entry in rebuilt.index.entries
    ]
    assert updated.index.entries[0].key == "aaa/first-model"
    assert updated.by_model["alice/noise-16"].release.version == "1.1.0"
    assert updated.by_model["alice/noise-16"].release.generative_model.visibility == "internal"
    for query in ("noise", "mammography dcgan", "first", "wgan"):
        assert [hit.position for hit in updated.index.search(query)] == [
            hit.position for hit in rebuilt.index.search(query)
        ], query
    # The internal model is found by signed-in callers only.
    http = HttpClient()
    anonymous = _ids(http.get("/api/v1/models", {"q": "noise"}))
    signed_in = _ids(
        http.get(
            "/api/v1/models", {"q": "noise"}, HTTP_AUTHORIZATION=f"Token {factories.token(alice)}"
        )
    )
    assert "alice/noise-16" not in anonymous
    assert "alice/noise-16" in signed_in
    assert "aaa/first-model" in anonymous
