"""Rules beyond the schema: whole-card checks, generated-output checks, argument resolution.

:func:`validate_card` is what ``medigan-client push`` runs locally and what the hub's "card
schema" and "licence present" checks run; :func:`check_generation_output` is the hub's
"output matches the card" check after a smoke generation (and the client's after every
generation); :func:`resolve_generation_arguments` turns what a user typed (Python values or CLI
strings) into the typed keyword arguments the package receives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from medigan_catalog.errors import CardInvalidError, FieldProblem, GenerationArgumentError
from medigan_catalog.schema import (
    ArgumentType,
    ArgumentValue,
    Card,
    GenerationArgument,
    RuntimeKind,
    Scalar,
    card_from_json,
)

# Names the runtime passes itself; a generation argument with one of them would collide.
RESERVED_ARGUMENTS: Mapping[RuntimeKind, frozenset[str]] = {
    RuntimeKind.V2: frozenset({"num_samples", "seed", "device"}),
    RuntimeKind.MEDIGAN_LEGACY: frozenset(
        {"model_file", "num_samples", "output_path", "save_images"}
    ),
}

_TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})


def card_problems(card: Card) -> list[FieldProblem]:
    """The cross-field rules a schema-valid card can still break (empty list: none).

    - generation argument names must not collide with what the runtime passes itself;
    - a card not imported from medigan (``compat`` is null) needs ``provenance.licence``, and each
      of its artifacts needs ``sha256`` and ``size``;
    - ``compat`` belongs to imported medigan cards, whose runtime is ``medigan-legacy``;
    - ``selection.height``/``width`` and ``description.version``, when given, agree with
      ``output`` and ``version``.
    """
    problems: list[FieldProblem] = []
    reserved = RESERVED_ARGUMENTS[card.runtime.kind]
    for index, argument in enumerate(card.generation_arguments):
        if argument.name in reserved:
            problems.append(
                FieldProblem(
                    loc=f"generation_arguments.{index}.name",
                    msg=f"{argument.name!r} is passed by the {card.runtime.kind.value} runtime "
                    "itself; choose another name",
                )
            )
    imported = card.compat is not None
    if not imported:
        licence = card.provenance.licence
        if licence is None or not licence.strip():
            problems.append(
                FieldProblem(
                    loc="provenance.licence",
                    msg="a licence is required (an SPDX id such as MIT or CC-BY-4.0)",
                )
            )
        for index, artifact in enumerate(card.artifacts):
            for field in ("sha256", "size"):
                if getattr(artifact, field) is None:
                    problems.append(
                        FieldProblem(
                            loc=f"artifacts.{index}.{field}",
                            msg=f"{field} is required (only imported medigan entries may omit it)",
                        )
                    )
    elif card.runtime.kind is not RuntimeKind.MEDIGAN_LEGACY:
        problems.append(
            FieldProblem(
                loc="compat",
                msg="compat is for cards imported from medigan, whose runtime is medigan-legacy",
            )
        )
    for key in ("height", "width"):
        declared = getattr(card.selection, key)
        expected = getattr(card.output, key)
        if declared is not None and declared != expected:
            problems.append(
                FieldProblem(
                    loc=f"selection.{key}",
                    msg=f"selection.{key} is {declared} but output.{key} is {expected}",
                )
            )
    described = card.description.version
    if not imported and described is not None and described != card.version:
        problems.append(
            FieldProblem(
                loc="description.version",
                msg=f"description.version is {described!r} but the card's version is "
                f"{card.version!r}",
            )
        )
    return problems


def licence_problems(card: Card) -> list[FieldProblem]:
    """The hub's "licence present" rule for a release (empty list: met).

    The model needs ``provenance.licence``, and each data set of ``provenance.training_data``
    its own ``licence``: a hub publishes nothing whose terms of use it cannot state. This holds
    for imported medigan cards too, which :func:`card_problems` otherwise lets through.
    """
    problems: list[FieldProblem] = []
    licence = card.provenance.licence
    if licence is None or not licence.strip():
        problems.append(
            FieldProblem(
                loc="provenance.licence",
                msg="the card names no licence for the model (an SPDX id such as MIT)",
            )
        )
    for index, data in enumerate(card.provenance.training_data):
        if data.licence is None or not data.licence.strip():
            problems.append(
                FieldProblem(
                    loc=f"provenance.training_data.{index}.licence",
                    msg=f"the training data {data.name!r} has no licence",
                )
            )
    return problems


def validate_card(data: Mapping[str, Any]) -> Card:
    """Parse a card and apply every rule; raise :class:`CardInvalidError` listing all problems."""
    card = card_from_json(data)
    problems = card_problems(card)
    if problems:
        raise CardInvalidError(problems)
    return card


def check_generation_output(
    card: Card,
    *,
    shape: tuple[int, ...],
    dtype: str,
    minimum: float,
    maximum: float,
    num_samples: int,
) -> list[str]:
    """Compare what a generate call returned with what the card promises (empty list: fine).

    Accepted shapes are ``(N, H, W)`` or ``(N, H, W, 1)`` for one channel and ``(N, H, W, C)``
    otherwise; for volumes (``output.depth`` set) a ``D`` follows ``N``. ``N`` must equal
    ``num_samples``, the dtype must be the card's, and ``[minimum, maximum]`` must lie inside
    ``value_range``.
    """
    spec = card.output
    problems: list[str] = []
    spatial: tuple[int, ...] = (spec.height, spec.width)
    if spec.depth is not None:
        spatial = (spec.depth, *spatial)
    spatial_names = "D, H, W" if spec.depth is not None else "H, W"
    expected_channels = (
        f"(N, {spatial_names})" if spec.channels == 1 else f"(N, {spatial_names}, {spec.channels})"
    )
    if len(shape) == len(spatial) + 1:
        channels = 1
    elif len(shape) == len(spatial) + 2:
        channels = shape[-1]
    else:
        problems.append(f"shape {tuple(shape)} should be {expected_channels}")
        channels = None
    if channels is not None:
        if shape[0] != num_samples:
            problems.append(f"{shape[0]} samples returned, {num_samples} requested")
        got_spatial = tuple(shape[1 : 1 + len(spatial)])
        if got_spatial != spatial:
            problems.append(
                f"sample size {got_spatial} differs from the card's {spatial} ({spatial_names})"
            )
        if channels != spec.channels:
            problems.append(
                f"{channels} channels returned, the card says {spec.channels}; "
                f"shape should be {expected_channels}"
            )
    if dtype != spec.dtype.value:
        problems.append(f"dtype {dtype} differs from the card's {spec.dtype.value}")
    low, high = spec.value_range
    if math.isnan(minimum) or math.isnan(maximum):
        problems.append("values contain NaN")
    else:
        if minimum < low:
            problems.append(f"minimum value {minimum} is below the card's range [{low}, {high}]")
        if maximum > high:
            problems.append(f"maximum value {maximum} is above the card's range [{low}, {high}]")
    return problems


def _scalar_from_text(text: str, element: ArgumentType, name: str) -> Scalar:
    """Parse one CLI word as ``element``; raise :class:`GenerationArgumentError` if it is not."""
    word = text.strip()
    try:
        if element is ArgumentType.INT:
            return int(word)
        if element is ArgumentType.FLOAT:
            number = float(word)
            if not math.isfinite(number):
                raise ValueError(word)
            return number
    except ValueError:
        raise GenerationArgumentError(
            f"argument {name!r} takes {element.value} values, not {text!r}", argument=name
        ) from None
    if element is ArgumentType.BOOL:
        lowered = word.lower()
        if lowered in _TRUE_WORDS:
            return True
        if lowered in _FALSE_WORDS:
            return False
        raise GenerationArgumentError(
            f"argument {name!r} takes true or false, not {text!r}",
            argument=name,
            allowed=("true", "false"),
        )
    return text


def _coerce(argument: GenerationArgument, value: object) -> ArgumentValue:
    """Bring a given value to the argument's type: CLI strings are parsed, ints widen to float."""
    kind = argument.type
    name = argument.name
    element = kind.element_type
    if kind.is_list:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("[") and text.endswith("]"):
                text = text[1:-1]
            words = [word for word in text.split(",") if word.strip()] if text.strip() else []
            items: list[Scalar] = [
                _scalar_from_text(
                    word.strip().strip("'\"") if element is ArgumentType.STR else word,
                    element,
                    name,
                )
                for word in words
            ]
            return tuple(items)
        if isinstance(value, list | tuple) and kind.accepts(value):
            return tuple(float(v) if element is ArgumentType.FLOAT else v for v in value)
    else:
        if isinstance(value, str) and kind is not ArgumentType.STR:
            return _scalar_from_text(value, kind, name)
        if isinstance(value, bool | int | float | str) and kind.accepts(value):
            if kind is ArgumentType.FLOAT and isinstance(value, int):
                return float(value)
            return value
    raise GenerationArgumentError(
        f"argument {name!r} takes {kind.value}, not {type(value).__name__} {value!r}",
        argument=name,
    )


