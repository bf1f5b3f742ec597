"""``import-medigan``: a package made from medigan's template becomes one the hub accepts."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from medigan_catalog.validation import licence_problems, validate_card
from medigan_client.cli import main
from medigan_client.compat.importer import CardFieldsMissingError, import_medigan_package
from medigan_client.errors import BadRequestError

if TYPE_CHECKING:
    from conftest import FakeHub

MODEL_ID = "00102_DCGAN_MMG_MASS_ROI"

INIT_SOURCE = '''
"""A package in medigan's template: its generate() makes grey 16 x 16 squares."""
import numpy as np


def generate(model_file, num_samples, output_path, save_images: bool):
    with open(model_file) as handle:
        value = int(handle.read().strip())
    return [np.full((16, 16, 1), value, dtype="uint8") for _ in range(num_samples)]
'''

# Shaped like medigan's templates/examples/metadata.json, slips included: the entry ends in
# "}," and the outer object is never closed; a list has a trailing comma too.
TEMPLATE_METADATA = """{
  "MODEL_ID": {
    "execution": {
      "package_name": "MMG_MASS_BCDR_DCGAN",
      "package_link": "ADD_ZENODO_OR_LOCAL_URL_HERE",
      "model_name": "500",
      "extension": ".pt",
      "image_size": [16, 16],
      "dependencies": ["numpy",],
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
      "title": "DCGAN Model for Mammogram MASS Patch Generation (Trained on BCDR)",
      "version": "0.0.1",
      "doi": [],
      "comment": "random weights"
    }
  },""".replace("MODEL_ID", MODEL_ID)


@pytest.fixture
def template_package(tmp_path: Path) -> Path:
    """A package laid out like medigan's template, its metadata with the template's slips."""
    package = tmp_path / "MMG_MASS_BCDR_DCGAN"
    package.mkdir()
    (package / "__init__.py").write_text(INIT_SOURCE, encoding="utf-8")
    (package / "500.pt").write_text("91\n", encoding="utf-8")
    (package / "metadata.json").write_text(TEMPLATE_METADATA, encoding="utf-8")
    return package


def test_the_template_becomes_a_card_the_hub_accepts(template_package: Path) -> None:
    imported = import_medigan_package(
        template_package,
        namespace="alice",
        answers={"provenance.training_data.0.licence": "CC-BY-NC-SA-4.0"},
    )
    written = json.loads((template_package / "card.json").read_text(encoding="utf-8"))
    card = validate_card(written)
    assert imported.card_path == template_package / "card.json"
    assert card.model_id == f"alice/{MODEL_ID}"
    assert card.version == "0.0.1"
    assert card.runtime.kind.value == "medigan-legacy"
    assert card.artifacts == ()
    assert card.provenance.licence == "MIT"
    assert [(d.name, d.licence) for d in card.provenance.training_data] == [
        ("BCDR", "CC-BY-NC-SA-4.0")
    ]
    assert licence_problems(card) == []
    # One warning per slip fixed, each naming its line.
    fixes = [warning for warning in imported.warnings if "(fixed)" in warning]
    assert len(fixes) == 3, imported.warnings
    assert any("trailing comma before ']'" in fix for fix in fixes)
    assert any("added '}'" in fix for fix in fixes)


def test_missing_fields_are_reported_by_card_field_and_nothing_is_written(
    template_package: Path,
) -> None:
    with pytest.raises(CardFieldsMissingError) as raised:
        import_medigan_package(template_package, namespace="alice")
    assert raised.value.code.value == "card_invalid"
    assert raised.value.missing_fields == ("provenance.training_data.0.licence",)
    assert raised.value.detail == {
        "missing": [
            {
                "loc": "provenance.training_data.0.licence",
                "msg": "the training data 'BCDR' has no licence",
            }
        ]
    }
    assert not (template_package / "card.json").exists()


def test_a_prompt_is_asked_for_each_missing_field(template_package: Path) -> None:
    metadata = (template_package / "metadata.json").read_text(encoding="utf-8")
    (template_package / "metadata.json").write_text(
        metadata.replace('"license": "MIT"', '"license": null'), encoding="utf-8"
    )
    asked: list[str] = []

    def prompt(field: str, why: str) -> str | None:
        asked.append(field)
        return {"provenance.licence": "Apache-2.0"}.get(field, "CC-BY-4.0")

    imported = import_medigan_package(template_package, namespace="alice", prompt=prompt)
    assert asked == ["provenance.licence", "provenance.training_data.0.licence"]
    assert imported.card.provenance.licence == "Apache-2.0"
    # medigan's own search reads selection.license: it says the same now.
    assert imported.card.selection.license == "Apache-2.0"


def test_an_existing_card_is_kept_unless_forced(template_package: Path) -> None:
    (template_package / "card.json").write_text("{}", encoding="utf-8")
    answers = {"training_data.licence": "CC-BY-4.0"}
    with pytest.raises(BadRequestError, match="--force"):
        import_medigan_package(template_package, namespace="alice", answers=answers)
    assert (template_package / "card.json").read_text(encoding="utf-8") == "{}"
    import_medigan_package(template_package, namespace="alice", answers=answers, force=True)
    assert json.loads((template_package / "card.json").read_text())["model_id"].startswith("alice/")


def test_an_answer_for_a_field_the_card_lacks_is_refused(template_package: Path) -> None:
    with pytest.raises(BadRequestError, match=r"no field 'provenance\.licences'"):
        import_medigan_package(
            template_package, namespace="alice", answers={"provenance.licences": "MIT"}
        )


def _cli(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, hub: FakeHub, *args: str
) -> tuple[int, str, str]:
    base = ["--hub", hub.url, "--token", hub.state.token, "--cache-dir", str(tmp_path / "cache")]
    code = main([*base, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_writes_the_card_then_push_accepts_it(
    account_hub: FakeHub,
    template_package: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "no-config.toml"))
    code, out, err = _cli(
        capsys,
        tmp_path,
        account_hub,
        "import-medigan",
        str(template_package),
        "--set",
        "training_data.licence=CC-BY-4.0",
    )
    assert code == 0, err
    assert f"alice/{MODEL_ID}@0.0.1" in out
    assert err.count("warning:") >= 3
    code, out, err = _cli(capsys, tmp_path, account_hub, "push", str(template_package))
    assert code == 0, err
    pushed = json.loads(account_hub.state.pushes[0]["card"])
    assert pushed["model_id"] == f"alice/{MODEL_ID}"


def test_the_cli_names_missing_fields_when_it_cannot_ask(
    hub: FakeHub,
    template_package: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "no-config.toml"))
    args = ["import-medigan", str(template_package), "--namespace", "alice", "--no-ask"]
    code, _, err = _cli(capsys, tmp_path, hub, *args)
    assert code == 1
    assert err.startswith("error: the hub needs card fields")
    assert "provenance.training_data.0.licence" in err
    assert not (template_package / "card.json").exists()


def test_the_cli_asks_on_request(
    hub: FakeHub,
    template_package: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setattr("sys.stdin", io.StringIO("CC-BY-4.0\n"))
    args = ["import-medigan", str(template_package), "--namespace", "bob", "--ask"]
    code, _, err = _cli(capsys, tmp_path, hub, *args)
    assert code == 0, err
    assert "provenance.training_data.0.licence" in err
    card = json.loads((template_package / "card.json").read_text(encoding="utf-8"))
    assert card["provenance"]["training_data"][0]["licence"] == "CC-BY-4.0"
    assert card["model_id"] == f"bob/{MODEL_ID}"
