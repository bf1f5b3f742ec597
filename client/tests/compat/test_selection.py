"""Search, rank and selection lookups of ``Generators`` on medigan's catalogue served by a hub.

The results of medigan 1.0.0 for the same calls were recorded by running medigan itself (see
``reference/test_medigan_reference.py``); here every environment checks ours against them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_client.errors import BadRequestError, NotFoundError

if TYPE_CHECKING:
    from conftest import FakeHub, MakeCard, MakeGenerators


def test_search_and_rank_equal_the_results_recorded_from_medigan(
    medigan_hub: FakeHub,
    make_generators: MakeGenerators,
    pinned_results: dict[str, Any],
    shape_result: Callable[[str, Any], Any],
) -> None:
    generators = make_generators()
    assert pinned_results["recorded_with"] == "medigan 1.0.0 from PyPI"
    assert len(pinned_results["calls"]) >= 40
    for call in pinned_results["calls"]:
        method, kwargs = call["method"], call["kwargs"]
        assert shape_result(method, getattr(generators, method)(**kwargs)) == call["result"], (
            f"{method}({kwargs})"
        )


def test_readme_search_returns_match_candidates_with_their_entries(
    medigan_hub: FakeHub, make_generators: MakeGenerators
) -> None:
    generators = make_generators()
    results = generators.find_matching_models_by_values(["DCGAN", "Mammography", "BCDR"])
    assert [candidate.model_id for candidate in results] == ["00005_DCGAN_MMG_MASS_ROI"]
    candidate = results[0]
    assert candidate.is_match
    assert set(candidate.get_all_matching_elements()) == {"dcgan", "mammography", "bcdr"}
    assert "00005_DCGAN_MMG_MASS_ROI" in repr(candidate)


def test_rank_accepts_short_ids_where_medigan_matched_none(
    medigan_hub: FakeHub, make_generators: MakeGenerators
) -> None:
    ranked = make_generators().rank_models_by_performance(
        model_ids=[4, "9", "00010"], metric="FID", order="desc"
    )
    assert [entry["model_id"] for entry in ranked] == [
        "00009_PGGAN_POLYP_PATCHES_W_MASKS",
        "00004_PIX2PIX_MMG_MASSES_W_MASKS",
        "00010_FASTGAN_POLYP_PATCHES_W_MASKS",
    ]


def test_bad_search_input_is_a_clear_error(
    medigan_hub: FakeHub, make_generators: MakeGenerators
) -> None:
    generators = make_generators()
    with pytest.raises(BadRequestError, match="non-empty list"):
        generators.find_matching_models_by_values([])
    with pytest.raises(BadRequestError, match="target_values_operator"):
        generators.find_matching_models_by_values(["dcgan"], target_values_operator="NAND")
    # Lower-case operators mean what they say (medigan matched nothing for them).
    lower = generators.find_matching_models_by_values(["cyclegan", "pix2pix"], "or")
    upper = generators.find_matching_models_by_values(["cyclegan", "pix2pix"], "OR")
    assert [c.model_id for c in lower] == [c.model_id for c in upper] != []


def test_selection_lookups_fix_medigans_crashes(
    medigan_hub: FakeHub, make_generators: MakeGenerators
) -> None:
    generators = make_generators()
    # medigan raised KeyError: 00022's performance has no FID.
    values = generators.get_selection_values_for_key("performance.FID")
    assert len(values) == 23
    assert values[0] == 67.6
    assert values[21] is None
    # medigan ignored dotted keys (and short ids) for one model.
    assert generators.get_selection_values_for_key("performance.FID", model_id=1) == [67.6]
    with pytest.raises(NotFoundError, match="no key"):
        generators.get_selection_values_for_key("performance.nothing", model_id=1)
    # medigan dropped is_model_id_removed here.
    wrapped = generators.get_selection_criteria_by_id(2, is_model_id_removed=False)
    assert wrapped["model_id"] == "00002_DCGAN_MMG_MASS_ROI"
    assert wrapped["selection"]["performance"]["FID"] == 80.51
    everything = generators.get_selection_criteria_by_ids()
    assert len(everything) == 23


def test_our_own_models_are_found_by_their_full_ids(
    medigan_hub: FakeHub,
    make_generators: MakeGenerators,
    make_card: MakeCard,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    publish(make_card(model_id="zoo/noise-8", modality=["Mammography"], fid=5.0))
    generators = make_generators()
    assert generators.list_models()[-1] == "zoo/noise-8"
    found = generators.find_matching_models_by_values(["mammography", "dcgan"])
    assert "zoo/noise-8" in [candidate.model_id for candidate in found]
    ranked = generators.rank_models_by_performance(metric="FID")
    assert ranked[0] == {"model_id": "zoo/noise-8", "FID": 5.0}
    config = generators.get_config_by_id("zoo/noise-8")
    assert config["selection"]["modality"] == ["Mammography"]
    assert config["execution"]["generate_method"]["name"] == "generate"


def test_a_local_model_added_to_the_config_is_searched_too(
    medigan_hub: FakeHub, make_generators: MakeGenerators, tmp_path: Path
) -> None:
    package = tmp_path / "grey_squares"
    package.mkdir()
    (package / "__init__.py").write_text(
        "def generate(model_file, num_samples, output_path, save_images):\n    return []\n",
        encoding="utf-8",
    )
    (package / "10000.pt").write_text("77\n", encoding="utf-8")
    entry = {
        "execution": {
            "package_name": package.name,
            "package_link": str(package),
            "model_name": "10000",
            "extension": ".pt",
            "image_size": [16, 16],
            "dependencies": [],
            "generate_method": {
                "name": "generate",
                "args": {
                    "base": ["model_file", "num_samples", "output_path", "save_images"],
                    "custom": {},
                },
            },
        },
        "selection": {"modality": ["Mammography"], "type": "DCGAN", "regions": [["nested"]]},
        "description": {"title": "Grey squares", "version": "1.0.0"},
    }
    generators = make_generators()
    before = [c.model_id for c in generators.find_matching_models_by_values(["mammography"])]
    assert "00100_GREY_SQUARES" not in before

    assert generators.add_model_to_config("00100_GREY_SQUARES", {"00100_GREY_SQUARES": entry})
    after = generators.find_matching_models_by_values(["mammography", "dcgan"])
    assert [c.model_id for c in after] == [
        "00001_DCGAN_MMG_CALC_ROI",
        "00002_DCGAN_MMG_MASS_ROI",
        "00005_DCGAN_MMG_MASS_ROI",
        "00100_GREY_SQUARES",
    ]

    # A matched list handed to the caller is a copy: changing it changes no later answer.
    nested = generators.find_matching_models_by_values(["['nested']"], is_case_sensitive=True)[
        0
    ].matched_entries[0]
    assert nested.value == ["nested"]
    nested.value.append("changed")
    again = generators.find_matching_models_by_values(["['nested']"], is_case_sensitive=True)
    assert again[0].matched_entries[0].value == ["nested"]
