"""Tests for medigan_catalog.search: medigan's exact semantics and the better search and rank."""

from __future__ import annotations

from typing import Any

import pytest

from medigan_catalog.medigan_compat import ImportResult
from medigan_catalog.schema import Card, card_from_json
from medigan_catalog.search import (
    medigan_find_matching,
    medigan_rank,
    parse_filter_terms,
    rank,
    search,
)


def _card(name: str, selection: dict[str, Any], title: str | None = None) -> Card:
    return card_from_json(
        {
            "model_id": f"test/{name}",
            "version": "1.0.0",
            "runtime": {"kind": "v2"},
            "output": {"height": 8, "width": 8},
            "selection": selection,
            "description": {"title": title} if title else {},
        }
    )


@pytest.fixture
def cards() -> list[Card]:
    return [
        _card(
            "a",
            {
                "modality": ["MMG", "Mammography"],
                "type": "DCGAN",
                "year": "2021",
                "performance": {"FID": 60.0, "SSIM": None, "CLF": {"real": {"auc": [0.7, 0.9]}}},
            },
            title="Mammogram DCGAN",
        ),
        _card(
            "b",
            {
                "modality": ["MRI"],
                "organ": ["brain"],
                "type": "WGANGP",
                "performance": {"FID": 30.0, "CLF": {"real": {"auc": 0.8}}},
            },
            title="Brain MRI WGAN",
        ),
        _card(
            "c",
            {
                "modality": ["x-ray mammography"],
                "type": "Conditional DCGAN",
                "license": None,
                "performance": {"FID": 60.0, "note": "n/a"},
            },
        ),
        _card("d", {"modality": ["CT"], "type": "pix2pix", "performance": {}}),
    ]


def _names(found: list[Card]) -> list[str]:
    return [card.name for card in found]


def test_medigan_example_on_real_catalogue(medigan_import: ImportResult) -> None:
    found = medigan_find_matching(medigan_import.cards, ["mammography", "dcgan"], "AND")
    assert _names(found) == [
        "00001_DCGAN_MMG_CALC_ROI",
        "00002_DCGAN_MMG_MASS_ROI",
        "00005_DCGAN_MMG_MASS_ROI",
    ]


def test_medigan_rank_on_real_catalogue(medigan_import: ImportResult) -> None:
    ranked = medigan_rank(medigan_import.cards, "CLF.trained_on_real.AUC")
    assert [card.name[:5] for card in ranked] == ["00005", "00006", "00020"]
    by_fid = medigan_rank(medigan_import.cards, "FID", "desc")
    assert by_fid[0].name.startswith("00009")  # FID 225.85 is the largest
    assert len(by_fid) == 22  # 00022 has no FID and is dropped


def test_medigan_values_match_whole_strings_only(cards: list[Card]) -> None:
    assert _names(medigan_find_matching(cards, ["mammography"])) == ["a"]
    assert _names(medigan_find_matching(cards, ["mammo"])) == []
    assert _names(medigan_find_matching(cards, ["x-ray mammography"])) == ["c"]


def test_medigan_operators(cards: list[Card]) -> None:
    assert _names(medigan_find_matching(cards, ["dcgan", "mri"], "AND")) == []
    assert _names(medigan_find_matching(cards, ["dcgan", "mri"], "OR")) == ["a", "b"]
    assert _names(medigan_find_matching(cards, ["dcgan", "mmg", "mri"], "XOR")) == ["b"]
    assert _names(medigan_find_matching(cards, ["dcgan"], "NAND")) == []
    with pytest.raises(ValueError, match="at least one value"):
        medigan_find_matching(cards, [])


def test_medigan_case_and_keys(cards: list[Card]) -> None:
    assert _names(medigan_find_matching(cards, ["MRI"], case_sensitive=True)) == ["b"]
    assert _names(medigan_find_matching(cards, ["mri"], case_sensitive=True)) == []
    assert _names(medigan_find_matching(cards, ["organ"])) == []
    assert _names(medigan_find_matching(cards, ["organ"], match_keys=True)) == ["b"]
    assert _names(medigan_find_matching(cards, ["auc"], match_keys=True)) == ["a", "b"]


def test_medigan_compares_str_forms_of_any_value(cards: list[Card]) -> None:
    # Like medigan: numbers and nulls are compared as str(value), lower-cased.
    assert _names(medigan_find_matching(cards, ["60.0"])) == ["a", "c"]
    assert _names(medigan_find_matching(cards, ["none"])) == ["a", "c"]
    assert _names(medigan_find_matching(cards, ["0.9"])) == ["a"]


def test_medigan_rank_semantics(cards: list[Card]) -> None:
    assert _names(medigan_rank(cards, "FID")) == ["b", "a", "c"]
    assert _names(medigan_rank(cards, "FID", "desc")) == ["a", "c", "b"]
    assert _names(medigan_rank(cards, "FID", "descending")) == ["a", "c", "b"]
    assert _names(medigan_rank(cards, "CLF.real.auc", "asc")) == ["a", "b"]  # min(0.7, 0.9)
    assert _names(medigan_rank(cards, "CLF.real.auc", "desc")) == ["a", "b"]  # max is 0.9
    assert _names(medigan_rank(cards, "SSIM")) == []
    assert _names(medigan_rank(cards, "note")) == []
    assert _names(medigan_rank(cards)) == []  # medigan's default metric is SSIM


