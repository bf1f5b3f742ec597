"""Contributing a model: metadata, a local test run, and a push to the hub instead of GitHub."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_client.compat import Generators
from medigan_client.compat.importer import CardFieldsMissingError
from medigan_client.errors import AuthenticationRequiredError, BadRequestError, NotFoundError

if TYPE_CHECKING:
    from conftest import FakeHub, MakeGenerators

    from medigan_client.settings import ClientSettings

IMAGES_INIT_SOURCE = '''
"""A contributed medigan-style model: grey squares."""
import numpy as np


def generate(model_file, num_samples, output_path, save_images: bool):
    with open(model_file) as handle:
        value = int(handle.read().strip())
    return [np.full((16, 16, 1), value, dtype="uint8") for _ in range(num_samples)]
'''

MODEL_ID = "00100_YOUR_MODEL"


@pytest.fixture
def local_package(tmp_path: Path) -> Path:
    """A model package on disk, in medigan's template, with weights ``10000.pt``."""
    package = tmp_path / "my_model"
    package.mkdir()
    (package / "__init__.py").write_text(IMAGES_INIT_SOURCE, encoding="utf-8")
    (package / "10000.pt").write_text("77\n", encoding="utf-8")
    return package


def _metadata(package: Path) -> dict[str, Any]:
    return {
        MODEL_ID: {
            "execution": {
                "package_name": package.name,
                "package_link": str(package),
                "model_name": "10000",
                "extension": ".pt",
                "image_size": [16, 16],
                "dependencies": ["numpy"],
                "generate_method": {
                    "name": "generate",
                    "args": {
                        "base": ["model_file", "num_samples", "output_path", "save_images"],
                        "custom": {},
                    },
                },
            },
            "selection": {"modality": ["test modality"], "license": "MIT"},
            "description": {"title": "Grey squares", "version": "1.0.0"},
        }
    }


