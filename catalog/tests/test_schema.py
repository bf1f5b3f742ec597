"""Tests for medigan_catalog.schema: the card model, its rules, helpers and JSON Schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydantic
import pytest

from medigan_catalog.errors import CardInvalidError
from medigan_catalog.schema import (
    SCHEMA_VERSION,
    ArgumentType,
    Artifact,
    ArtifactRole,
    Card,
    SelectionInfo,
    card_from_json,
    export_json_schema,
    render_json_schema,
)


def _problems(data: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(CardInvalidError) as caught:
        card_from_json(data)
    return [dict(problem) for problem in caught.value.problems]


def test_v2_card_round_trips_through_json(v2_card_data: dict[str, Any]) -> None:
    card = card_from_json(v2_card_data)
    document = card.to_json()
    assert json.loads(json.dumps(document)) == document
    assert card_from_json(document) == card
    assert card_from_json(document).to_json() == document
    assert list(document) == [
        "schema_version", "model_id", "version", "runtime", "generation_arguments", "output",
        "artifacts", "provenance", "execution", "selection", "description", "compat",
    ]  # fmt: skip
    assert document["schema_version"] == SCHEMA_VERSION == "1.0"


def test_release_notes_round_trip_and_are_left_out_when_absent(
    v2_card_data: dict[str, Any],
) -> None:
    noted = card_from_json({**v2_card_data, "release_notes": "Fixed the <b>seed</b> grid."})

    assert noted.to_json()["release_notes"] == "Fixed the <b>seed</b> grid."
    assert card_from_json(noted.to_json()) == noted
    assert "release_notes" not in card_from_json(v2_card_data).to_json()
    too_long = {**v2_card_data, "release_notes": "x" * 20_001}
    assert [problem["loc"] for problem in _problems(too_long)] == ["release_notes"]


def test_card_helpers(v2_card_data: dict[str, Any]) -> None:
    card = card_from_json(v2_card_data)
    assert card.namespace == "zoo"
    assert card.name == "chestxray-dcgan-64"
    assert card.release_id == "zoo/chestxray-dcgan-64@1.2.0"
    assert card.title == "Chest X-ray DCGAN 64x64"
    assert card.package_artifact is not None
    assert card.package_artifact.filename == "chestxray-dcgan-64-1.2.0.zip"
    v2_card_data["description"] = {}
    v2_card_data["artifacts"] = []
    bare = card_from_json(v2_card_data)
    assert bare.title == "zoo/chestxray-dcgan-64"
    assert bare.package_artifact is None


def test_with_artifacts_replaces_and_checks(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["artifacts"] = []
    card = card_from_json(v2_card_data)
    package = Artifact(role=ArtifactRole.PACKAGE, filename="p.zip", sha256="b" * 64, size=3)
    filled = card.with_artifacts([package])
    assert filled.artifacts == (package,)
    assert card.artifacts == ()
    with pytest.raises(CardInvalidError, match=r"p\.zip"):
        card.with_artifacts([package, package])


def test_cards_are_frozen(v2_card_data: dict[str, Any]) -> None:
    card = card_from_json(v2_card_data)
    with pytest.raises(pydantic.ValidationError):
        card.version = "2.0.0"  # type: ignore[misc]


@pytest.mark.parametrize(
    "model_id",
    ["zoo/x", "medigan/00001_DCGAN_MMG_CALC_ROI", "a-b_c/N.a_m-e", "0/0"],
)
def test_valid_model_ids(v2_card_data: dict[str, Any], model_id: str) -> None:
    v2_card_data["model_id"] = model_id
    assert card_from_json(v2_card_data).model_id == model_id


@pytest.mark.parametrize(
    "model_id",
    [
        "Zoo/x",
        "zoo",
        "zoo/",
        "/x",
        "zoo/x/y",
        "-zoo/x",
        "zoo/.x",
        "z" * 65 + "/x",
        "zoo/x y",
        "zoo/x\n",
        "zoo\n/x",
        "\nzoo/x",
        "zoo/x\r\n",
    ],
)
def test_invalid_model_ids(v2_card_data: dict[str, Any], model_id: str) -> None:
    v2_card_data["model_id"] = model_id
    problems = _problems(v2_card_data)
    assert [p["loc"] for p in problems] == ["model_id"]
    assert "namespace/name" in problems[0]["msg"]


@pytest.mark.parametrize(
    "version", ["1.0", "1", "v1.0.0", "01.0.0", "1.0.0.0", "", "1.0.0\n", "1.0.0-rc.1\n"]
)
def test_versions_must_be_semver(v2_card_data: dict[str, Any], version: str) -> None:
    v2_card_data["version"] = version
    assert [p["loc"] for p in _problems(v2_card_data)] == ["version"]


def test_a_version_longer_than_64_characters_is_refused(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["version"] = "1.0.0-" + "a" * 59
    problems = _problems(v2_card_data)
    assert [p["loc"] for p in problems] == ["version"]
    assert "64" in problems[0]["msg"]


@pytest.mark.parametrize("version", ["0.0.1", "1.0.0", "2.10.3-rc.1", "1.0.0+build.5"])
def test_semver_versions_accepted(v2_card_data: dict[str, Any], version: str) -> None:
    v2_card_data["version"] = version
    assert card_from_json(v2_card_data).version == version


def test_own_blocks_forbid_unknown_keys(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["runtime"]["gpu"] = True
    v2_card_data["colour"] = "blue"
    locs = {p["loc"] for p in _problems(v2_card_data)}
    assert locs == {"runtime.gpu", "colour"}


def test_medigan_blocks_keep_unknown_keys_in_given_order(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["selection"] = {"zeta": [1], "type": "DCGAN", "alpha": {"x": None}}
    card = card_from_json(v2_card_data)
    assert card.selection.type == "DCGAN"
    dumped = card.to_json()["selection"]
    assert list(dumped) == ["zeta", "type", "alpha"]
    assert dumped == {"zeta": [1], "type": "DCGAN", "alpha": {"x": None}}


def test_medigan_blocks_are_typed_strictly(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["selection"] = {"height": "64", "tags": ["a", 3]}
    locs = {p["loc"] for p in _problems(v2_card_data)}
    assert locs == {"selection.height", "selection.tags.1"}


def test_selection_block_declares_every_medigan_key(medigan_raw: dict[str, Any]) -> None:
    keys = {key for entry in medigan_raw.values() for key in entry["selection"]}
    assert keys <= set(SelectionInfo.model_fields)


def test_duplicate_argument_names_rejected(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["generation_arguments"].append({"name": "flip", "type": "bool", "default": True})
    problems = _problems(v2_card_data)
    assert problems[0]["loc"] == "generation_arguments"
    assert "'flip' is declared twice" in problems[0]["msg"]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ({"name": "a", "type": "int", "default": 1.5}, "does not match type int"),
        ({"name": "a", "type": "int", "default": True}, "does not match type int"),
        ({"name": "a", "type": "bool", "default": 1}, "does not match type bool"),
        ({"name": "a", "type": "str", "default": 3}, "does not match type str"),
        ({"name": "a", "type": "int_list", "default": [1, "2"]}, "does not match type int_list"),
        ({"name": "a", "type": "str", "default": "x", "choices": ["y", "z"]}, "not one of"),
        ({"name": "a", "type": "int", "default": 0, "minimum": 1}, "below the minimum 1"),
        ({"name": "a", "type": "float", "default": 3.0, "maximum": 2}, "above the maximum 2"),
        ({"name": "a", "type": "float_list", "default": [1, 9], "maximum": 5}, "above"),
        ({"name": "a", "type": "int", "minimum": 3, "maximum": 1}, "greater than maximum"),
        ({"name": "a", "type": "str", "minimum": 3}, "only apply to numeric types"),
        ({"name": "a", "type": "int", "choices": [1, "b"]}, "is not of type int"),
        ({"name": "2a", "type": "int"}, "String should match pattern"),
    ],
)
def test_argument_rules(
    v2_card_data: dict[str, Any], argument: dict[str, Any], message: str
) -> None:
    v2_card_data["generation_arguments"] = [argument]
    problems = _problems(v2_card_data)
    assert problems[0]["loc"].startswith("generation_arguments.0")
    assert message in problems[0]["msg"]


def test_float_argument_accepts_int_default(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["generation_arguments"] = [{"name": "t", "type": "float", "default": 1}]
    card = card_from_json(v2_card_data)
    assert card.generation_arguments[0].default == 1
    assert card.argument("t") is card.generation_arguments[0]
    assert card.argument("missing") is None


def test_argument_type_accepts() -> None:
    assert ArgumentType.FLOAT_LIST.accepts([1, 2.5])
    assert not ArgumentType.FLOAT_LIST.accepts([True])
    assert ArgumentType.STR_LIST.accepts(("a", "b"))
    assert not ArgumentType.INT.accepts(True)
    assert not ArgumentType.FLOAT.accepts(float("nan"))


@pytest.mark.parametrize(
    ("output", "loc"),
    [
        ({"height": 0, "width": 4}, "output.height"),
        ({"height": 4, "width": 4, "value_range": [0, 300]}, "output"),
        ({"height": 4, "width": 4, "value_range": [5, 5]}, "output"),
        ({"height": 4, "width": 4, "dtype": "int8"}, "output.dtype"),
        ({"height": 4, "width": 4, "channels": 0}, "output.channels"),
    ],
)
def test_output_rules(v2_card_data: dict[str, Any], output: dict[str, Any], loc: str) -> None:
    v2_card_data["output"] = output
    assert [p["loc"] for p in _problems(v2_card_data)] == [loc]


def test_float_output_may_use_any_finite_range(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["output"] = {"height": 4, "width": 4, "dtype": "float32", "value_range": [-1, 1]}
    assert card_from_json(v2_card_data).output.value_range == (-1.0, 1.0)


@pytest.mark.parametrize(
    ("artifact", "loc"),
    [
        ({"role": "package", "filename": "a.zip", "sha256": "A" * 64}, "artifacts.0.sha256"),
        ({"role": "package", "filename": "a.zip", "sha256": "a" * 63}, "artifacts.0.sha256"),
        ({"role": "package", "filename": "../a.zip"}, "artifacts.0.filename"),
        ({"role": "package", "filename": "a.zip", "size": -1}, "artifacts.0.size"),
        ({"role": "model", "filename": "a.zip"}, "artifacts.0.role"),
    ],
)
def test_artifact_rules(v2_card_data: dict[str, Any], artifact: dict[str, Any], loc: str) -> None:
    v2_card_data["artifacts"] = [artifact]
    assert [p["loc"] for p in _problems(v2_card_data)] == [loc]


def test_two_packages_rejected(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["artifacts"] = [
        {"role": "package", "filename": "a.zip"},
        {"role": "package", "filename": "b.zip"},
    ]
    assert "one package artifact" in _problems(v2_card_data)[0]["msg"]


def test_dois_must_be_bare(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["provenance"]["dois"] = ["https://doi.org/10.5281/zenodo.1"]
    problems = _problems(v2_card_data)
    assert problems[0]["loc"] == "provenance.dois"
    assert "bare DOI" in problems[0]["msg"]


def test_a_doi_with_a_trailing_newline_is_not_bare(v2_card_data: dict[str, Any]) -> None:
    v2_card_data["provenance"]["dois"] = ["10.5281/zenodo.1\n"]
    assert [p["loc"] for p in _problems(v2_card_data)] == ["provenance.dois"]


@pytest.mark.parametrize(
    ("block", "key", "value"),
    [
        ("artifacts", "filename", "x.zip\n"),
        ("artifacts", "sha256", "0" * 64 + "\n"),
        ("compat", "medigan_id", "00001_DCGAN\n"),
    ],
)
def test_ids_inside_blocks_reject_a_trailing_newline(
    v2_card_data: dict[str, Any], block: str, key: str, value: str
) -> None:
    if block == "artifacts":
        v2_card_data["artifacts"][0][key] = value
    else:
        v2_card_data["compat"] = {"medigan_id": value}
    problems = _problems(v2_card_data)
    assert len(problems) == 1
    assert problems[0]["loc"].startswith(block)


def test_every_problem_reported_with_dotted_location() -> None:
    problems = _problems({"model_id": "x", "runtime": {"kind": "v3"}})
    locs = {p["loc"] for p in problems}
    assert locs == {"model_id", "version", "runtime.kind", "output"}
    assert all(not p["msg"].startswith("Value error") for p in problems)


def test_committed_json_schema_is_current(repo_root: Path) -> None:
    committed = repo_root / "docs" / "schema" / "card.schema.json"
    assert committed.read_text(encoding="utf-8") == render_json_schema(), (
        "docs/schema/card.schema.json is stale: run "
        "python -m medigan_catalog.schema --write docs/schema/card.schema.json"
    )


def test_json_schema_describes_card() -> None:
    schema = export_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"model_id", "version", "runtime", "output"}
    assert set(schema["properties"]) == set(Card.model_fields)
    assert schema["$defs"]["SelectionInfo"]["additionalProperties"] is True


def test_module_entry_writes_schema(tmp_path: Path) -> None:
    target = tmp_path / "out" / "card.schema.json"
    subprocess.run(
        [sys.executable, "-m", "medigan_catalog.schema", "--write", str(target)], check=True
    )
    assert json.loads(target.read_text(encoding="utf-8")) == export_json_schema()
