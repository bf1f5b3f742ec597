"""``init-package``'s skeleton: its card validates, it generates through the client's runtimes,
it passes push's local checks and reaches the hub, and its weights are the same every time."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from medigan_catalog.validation import validate_card
from medigan_client.batching import check_samples
from medigan_client.errors import BadRequestError, CardInvalidError
from medigan_client.generate import GenerationOptions, generate_from_package, resolve_arguments
from medigan_client.push import push, read_package_card
from medigan_client.runtime import open_runner
from medigan_client.scaffold import SKELETON_FILES, default_model_id, init_package
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from conftest import FakeHub


def test_the_skeletons_card_validates_against_the_schema_and_rules(tmp_path: Path) -> None:
    skeleton = init_package(tmp_path / "pkg", model_id="lab/cxr-gan", modality="MRI", image_size=48)

    assert sorted(p.name for p in (tmp_path / "pkg").iterdir()) == sorted(SKELETON_FILES)
    card = validate_card(json.loads((tmp_path / "pkg" / "card.json").read_text(encoding="utf-8")))
    assert (card.model_id, card.version, card.runtime.kind.value) == ("lab/cxr-gan", "0.1.0", "v2")
    assert (card.output.height, card.output.width, card.output.channels) == (48, 48, 1)
    assert card.selection.modality == ["MRI"]
    assert card.provenance.licence == "MIT"
    assert skeleton.model_id == "lab/cxr-gan"


def test_the_skeleton_generates_in_process_with_the_cards_shape(tmp_path: Path) -> None:
    init_package(tmp_path / "pkg", image_size=24)
    card, _ = read_package_card(tmp_path / "pkg")
    options = GenerationOptions(device="cpu", isolation="inprocess", progress=False, seed=3)

    result = generate_from_package(card, tmp_path / "pkg", 5, tmp_path / "out", options)

    assert result.count == 5
    arrays = []
    for path in result.iter_files():
        with Image.open(path) as image:
            arrays.append(np.asarray(image))
    assert {(a.shape, a.dtype.name) for a in arrays} == {((24, 24), "uint8")}
    assert np.std(arrays[0]) > 1.0, "the untrained network still draws a pattern"
    again = generate_from_package(card, tmp_path / "pkg", 5, tmp_path / "again", options)
    assert [p.read_bytes() for p in again.iter_files()] == [
        p.read_bytes() for p in result.iter_files()
    ]


def test_an_rgb_skeleton_returns_channels_last(tmp_path: Path) -> None:
    init_package(tmp_path / "rgb", image_size=16, channels=3)
    card, _ = read_package_card(tmp_path / "rgb")
    with open_runner(tmp_path / "rgb", card, isolation="inprocess") as runner:
        batch = runner.generate_batch(3, seed=0, device="cpu", args=resolve_arguments(card, {}))
    assert (batch.images.shape, batch.images.dtype.name) == ((3, 16, 16, 3), "uint8")


def test_the_skeleton_passes_pushs_checks_and_reaches_the_hub(
    settings: ClientSettings, hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The package declares torch, numpy and safetensors, which this environment has; building
    # an environment of the card's requirements is the runtime tests' subject, not this one's.
    monkeypatch.setenv("MEDIGAN_PUSH_USE_CURRENT_ENV", "1")
    package = init_package(tmp_path / "pkg", model_id="zoo/skeleton", image_size=32).directory
    card, _ = read_package_card(package)
    # The dry run's own steps: a child process generates, the samples keep the card's promise.
    with open_runner(package, card, isolation="process") as runner:
        samples = runner.generate_batch(2, seed=0, device="cpu", args=resolve_arguments(card, {}))
    check_samples(card, samples.images, 2)

    result = push(settings, package)

    assert result.state == "submitted"
    [received] = hub.state.pushes
    assert json.loads(received["card"])["model_id"] == "zoo/skeleton"


def test_the_weights_are_the_same_bytes_every_time(tmp_path: Path) -> None:
    first = init_package(tmp_path / "a", image_size=32).directory / "weights.safetensors"
    second = init_package(tmp_path / "b", image_size=32).directory / "weights.safetensors"
    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )
    assert first.stat().st_mode & 0o777 == 0o644


def test_a_non_empty_folder_is_refused_unless_forced_and_force_keeps_other_files(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "train.py").write_text("# mine\n", encoding="utf-8")
    with pytest.raises(BadRequestError, match="is not empty"):
        init_package(folder)
    assert [p.name for p in folder.iterdir()] == ["train.py"]

    init_package(folder, force=True)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*SKELETON_FILES, "train.py"])
    assert (folder / "train.py").read_text(encoding="utf-8") == "# mine\n"


def test_bad_options_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(CardInvalidError, match="the skeleton's card is invalid"):
        init_package(tmp_path / "a", model_id="Not A Model Id")
    with pytest.raises(BadRequestError, match="image size must be 4 to 1024"):
        init_package(tmp_path / "b", image_size=2)
    with pytest.raises(BadRequestError, match="channels must be 1 or 3"):
        init_package(tmp_path / "c", channels=2)
    assert list(tmp_path.iterdir()) == []


def test_the_default_model_id_comes_from_the_folder_name(tmp_path: Path) -> None:
    assert default_model_id(tmp_path / "My Model (v2)") == "my-lab/My-Model-v2"
    assert default_model_id(tmp_path / "___") == "my-lab/my-model"