def test_readme_contribute_pushes_the_package_and_its_card_to_the_hub(
    hub: FakeHub,
    make_generators: MakeGenerators,
    local_package: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    generators = make_generators()
    url = generators.contribute(
        model_id=MODEL_ID,
        init_py_path=str(local_package / "__init__.py"),
        model_weights_name="10000",
        model_weights_extension=".pt",
        generate_method_name="generate",
        dependencies=["numpy"],
        creator_name="Test Creator",
        creator_affiliation="Test Lab",
        zenodo_access_token="not used",
        github_access_token="not used",
        namespace="community",
        image_size=[16, 16],
        answers={"licence": "MIT"},
    )
    assert url == f"{hub.url}/api/v1/models/community/{MODEL_ID}/releases/0.0.1"
    assert len(hub.state.pushes) == 1
    pushed = hub.state.pushes[0]
    card = json.loads(pushed["card"])
    assert card["model_id"] == f"community/{MODEL_ID}"
    assert card["runtime"]["kind"] == "medigan-legacy"
    assert card["provenance"]["authors"] == ["Test Creator"]
    assert card["provenance"]["licence"] == "MIT"
    assert card["artifacts"] == []
    with zipfile.ZipFile(io.BytesIO(pushed["package"])) as archive:
        assert {"__init__.py", "10000.pt", "card.json"} <= set(archive.namelist())
    # medigan's metadata file is written where medigan wrote it; the package is left as it was.
    stored = json.loads((tmp_path / "config" / f"{MODEL_ID}.json").read_text())
    assert stored[MODEL_ID]["execution"]["model_name"] == "10000"
    assert sorted(p.name for p in local_package.iterdir()) == ["10000.pt", "__init__.py"]
    # The model ran locally before the push, and stays usable here.
    assert MODEL_ID in generators.list_models()


def test_a_metadata_file_describes_the_contribution(
    hub: FakeHub, make_generators: MakeGenerators, local_package: Path
) -> None:
    (local_package / "metadata.json").write_text(json.dumps(_metadata(local_package)))
    make_generators().contribute(
        model_id=MODEL_ID,
        init_py_path=str(local_package / "__init__.py"),
        github_access_token="not used",
        zenodo_access_token="not used",
        metadata_file_path=str(local_package),
        namespace="community",
    )
    card = json.loads(hub.state.pushes[0]["card"])
    assert card["version"] == "1.0.0"
    assert card["description"]["title"] == "Grey squares"
    assert card["selection"]["license"] == "MIT"


def test_a_local_model_is_tested_and_generates_beside_the_hubs(
    hub: FakeHub, make_generators: MakeGenerators, local_package: Path
) -> None:
    generators = make_generators()
    generators.add_model_contributor(MODEL_ID, str(local_package / "__init__.py"))
    (local_package / "metadata.json").write_text(json.dumps(_metadata(local_package)))
    generators.add_metadata_from_file(MODEL_ID, str(local_package / "metadata.json"))
    generators.test_model(MODEL_ID, num_samples=2)
    assert generators.list_models() == [MODEL_ID]
    samples = generators.generate(MODEL_ID, num_samples=3, save_images=False)
    assert [int(sample.max()) for sample in samples] == [77, 77, 77]
    assert generators.get_config_by_id(MODEL_ID, "execution.model_name") == "10000"
    assert hub.state.pushes == []


def test_zenodo_is_left_to_the_hub(
    hub: FakeHub,
    make_generators: MakeGenerators,
    local_package: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    generators = make_generators()
    generators.add_model_contributor(MODEL_ID, str(local_package / "__init__.py"))
    with caplog.at_level(logging.WARNING):
        assert generators.push_to_zenodo(MODEL_ID, zenodo_access_token="not used") is None
    assert "nothing was uploaded to Zenodo" in caplog.text
    assert hub.state.log == []


def test_metadata_that_cannot_run_is_refused(
    hub: FakeHub, make_generators: MakeGenerators, local_package: Path
) -> None:
    generators = make_generators()
    metadata = _metadata(local_package)
    no_size = json.loads(json.dumps(metadata))
    del no_size[MODEL_ID]["execution"]["image_size"]
    assert not generators.is_model_metadata_valid(MODEL_ID, no_size)
    assert not generators.add_model_to_config(MODEL_ID, no_size)
    remote = json.loads(json.dumps(metadata))
    remote[MODEL_ID]["execution"]["package_link"] = "https://example.invalid/model.zip"
    assert generators.is_model_metadata_valid(MODEL_ID, remote, is_local_model=False)
    assert not generators.add_model_to_config(MODEL_ID, remote, is_local_model=False)
    assert generators.add_model_to_config(MODEL_ID, metadata)
    assert not generators.add_model_to_config(MODEL_ID, metadata)
    assert generators.add_model_to_config(MODEL_ID, metadata, overwrite_existing_metadata=True)


def test_contributions_need_medigan_ids_and_an_init_file(
    make_generators: MakeGenerators, local_package: Path
) -> None:
    generators = make_generators()
    with pytest.raises(BadRequestError, match="5 digits"):
        generators.add_model_contributor("ABCDE_YOUR_MODEL", str(local_package / "__init__.py"))
    with pytest.raises(BadRequestError, match="characters"):
        generators.add_model_contributor("00100_X", str(local_package / "__init__.py"))
    with pytest.raises(NotFoundError, match=r"__init__\.py"):
        generators.add_model_contributor(MODEL_ID, str(local_package / "missing.py"))
    with pytest.raises(NotFoundError, match="add_model_contributor"):
        generators.add_metadata_from_file("00200_NOT_ADDED_YET", str(local_package))


def _with_dataset(package: Path) -> dict[str, Any]:
    metadata = _metadata(package)
    metadata[MODEL_ID]["selection"]["dataset"] = ["BCDR"]
    return metadata


def test_contribute_pushes_into_the_tokens_own_namespace_by_default(
    account_hub: FakeHub, make_generators: MakeGenerators, local_package: Path
) -> None:
    (local_package / "metadata.json").write_text(json.dumps(_metadata(local_package)))
    url = make_generators().contribute(
        model_id=MODEL_ID,
        init_py_path=str(local_package / "__init__.py"),
        github_access_token="not used",
        zenodo_access_token="not used",
        metadata_file_path=str(local_package),
    )
    assert url == f"{account_hub.url}/api/v1/models/alice/{MODEL_ID}/releases/1.0.0"
    assert json.loads(account_hub.state.pushes[0]["card"])["model_id"] == f"alice/{MODEL_ID}"
    assert len(account_hub.state.requests_to("/api/v1/me")) == 1


def test_a_missing_training_data_licence_is_named_before_anything_is_uploaded(
    hub: FakeHub, make_generators: MakeGenerators, local_package: Path
) -> None:
    (local_package / "metadata.json").write_text(json.dumps(_with_dataset(local_package)))
    generators = make_generators()
    with pytest.raises(CardFieldsMissingError) as raised:
        generators.contribute(
            model_id=MODEL_ID,
            init_py_path=str(local_package / "__init__.py"),
            github_access_token="not used",
            zenodo_access_token="not used",
            metadata_file_path=str(local_package),
            namespace="community",
        )
    assert raised.value.code.value == "card_invalid"
    assert raised.value.missing_fields == ("provenance.training_data.0.licence",)
    assert "provenance.training_data.0.licence" in str(raised.value)
    assert "BCDR" in str(raised.value)
    assert hub.state.pushes == []
    # Nothing ran either: the card is made before the model is tested.
    assert MODEL_ID not in generators.list_models()


def test_answers_give_the_fields_medigan_lacks(
    hub: FakeHub, make_generators: MakeGenerators, local_package: Path
) -> None:
    (local_package / "metadata.json").write_text(json.dumps(_with_dataset(local_package)))
    make_generators().contribute(
        model_id=MODEL_ID,
        init_py_path=str(local_package / "__init__.py"),
        github_access_token="not used",
        zenodo_access_token="not used",
        metadata_file_path=str(local_package),
        namespace="community",
        answers={"training_data.licence": "CC-BY-4.0"},
    )
    card = json.loads(hub.state.pushes[0]["card"])
    assert card["provenance"]["training_data"] == [
        {
            "name": "BCDR",
            "licence": "CC-BY-4.0",
            "citation": None,
            "url": None,
            "split": None,
            "image_count": None,
        }
    ]


def test_the_default_namespace_needs_a_token(
    hub: FakeHub, settings: ClientSettings, local_package: Path
) -> None:
    (local_package / "metadata.json").write_text(json.dumps(_metadata(local_package)))
    with Generators(settings=dataclasses.replace(settings, token=None), progress=False) as gens:
        gens.add_model_contributor(MODEL_ID, str(local_package / "__init__.py"))
        gens.add_metadata_from_file(MODEL_ID, str(local_package))
        with pytest.raises(AuthenticationRequiredError, match="namespace"):
            gens.push_to_github(MODEL_ID, github_access_token="not used")
    assert hub.state.log == []
