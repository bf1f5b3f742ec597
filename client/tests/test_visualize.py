"""The interactive viewer, driven headless with the Agg backend: controls, buttons, reset."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from medigan_catalog.schema import Card, card_from_json
from medigan_client.api import Client
from medigan_client.errors import BadRequestError
from medigan_client.runtime import GeneratedBatch
from medigan_client.settings import ClientSettings

matplotlib = pytest.importorskip("matplotlib", reason="the viewer needs medigan-client[visualize]")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backend_bases import MouseButton, MouseEvent  # noqa: E402
from matplotlib.widgets import Button  # noqa: E402

from medigan_client.visualize import (  # noqa: E402
    Visualiser,
    display_array,
    find_latent_argument,
    latent_blocks,
)

if TYPE_CHECKING:
    from conftest import FakeHub, MakeCard, WritePackage, ZipPackage

ZOO = Path(__file__).resolve().parents[2] / "zoo"

# Every control changes the image in a way a test can see; the latent vector ``z`` (16 values)
# shifts the 16 blocks of four pixels of the 8 x 8 image, in order.
CONTROLLED_INIT = """
import numpy as np


def generate(num_samples, *, seed, device, condition, truncation, steps, smooth, note, count, z):
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 1.0, size=(num_samples, 8, 8))
    image = 100.0 + truncation * 20.0 * noise + {"normal": 0.0, "pneumonia": 40.0}[condition]
    image = image + steps + (0.0 if smooth else 5.0) + len(note) + 2 * (count or 0)
    if z is not None:
        image = image + 10.0 * np.repeat(np.asarray(z), 4).reshape(8, 8)
    return np.clip(image, 0, 255).astype(np.uint8)
"""

CONTROLLED_ARGUMENTS: list[dict[str, Any]] = [
    {"name": "condition", "type": "str", "default": "normal", "choices": ["normal", "pneumonia"]},
    {"name": "truncation", "type": "float", "default": 1.0, "minimum": 0.05, "maximum": 2.0},
    {"name": "steps", "type": "int", "default": 10, "minimum": 10, "maximum": 50},
    {"name": "smooth", "type": "bool", "default": True},
    {"name": "note", "type": "str", "default": "x"},
    {"name": "count", "type": "int", "default": None},
    {"name": "z", "type": "float_list", "default": [0.0] * 16},
]


@pytest.fixture
def controlled(
    hub: FakeHub,
    tmp_path: Path,
    make_card: MakeCard,
    write_package: WritePackage,
    zip_package: ZipPackage,
) -> dict[str, Any]:
    """A published release (zoo/controlled-8) with one argument of every kind of control."""
    card = make_card("zoo/controlled-8")
    card["generation_arguments"] = CONTROLLED_ARGUMENTS
    package = write_package(tmp_path / "src" / "controlled", card, init_source=CONTROLLED_INIT)
    return hub.publish(card, zip_package(package, tmp_path / "dist" / "controlled-8.zip"))


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    plt.close("all")


def _open(settings: ClientSettings, model: str, **options: Any) -> Visualiser:
    return Client(settings=settings, progress=False).visualize(model, show=False, **options)


def _click(button: Button) -> None:
    """Press and release the mouse over a button, as a user would."""
    canvas = button.ax.figure.canvas
    canvas.draw()
    x, y = button.ax.transAxes.transform((0.5, 0.5))
    for name in ("button_press_event", "button_release_event"):
        canvas.callbacks.process(name, MouseEvent(name, canvas, x, y, button=MouseButton.LEFT))


class StaticRunner:
    """A runner returning one fixed image (and mask) of a card's shape, recording its calls."""

    isolation = "inprocess"

    def __init__(self, card: Card, *, with_mask: bool = False):
        self.card = card
        self.with_mask = with_mask
        self.seeds: list[int] = []
        self.closed = False

    @property
    def supports_sample_seeds(self) -> bool:
        return False

    def generate_batch(
        self,
        num_samples: int,
        *,
        seed: int,
        device: str,
        args: Mapping[str, object],
        sample_seeds: Sequence[int] | None = None,
    ) -> GeneratedBatch:
        self.seeds.append(seed)
        output = self.card.output
        shape: tuple[int, ...] = (num_samples, output.height, output.width)
        if output.depth is not None:
            shape = (num_samples, output.depth, output.height, output.width)
        if output.channels > 1:
            shape = (*shape, output.channels)
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, size=shape).astype(np.uint8)
        masks = (images > 127).astype(np.uint8) if self.with_mask else None
        return GeneratedBatch(images=images, masks=masks)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> StaticRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def test_controls_follow_the_cards_typed_arguments(
    settings: ClientSettings, controlled: dict[str, Any]
) -> None:
    viewer = _open(settings, "zoo/controlled-8")
    assert set(viewer.radios) == {"condition"}
    assert [label.get_text() for label in viewer.radios["condition"].labels] == [
        "normal",
        "pneumonia",
    ]
    assert set(viewer.sliders) == {"truncation", "steps"}
    assert viewer.sliders["steps"].valstep == 1.0
    assert (viewer.sliders["truncation"].valmin, viewer.sliders["truncation"].valmax) == (
        0.05,
        2.0,
    )
    assert set(viewer.checks) == {"smooth"}
    assert set(viewer.text_boxes) == {"note", "count"}
    assert len(viewer.latent_sliders) == 8  # 16 latent dimensions in blocks of two
    assert viewer.image.shape == (8, 8)


