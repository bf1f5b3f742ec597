"""Tests for medigan_catalog.snapshot: the wire models, the metric table, newest, paths, schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.snapshot import (
    CATALOG_PATH,
    METRICS,
    CatalogSnapshot,
    EvaluationSummary,
    SnapshotInvalidError,
    SnapshotRelease,
    UnknownMetricError,
    artifact_path,
    leaderboard_path,
    metric_named,
    newest,
    newest_per_model,
    parse_snapshot,
    release_path,
    render_json_schema,
    sample_grid_path,
    version_key,
)


@pytest.fixture
def example(repo_root: Path) -> dict[str, Any]:
    """The shared example snapshot that the hub's API test and the client's fake hub use too."""
    document: dict[str, Any] = json.loads(
        (repo_root / "docs" / "schema" / "snapshot.example.json").read_text(encoding="utf-8")
    )
    return document


def test_the_example_is_the_canonical_rendering_of_itself(example: dict[str, Any]) -> None:
    parsed = parse_snapshot(example)

    assert parsed.skipped == ()
    assert parsed.snapshot.model_dump(mode="json") == example
    assert [r.model_id for r in parsed.snapshot.releases] == [
        "medigan/00001_DCGAN_MMG_CALC_ROI",
        "zoo/chestxray-dcgan-64",
        "zoo/chestxray-dcgan-64",
    ]


def test_committed_json_schema_is_current(repo_root: Path) -> None:
    committed = repo_root / "docs" / "schema" / "snapshot.schema.json"
    assert committed.read_text(encoding="utf-8") == render_json_schema(), (
        "docs/schema/snapshot.schema.json is stale: run "
        "python -m medigan_catalog.snapshot --write docs/schema/snapshot.schema.json"
    )


def test_a_release_this_version_cannot_read_is_skipped_and_named(
    example: dict[str, Any],
) -> None:
    document = copy.deepcopy(example)
    document["releases"][0]["card"]["runtime"]["kind"] = "quantum"

    parsed = parse_snapshot(document)

    assert [r.version for r in parsed.snapshot.releases] == ["1.0.0", "1.1.0"]
    (reason,) = parsed.skipped
    assert reason.startswith("medigan/00001_DCGAN_MMG_CALC_ROI@0.0.1: card.runtime.kind")


def test_fields_a_newer_hub_adds_are_ignored(example: dict[str, Any]) -> None:
    document = copy.deepcopy(example)
    document["signature"] = "abc"
    document["releases"][1]["evaluations"][0]["fid_infinity"] = 3.0
    document["releases"][1]["visibility"] = "public"

    parsed = parse_snapshot(document)

    assert parsed.skipped == ()
    assert parsed.snapshot.releases[1].evaluations[0].fid_rs == 12.5


@pytest.mark.parametrize(
    "document",
    [None, [], {"serial": 1}, {"serial": -1, "hub": {"url": "x"}, "releases": []}],
    ids=["null", "list", "no-releases", "negative-serial"],
)
def test_a_document_that_is_no_snapshot_is_refused(document: object) -> None:
    with pytest.raises(SnapshotInvalidError, match="not a catalogue snapshot") as caught:
        parse_snapshot(document)
    assert isinstance(caught.value, CatalogError)


def test_an_entry_must_carry_its_own_card(example: dict[str, Any]) -> None:
    entry = copy.deepcopy(example["releases"][1])
    entry["version"] = "9.9.9"

    with pytest.raises(ValueError, match=r"carries the card of zoo/chestxray-dcgan-64@1\.0\.0"):
        SnapshotRelease.model_validate(entry)


def test_newest_follows_semver_not_publication_or_text_order() -> None:
    versions = ["1.9.0", "1.10.0", "not-a-version", "0.0.1"]

    assert newest(versions, version=str) == "1.10.0"
    assert newest([*versions, "2.0.0-rc.2", "2.0.0-rc.10"], version=str) == "2.0.0-rc.10"
    assert newest([*versions, "2.0.0", "2.0.0-rc.10"], version=str) == "2.0.0"
    assert newest([], version=str) is None
    assert version_key("2.0.0-rc.2") < version_key("2.0.0-rc.10") < version_key("2.0.0")
    assert version_key("1.0.0+build.5") == version_key("1.0.0")


def test_newest_per_model_keeps_the_order_models_first_appear(example: dict[str, Any]) -> None:
    snapshot = CatalogSnapshot.model_validate(example)
    # A hotfix of an old line published last must not become the newest.
    hotfix = snapshot.releases[1].model_copy(update={"version": "1.0.1"})
    releases = [*snapshot.releases, hotfix]

    chosen = newest_per_model(releases)

    assert [(r.model_id, r.version) for r in chosen] == [
        ("medigan/00001_DCGAN_MMG_CALC_ROI", "0.0.1"),
        ("zoo/chestxray-dcgan-64", "1.1.0"),
    ]
    assert snapshot.newest_releases() == [snapshot.releases[0], snapshot.releases[2]]


def test_metrics_are_named_by_field_or_alias_and_know_their_direction() -> None:
    assert metric_named("FID").field == "fid_rs"
    assert metric_named(" rfid ").field == "r_fid"
    assert {m.field: m.larger_is_better for m in METRICS} == {
        "fid_rs": False,
        "fid_rr_mean": False,
        "r_fid": True,
        "kid_mean": False,
        "precision": True,
        "recall": True,
    }
    with pytest.raises(UnknownMetricError, match="known: fid, fid_rr") as caught:
        metric_named("sharpness")
    assert caught.value.code is ErrorCode.BAD_REQUEST


def test_an_evaluation_reads_a_metric_by_any_name(example: dict[str, Any]) -> None:
    evaluation = EvaluationSummary.model_validate(example["releases"][1]["evaluations"][0])

    assert evaluation.value("fid") == evaluation.value(metric_named("fid_rs")) == 12.5
    assert evaluation.value("recall") == 0.43
    assert EvaluationSummary(reference="r", extractor="e").value("kid") is None


def test_paths_are_built_with_each_segment_quoted() -> None:
    assert CATALOG_PATH == "/api/v1/catalog"
    assert release_path("zoo/a", "1.0.0") == "/api/v1/models/zoo/a/releases/1.0.0"
    assert (
        artifact_path("zoo/a.b", "1.0.0-rc.1", "weights file.zip")
        == "/api/v1/models/zoo/a.b/releases/1.0.0-rc.1/artifacts/weights%20file.zip"
    )
    assert sample_grid_path("zoo/a", "1.0.0").endswith("/releases/1.0.0/sample-grid")
    assert leaderboard_path() == "/api/v1/leaderboards"
    assert leaderboard_path("chest/x") == "/api/v1/leaderboards/chest%2Fx"
