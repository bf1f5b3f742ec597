"""medigan-style ids across namespaces, medigan's models first, and lookups that are KeyErrors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from medigan_catalog.medigan_compat import card_from_medigan_entry
from medigan_client.api import Client
from medigan_client.errors import (
    AmbiguousModelIdError,
    ClientError,
    ModelNotFoundError,
    NotFoundError,
)
from medigan_client.model_refs import resolve_model_ref

if TYPE_CHECKING:
    from conftest import FakeHub, MakeGenerators

    from medigan_client.settings import ClientSettings

CONTRIBUTED = "00102_DCGAN_CONTRIBUTED"


def medigan_entry(package_name: str, selection: dict[str, Any] | None = None) -> dict[str, Any]:
    """A contributor's medigan entry (no package is run by these tests)."""
    return {
        "execution": {
            "package_name": package_name,
            "package_link": f"https://example.invalid/{package_name}.zip",
            "image_size": [16, 16],
            "generate_method": {"name": "generate", "args": {"custom": {}}},
        },
        "selection": {"tags": ["contributed"], **(selection or {})},
        "description": {"title": package_name, "version": "1.0.0"},
    }


def _serve(hub: FakeHub, namespace: str, medigan_id: str, **entry: Any) -> None:
    card, _ = card_from_medigan_entry(
        medigan_id, medigan_entry(medigan_id, **entry), namespace=namespace
    )
    hub.state.releases.append(
        {"model_id": card.model_id, "version": card.version, "card": card.to_json()}
    )
    hub.state.serial += 1


@pytest.fixture
def contributed_hub(medigan_hub: FakeHub) -> FakeHub:
    """medigan's catalogue plus a contributor's model, listed *before* medigan's by the hub."""
    _serve(medigan_hub, "alice", CONTRIBUTED, selection={"modality": ["MMG"], "type": "DCGAN"})
    medigan_hub.state.releases.insert(0, medigan_hub.state.releases.pop())
    _serve(medigan_hub, "aaron", "00200_OTHER_MODEL")
    medigan_hub.state.releases.insert(0, medigan_hub.state.releases.pop())
    return medigan_hub


def test_medigan_style_ids_name_a_model_of_any_namespace(
    contributed_hub: FakeHub, make_generators: MakeGenerators
) -> None:
    generators = make_generators()
    for written in (CONTRIBUTED, "102", 102, "00102", f"alice/{CONTRIBUTED}"):
        assert generators.config_manager.match_model_id(written) == f"alice/{CONTRIBUTED}"
        assert generators.get_config_by_id(written, "execution.package_name") == CONTRIBUTED
    # medigan's own ids keep their meaning.
    assert generators.config_manager.match_model_id(1) == "00001_DCGAN_MMG_CALC_ROI"


def test_medigans_models_come_first_then_the_others_by_namespace_and_name(
    contributed_hub: FakeHub, make_generators: MakeGenerators, medigan_global_json: dict[str, Any]
) -> None:
    generators = make_generators()
    assert generators.list_models() == [
        *medigan_global_json,
        "aaron/00200_OTHER_MODEL",
        f"alice/{CONTRIBUTED}",
    ]
    found = generators.find_matching_models_by_values(["DCGAN", "MMG"])
    ids = [candidate.model_id for candidate in found]
    assert ids[-1] == f"alice/{CONTRIBUTED}"
    assert all("/" not in model_id for model_id in ids[:-1]) and len(ids) > 1


def test_an_id_of_several_namespaces_is_ambiguous_and_lists_them(
    contributed_hub: FakeHub, make_generators: MakeGenerators
) -> None:
    _serve(contributed_hub, "bob", CONTRIBUTED)
    generators = make_generators(refresh=True)
    with pytest.raises(AmbiguousModelIdError) as raised:
        generators.get_config_by_id("102")
    assert raised.value.candidates == (f"alice/{CONTRIBUTED}", f"bob/{CONTRIBUTED}")
    assert raised.value.code.value == "bad_request"
    assert str(raised.value).startswith("'102' names 2 models: alice/")
    # Old scripts catch it as medigan raised lookups.
    with pytest.raises(KeyError):
        generators.generate(CONTRIBUTED, num_samples=1)


def test_old_scripts_catch_unknown_ids_and_keys_as_key_errors(
    medigan_hub: FakeHub, make_generators: MakeGenerators
) -> None:
    generators = make_generators()
    caught: list[BaseException] = []
    for call in (
        lambda: generators.get_config_by_id("99999_NO_SUCH_MODEL"),
        lambda: generators.get_config_by_id(1, "execution.no_such_key"),
        lambda: generators.get_selection_values_for_key("no.such.key", model_id=1),
        lambda: generators.get_model_executor("no_such_model"),
        lambda: generators.get_config_by_id("00001_DCGAN_MMG_CALC_ROI@9.9.9"),
    ):
        try:
            call()
        except KeyError as error:  # what medigan scripts wrote
            caught.append(error)
    assert len(caught) == 5
    assert all(isinstance(error, NotFoundError) for error in caught)
    assert all(error.code.value == "not_found" for error in caught)  # type: ignore[attr-defined]
    # str() is the message, not KeyError's quoted repr of it.
    assert (
        str(caught[1])
        == "the config of 00001_DCGAN_MMG_CALC_ROI has no key 'execution.no_such_key'"
    )
    assert not str(caught[0]).startswith('"')


def test_client_lookups_and_the_cli_resolve_medigan_style_ids(
    contributed_hub: FakeHub,
    settings: ClientSettings,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Client(settings=settings) as client:
        assert client.show("102").model_id == f"alice/{CONTRIBUTED}"
        assert client.show(f"{CONTRIBUTED}@1.0.0").model_id == f"alice/{CONTRIBUTED}"
        assert client.show("1").model_id == "medigan/00001_DCGAN_MMG_CALC_ROI"
        with pytest.raises(ModelNotFoundError, match="did you mean 00102_DCGAN_CONTRIBUTED"):
            client.show("00102_DCGAN_CONTRIBUTE")
    from medigan_client.cli import main

    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "no-config.toml"))
    assert (
        main(["--hub", contributed_hub.url, "--cache-dir", str(settings.cache_dir), "show", "102"])
        == 0
    )
    assert f"alice/{CONTRIBUTED}" in capsys.readouterr().out


def test_resolution_leaves_namespaced_ids_as_written() -> None:
    known = [f"alice/{CONTRIBUTED}", "medigan/00001_A"]
    assert resolve_model_ref("zoo/x@1.0.0", known) == "zoo/x@1.0.0"
    assert resolve_model_ref("1@2.0.0", known) == "medigan/00001_A@2.0.0"
    with pytest.raises(ClientError) as raised:
        resolve_model_ref("404", known)
    assert isinstance(raised.value, KeyError)
