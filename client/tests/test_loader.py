"""Importing packages by path: v2 and medigan-legacy, side by side, from any working directory."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medigan_catalog.schema import card_from_json
from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.runtime.loader import load_package, resolve_device


def test_v2_package_imports_by_path_from_another_cwd(
    tmp_path: Path,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    card_data = make_card()
    package = write_package(tmp_path / "pkg", card_data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path_before = list(sys.path)
    loaded = load_package(package, card_from_json(card_data))
    samples = loaded.generate_batch(3, seed=5, device="cpu", args={"brightness": 100})
    assert samples.shape == (3, 8, 8)
    assert samples.dtype == np.uint8
    assert 80 < float(samples.mean()) < 120
    again = loaded.generate_batch(3, seed=5, device="cpu", args={"brightness": 100})
    assert np.array_equal(samples, again)
    assert sys.path == path_before
    assert Path.cwd() == elsewhere


def test_two_releases_load_side_by_side(
    tmp_path: Path,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
) -> None:
    first = make_card(version="1.0.0")
    second = make_card(version="2.0.0")
    dark = write_package(tmp_path / "one", first)
    bright = write_package(
        tmp_path / "two",
        second,
        init_source=(
            "import numpy as np\n"
            "def generate(num_samples, *, seed, device, brightness=0):\n"
            "    return np.full((num_samples, 8, 8), 250, dtype=np.uint8)\n"
        ),
    )
    one = load_package(dark, card_from_json(first))
    two = load_package(bright, card_from_json(second))
    assert one.module is not two.module
    assert one.module.__name__ != two.module.__name__
    assert int(two.generate_batch(1, seed=0, device="cpu", args={}).max()) == 250
    assert int(one.generate_batch(1, seed=0, device="cpu", args={"brightness": 10}).max()) < 200


def test_medigan_legacy_package_gets_model_file_and_returns_a_list(
    tmp_path: Path,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
) -> None:
    card_data = make_card(model_id="medigan/00099_TEST", version="0.0.1", kind="medigan-legacy")
    card_data["execution"] = {
        "package_name": "00099_TEST",
        "model_name": "DCGAN",
        "extension": ".pt",
    }
    # medigan zips wrap the package in a folder named after package_name.
    write_package(tmp_path / "extracted" / "00099_TEST", card_data)
    loaded = load_package(tmp_path / "extracted", card_from_json(card_data))
    assert loaded.legacy_model_file() == (tmp_path / "extracted" / "00099_TEST" / "DCGAN.pt")
    first = loaded.generate_batch(4, seed=1, device="cpu", args={"brightness": 100})
    again = loaded.generate_batch(4, seed=1, device="cpu", args={"brightness": 100})
    assert first.shape == (4, 8, 8, 1)
    assert first.min() >= 107  # brightness + the offset 7 read from the weights file
    assert np.array_equal(first, again), "legacy packages are seeded through the global RNGs"


def test_import_errors_and_missing_entry_points_are_generation_failures(
    tmp_path: Path,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
) -> None:
    card_data = make_card()
    broken = write_package(tmp_path / "broken", card_data, init_source="import not_a_module_x\n")
    with pytest.raises(GenerationFailedError, match="ModuleNotFoundError"):
        load_package(broken, card_from_json(card_data))
    empty = write_package(tmp_path / "empty", card_data, init_source="VALUE = 1\n")
    with pytest.raises(GenerationFailedError, match="no function 'generate'"):
        load_package(empty, card_from_json(card_data))
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(GenerationFailedError, match=r"no __init__\.py"):
        load_package(bare, card_from_json(card_data))


def test_exceptions_of_the_package_become_generation_failures(
    tmp_path: Path,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
) -> None:
    card_data = make_card()
    package = write_package(
        tmp_path / "raises",
        card_data,
        init_source="def generate(num_samples, *, seed, device, brightness=0):\n"
        "    raise RuntimeError('weights are corrupt')\n",
    )
    loaded = load_package(package, card_from_json(card_data))
    with pytest.raises(GenerationFailedError, match="RuntimeError: weights are corrupt"):
        loaded.generate_batch(1, seed=0, device="cpu", args={})


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in {"cpu", "cuda"}
    with pytest.raises(BadRequestError, match="unknown device"):
        resolve_device("tpu")
