"""An interactive matplotlib viewer of one release: change its arguments and see the image change.

:func:`visualize` opens a figure with one generated sample and a control for each generation
argument of the card:

* a latent-vector argument (a ``float_list`` such as ``z`` or ``latent``, whose length the
  card's default or ``execution.generate_method.input_latent_vector_size`` gives) becomes a few
  *latent sliders*, each shifting one block of dimensions (``z[0:13]``, ``z[13:25]``, ...) away
  from a base vector drawn from the seed;
* an argument with ``choices`` becomes radio buttons, a ``bool`` a check box, a number with
  both ``minimum`` and ``maximum`` a slider (whole steps for ``int``), anything else a text box
  (typed the way the CLI's ``--arg name=value`` is);
* *Seed* draws a new seed (and a new base latent vector), *Reset* restores the first view;
  the sample shown for seed ``s`` is sample 0 of ``client.generate(model, 1, seed=s,
  batch_size=1)`` with the same arguments (:mod:`medigan_client.batching`);
* volumes get a *slice* slider, and masks, when the package returns them, a second panel.

The returned :class:`Visualiser` holds the figure and every widget, so a script (or a test,
with the Agg backend and ``show=False``) can set values and press buttons programmatically.
matplotlib is an optional dependency: ``pip install 'medigan-client[visualize]'``.
"""

from __future__ import annotations

import importlib
import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from medigan_catalog.schema import ArgumentType, Card, GenerationArgument
from medigan_client.batching import generate_batches
from medigan_client.errors import BadRequestError, MediganClientError
from medigan_client.generate import resolve_arguments
from medigan_client.runtime import GeneratedBatch, Runner

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import Event
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage
    from matplotlib.widgets import Button, CheckButtons, RadioButtons, Slider, TextBox

    from medigan_client.http import HubSession
    from medigan_client.settings import ClientSettings

MAX_LATENT_SLIDERS = 8
LATENT_OFFSET_LIMIT = 3.0
EXTRA = "medigan-client[visualize]"
DEFAULT_CHOICE_LABEL = "(package default)"
_LATENT_NAME = re.compile(r"(^|_)(z|latents?|noise|codes?)(_|$)", re.IGNORECASE)

# Layout in figure coordinates: the image(s) on the left, a column of controls on the right.
_CONTROLS_LEFT = 0.60
_CONTROLS_RIGHT = 0.97
_LABELLED_LEFT = 0.74  # sliders and text boxes draw their label left of their axes
_CONTROLS_TOP = 0.95
_CONTROLS_BOTTOM = 0.12
_ROW_HEIGHT = 0.045


def _require_matplotlib() -> None:
    try:
        importlib.import_module("matplotlib.widgets")
    except ImportError as exc:
        raise BadRequestError(
            f"the visualiser needs matplotlib, which is not installed: pip install '{EXTRA}'"
        ) from exc


@dataclass(frozen=True)
class LatentArgument:
    """The card's latent-vector argument and its length."""

    argument: GenerationArgument
    size: int


def find_latent_argument(card: Card) -> LatentArgument | None:
    """The card's latent-vector-like argument, or None.

    A ``float_list`` without ``choices`` qualifies; one named like a latent (``z``, ``latent``,
    ``noise``, ``code``) is preferred. Its length comes from its default, else from medigan's
    ``input_latent_vector_size``; without either the argument is edited as text instead.
    """
    candidates = [
        argument
        for argument in card.generation_arguments
        if argument.type is ArgumentType.FLOAT_LIST and argument.choices is None
    ]
    candidates.sort(key=lambda argument: _LATENT_NAME.search(argument.name) is None)
    method = card.execution.generate_method
    declared = method.input_latent_vector_size if method is not None else None
    for argument in candidates:
        default = argument.default
        size = len(default) if isinstance(default, tuple) and default else declared
        if size:
            return LatentArgument(argument, int(size))
    return None


