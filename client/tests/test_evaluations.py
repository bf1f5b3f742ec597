"""Hub-computed metrics in the snapshot: parsing, ranking offline, and the CLI's rank and show."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_client.cli import main
from medigan_client.errors import BadRequestError
from medigan_client.evaluations import rank_by_hub_metric

if TYPE_CHECKING:
    from conftest import FakeHub, MakeCard


def _evaluation(reference: str, fid: float | None, **extra: Any) -> dict[str, Any]:
    return {
        "reference": reference,
        "extractor": "medical-cnn",
        "comparable_with_published": False,
        "fid_rs": fid,
        "fid_rr_mean": 1.5,
        "fid_rr_std": 0.1,
        "r_fid": None if fid is None else 1.5 / fid,
        "kid_mean": 0.01,
        "kid_std": 0.001,
        "precision": 0.7,
        "recall": 0.4,
        "num_samples": 1000,
        "seed": 0,
        "preprocess": {"resize_filter": "bilinear"},
        "extractor_weights_sha256": "ab" * 32,
        "reference_sha256": "cd" * 32,
        "num_reference": 624,
        "finished_at": "2026-11-26T00:00:00+00:00",
        **extra,
    }


@pytest.fixture
def three_evaluated(
    hub: FakeHub,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: MakeCard,
) -> None:
    """Three models: FID 30 and 10 against chest-xray-test, and one never evaluated."""
    for name, evaluations in (
        ("zoo/worse", [_evaluation("chest-xray-test", 30.0)]),
        ("zoo/unevaluated", []),
        ("zoo/better", [_evaluation("other-set", 1.0), _evaluation("chest-xray-test", 10.0)]),
    ):
        publish(make_card(name))
        hub.state.releases[-1]["evaluations"] = evaluations


def test_a_release_with_malformed_evaluations_is_skipped_and_named(
    hub: FakeHub,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: MakeCard,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish(make_card("zoo/good"))
    hub.state.releases[-1]["evaluations"] = [_evaluation("a", 3.0)]
    publish(make_card("zoo/bad"))
    hub.state.releases[-1]["evaluations"] = [{"fid_rs": 1.0}]
    cache = str(tmp_path / "cache")

    assert main(["--hub", hub.url, "--cache-dir", cache, "sync"]) == 0
    synced = capsys.readouterr()
    assert main(["--hub", hub.url, "--cache-dir", cache, "--offline", "show", "zoo/good"]) == 0
    assert main(["--hub", hub.url, "--cache-dir", cache, "--offline", "show", "zoo/bad"]) != 0
    shown = capsys.readouterr()

    assert "zoo/bad@1.0.0: evaluations.0.reference: Field required" in synced.err
    assert "evaluation:  a with medical-cnn" in shown.out
    assert "no model zoo/bad" in shown.err


def test_unknown_metric_names_the_known_ones() -> None:
    with pytest.raises(BadRequestError, match="known: fid"):
        rank_by_hub_metric([], "sharpness", reference="x")


def test_cli_ranks_by_the_hubs_numbers_offline_and_keeps_unevaluated_last(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, tmp_path: Path, three_evaluated: None
) -> None:
    cache = str(tmp_path / "cache")
    assert main(["--hub", hub.url, "--cache-dir", cache, "sync"]) == 0
    capsys.readouterr()

    code = main(
        [
            "--hub",
            hub.url,
            "--cache-dir",
            cache,
            "--offline",
            "rank",
            "--metric",
            "fid",
            "--reference",
            "chest-xray-test",
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    code_recall = main(
        [
            "--hub",
            hub.url,
            "--cache-dir",
            cache,
            "--offline",
            "rank",
            "--metric",
            "r_fid",
            "--reference",
            "chest-xray-test",
        ]
    )
    by_ratio = capsys.readouterr().out.splitlines()

    assert code == 0 and code_recall == 0
    assert [line.split("\t")[0] for line in lines] == ["zoo/better", "zoo/worse", "zoo/unevaluated"]
    assert lines[0].split("\t")[1] == "10.0000"
    assert lines[2].split("\t")[1] == "-"
    # r_FID: larger is better, so the model with the lower FID_rs comes first too.
    assert [line.split("\t")[0] for line in by_ratio][:2] == ["zoo/better", "zoo/worse"]


def test_show_prints_the_hubs_evaluations_with_their_provenance(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, tmp_path: Path, three_evaluated: None
) -> None:
    code = main(["--hub", hub.url, "--cache-dir", str(tmp_path / "c"), "show", "zoo/better"])
    out = capsys.readouterr().out

    assert code == 0
    assert "evaluation:  chest-xray-test with medical-cnn (NOT comparable" in out
    assert "FID_rs 10" in out
    assert "1000 samples (seed 0) vs 624 reference images" in out
    assert "extractor weights sha256 " + "ab" * 32 in out


def _rank(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, cache: str, *args: str
) -> tuple[int, str, list[str]]:
    code = main(["--hub", hub.url, "--cache-dir", cache, "rank", *args])
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if not line.startswith("hub: ")]
    return code, captured.out, warnings


def test_ranking_self_reported_values_warns_and_names_the_modalities(
    capsys: pytest.CaptureFixture[str],
    hub: FakeHub,
    tmp_path: Path,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: MakeCard,
) -> None:
    publish(make_card("zoo/mammo", fid=30.5, modality=["Mammography", "MMG"]))
    publish(make_card("zoo/xray", fid=12.0, modality=["X-ray"]))
    publish(make_card("zoo/mri", fid=None, modality=["MRI"]))
    hub.state.releases[0]["evaluations"] = [_evaluation("chest-xray-test", 9.0)]

    code, out, warnings = _rank(capsys, hub, str(tmp_path / "c"), "--metric", "FID")

    assert code == 0
    assert [line.split("\t")[:2] for line in out.splitlines()] == [
        ["zoo/xray", "12"],
        ["zoo/mammo", "30.5"],
        ["zoo/mri", "-"],
    ]
    assert warnings == [
        "warning: the FID values are self-reported by the model cards, not computed by the hub: "
        "the feature extractor, reference images and sample counts behind them are not recorded "
        "and may differ between models; rank by the hub's own numbers with --reference "
        "(chest-xray-test)",
        "warning: the ranked models are of different modalities: mammography (1), x-ray (1); a "
        "metric computed on one kind of image does not compare with another kind's",
    ]


def test_ranking_hub_numbers_from_several_extractors_warns(
    capsys: pytest.CaptureFixture[str],
    hub: FakeHub,
    tmp_path: Path,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: MakeCard,
) -> None:
    for name, extractor, fid in (("zoo/a", "medical-cnn", 20.0), ("zoo/b", "inception-v3", 5.0)):
        publish(make_card(name))
        hub.state.releases[-1]["evaluations"] = [
            _evaluation("chest-xray-test", fid, extractor=extractor)
        ]
    cache = str(tmp_path / "c")

    code, out, warnings = _rank(
        capsys, hub, cache, "--metric", "fid", "--reference", "chest-xray-test"
    )
    assert code == 0
    assert [line.split("\t")[0] for line in out.splitlines()] == ["zoo/b", "zoo/a"]
    assert warnings == [
        "warning: the fid values come from different feature extractors: inception-v3 (1), "
        "medical-cnn (1); pass --extractor to compare values of one extractor"
    ]

    code, out, warnings = _rank(
        capsys,
        hub,
        cache,
        "--metric",
        "fid",
        "--reference",
        "chest-xray-test",
        "--extractor",
        "medical-cnn",
    )
    assert code == 0 and warnings == []
    assert out.splitlines()[0] == "zoo/a\t20.0000\tNoise images for tests\t[medical-cnn]"
    assert out.splitlines()[1].split("\t")[:2] == ["zoo/b", "-"]


def test_ranking_against_an_unknown_reference_set_exits_1_naming_the_known_ones(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, tmp_path: Path, three_evaluated: None
) -> None:
    code, out, errors = _rank(
        capsys, hub, str(tmp_path / "c"), "--metric", "fid", "--reference", "chest-xray"
    )
    assert (code, out) == (1, "")
    assert errors == [
        "error: no release ranked was evaluated against the reference set "
        "'chest-xray'; known reference sets: chest-xray-test, other-set"
    ]


def test_rank_hub_metric_raises_not_found_with_the_known_sets_as_detail() -> None:
    from medigan_client.errors import NotFoundError
    from medigan_client.evaluations import rank_hub_metric

    with pytest.raises(NotFoundError) as info:
        rank_hub_metric([], "fid", reference="x")
    assert info.value.code.value == "not_found"
    assert info.value.detail == {"reference": "x", "known": []}
    assert info.value.message.endswith("the hub has evaluated none of them yet")
