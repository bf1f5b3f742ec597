"""Tests for medigan_catalog.validation: card rules, output checks, argument resolution."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medigan_catalog.errors import CardInvalidError, ErrorCode, GenerationArgumentError
from medigan_catalog.medigan_compat import ImportResult
from medigan_catalog.schema import Card, card_from_json
from medigan_catalog.validation import (
    check_generation_output,
    resolve_generation_arguments,
    validate_card,
)


def _locs(data: dict[str, Any]) -> set[str]:
    with pytest.raises(CardInvalidError) as caught:
        validate_card(data)
    return {problem["loc"] for problem in caught.value.problems}


def test_valid_card_passes(v2_card_data: dict[str, Any]) -> None:
    assert validate_card(v2_card_data).release_id == "zoo/chestxray-dcgan-64@1.2.0"


def test_schema_problems_come_first(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["version"] = "one"
    assert _locs(v2_card_data) == {"version"}


def test_licence_required_for_own_cards(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["provenance"]["licence"] = "  "
    assert _locs(v2_card_data) == {"provenance.licence"}


def test_imported_cards_need_no_licence(medigan_import: ImportResult) -> None:
    unlicensed = [c for c in medigan_import.cards if c.provenance.licence is None]
    assert [c.name[:5] for c in unlicensed] == ["00007", "00021", "00022"]
    for card in unlicensed:
        assert validate_card(card.to_json()) == card


def test_own_artifacts_need_checksum_and_size(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["artifacts"][0]["sha256"] = None
    v2_card_data["artifacts"][0]["size"] = None
    assert _locs(v2_card_data) == {"artifacts.0.sha256", "artifacts.0.size"}


def test_package_card_without_artifacts_is_valid(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["artifacts"] = []
    assert validate_card(v2_card_data).artifacts == ()


@pytest.mark.parametrize("name", ["seed", "device", "num_samples"])
def test_reserved_v2_argument_names(v2_card_data: dict[str, Any], name: str) -> None:
    v2_card_data["generation_arguments"] = [{"name": name, "type": "int", "default": 1}]
    with pytest.raises(CardInvalidError, match=f"'{name}' is passed by the v2 runtime"):
        validate_card(v2_card_data)


def test_compat_only_for_legacy_runtime(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["compat"] = {"medigan_id": "x", "original_values": {}}
    assert _locs(v2_card_data) == {"compat"}


def test_selection_sizes_must_agree_with_output(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["selection"]["height"] = 128
    assert _locs(v2_card_data) == {"selection.height"}


def test_description_version_must_agree(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["description"]["version"] = "1.0.0"
    assert _locs(v2_card_data) == {"description.version"}


@pytest.fixture
def grey(v2_card_data: dict[str, Any]) -> Card:
    return card_from_json(v2_card_data)


@pytest.fixture
def rgb(v2_card_data: dict[str, Any]) -> Card:
    v2_card_data["output"]["channels"] = 3
    return card_from_json(v2_card_data)


def _check(card: Card, shape: tuple[int, ...], **overrides: Any) -> list[str]:
    arguments: dict[str, Any] = {"dtype": "uint8", "minimum": 0.0, "maximum": 255.0}
    arguments.update(overrides)
    num_samples = arguments.pop("num_samples", shape[0] if shape else 0)
    return check_generation_output(card, shape=shape, num_samples=num_samples, **arguments)


def test_output_shapes_accepted(grey: Card, rgb: Card) -> None:
    assert _check(grey, (4, 64, 64)) == []
    assert _check(grey, (4, 64, 64, 1)) == []
    assert _check(rgb, (2, 64, 64, 3)) == []


def test_output_problems_are_described(grey: Card, rgb: Card) -> None:
    assert _check(grey, (4, 64, 64, 3)) == [
        "3 channels returned, the card says 1; shape should be (N, H, W)"
    ]
    assert _check(rgb, (2, 64, 64)) == [
        "1 channels returned, the card says 3; shape should be (N, H, W, 3)"
    ]
    assert _check(grey, (4, 32, 64)) == [
        "sample size (32, 64) differs from the card's (64, 64) (H, W)"
    ]
    assert _check(grey, (64, 64)) == ["shape (64, 64) should be (N, H, W)"]
    assert _check(grey, (3, 64, 64), num_samples=4) == ["3 samples returned, 4 requested"]
    assert _check(grey, (4, 64, 64), dtype="float32") == [
        "dtype float32 differs from the card's uint8"
    ]
    problems = _check(grey, (4, 64, 64), minimum=-1.0, maximum=256.0)
    assert problems == [
        "minimum value -1.0 is below the card's range [0.0, 255.0]",
        "maximum value 256.0 is above the card's range [0.0, 255.0]",
    ]
    assert _check(grey, (4, 64, 64), minimum=float("nan")) == ["values contain NaN"]


def test_volume_shapes(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["output"]["depth"] = 8
    volume = card_from_json(v2_card_data)
    assert _check(volume, (2, 8, 64, 64)) == []
    assert _check(volume, (2, 64, 64)) == ["shape (2, 64, 64) should be (N, D, H, W)"]


def test_defaults_applied(grey: Card) -> None:
    assert resolve_generation_arguments(grey, {}) == {
        "truncation": 1.0,
        "label": "normal",
        "sizes": [64, 64],
        "flip": False,
    }


def test_cli_strings_are_coerced(grey: Card) -> None:
    resolved = resolve_generation_arguments(
        grey, {"truncation": "0.5", "label": "pneumonia", "sizes": "32,48", "flip": "yes"}
    )
    assert resolved == {"truncation": 0.5, "label": "pneumonia", "sizes": [32, 48], "flip": True}
    assert resolve_generation_arguments(grey, {"sizes": "[1, 2]"})["sizes"] == [1, 2]
    assert resolve_generation_arguments(grey, {"flip": "0"})["flip"] is False


def test_python_values_are_checked_and_widened(grey: Card) -> None:
    resolved = resolve_generation_arguments(grey, {"truncation": 1, "sizes": (8, 8)})
    assert resolved["truncation"] == 1.0 and isinstance(resolved["truncation"], float)
    assert resolved["sizes"] == [8, 8]


def test_unknown_argument_names_the_allowed_ones(grey: Card) -> None:
    with pytest.raises(GenerationArgumentError) as caught:
        resolve_generation_arguments(grey, {"temperature": 1})
    error = caught.value
    assert error.argument == "temperature"
    assert error.allowed == ("truncation", "label", "sizes", "flip")
    assert "'temperature'" in str(error) and "truncation, label, sizes, flip" in str(error)
    assert error.to_body()["code"] == ErrorCode.BAD_REQUEST.value


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"truncation": "fast"}, "takes float values, not 'fast'"),
        ({"truncation": 3}, "above the maximum 2.0"),
        ({"truncation": -0.5}, "below the minimum 0.0"),
        ({"label": "covid"}, "'covid' is not one of the choices"),
        ({"label": 3}, "takes str, not int 3"),
        ({"sizes": "1,x"}, "takes int values, not 'x'"),
        ({"sizes": [1.5]}, "takes int_list"),
        ({"flip": "maybe"}, "takes true or false"),
        ({"flip": None}, "needs a bool value"),
        ({"truncation": "nan"}, "takes float values"),
    ],
)
def test_bad_values_name_the_argument(grey: Card, given: dict[str, object], message: str) -> None:
    with pytest.raises(GenerationArgumentError, match=message) as caught:
        resolve_generation_arguments(grey, given)
    assert caught.value.argument == next(iter(given))


def test_none_allowed_when_default_is_none(medigan_import: ImportResult) -> None:
    (card,) = [c for c in medigan_import.cards if c.name.startswith("00008")]
    resolved = resolve_generation_arguments(card, {"condition": "1", "z": None})
    assert resolved == {"condition": 1, "z": None, "is_cbisddsm_training_data": True}


def test_example_card_in_docs_is_valid(repo_root: Path) -> None:
    text = (repo_root / "docs" / "model-card.md").read_text(encoding="utf-8")
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    card = validate_card(json.loads(block))
    assert card.release_id == "zoo/chestxray-dcgan-64@1.0.0"
    assert resolve_generation_arguments(card, {"label": "pneumonia"}) == {
        "label": "pneumonia",
        "truncation": 1.0,
    }