def latent_blocks(size: int, groups: int = MAX_LATENT_SLIDERS) -> list[tuple[int, int]]:
    """``[start, stop)`` of each block of dimensions one latent slider moves (nearly equal)."""
    count = max(1, min(groups, size))
    edges = np.linspace(0, size, count + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def display_array(
    sample: np.ndarray,
    card: Card,
    *,
    slice_index: int | None = None,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """A sample as float values in ``[0, 1]`` that ``imshow`` shows: ``(H, W)`` or ``(H, W, 3)``.

    Volumes show ``slice_index`` (the middle slice by default); four channels (medigan's image
    plus mask) show the first three; two channels show the first.
    """
    low, high = value_range if value_range is not None else card.output.value_range
    image = (np.asarray(sample, dtype=np.float64) - low) / (high - low)
    if card.output.depth is not None:
        depth = image.shape[0]
        image = image[depth // 2 if slice_index is None else min(max(slice_index, 0), depth - 1)]
    if image.ndim == 3:
        image = image[..., :3] if image.shape[-1] >= 3 else image[..., 0]
    return np.clip(image, 0.0, 1.0)


class Visualiser:
    """A live figure of one release: the image and the controls that regenerate it.

    Attributes for scripts and tests: ``figure``, ``image_axes``, ``image_artist``,
    ``mask_artist`` (or None), ``sliders`` / ``radios`` / ``checks`` / ``text_boxes`` (by
    argument name), ``latent_sliders`` (one per block), ``slice_slider`` (volumes), and the
    ``seed_button`` and ``reset_button``. :meth:`reseed` and :meth:`reset` are what the two
    buttons do. A failed regeneration (say, a bad text value) leaves the last image and shows
    the error in the title and in ``last_error``.
    """

    def __init__(
        self,
        card: Card,
        runner: Runner,
        *,
        args: Mapping[str, object] | None = None,
        seed: int = 0,
        device: str = "cpu",
        close_runner: bool = True,
    ):
        _require_matplotlib()
        self.card = card
        self.runner = runner
        self.device = device
        self._close_runner = close_runner
        self._closed = False
        self._quiet = False
        self.last_error: MediganClientError | None = None

        typed = resolve_arguments(card, args)  # bad input fails before a window opens
        self.latent = find_latent_argument(card)
        self.blocks = latent_blocks(self.latent.size) if self.latent else []
        given = dict(args or {})
        self._initial_seed = int(seed)
        self._initial_values = {
            name: value
            for name, value in typed.items()
            if value is not None and (self.latent is None or name != self.latent.argument.name)
        }
        self._initial_latent = self._first_latent(given)
        self._restore_state()

        self._sample: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self.sliders: dict[str, Slider] = {}
        self.radios: dict[str, RadioButtons] = {}
        self.checks: dict[str, CheckButtons] = {}
        self.text_boxes: dict[str, TextBox] = {}
        self.latent_sliders: list[Slider] = []
        self.slice_slider: Slider | None = None
        self.mask_artist: AxesImage | None = None

        batch = self._generate()  # raises: a model that cannot generate is not worth a window
        self._build_figure(batch)

    # -- state ----------------------------------------------------------------------------------

    def _first_latent(self, given: Mapping[str, object]) -> np.ndarray | None:
        if self.latent is None:
            return None
        name = self.latent.argument.name
        if given.get(name) is not None:
            typed = resolve_arguments(self.card, {name: given[name]})[name]
            if not isinstance(typed, list) or len(typed) != self.latent.size:
                raise BadRequestError(
                    f"argument {name!r} must hold {self.latent.size} numbers for the visualiser"
                )
            return np.asarray(typed, dtype=np.float64)
        return self._random_latent(self._initial_seed)

    def _random_latent(self, seed: int) -> np.ndarray | None:
        if self.latent is None:
            return None
        return np.random.default_rng(seed).standard_normal(self.latent.size)

    def _restore_state(self) -> None:
        self.seed = self._initial_seed
        self.values: dict[str, object] = dict(self._initial_values)
        self.base_latent = None if self._initial_latent is None else self._initial_latent.copy()
        self.latent_offsets = np.zeros(len(self.blocks))
        # The Seed button walks a sequence of its own, so the same clicks give the same views.
        self._seed_sequence = np.random.default_rng(self._initial_seed)

    def latent_vector(self) -> list[float] | None:
        """The latent vector sent to the package: base vector plus each block's offset."""
        if self.latent is None or self.base_latent is None:
            return None
        vector = self.base_latent.copy()
        for (start, stop), offset in zip(self.blocks, self.latent_offsets, strict=True):
            vector[start:stop] += offset
        argument = self.latent.argument
        if argument.minimum is not None or argument.maximum is not None:
            vector = np.clip(vector, argument.minimum, argument.maximum)
        return [float(v) for v in vector]

    def arguments(self) -> dict[str, object]:
        """The generation arguments of the current view, typed and defaulted by the card."""
        given = dict(self.values)
        vector = self.latent_vector()
        if self.latent is not None and vector is not None:
            given[self.latent.argument.name] = vector
        return resolve_arguments(self.card, given)

    @property
    def image(self) -> np.ndarray:
        """The array the image panel shows now (float, ``[0, 1]``)."""
        return np.asarray(self.image_artist.get_array())

    # -- generation -----------------------------------------------------------------------------

    def _generate(self) -> GeneratedBatch:
        # One sample, in a batch of one: the package's output is checked against the card.
        ((_, batch),) = generate_batches(
            self.runner,
            self.card,
            seed=self.seed,
            batch_size=1,
            first=0,
            stop=1,
            device=self.device,
            args=self.arguments(),
        )
        self._sample = batch.images[0]
        self._mask = None if batch.masks is None else batch.masks[0]
        return batch

    def refresh(self) -> None:
        """Generate again with the current seed and controls, and redraw."""
        if self._quiet:
            return
        try:
            self._generate()
        except MediganClientError as exc:
            self.last_error = exc
            self.image_axes.set_title(f"{self.card.release_id}\n{exc.message}", fontsize=8)
            self.figure.canvas.draw_idle()
            return
        self.last_error = None
        self._redraw()

    def _slice_index(self) -> int | None:
        return None if self.slice_slider is None else int(self.slice_slider.val)

    def _redraw(self) -> None:
        assert self._sample is not None
        self.image_artist.set_data(
            display_array(self._sample, self.card, slice_index=self._slice_index())
        )
        if self.mask_artist is not None and self._mask is not None:
            self.mask_artist.set_data(self._mask_display(self._mask))
        self.image_axes.set_title(f"{self.card.release_id}\nseed {self.seed}", fontsize=9)
        self.figure.canvas.draw_idle()

    def _mask_display(self, mask: np.ndarray) -> np.ndarray:
        array = np.asarray(mask, dtype=np.float64)
        if self.card.output.depth is not None:
            index = self._slice_index()
            array = array[array.shape[0] // 2 if index is None else index]
        if array.ndim == 3:
            array = array[..., 0]
        peak = float(array.max()) if array.size else 0.0
        return array / peak if peak > 0 else array

    # -- buttons --------------------------------------------------------------------------------

    def reseed(self) -> None:
        """What *Seed* does: a new random seed (and base latent vector), then regenerate."""
        self.seed = int(self._seed_sequence.integers(0, 2**31))
        if self.latent is not None:
            self.base_latent = self._random_latent(self.seed)
        self.refresh()

    def reset(self) -> None:
        """What *Reset* does: the first seed, arguments and latent vector, then regenerate."""
        self._quiet = True
        try:
            self._restore_state()
            for slider in [*self.sliders.values(), *self.latent_sliders]:
                slider.reset()
            if self.slice_slider is not None:
                self.slice_slider.reset()
            for name, radio in self.radios.items():
                label = self._choice_label(self.values.get(name))
                radio.set_active(self._choice_labels(name).index(label))
            for name, check in self.checks.items():
                if check.get_status()[0] != bool(self.values.get(name)):
                    check.set_active(0)
            for name, box in self.text_boxes.items():
                box.set_val(self._text_of(self.values.get(name)))
        finally:
            self._quiet = False
        self.refresh()

    def close(self) -> None:
        """Close the figure and the runner (when the visualiser opened it)."""
        if self._closed:
            return
        self._closed = True
        import matplotlib.pyplot as plt

        plt.close(self.figure)
        if self._close_runner:
            self.runner.close()

    # -- building the figure --------------------------------------------------------------------

    def _choice_values(self, name: str) -> list[object]:
        """The values a radio control offers: the choices, after ``None`` (the package's
        own default) when the card gives no default."""
        argument = self.card.argument(name)
        assert argument is not None and argument.choices is not None
        leading: list[object] = [None] if argument.default is None else []
        return [*leading, *argument.choices]

    @staticmethod
    def _choice_label(value: object) -> str:
        return DEFAULT_CHOICE_LABEL if value is None else str(value)

    def _choice_labels(self, name: str) -> list[str]:
        return [self._choice_label(value) for value in self._choice_values(name)]

    @staticmethod
    def _text_of(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, list | tuple):
            return ",".join(str(item) for item in value)
        return str(value)

    def _controls(self) -> list[tuple[str, GenerationArgument, float]]:
        """(kind, argument, height in rows) of each non-latent argument's control."""
        controls: list[tuple[str, GenerationArgument, float]] = []
        for argument in self.card.generation_arguments:
            if self.latent is not None and argument.name == self.latent.argument.name:
                continue
            if argument.choices is not None and not argument.type.is_list:
                controls.append(("radio", argument, 0.7 * len(argument.choices) + 0.8))
            elif argument.type is ArgumentType.BOOL:
                controls.append(("check", argument, 1.0))
            elif (
                argument.type in (ArgumentType.INT, ArgumentType.FLOAT)
                and argument.minimum is not None
                and argument.maximum is not None
            ):
                controls.append(("slider", argument, 1.0))
            else:
                controls.append(("text", argument, 1.0))
        return controls

    def _build_figure(self, batch: GeneratedBatch) -> None:
        import matplotlib.pyplot as plt
        from matplotlib.widgets import Button

        figure = plt.figure(figsize=(11, 6))
        self.figure: Figure = figure
        with_mask = batch.masks is not None
        image_width = 0.26 if with_mask else 0.52
        self.image_axes: Axes = figure.add_axes((0.03, 0.1, image_width, 0.8))
        self.image_axes.set_axis_off()
        assert self._sample is not None
        self.image_artist: AxesImage = self.image_axes.imshow(
            display_array(self._sample, self.card), cmap="gray", vmin=0.0, vmax=1.0
        )
        if with_mask and self._mask is not None:
            mask_axes = figure.add_axes((0.31, 0.1, 0.26, 0.8))
            mask_axes.set_axis_off()
            mask_axes.set_title("mask", fontsize=9)
            self.mask_artist = mask_axes.imshow(
                self._mask_display(self._mask), cmap="viridis", vmin=0.0, vmax=1.0
            )
        self._layout_controls()
        seed_axes = figure.add_axes((_CONTROLS_LEFT, 0.03, 0.17, 0.06))
        reset_axes = figure.add_axes((_CONTROLS_LEFT + 0.2, 0.03, 0.17, 0.06))
        self.seed_button: Button = Button(seed_axes, "Seed")
        self.reset_button: Button = Button(reset_axes, "Reset")
        self.seed_button.on_clicked(self._on_button(self.reseed))
        self.reset_button.on_clicked(self._on_button(self.reset))
        self.image_axes.set_title(f"{self.card.release_id}\nseed {self.seed}", fontsize=9)
        # A figure closed by its window also lets the runner go (a child process, perhaps).
        figure.canvas.mpl_connect("close_event", self._on_close)

    def _on_close(self, event: Event) -> None:
        self.close()

    @staticmethod
    def _on_button(action: Callable[[], None]) -> Callable[[Event], None]:
        def clicked(event: Event) -> None:
            action()

        return clicked

    def _layout_controls(self) -> None:
        controls = self._controls()
        rows: list[tuple[str, Any, float]] = [("latent", block, 1.0) for block in self.blocks]
        if self.card.output.depth is not None:
            rows.append(("slice", None, 1.0))
        rows.extend(controls)
        gap = 0.35
        total = sum(height + gap for _, _, height in rows)
        row = min(_ROW_HEIGHT, (_CONTROLS_TOP - _CONTROLS_BOTTOM) / total) if total else 0.0
        top = _CONTROLS_TOP
        for kind, subject, height in rows:
            bottom = top - height * row
            box_height = height * row
            if kind == "latent":
                self._add_latent_slider(subject, bottom, box_height)
            elif kind == "slice":
                self._add_slice_slider(bottom, box_height)
            else:
                self._add_control(kind, subject, bottom, box_height)
            top = bottom - gap * row

    def _labelled_axes(self, bottom: float, height: float) -> Axes:
        return self.figure.add_axes(
            (_LABELLED_LEFT, bottom, _CONTROLS_RIGHT - 0.06 - _LABELLED_LEFT, height)
        )

    def _add_latent_slider(self, block: tuple[int, int], bottom: float, height: float) -> None:
        from matplotlib.widgets import Slider

        assert self.latent is not None
        start, stop = block
        index = len(self.latent_sliders)
        slider = Slider(
            self._labelled_axes(bottom, height),
            f"{self.latent.argument.name}[{start}:{stop}]",
            -LATENT_OFFSET_LIMIT,
            LATENT_OFFSET_LIMIT,
            valinit=0.0,
        )

        def moved(value: float) -> None:
            if not self._quiet:
                self.latent_offsets[index] = float(value)
                self.refresh()

        slider.on_changed(moved)
        self.latent_sliders.append(slider)

    def _add_slice_slider(self, bottom: float, height: float) -> None:
        from matplotlib.widgets import Slider

        depth = int(self.card.output.depth or 1)
        slider = Slider(
            self._labelled_axes(bottom, height),
            "slice",
            0,
            depth - 1,
            valinit=depth // 2,
            valstep=1,
        )

        def moved(value: float) -> None:
            if not self._quiet:
                self._redraw()

        slider.on_changed(moved)
        self.slice_slider = slider

    def _add_control(
        self, kind: str, argument: GenerationArgument, bottom: float, height: float
    ) -> None:
        from matplotlib.widgets import CheckButtons, RadioButtons, Slider, TextBox

        name = argument.name
        value = self.values.get(name)
        if kind == "radio":
            axes = self.figure.add_axes(
                (_CONTROLS_LEFT, bottom, _CONTROLS_RIGHT - _CONTROLS_LEFT, height)
            )
            axes.set_title(name, fontsize=9, loc="left")
            labels = self._choice_labels(name)
            radio = RadioButtons(axes, labels, active=labels.index(self._choice_label(value)))
            choices = dict(zip(labels, self._choice_values(name), strict=True))

            def chosen(label: str | None) -> None:
                if self._quiet or label is None:
                    return
                if choices[label] is None:
                    self.values.pop(name, None)
                else:
                    self.values[name] = choices[label]
                self.refresh()

            radio.on_clicked(chosen)
            self.radios[name] = radio
        elif kind == "check":
            axes = self.figure.add_axes(
                (_CONTROLS_LEFT, bottom, _CONTROLS_RIGHT - _CONTROLS_LEFT, height)
            )
            check = CheckButtons(axes, [name], [bool(value)])

            def toggled(label: str | None) -> None:
                if not self._quiet:
                    self.values[name] = bool(check.get_status()[0])
                    self.refresh()

            check.on_clicked(toggled)
            self.checks[name] = check
        elif kind == "slider":
            assert argument.minimum is not None and argument.maximum is not None
            whole = argument.type is ArgumentType.INT
            initial = float(value) if isinstance(value, int | float) else float(argument.minimum)
            slider = Slider(
                self._labelled_axes(bottom, height),
                name,
                float(argument.minimum),
                float(argument.maximum),
                valinit=initial,
                valstep=1.0 if whole else None,
            )

            def moved(number: float) -> None:
                if not self._quiet:
                    self.values[name] = round(number) if whole else float(number)
                    self.refresh()

            slider.on_changed(moved)
            self.sliders[name] = slider
        else:
            box = TextBox(self._labelled_axes(bottom, height), name, initial=self._text_of(value))

            def submitted(text: str) -> None:
                if self._quiet:
                    return
                previous = self.values.get(name)
                if text.strip():
                    self.values[name] = text.strip()
                else:
                    self.values.pop(name, None)
                try:
                    self.arguments()
                except BadRequestError as exc:
                    if previous is None:
                        self.values.pop(name, None)
                    else:
                        self.values[name] = previous
                    self.last_error = exc
                    self.image_axes.set_title(f"{self.card.release_id}\n{exc.message}", fontsize=8)
                    self.figure.canvas.draw_idle()
                    return
                self.refresh()

            box.on_submit(submitted)
            self.text_boxes[name] = box


def visualize(
    settings: ClientSettings,
    model: str,
    *,
    args: Mapping[str, object] | None = None,
    seed: int = 0,
    device: str = "cpu",
    isolation: str = "auto",
    show: bool = True,
    session: HubSession | None = None,
    progress: bool = True,
) -> Visualiser:
    """Open the interactive viewer of ``model`` (``ns/name`` or ``ns/name@version``).

    The release is resolved in the cached catalogue and its package downloaded once, as for
    :func:`medigan_client.generate.generate`; the package runs in ``isolation`` (see
    :func:`medigan_client.runtime.open_runner`) for as long as the figure is open. With
    ``show=True`` ``matplotlib.pyplot.show()`` is called (it blocks in a plain script until the
    window closes); with ``show=False`` the caller shows, saves or drives the figure.
    """
    _require_matplotlib()
    from medigan_client.download import ensure_package
    from medigan_client.generate import current_snapshot
    from medigan_client.runtime import open_runner
    from medigan_client.runtime.loader import resolve_device
    from medigan_client.sync import find_release

    card = find_release(current_snapshot(settings, session=session), model)
    resolve_arguments(card, args)  # bad arguments fail before the download
    package_dir = ensure_package(settings, card, session=session, progress=progress)
    chosen_device = resolve_device(device)
    runner = open_runner(package_dir, card, isolation=isolation, settings=settings)
    try:
        viewer = Visualiser(card, runner, args=args, seed=seed, device=chosen_device)
    except BaseException:
        runner.close()
        raise
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return viewer
