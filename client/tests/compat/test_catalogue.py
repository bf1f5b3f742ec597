"""The hub's catalogue seen as medigan's config: ids, short ids, namespaces, config entries."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from medigan_client import Generators
from medigan_client.compat import MediganCatalogue
from medigan_client.errors import BadRequestError, NotFoundError

if TYPE_CHECKING:
    from conftest import FakeHub, MakeGenerators


def test_from_medigan_client_import_generators_is_the_compat_class() -> None:
    from medigan_client.compat.generators import Generators as CompatGenerators

    assert Generators is CompatGenerators


# The public methods of medigan 1.0.0's Generators (its generators.py); parameters and defaults
# are compared with medigan's source where it is installed (reference/).
MEDIGAN_METHODS = (
    "get_config_by_id",
    "is_model_metadata_valid",
    "add_model_to_config",
    "list_models",
    "get_selection_criteria_by_id",
    "get_selection_criteria_by_ids",
    "get_selection_values_for_key",
    "get_selection_keys",
    "get_models_by_key_value_pair",
    "rank_models_by_performance",
    "find_matching_models_by_values",
    "find_models_and_rank",
    "find_models_rank_and_generate",
    "find_model_and_generate",
    "add_all_model_executors",
    "add_model_executor",
    "is_model_executor_already_added",
    "find_model_executor_by_id",
    "get_model_executor",
    "generate",
    "get_generate_function",
    "add_model_contributor",
    "get_model_contributor_by_id",
    "add_metadata_from_file",
    "add_metadata_from_input",
    "push_to_zenodo",
    "push_to_github",
    "test_model",
    "contribute",
    "get_as_torch_dataloader",
    "get_as_torch_dataset",
    "visualize",
)


def test_every_public_method_of_medigans_generators_exists() -> None:
    missing = [name for name in MEDIGAN_METHODS if not callable(getattr(Generators, name, None))]
    assert missing == []
    assert len(MEDIGAN_METHODS) == 32


def test_list_models_is_medigans_list_in_its_order(
    medigan_hub: FakeHub, make_generators: MakeGenerators, medigan_global_json: dict[str, Any]
) -> None:
    assert make_generators().list_models() == list(medigan_global_json)


@pytest.mark.parametrize(
    "given",
    [1, "1", "00001", "00001_DCGAN_MMG_CALC_ROI", "medigan/00001_DCGAN_MMG_CALC_ROI"],
)
def test_short_full_and_namespaced_ids_name_the_same_model(
    medigan_hub: FakeHub, make_generators: MakeGenerators, given: object
) -> None:
    generators = make_generators()
    assert generators.config_manager.match_model_id(given) == "00001_DCGAN_MMG_CALC_ROI"
    assert generators.get_config_by_id(given, "execution.model_name") == "DCGAN"


def test_unknown_ids_raise_not_found_with_a_hint(
    medigan_hub: FakeHub, make_generators: MakeGenerators
) -> None:
    generators = make_generators()
    with pytest.raises(NotFoundError, match="did you mean 00001_DCGAN_MMG_CALC_ROI"):
        generators.get_config_by_id("00001_DCGAN_MMG_CALC")
    with pytest.raises(NotFoundError):
        generators.get_config_by_id(99)
    with pytest.raises(BadRequestError, match="string or an integer"):
        generators.get_config_by_id(1.5)  # type: ignore[arg-type]


def test_config_entries_equal_global_json_exactly(
    medigan_hub: FakeHub, make_generators: MakeGenerators, medigan_global_json: dict[str, Any]
) -> None:
    generators = make_generators()
    for model_id, entry in medigan_global_json.items():
        config = generators.get_config_by_id(model_id)
        # Same values and the same key order, as json.dumps shows both.
        assert json.dumps(config) == json.dumps(entry), model_id
    assert json.dumps(generators.config_manager.config_dict) == json.dumps(medigan_global_json)


def test_config_key_walks_dotted_paths_and_names_a_missing_key(
    medigan_hub: FakeHub, make_generators: MakeGenerators
) -> None:
    generators = make_generators()
    custom = generators.get_config_by_id(21, "execution.generate_method.args.custom")
    assert custom["gpu_id"] == "0"
    assert generators.get_config_by_id("00006", "selection.type") == "WGAN-GP"
    with pytest.raises(NotFoundError, match=r"execution\.nothing"):
        generators.get_config_by_id(1, "execution.nothing")


def test_returned_configs_are_copies(medigan_hub: FakeHub, make_generators: MakeGenerators) -> None:
    generators = make_generators()
    generators.get_config_by_id(1)["selection"]["type"] = "changed"
    assert generators.get_config_by_id(1, "selection.type") == "DCGAN"


def test_a_catalogue_can_be_passed_in_as_config_manager(
    medigan_hub: FakeHub, make_generators: MakeGenerators
) -> None:
    first = make_generators()
    catalogue = first.config_manager
    assert isinstance(catalogue, MediganCatalogue)
    second = make_generators(config_manager=catalogue)
    assert second.config_manager is catalogue
    # A foreign object (medigan's own ConfigManager) is ignored: the hub is the config.
    third = make_generators(config_manager=object())
    assert len(third.list_models()) == 23