def resolve_generation_arguments(card: Card, given: Mapping[str, object]) -> dict[str, object]:
    """The keyword arguments for the package: defaults applied, given values typed and checked.

    Strings (as a CLI delivers them) are parsed by type: ``"0.5"`` for a float, ``"1,2"`` or
    ``"[1, 2]"`` for a list, ``true``/``false``/``1``/``0`` for a bool. Lists come back as Python
    lists. ``None`` is accepted only for an argument whose default is ``None`` (the package then
    decides). Raises :class:`GenerationArgumentError` naming the argument for an unknown name
    (listing the known ones), a wrong type, or a value outside ``choices``/``minimum``/``maximum``.
    """
    known = [argument.name for argument in card.generation_arguments]
    for name in given:
        if card.argument(name) is None:
            listed = ", ".join(known) if known else "none"
            raise GenerationArgumentError(
                f"{card.model_id} has no generation argument {name!r}; its arguments: {listed}",
                argument=name,
                allowed=known,
            )
    resolved: dict[str, object] = {}
    for argument in card.generation_arguments:
        if argument.name not in given:
            default = argument.default
            resolved[argument.name] = list(default) if isinstance(default, tuple) else default
            continue
        value = given[argument.name]
        if value is None:
            if argument.default is not None:
                raise GenerationArgumentError(
                    f"argument {argument.name!r} needs a {argument.type.value} value",
                    argument=argument.name,
                )
            resolved[argument.name] = None
            continue
        typed = _coerce(argument, value)
        problems = argument.value_problems(typed)
        if problems:
            raise GenerationArgumentError(
                f"argument {argument.name!r}: " + "; ".join(problems),
                argument=argument.name,
                allowed=argument.choices or (),
            )
        resolved[argument.name] = list(typed) if isinstance(typed, tuple) else typed
    return resolved
