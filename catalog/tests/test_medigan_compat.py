"""Tests for medigan_catalog.medigan_compat: importing and exporting medigan's global.json."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from medigan_catalog.errors import CardInvalidError
from medigan_catalog.medigan_compat import (
    DEFAULT_VERSION,
    ImportResult,
    NormalisationWarning,
    card_from_medigan_entry,
    card_to_medigan_entry,
    export_global_json,
    import_global_json,
    load_global_json,
)
from medigan_catalog.schema import ArgumentType, Card, RuntimeKind, card_from_json
from medigan_catalog.validation import card_problems


def _card(result: ImportResult, prefix: str) -> Card:
    (card,) = [c for c in result.cards if c.name.startswith(prefix)]
    return card


def _warned(result: ImportResult, prefix: str, field: str) -> NormalisationWarning:
    (warning,) = [
        w
        for w in result.warnings
        if w.model_id.startswith(f"medigan/{prefix}") and w.field == field
    ]
    return warning


def test_all_entries_import_in_order(
    medigan_raw: dict[str, Any], medigan_import: ImportResult
) -> None:
    assert len(medigan_raw) == 23
    assert [card.compat.medigan_id for card in medigan_import.cards if card.compat] == list(
        medigan_raw
    )
    assert [card.model_id for card in medigan_import.cards] == [
        f"medigan/{key}" for key in medigan_raw
    ]
    for card in medigan_import.cards:
        assert card.runtime.kind is RuntimeKind.MEDIGAN_LEGACY
        assert card_problems(card) == []


def test_export_reproduces_the_file_exactly(
    medigan_raw: dict[str, Any], medigan_text: str, medigan_import: ImportResult
) -> None:
    exported = export_global_json(medigan_import.cards)
    assert exported == medigan_raw
    # dict equality ignores order; the serialised text does not.
    assert json.dumps(exported) == json.dumps(medigan_raw)
    assert json.dumps(exported, indent=2, ensure_ascii=False) == json.dumps(
        json.loads(medigan_text), indent=2, ensure_ascii=False
    )


def test_each_entry_round_trips(medigan_raw: dict[str, Any]) -> None:
    for medigan_id, entry in medigan_raw.items():
        card, _ = card_from_medigan_entry(medigan_id, entry)
        exported = card_to_medigan_entry(card)
        assert json.dumps(exported) == json.dumps(entry), medigan_id
        # The card's own JSON (what the hub stores) exports the same entry.
        stored = card_from_json(json.loads(json.dumps(card.to_json())))
        assert json.dumps(card_to_medigan_entry(stored)) == json.dumps(entry), medigan_id


def test_import_does_not_modify_its_input(medigan_raw: dict[str, Any], medigan_text: str) -> None:
    import_global_json(medigan_raw)
    assert json.dumps(medigan_raw) == json.dumps(json.loads(medigan_text))


def test_load_global_json_reads_a_file(medigan_global_path: Path) -> None:
    result = load_global_json(medigan_global_path)
    assert len(result.cards) == 23


def test_every_warning_names_model_and_field_and_keeps_original(
    medigan_import: ImportResult,
) -> None:
    assert medigan_import.warnings
    by_id = {card.model_id: card for card in medigan_import.cards}
    for warning in medigan_import.warnings:
        card = by_id[warning.model_id]
        assert card.compat is not None
        assert warning.model_id in str(warning) and warning.field in str(warning)
        if warning.field in card.compat.original_values:
            assert card.compat.original_values[warning.field] == warning.original


def test_normalisation_counts(medigan_import: ImportResult) -> None:
    fields = Counter(
        "selection.performance" if w.field.startswith("selection.performance.") else w.field
        for w in medigan_import.warnings
    )
    assert fields == {
        "description.doi": 12,
        "description.version": 10,
        "selection.performance": 3,
        "selection.type": 2,
        "selection.license": 2,
        "selection.year": 2,
        "selection.height": 1,
        "selection.width": 1,
        "selection.privacy_preservation": 1,
        "execution.image_size": 1,
    }


def test_metric_strings_become_floats(medigan_import: ImportResult) -> None:
    card = _card(medigan_import, "00023")
    performance = card.selection.performance
    assert performance is not None
    seg = performance["downstream_task"]["SEG"]
    assert seg["trained_on_real_and_fake"]["dice"] == 0.797
    assert seg["trained_on_real"]["dice"] == 0.79
    assert performance["turing_test"] is None
    path = "selection.performance.downstream_task.SEG.trained_on_real.dice"
    assert card.compat is not None and card.compat.original_values[path] == "0.790"
    assert _warned(medigan_import, "00023", path).normalised == 0.79


def test_model_type_variants_become_one_spelling(medigan_import: ImportResult) -> None:
    assert _card(medigan_import, "00006").selection.type == "WGAN-GP"
    assert _card(medigan_import, "00018").selection.type == "WGAN-GP"
    assert _warned(medigan_import, "00018", "selection.type").original == "WGANGP"
    assert _card(medigan_import, "00009").selection.type == "PGGAN"
    types = Counter(card.selection.type for card in medigan_import.cards)
    assert "WGANGP" not in types
    assert types["PGGAN"] == 3


def test_dois_become_bare(medigan_import: ImportResult) -> None:
    card = _card(medigan_import, "00007")
    assert card.description.doi == ["10.48550/arXiv.2003.07526", "10.1002/mp.14701"]
    assert card.provenance.dois == ("10.48550/arXiv.2003.07526", "10.1002/mp.14701")
    empty = _card(medigan_import, "00022")
    assert empty.description.doi == []
    assert empty.compat is not None and empty.compat.original_values["description.doi"] == [""]
    for imported in medigan_import.cards:
        for doi in imported.description.doi or []:
            assert doi.startswith("10.")


def test_sizes_become_integers(medigan_import: ImportResult) -> None:
    card = _card(medigan_import, "00021")
    assert card.execution.image_size == [224, 192]
    assert (card.selection.height, card.selection.width) == (224, 192)
    assert (card.output.height, card.output.width) == (224, 192)
    assert _warned(medigan_import, "00021", "execution.image_size").original == ["224", "192"]
    assert _warned(medigan_import, "00021", "selection.height").original == 224.0


def test_versions_become_semver(medigan_import: ImportResult) -> None:
    assert _card(medigan_import, "00021").version == "1.0.0"
    assert _card(medigan_import, "00023").version == "1.0.0"
    assert _card(medigan_import, "00002").version == DEFAULT_VERSION
    assert _card(medigan_import, "00006").version == "1.0.0"
    assert _card(medigan_import, "00008").version == "1.0.1"
    assert _warned(medigan_import, "00021", "description.version").original == "1"


def test_other_inconsistencies(medigan_import: ImportResult) -> None:
    card = _card(medigan_import, "00023")
    assert card.selection.license == "BSD"
    assert card.provenance.licence == "BSD"
    assert card.selection.year == "2023"
    assert card.selection.privacy_preservation is None
    assert _card(medigan_import, "00010").selection.license == "GPL"
    assert all(isinstance(c.selection.year, str) for c in medigan_import.cards)


def test_imported_card_fields(medigan_import: ImportResult) -> None:
    card = _card(medigan_import, "00001")
    assert card.model_id == "medigan/00001_DCGAN_MMG_CALC_ROI"
    assert card.version == "0.0.1"
    assert card.runtime.entry_point == "generate"
    assert card.runtime.dependencies == (
        "numpy", "Path", "torch", "opencv-contrib-python-headless",
    )  # fmt: skip
    (argument,) = card.generation_arguments
    assert (argument.name, argument.type, argument.default) == ("image_size", ArgumentType.INT, 128)
    assert argument.help == "128 is the image size that works with the supplied checkpoint."
    assert (card.output.height, card.output.width, card.output.channels) == (128, 128, 1)
    package = card.package_artifact
    assert package is not None
    assert package.filename == "00001_DCGAN_MMG_CALC_ROI.zip"
    assert package.sha256 is None and package.size is None
    assert package.urls == (
        "https://zenodo.org/record/7031735/files/00001_DCGAN_MMG_CALC_ROI.zip?download=1",
    )
    assert card.provenance.licence == "MIT"
    assert [data.name for data in card.provenance.training_data] == ["INbreast"]
    assert card.provenance.dois == ("10.5281/zenodo.5187714",)
    assert card.compat is not None and card.compat.original_values == {}
    assert card.title.startswith("DCGAN Model for Mammogram")


def test_entry_point_and_argument_types(medigan_import: ImportResult) -> None:
    assert _card(medigan_import, "00004").runtime.entry_point == "generate_GAN_images"
    pggan = _card(medigan_import, "00009")
    save_option = pggan.argument("save_option")
    assert save_option is not None
    assert save_option.choices == ("image_only", "mask_only", "image_and_mask")
    gpu = pggan.argument("gpu_id")
    assert gpu is not None and (gpu.type, gpu.default) == (ArgumentType.INT, None)
    assert pggan.output.channels == 4
    pix2pix = _card(medigan_import, "00004")
    shapes = pix2pix.argument("shapes")
    assert shapes is not None and shapes.type is ArgumentType.STR_LIST
    patch = pix2pix.argument("patch_size")
    assert patch is not None and (patch.type, patch.default) == (ArgumentType.INT_LIST, (32, 32))
    threshold = pix2pix.argument("ssim_threshold")
    assert threshold is not None and threshold.type is ArgumentType.FLOAT
    condition = _card(medigan_import, "00008").argument("condition")
    assert condition is not None and condition.type is ArgumentType.INT
    # medigan's own value types are passed through: "0" stays a string for 00021.
    gpu_text = _card(medigan_import, "00021").argument("gpu_id")
    assert gpu_text is not None and (gpu_text.type, gpu_text.default) == (ArgumentType.STR, "0")


def test_entry_without_version_key_stays_lossless() -> None:
    entry = {
        "execution": {"package_name": "p", "package_link": "https://x/p.zip", "image_size": [8, 8]},
        "selection": {"type": "WGANGP", "height": "8", "width": 8},
        "description": {"title": "t", "extra": {"kept": True}},
        "beside": [1, 2],
    }
    card, warnings = card_from_medigan_entry("p", entry, namespace="mirror")
    assert card.model_id == "mirror/p"
    assert card.version == DEFAULT_VERSION
    assert {w.field for w in warnings} == {
        "description.version", "selection.type", "selection.height",
    }  # fmt: skip
    assert card_to_medigan_entry(card) == entry


def test_broken_entry_names_the_medigan_id() -> None:
    entry = {"execution": {}, "selection": {"tags": "not a list"}, "description": {}}
    with pytest.raises(CardInvalidError) as caught:
        card_from_medigan_entry("99999_BROKEN", entry)
    locs = {problem["loc"] for problem in caught.value.problems}
    assert "99999_BROKEN.selection.tags" in locs


def test_v2_card_exports_to_medigan_shape(v2_card_data: dict[str, Any]) -> None:
    card = card_from_json(v2_card_data)
    entry = card_to_medigan_entry(card)
    assert list(entry) == ["execution", "selection", "description"]
    execution = entry["execution"]
    assert execution["package_name"] == "chestxray-dcgan-64"
    assert execution["package_link"] == card.artifacts[0].urls[0]
    assert execution["image_size"] == [64, 64]
    assert execution["dependencies"] == ["torch>=2.1", "safetensors>=0.4"]
    assert execution["generate_method"]["args"]["custom"]["sizes"] == [64, 64]
    assert entry["selection"]["type"] == "DCGAN"
    assert entry["selection"]["license"] == "MIT"
    assert entry["description"]["doi"] == ["10.5281/zenodo.1234567"]
    assert entry["description"]["inputs"][0] == "truncation: default=1.0, help=latent truncation"
    assert export_global_json([card]) == {"chestxray-dcgan-64": entry}


def test_export_refuses_duplicate_ids(medigan_import: ImportResult) -> None:
    card = medigan_import.cards[0]
    with pytest.raises(ValueError, match="00001_DCGAN_MMG_CALC_ROI"):
        export_global_json([card, card])