def test_search_prefix_and_variants(cards: list[Card]) -> None:
    assert _names([hit.card for hit in search(cards, "mammo")]) == ["a", "c"]
    assert _names([hit.card for hit in search(cards, "WGAN-GP")]) == ["b"]
    assert _names([hit.card for hit in search(cards, '"wgan gp"')]) == ["b"]
    assert _names([hit.card for hit in search(cards, '"x-ray mammography"')]) == ["c"]
    assert _names([hit.card for hit in search(cards, "xray")]) == ["c"]


def test_search_scores_exact_and_title_hits_higher(cards: list[Card]) -> None:
    hits = search(cards, "dcgan")
    assert [(hit.card.name, hit.score) for hit in hits] == [("a", 4.0), ("c", 2.0)]
    assert hits[0].matched_terms == ("dcgan",)
    prefix = search(cards, "mamm")
    assert [(hit.card.name, hit.score) for hit in prefix] == [("a", 2.0), ("c", 1.0)]


def test_search_operators(cards: list[Card]) -> None:
    assert _names([h.card for h in search(cards, "dcgan brain")]) == []
    assert _names([h.card for h in search(cards, "dcgan brain", operator="or")]) == ["a", "b", "c"]
    assert _names([h.card for h in search(cards, "mri brain ct", operator="XOR")]) == ["d"]
    with pytest.raises(ValueError, match="operator"):
        search(cards, "x", operator="NOT")


def test_search_filters(cards: list[Card]) -> None:
    assert _names([h.card for h in search(cards, filters={"modality": "mri"})]) == ["b"]
    assert _names([h.card for h in search(cards, filters={"modality": "mri,ct"})]) == ["b", "d"]
    assert _names([h.card for h in search(cards, filters={"type": "wgan-gp"})]) == ["b"]
    assert _names([h.card for h in search(cards, filters={"organ": "br"})]) == ["b"]
    assert _names([h.card for h in search(cards, filters={"namespace": "test"})]) == [
        "a", "b", "c", "d",
    ]  # fmt: skip
    assert _names([h.card for h in search(cards, "dcgan", filters={"modality": "x"})]) == ["c"]
    assert _names([h.card for h in search(cards, filters={"vendor": "x"})]) == []


def test_empty_search_returns_everything_in_order(cards: list[Card]) -> None:
    hits = search(cards)
    assert _names([h.card for h in hits]) == ["a", "b", "c", "d"]
    assert {h.score for h in hits} == {0.0}


def test_search_real_catalogue(medigan_import: ImportResult) -> None:
    hits = search(medigan_import.cards, "polyp", filters={"type": "pggan"})
    assert [hit.card.name for hit in hits] == ["00009_PGGAN_POLYP_PATCHES_W_MASKS"]
    wgan = search(medigan_import.cards, "wgangp")
    assert [hit.card.name[:5] for hit in wgan] == ["00006", "00018"]


def test_rank_keeps_unranked_at_the_end(cards: list[Card]) -> None:
    assert _names(rank(cards, "FID")) == ["b", "a", "c", "d"]
    assert _names(rank(cards, "FID", descending=True)) == ["a", "c", "b", "d"]
    assert _names(rank(cards, "CLF.real.auc", descending=True)) == ["a", "b", "c", "d"]
    assert _names(rank(cards, "CLF.real.auc")) == ["a", "b", "c", "d"]
    assert _names(rank(cards, "missing")) == ["a", "b", "c", "d"]


def test_parse_filter_terms() -> None:
    terms, filters = parse_filter_terms(
        ["mammography", "type=dcgan", "chest x-ray", "modality=mri", "modality=ct", " "]
    )
    assert terms == ["mammography", '"chest x-ray"']
    assert filters == {"type": "dcgan", "modality": "mri,ct"}
    assert parse_filter_terms(["a=b=c"]) == ([], {"a": "b=c"})
    assert parse_filter_terms(["=x"]) == (["=x"], {})


def test_medigan_matching_sees_the_values_medigan_holds_before_normalisation(
    medigan_import: ImportResult,
) -> None:
    # 00018 spells its type "WGANGP"; the import normalises it to "WGAN-GP" (as 00006 has it),
    # but medigan's whole-string matching must still see the spelling medigan holds.
    original_spelling = _names(medigan_find_matching(medigan_import.cards, ["wgangp"]))
    normalised_spelling = _names(medigan_find_matching(medigan_import.cards, ["wgan-gp"]))

    assert "00018_WGANGP_XRAY_LUNG_NODULES" in original_spelling
    assert "00018_WGANGP_XRAY_LUNG_NODULES" not in normalised_spelling
    assert "00006_WGANGP_MMG_MASS_ROI" in normalised_spelling