def test_every_control_regenerates_the_image(
    settings: ClientSettings, controlled: dict[str, Any]
) -> None:
    viewer = _open(settings, "zoo/controlled-8")
    actions: list[Callable[[], None]] = [
        lambda: viewer.radios["condition"].set_active(1),
        lambda: viewer.sliders["truncation"].set_val(0.5),
        lambda: viewer.sliders["steps"].set_val(30),
        lambda: viewer.checks["smooth"].set_active(0),
        lambda: viewer.text_boxes["note"].set_val("longer note"),
        lambda: viewer.text_boxes["count"].set_val("7"),
        lambda: viewer.latent_sliders[3].set_val(1.5),
    ]
    for action in actions:
        before = viewer.image.copy()
        action()
        assert viewer.last_error is None
        assert not np.array_equal(viewer.image, before)
    assert viewer.arguments()["condition"] == "pneumonia"
    assert viewer.arguments()["steps"] == 30
    assert viewer.arguments()["smooth"] is False
    assert viewer.arguments()["count"] == 7


def test_a_latent_slider_moves_only_its_block_of_dimensions(
    settings: ClientSettings, controlled: dict[str, Any]
) -> None:
    viewer = _open(settings, "zoo/controlled-8")
    before_vector = viewer.latent_vector()
    before = viewer.image.copy()
    viewer.latent_sliders[0].set_val(1.0)
    after_vector = viewer.latent_vector()
    assert before_vector is not None and after_vector is not None
    assert np.allclose(np.subtract(after_vector, before_vector)[:2], 1.0)
    assert np.allclose(np.subtract(after_vector, before_vector)[2:], 0.0)
    changed = np.argwhere(~np.isclose(viewer.image, before))
    assert len(changed) and set(changed[:, 0]) == {0}  # z[0:2] shifts the first row only


def test_seed_button_draws_a_new_sample_and_reset_restores_the_first(
    settings: ClientSettings, controlled: dict[str, Any]
) -> None:
    viewer = _open(settings, "zoo/controlled-8", seed=3)
    initial = viewer.image.copy()
    initial_latent = viewer.latent_vector()
    _click(viewer.seed_button)
    assert viewer.seed != 3
    assert viewer.latent_vector() != initial_latent
    assert not np.array_equal(viewer.image, initial)

    viewer.sliders["steps"].set_val(40)
    viewer.radios["condition"].set_active(1)
    viewer.checks["smooth"].set_active(0)
    viewer.text_boxes["note"].set_val("changed")
    viewer.latent_sliders[1].set_val(-2.0)
    _click(viewer.reset_button)
    assert viewer.seed == 3
    assert np.array_equal(viewer.image, initial)
    assert viewer.sliders["steps"].val == 10
    assert viewer.radios["condition"].value_selected == "normal"
    assert viewer.checks["smooth"].get_status() == [True]
    assert viewer.text_boxes["note"].text == "x"
    assert viewer.latent_sliders[1].val == 0.0


def test_a_bad_text_value_keeps_the_image_and_reports_the_error(
    settings: ClientSettings, controlled: dict[str, Any]
) -> None:
    viewer = _open(settings, "zoo/controlled-8")
    before = viewer.image.copy()
    viewer.text_boxes["count"].set_val("many")
    assert isinstance(viewer.last_error, BadRequestError)
    assert "count" in viewer.last_error.message
    assert np.array_equal(viewer.image, before)
    assert "count" not in viewer.values


