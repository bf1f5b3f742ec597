"""The one filter of mirrors and bundles: ``KEY=VALUE`` terms, and which entries it takes."""

from __future__ import annotations

from typing import Any

import pytest

from hub.federation.filters import FilterSyntaxError, ReleaseFilter
from medigan_catalog.schema import Card
from medigan_catalog.snapshot import SnapshotRelease
from tests import factories


def _entry(model_id: str = "zoo/chest-pca", **overrides: Any) -> SnapshotRelease:
    card = Card.model_validate(factories.card_data(model_id=model_id, **overrides))
    return SnapshotRelease(model_id=card.model_id, version=card.version, card=card)


def test_terms_name_each_list_and_a_key_given_twice_adds_its_values() -> None:
    chosen = ReleaseFilter.parse(
        ["namespace=zoo,medigan", "modality=X-Ray", "licence=MIT", "namespace=lab"]
    )

    assert chosen.namespaces == ("lab", "medigan", "zoo")
    assert chosen.modalities == ("X-Ray",)
    assert chosen.to_dict()["licences"] == ["MIT"]
    assert chosen.model_ids == ()


@pytest.mark.parametrize("term", ["zoo", "colour=red", "namespace=", "=zoo"])
def test_a_term_that_is_not_key_value_with_a_known_key_is_refused_with_a_stable_code(
    term: str,
) -> None:
    with pytest.raises(FilterSyntaxError) as raised:
        ReleaseFilter.parse([term])

    assert raised.value.code == "bad_request" and term in str(raised.value)


def test_an_empty_filter_takes_everything() -> None:
    assert ReleaseFilter().takes(_entry("anyone/anything"))


def test_every_non_empty_list_must_match() -> None:
    xray = {"selection": {"modality": ["X-Ray"], "organ": ["lung"], "type": "PCA", "tags": []}}
    entry = _entry("zoo/chest-pca", **xray)

    assert ReleaseFilter.parse(["namespace=zoo", "modality=x-ray"]).takes(entry)
    assert not ReleaseFilter.parse(["namespace=zoo", "modality=mri"]).takes(entry)
    assert not ReleaseFilter.parse(["namespace=medigan"]).takes(entry)
    assert ReleaseFilter.parse(["licence=MIT"]).takes(entry)
    assert not ReleaseFilter.parse(["licence=CC-BY-4.0"]).takes(entry)
    assert ReleaseFilter.parse(["model=zoo/chest-pca"]).takes(entry)
    assert not ReleaseFilter.parse(["model=zoo/other"]).takes_model("zoo/chest-pca")
