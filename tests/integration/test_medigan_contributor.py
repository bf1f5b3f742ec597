"""A medigan contributor's first hour against a live hub, with medigan's own tools.

A package laid out as medigan's model template lays it out (``__init__.py`` with medigan's
``generate(model_file, num_samples, output_path, save_images)``, a weights file and a
``metadata.json`` with the template's JSON slips) imports a library that neither the hub's nor
the contributor's environment has: ``medigan-test-dep``, a wheel written here and served from a
local folder (pip never reaches an index). The contributor converts the metadata with
``medigan-client import-medigan``, pushes with ``Generators().contribute()`` (its dry run builds
the package's environment from the card), the hub validates it in an environment built from the
card's requirements, the demo reviewer approves it, and medigan's ``Generators().generate`` makes
images from it under its medigan-style id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medigan_client import Client, Generators
from medigan_client.cli import main
from tests import factories
from tests.live_hub import LiveHub, live_hub

pytestmark = pytest.mark.integration

MODEL_ID = "00102_DCGAN_TESTDEP_ROI"
STATE_TIMEOUT_SECONDS = 300.0

INIT_SOURCE = '''
"""medigan's template, trimmed: a generate() whose images need medigan_test_dep."""
import numpy as np

import medigan_test_dep  # not installed beside the hub or the client: only the card names it


def generate(model_file, num_samples, output_path, save_images: bool):
    with open(model_file) as handle:
        value = int(handle.read().strip()) + medigan_test_dep.VALUE
    return [np.full((16, 16, 1), value, dtype="uint8") for _ in range(num_samples)]
'''

# medigan's templates/examples/metadata.json, slips included: a trailing comma in a list, and the
# entry ends in "}," with the outer object never closed.
TEMPLATE_METADATA = """{
  "MODEL_ID": {
    "execution": {
      "package_name": "MMG_TESTDEP_DCGAN",
      "package_link": "ADD_ZENODO_OR_LOCAL_URL_HERE",
      "model_name": "500",
      "extension": ".pt",
      "image_size": [16, 16],
      "dependencies": ["numpy", "medigan-test-dep==1.0",],
      "generate_method": {
        "name": "generate",
        "args": {
          "base": ["model_file", "num_samples", "output_path", "save_images"],
          "custom": {}
        }
      }
    },
    "selection": {
      "performance": {"SSIM": null, "FID": 67.60},
      "modality": ["MMG", "Mammography"],
      "dataset": ["BCDR"],
      "height": 16,
      "width": 16,
      "depth": null,
      "type": "DCGAN",
      "license": "MIT",
      "year": "2021"
    },
    "description": {
      "title": "DCGAN Model for Mammogram Patch Generation (random weights)",
      "version": "0.0.1",
      "doi": [],
      "comment": "random weights"
    }
  },""".replace("MODEL_ID", MODEL_ID)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    factories.dep_wheel(folder)
    return folder


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, wheels: Path) -> Iterator[LiveHub]:
    env = {
        "MEDIGAN_PIP_FIND_LINKS": str(wheels),
        "MEDIGAN_PIP_NO_INDEX": "1",
        "MEDIGAN_SMOKE_TIMEOUT_SECONDS": "120",
    }
    with live_hub(
        env=env, data_dir=tmp_path_factory.mktemp("hub-contributor"), seed=["--skip-zoo"]
    ) as running:
        yield running


@pytest.fixture
def contributor_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hub: LiveHub, wheels: Path
) -> dict[str, dict[str, str]]:
    """The contributor's shell: this hub, the contributor's token, pip on the local wheels."""
    credentials: dict[str, dict[str, str]] = json.loads(
        (hub.data_dir / "demo-credentials.json").read_text(encoding="utf-8")
    )
    monkeypatch.setenv("MEDIGAN_HUB_URL", hub.url)
    monkeypatch.setenv("MEDIGAN_TOKEN", credentials["contributor"]["token"])
    monkeypatch.setenv("MEDIGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("MEDIGAN_PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("MEDIGAN_PIP_NO_INDEX", "1")
    monkeypatch.delenv("MEDIGAN_PUSH_USE_CURRENT_ENV", raising=False)
    monkeypatch.chdir(tmp_path)
    return credentials


def _template_package(folder: Path) -> Path:
    package = folder / "MMG_TESTDEP_DCGAN"
    package.mkdir()
    (package / "__init__.py").write_text(INIT_SOURCE, encoding="utf-8")
    (package / "500.pt").write_text("58\n", encoding="utf-8")
    (package / "metadata.json").write_text(TEMPLATE_METADATA, encoding="utf-8")
    return package


def _wait_for_state(client: Client, release: str, states: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + STATE_TIMEOUT_SECONDS
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.release_status(release)
        if status["state"] in states:
            return status
        time.sleep(0.5)
    raise AssertionError(f"{release} did not reach {states}; last status {status}")


def test_a_medigan_template_package_needing_a_new_library_goes_from_import_to_generation(
    hub: LiveHub,
    contributor_env: dict[str, dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    package = _template_package(tmp_path)
    # import-medigan names what medigan's metadata lacks, then takes it by field name.
    assert main(["import-medigan", str(package), "--no-ask"]) != 0
    missing = capsys.readouterr().err
    assert "training_data" in missing
    assert (
        main(
            [
                "import-medigan",
                str(package),
                "--no-ask",
                "--set",
                "training_data.licence=CC-BY-4.0",
            ]
        )
        == 0
    ), capsys.readouterr().err
    card = json.loads((package / "card.json").read_text(encoding="utf-8"))
    assert card["model_id"] == f"contributor/{MODEL_ID}"
    assert "medigan-test-dep==1.0" in card["execution"]["dependencies"]

    # contribute() with medigan's arguments: the contributor's own namespace, the imported card.
    with Generators(progress=False) as generators:
        url = generators.contribute(
            model_id=MODEL_ID,
            init_py_path=str(package / "__init__.py"),
            github_access_token="unused",
            zenodo_access_token="unused",
            metadata_file_path=str(package / "metadata.json"),
            fill_more_fields_interactively=False,
        )
    release = f"contributor/{MODEL_ID}@0.0.1"
    assert url is not None and url.endswith(f"/models/contributor/{MODEL_ID}/releases/0.0.1")

    with Client(hub_url=hub.url, token=contributor_env["contributor"]["token"]) as contributor:
        status = _wait_for_state(contributor, release, {"in_review", "rejected"})
    checks = {check["name"]: check for check in status["checks"]}
    assert status["state"] == "in_review", checks
    assert "installed medigan-test-dep" in checks["smoke_generation"]["message"]

    with Client(hub_url=hub.url, token=contributor_env["reviewer"]["token"]) as reviewer:
        reviewer.review(release, "approve", "medigan template, validated with its dependency")
        _wait_for_state(reviewer, release, {"published"})

    # medigan's API, medigan's id: the number in front of the name is enough.
    with Generators(progress=False, refresh=True) as generators:
        by_number = generators.generate(model_id=102, num_samples=3, save_images=False)
        by_name = generators.generate(model_id=MODEL_ID, num_samples=3, save_images=False)
    for samples in (by_number, by_name):
        assert len(samples) == 3
        assert all(np.asarray(image).shape == (16, 16, 1) for image in samples)
        assert {int(np.asarray(image).max()) for image in samples} == {58 + 42}