def test_a_card_without_a_latent_gets_a_slider_and_the_seed_button(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    viewer = _open(settings, "zoo/noise-8", args={"brightness": 60})
    assert viewer.latent is None and viewer.latent_sliders == []
    assert viewer.sliders["brightness"].val == 60
    before = viewer.image.copy()
    viewer.reseed()
    assert not np.array_equal(viewer.image, before)
    viewer.sliders["brightness"].set_val(200)
    assert float(viewer.image.mean()) > float(before.mean())


def test_show_is_called_only_when_asked(
    settings: ClientSettings, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[bool] = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(True))
    client = Client(settings=settings, progress=False)
    client.visualize("zoo/noise-8", show=False)
    assert shown == []
    client.visualize("zoo/noise-8", show=True)
    assert shown == [True]


def test_closing_the_viewer_closes_its_runner_and_figure() -> None:
    card = card_from_json(_card_json("zoo/static-8"))
    runner = StaticRunner(card)
    viewer = Visualiser(card, runner)
    number = viewer.figure.number
    viewer.close()
    assert runner.closed
    assert not plt.fignum_exists(number)


def test_volumes_get_a_slice_slider_and_masks_a_panel() -> None:
    raw = _card_json("zoo/volume-8")
    raw["output"]["depth"] = 5
    card = card_from_json(raw)
    runner = StaticRunner(card, with_mask=True)
    viewer = Visualiser(card, runner)
    assert viewer.mask_artist is not None
    assert viewer.slice_slider is not None and viewer.slice_slider.val == 2
    middle = viewer.image.copy()
    viewer.slice_slider.set_val(0)
    assert not np.array_equal(viewer.image, middle)
    assert len(runner.seeds) == 1  # moving through slices regenerates nothing


def test_arguments_without_a_default_start_and_reset_to_the_packages_choice() -> None:
    raw = _card_json("medigan/conditional")
    raw["generation_arguments"] = [
        {"name": "condition", "type": "int", "choices": [0, 1]},
        {"name": "steps", "type": "int", "minimum": 1, "maximum": 9},
    ]
    card = card_from_json(raw)
    viewer = Visualiser(card, StaticRunner(card))
    radio = viewer.radios["condition"]
    assert radio.value_selected == "(package default)"
    assert viewer.arguments() == {"condition": None, "steps": None}
    radio.set_active(2)
    viewer.sliders["steps"].set_val(4)
    assert viewer.arguments() == {"condition": 1, "steps": 4}
    viewer.reset()
    assert radio.value_selected == "(package default)"
    assert viewer.arguments() == {"condition": None, "steps": None}


def test_without_matplotlib_the_error_names_the_extra(
    settings: ClientSettings, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.widgets", None)
    with pytest.raises(BadRequestError, match=r"medigan-client\[visualize\]"):
        _open(settings, "zoo/noise-8")


def test_latent_size_comes_from_medigans_declared_vector_size() -> None:
    raw = _card_json("medigan/latent")
    raw["generation_arguments"] = [{"name": "latent_vector", "type": "float_list"}]
    raw["execution"] = {"generate_method": {"input_latent_vector_size": 100}}
    latent = find_latent_argument(card_from_json(raw))
    assert latent is not None and latent.size == 100
    blocks = latent_blocks(100)
    assert len(blocks) == 8 and blocks[0][0] == 0 and blocks[-1][1] == 100
    assert all(a[1] == b[0] for a, b in itertools.pairwise(blocks))


def test_display_array_scales_and_picks_rgb() -> None:
    raw = _card_json("zoo/rgba-8")
    raw["output"]["channels"] = 4
    card = card_from_json(raw)
    sample = np.full((8, 8, 4), 255, dtype=np.uint8)
    shown = display_array(sample, card)
    assert shown.shape == (8, 8, 3)
    assert float(shown.max()) == 1.0


@pytest.mark.parametrize(
    "card_path",
    sorted(ZOO.glob("*/package/card.json")) if ZOO.is_dir() else [],
    ids=lambda path: path.parent.parent.name,
)
def test_every_zoo_card_gets_a_control_per_argument(card_path: Path) -> None:
    card = card_from_json(json.loads(card_path.read_text(encoding="utf-8")))
    runner = StaticRunner(card)
    viewer = Visualiser(card, runner)
    controlled = {*viewer.radios, *viewer.sliders, *viewer.checks, *viewer.text_boxes}
    assert controlled == {argument.name for argument in card.generation_arguments}
    if card.argument("condition") is not None:
        assert "condition" in viewer.radios
    _click(viewer.seed_button)
    assert len(runner.seeds) == 2


def _card_json(model_id: str) -> dict[str, Any]:
    return {
        "schema_version": "1.0",
        "model_id": model_id,
        "version": "1.0.0",
        "runtime": {"kind": "v2"},
        "output": {"height": 8, "width": 8},
    }
