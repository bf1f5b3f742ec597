"""Fixtures shared by the catalog tests: medigan's global.json from ../shared and a v2 card."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from medigan_catalog.medigan_compat import ImportResult, import_global_json

# catalog/tests/conftest.py -> the repository root is two levels above this directory.
REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """``<repo root>/../shared``, or ``$MEDIGAN_SHARED_DIR`` when set."""
    configured = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def medigan_global_path() -> Path:
    path = shared_dir() / "anchors" / "medigan" / "global.json"
    if not path.is_file():
        pytest.skip(
            f"medigan's global.json is not at {path}; set MEDIGAN_SHARED_DIR to the shared "
            "directory that holds anchors/medigan/global.json"
        )
    return path


@pytest.fixture(scope="session")
def medigan_text(medigan_global_path: Path) -> str:
    return medigan_global_path.read_text(encoding="utf-8")


@pytest.fixture
def medigan_raw(medigan_text: str) -> dict[str, Any]:
    """A fresh parse for each test, so no test can spoil another's data."""
    data: dict[str, Any] = json.loads(medigan_text)
    return data


@pytest.fixture(scope="session")
def medigan_import(medigan_text: str) -> ImportResult:
    return import_global_json(json.loads(medigan_text))


@pytest.fixture
def v2_card_data() -> dict[str, Any]:
    """A complete, valid v2 card document as a contributor would write it."""
    return {
        "schema_version": "1.0",
        "model_id": "zoo/chestxray-dcgan-64",
        "version": "1.2.0",
        "runtime": {
            "kind": "v2",
            "entry_point": "generate",
            "python_requires": ">=3.10",
            "dependencies": ["torch>=2.1", "safetensors>=0.4"],
        },
        "generation_arguments": [
            {
                "name": "truncation",
                "type": "float",
                "default": 1.0,
                "minimum": 0.0,
                "maximum": 2.0,
                "help": "latent truncation",
            },
            {
                "name": "label",
                "type": "str",
                "default": "normal",
                "choices": ["normal", "pneumonia"],
                "help": "class to generate",
            },
            {"name": "sizes", "type": "int_list", "default": [64, 64], "help": "output size"},
            {"name": "flip", "type": "bool", "default": False, "help": "mirror horizontally"},
        ],
        "output": {
            "height": 64,
            "width": 64,
            "depth": None,
            "channels": 1,
            "dtype": "uint8",
            "value_range": [0, 255],
        },
        "artifacts": [
            {
                "role": "package",
                "filename": "chestxray-dcgan-64-1.2.0.zip",
                "sha256": "a" * 64,
                "size": 1234,
                "urls": ["https://hub.example/api/v1/models/zoo/chestxray-dcgan-64/x.zip"],
            }
        ],
        "provenance": {
            "authors": ["A. Author"],
            "licence": "MIT",
            "dois": ["10.5281/zenodo.1234567"],
            "training_data": [
                {
                    "name": "chest-xray-pneumonia",
                    "licence": "CC-BY-4.0",
                    "citation": "Kermany et al. 2018",
                    "url": "https://data.mendeley.com/datasets/rscbjbr9sj/2",
                    "split": "train",
                    "image_count": 5216,
                }
            ],
            "privacy_measures": None,
            "training": {
                "hardware": "1x H100",
                "wall_time_seconds": 900.0,
                "epochs": 20,
                "steps": None,
                "seed": 7,
                "recipe": "zoo/chestxray_dcgan.py",
            },
        },
        "execution": {},
        "selection": {
            "modality": ["x-ray", "CXR"],
            "organ": ["chest", "lung"],
            "type": "DCGAN",
            "tags": ["pneumonia"],
            "performance": {"FID": 41.5},
        },
        "description": {"title": "Chest X-ray DCGAN 64x64", "version": "1.2.0"},
        "compat": None,
    }
