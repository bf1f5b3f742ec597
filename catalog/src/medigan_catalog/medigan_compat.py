"""Import medigan's ``global.json`` into cards and export cards back to that shape, losslessly.

medigan's catalogue grew by hand and is inconsistent in places. The import normalises each
inconsistency it knows (listed in :data:`NORMALISATIONS` and in ``docs/model-card.md``), emits a
:class:`NormalisationWarning` per change naming the model and the dotted field, and stores the
original value in ``card.compat.original_values`` so that :func:`export_global_json` writes
medigan's file back byte for byte (same values, same key order).

What the import deliberately does *not* touch: ``execution.generate_method.args.custom`` (those
values are passed to the package's code, which may depend on their exact types, e.g. ``"0"`` for a
GPU id) and free-text fields (dates, comments, tags).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from medigan_catalog.errors import CardInvalidError, FieldProblem
from medigan_catalog.schema import (
    DOI_PATTERN,
    SEMVER_RE,
    ArgumentType,
    ArtifactRole,
    Card,
    GenerationArgument,
    RuntimeKind,
    flatten_validation_error,
)

MEDIGAN_NAMESPACE = "medigan"
BLOCKS = ("execution", "selection", "description")
# The positional arguments medigan passes to every legacy generate function.
MEDIGAN_BASE_ARGUMENTS = ("model_file", "num_samples", "output_path", "save_images")
# The keyword arguments the client passes to every v2 generate function.
V2_BASE_ARGUMENTS = ("num_samples", "seed", "device")
# medigan's most common version for a first release; used where an entry has none.
DEFAULT_VERSION = "0.0.1"

# Keys are spellings reduced to lower-case letters and digits; values the spelling we keep.
# WGAN-GP is the spelling of the paper that introduced it and of entry
# 00006; 00018 writes WGANGP. "Progressively-growing GAN (PGGAN)" (00009) names the same
# architecture that 00019 and 00020 call PGGAN.
CANONICAL_MODEL_TYPES: Mapping[str, str] = {
    "wgangp": "WGAN-GP",
    "progressivelygrowingganpggan": "PGGAN",
    "pggan": "PGGAN",
}
# Short licence names as most entries write them ("MIT", "BSD"); two entries spell them out.
CANONICAL_LICENCES: Mapping[str, str] = {
    "bsdlicense": "BSD",
    "gnugeneralpubliclicense": "GPL",
}
# Arguments whose default is None and whose type the help text states in words, not "type=".
# 00008/00012 "condition": "Either 0, 1 or None";
# 00011 "checkpoint_ids": "A list of checkpoint ids".
NONE_DEFAULT_TYPES: Mapping[str, ArgumentType] = {
    "condition": ArgumentType.INT,
    "checkpoint_ids": ArgumentType.INT_LIST,
}

NORMALISATIONS: tuple[str, ...] = (
    "selection.performance.*: numbers stored as strings become floats; empty strings become null",
    "selection.type: spelling variants become one spelling (WGANGP -> WGAN-GP, "
    "'Progressively-growing GAN (PGGAN)' -> PGGAN)",
    "selection.license: spelled-out names become the short ones ('BSD License' -> BSD, "
    "'GNU GENERAL PUBLIC LICENSE' -> GPL)",
    "selection.height / width / depth: strings or whole floats become integers",
    "selection.year: integers become strings, as in most entries",
    "selection.privacy_preservation: an empty string becomes null",
    "execution.image_size: strings become integers",
    "description.doi: DOI URLs (https://doi.org/...) become bare DOIs; empty strings are dropped",
    "description.version: missing or not semver becomes semver ('1' -> 1.0.0, '1.0' -> 1.0.0, "
    f"null -> {DEFAULT_VERSION})",
)

_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_DOI_URL_RE = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)(?P<doi>10\..+)$", re.IGNORECASE)
_LOOSE_VERSION_RE = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$")
_INPUT_LINE_RE = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*:(?P<rest>.*)$", re.DOTALL)
_TYPE_HINT_RE = re.compile(r"\btype=(int|float|str|bool)\b")
_CHOICES_RE = re.compile(r"choices=\[(?P<items>[^\]]*)\]")


@dataclass(frozen=True)
class NormalisationWarning:
    """One value the import changed: which model, which dotted field, from what, to what, why."""

    model_id: str
    field: str
    original: Any
    normalised: Any
    message: str

    def __str__(self) -> str:
        return (
            f"{self.model_id}: {self.field}: {self.message} "
            f"({json.dumps(self.original)} -> {json.dumps(self.normalised)})"
        )


@dataclass(frozen=True)
class ImportResult:
    """The cards of a medigan catalogue, in its order, and every normalisation made on the way."""

    cards: list[Card]
    warnings: list[NormalisationWarning]


def _compact(text: str) -> str:
    """Lower-case letters and digits only: how spelling variants are compared."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


class _Normaliser:
    """Applies the known normalisations to a copy of one entry, recording warnings and originals."""

    def __init__(self, model_id: str, entry: Mapping[str, Any]):
        self.model_id = model_id
        self.entry: dict[str, Any] = copy.deepcopy(dict(entry))
        self.warnings: list[NormalisationWarning] = []
        self.originals: dict[str, Any] = {}
        self.version = DEFAULT_VERSION

    def record(self, path: str, original: Any, normalised: Any, message: str) -> None:
        # The first original is the one medigan had; later changes to the same path keep it.
        self.originals.setdefault(path, copy.deepcopy(original))
        self.warnings.append(
            NormalisationWarning(self.model_id, path, copy.deepcopy(original), normalised, message)
        )

    def block(self, name: str) -> dict[str, Any]:
        value = self.entry.get(name)
        return value if isinstance(value, dict) else {}

    def run(self) -> None:
        self._execution(self.block("execution"))
        self._selection(self.block("selection"))
        self._description(self.block("description"))

    def _execution(self, execution: dict[str, Any]) -> None:
        size = execution.get("image_size")
        if isinstance(size, list):
            converted = [_as_int(item) for item in size]
            if all(item is not None for item in converted) and converted != size:
                execution["image_size"] = converted
                self.record("execution.image_size", size, converted, "sizes must be integers")

    def _selection(self, selection: dict[str, Any]) -> None:
        for key in ("height", "width", "depth"):
            value = selection.get(key)
            if value is None or (isinstance(value, int) and not isinstance(value, bool)):
                continue
            converted = _as_int(value)
            if converted is not None:
                selection[key] = converted
                self.record(f"selection.{key}", value, converted, f"{key} must be an integer")
        year = selection.get("year")
        if isinstance(year, int) and not isinstance(year, bool):
            selection["year"] = str(year)
            self.record("selection.year", year, str(year), "year is a string in most entries")
        self._canonical(selection, "type", CANONICAL_MODEL_TYPES, "model type spelling variant")
        self._canonical(selection, "license", CANONICAL_LICENCES, "licence spelling variant")
        if selection.get("privacy_preservation") == "":
            selection["privacy_preservation"] = None
            self.record(
                "selection.privacy_preservation", "", None, "an empty string means no value"
            )
        performance = selection.get("performance")
        if isinstance(performance, dict):
            self._metrics(performance, "selection.performance")

    def _canonical(
        self, selection: dict[str, Any], key: str, table: Mapping[str, str], message: str
    ) -> None:
        value = selection.get(key)
        if isinstance(value, str):
            canonical = table.get(_compact(value))
            if canonical is not None and canonical != value:
                selection[key] = canonical
                self.record(f"selection.{key}", value, canonical, message)

    def _metrics(self, metrics: dict[str, Any], path: str) -> None:
        for key, value in metrics.items():
            if "." in key:
                # A dotted key cannot be addressed by a dotted path; leave it as medigan has it.
                continue
            where = f"{path}.{key}"
            if isinstance(value, dict):
                self._metrics(value, where)
            elif isinstance(value, str):
                converted = _metric_from_string(value)
                metrics[key] = converted
                message = (
                    "an empty metric means no value"
                    if converted is None
                    else "metric values are numbers"
                )
                self.record(where, value, converted, message)
            elif isinstance(value, list) and any(isinstance(item, str) for item in value):
                converted_list = [
                    _metric_from_string(item) if isinstance(item, str) else item for item in value
                ]
                metrics[key] = converted_list
                self.record(where, value, converted_list, "metric values are numbers")

    def _description(self, description: dict[str, Any]) -> None:
        dois = description.get("doi")
        if isinstance(dois, list) and all(isinstance(doi, str) for doi in dois):
            bare = [_bare_doi(doi) for doi in dois if doi.strip()]
            if bare != dois:
                description["doi"] = bare
                self.record("description.doi", dois, bare, "DOIs are stored bare (10.x/...)")
        version = description.get("version")
        self.version = _semver(version)
        if self.version != version:
            message = (
                f"no version given; {DEFAULT_VERSION} assumed"
                if version is None
                else "versions are semver (MAJOR.MINOR.PATCH)"
            )
            if "version" in description:
                # Only a key medigan has is rewritten: adding one would not export back.
                description["version"] = self.version
                self.record("description.version", version, self.version, message)
            else:
                self.warnings.append(
                    NormalisationWarning(
                        self.model_id, "description.version", None, self.version, message
                    )
                )


def _as_int(value: object) -> int | None:
    """An integer for ``224``, ``224.0`` or ``"224"``; ``None`` when it is not a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def _metric_from_string(value: str) -> float | str | None:
    """``"0.797"`` -> 0.797, ``""`` -> None; any other text is kept as it is."""
    text = value.strip()
    if not text:
        return None
    if _NUMBER_RE.match(text):
        return float(text)
    return value


def _bare_doi(doi: str) -> str:
    """``https://doi.org/10.1/x`` -> ``10.1/x``; a bare DOI stays as it is."""
    text = doi.strip()
    match = _DOI_URL_RE.match(text)
    return match.group("doi") if match else text


def _semver(version: object) -> str:
    """medigan's version as semver: ``"1"`` -> ``1.0.0``, ``None`` -> :data:`DEFAULT_VERSION`."""
    if isinstance(version, str):
        text = version.strip()
        if SEMVER_RE.match(text):
            return text
        loose = _LOOSE_VERSION_RE.match(text)
        if loose:
            return ".".join(str(int(part or "0")) for part in loose.groups())
    if isinstance(version, int | float) and not isinstance(version, bool):
        return _semver(str(version))
    return DEFAULT_VERSION


@dataclass(frozen=True)
class _InputHelp:
    """What one ``description.inputs`` line says about an argument."""

    help: str
    type_hint: ArgumentType | None
    choices: tuple[str, ...]


def _parse_inputs(lines: object) -> dict[str, _InputHelp]:
    """Read ``"name: default=..., help=..."`` lines; unparseable lines are skipped."""
    parsed: dict[str, _InputHelp] = {}
    if not isinstance(lines, list):
        return parsed
    for line in lines:
        if not isinstance(line, str):
            continue
        match = _INPUT_LINE_RE.match(line)
        if match is None:
            continue
        rest = match.group("rest")
        help_at = rest.find("help=")
        help_text = rest[help_at + len("help=") :] if help_at >= 0 else ""
        # Some lines end in a stray "|" separator.
        help_text = help_text.strip().rstrip("|").strip()
        hint = _TYPE_HINT_RE.search(rest)
        choices_match = _CHOICES_RE.search(rest)
        choices: tuple[str, ...] = ()
        if choices_match:
            choices = tuple(
                item.strip().strip("'\"")
                for item in choices_match.group("items").split(",")
                if item.strip()
            )
        parsed[match.group("name")] = _InputHelp(
            help=help_text,
            type_hint=ArgumentType(hint.group(1)) if hint else None,
            choices=choices,
        )
    return parsed


def _infer_type(default: object) -> ArgumentType | None:
    """The argument type a default value implies; ``None`` when the value says nothing."""
    if isinstance(default, bool):
        return ArgumentType.BOOL
    if isinstance(default, int):
        return ArgumentType.INT
    if isinstance(default, float):
        return ArgumentType.FLOAT
    if isinstance(default, str):
        return ArgumentType.STR
    if isinstance(default, list) and default:
        for list_type in (ArgumentType.INT_LIST, ArgumentType.FLOAT_LIST, ArgumentType.STR_LIST):
            if list_type.accepts(default):
                return list_type
    return None


def _generation_arguments(
    custom: Mapping[str, Any], inputs: Mapping[str, _InputHelp]
) -> list[dict[str, Any]]:
    """Typed arguments (as card JSON) from medigan's ``custom`` defaults and ``inputs`` help lines.

    The type comes from the default value; for a ``None`` (or empty list) default it comes from a
    ``type=`` hint in the help line, then from :data:`NONE_DEFAULT_TYPES`, and is ``str`` when
    nothing says more. A default no type can hold (a dict, a mixed list) becomes ``None``: the
    package's own default then applies, as it did under medigan.
    """
    arguments: list[dict[str, Any]] = []
    for name, default in custom.items():
        described = inputs.get(name)
        inferred = _infer_type(default)
        if inferred is None:
            hinted = described.type_hint if described else None
            inferred = hinted or NONE_DEFAULT_TYPES.get(name, ArgumentType.STR)
            default = None
        choices: tuple[str, ...] | None = None
        if (
            described
            and described.choices
            and inferred is ArgumentType.STR
            and (default is None or default in described.choices)
        ):
            choices = described.choices
        arguments.append(
            {
                "name": name,
                "type": inferred.value,
                "default": default,
                "choices": list(choices) if choices else None,
                "help": described.help if described else "",
            }
        )
    return arguments


def _output(execution: Mapping[str, Any], selection: Mapping[str, Any]) -> dict[str, Any]:
    """The output spec of a medigan model, from ``selection`` sizes, else ``image_size``.

    medigan's ``depth`` is, in every entry that sets it, the number of channels (it equals the
    third element of ``image_size``: 3 for RGB, 4 for image plus mask, 1 for grey), so it becomes
    ``channels``; without it the channels come from ``image_size`` and default to 1 (grey), a
    guess: medigan does not say. dtype ``uint8`` in ``[0, 255]`` is also a guess from medigan
    saving PNG/JPEG files; the hub's smoke generation checks it.
    """
    size = execution.get("image_size")
    size_list = size if isinstance(size, list) else []

    def from_size(index: int) -> Any:
        return size_list[index] if len(size_list) > index else None

    height = selection.get("height") or from_size(0)
    width = selection.get("width") or from_size(1)
    channels = selection.get("depth") or from_size(2) or 1
    return {"height": height, "width": width, "channels": channels}


def card_from_medigan_entry(
    medigan_id: str, entry: Mapping[str, Any], *, namespace: str = MEDIGAN_NAMESPACE
) -> tuple[Card, list[NormalisationWarning]]:
    """Turn one ``global.json`` entry into a card, normalising what is inconsistent.

    The card is ``<namespace>/<medigan id>`` at ``description.version`` (as semver), runtime
    ``medigan-legacy`` with ``execution.dependencies``, one package artifact
    ``<package_name>.zip`` at ``execution.package_link`` (sha256 and size unknown), provenance from
    ``selection.license/dataset/privacy_preservation`` and ``description.doi``. Raises
    :class:`CardInvalidError` (locations prefixed with the medigan id) when the entry cannot be
    made into a valid card.
    """
    model_id = f"{namespace}/{medigan_id}"
    normaliser = _Normaliser(model_id, entry)
    normaliser.run()
    extra_keys = [key for key in normaliser.entry if key not in BLOCKS]
    for key in extra_keys:
        # Keys beside the three blocks have no place in a card; compat carries them back out.
        normaliser.originals[key] = copy.deepcopy(normaliser.entry[key])
    execution = normaliser.block("execution")
    selection = normaliser.block("selection")
    description = normaliser.block("description")
    generate_method = execution.get("generate_method")
    method = generate_method if isinstance(generate_method, dict) else {}
    method_args = method.get("args") if isinstance(method.get("args"), dict) else {}
    custom = method_args.get("custom") if isinstance(method_args, dict) else None
    entry_point = method.get("name") if isinstance(method.get("name"), str) else "generate"
    dependencies = execution.get("dependencies")
    licence = selection.get("license")
    raw_dois = description.get("doi")
    dois: list[Any] = raw_dois if isinstance(raw_dois, list) else []
    raw_datasets = selection.get("dataset")
    datasets: list[Any] = raw_datasets if isinstance(raw_datasets, list) else []
    epochs = description.get("provided_after_epoch")
    package_name = execution.get("package_name")
    package_link = execution.get("package_link")
    artifacts: list[dict[str, Any]] = []
    if isinstance(package_name, str) and isinstance(package_link, str) and package_link:
        artifacts.append(
            {
                "role": ArtifactRole.PACKAGE.value,
                "filename": f"{package_name}.zip",
                "urls": [package_link],
            }
        )
    # Built as one plain document and validated once, so every problem is reported with its
    # full location (an entry's bad selection and its bad sizes alike).
    document: dict[str, Any] = {
        "model_id": model_id,
        "version": normaliser.version,
        "runtime": {
            "kind": RuntimeKind.MEDIGAN_LEGACY.value,
            "entry_point": entry_point,
            "dependencies": list(dependencies) if isinstance(dependencies, list) else [],
        },
        "generation_arguments": _generation_arguments(
            custom if isinstance(custom, dict) else {},
            _parse_inputs(description.get("inputs")),
        ),
        "output": _output(execution, selection),
        "artifacts": artifacts,
        "provenance": {
            "licence": licence if isinstance(licence, str) and licence.strip() else None,
            "dois": [d for d in dois if isinstance(d, str) and re.match(DOI_PATTERN, d)],
            "training_data": [
                {"name": name} for name in datasets if isinstance(name, str) and name
            ],
            "privacy_measures": selection.get("privacy_preservation") or None,
            "training": (
                {"epochs": epochs}
                if isinstance(epochs, int) and not isinstance(epochs, bool)
                else None
            ),
        },
        "execution": execution,
        "selection": selection,
        "description": description,
        "compat": {"medigan_id": medigan_id, "original_values": normaliser.originals},
    }
    try:
        card = Card.model_validate(document)
    except ValidationError as error:
        problems = [
            FieldProblem(loc=f"{medigan_id}.{p['loc']}" if p["loc"] else medigan_id, msg=p["msg"])
            for p in flatten_validation_error(error)
        ]
        raise CardInvalidError(problems) from None
    return card, normaliser.warnings


def import_global_json(data: Mapping[str, Any]) -> ImportResult:
    """Import a whole ``global.json`` document (medigan id -> entry), keeping its order."""
    cards: list[Card] = []
    warnings: list[NormalisationWarning] = []
    for medigan_id, entry in data.items():
        if not isinstance(entry, Mapping):
            raise CardInvalidError(
                [FieldProblem(loc=str(medigan_id), msg="a medigan entry must be an object")]
            )
        card, entry_warnings = card_from_medigan_entry(str(medigan_id), entry)
        cards.append(card)
        warnings.extend(entry_warnings)
    return ImportResult(cards=cards, warnings=warnings)


def load_global_json(path: str | Path) -> ImportResult:
    """Read and import a ``global.json`` file."""
    with Path(path).open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise CardInvalidError([FieldProblem(loc="", msg="global.json must be an object")])
    return import_global_json(data)


@dataclass(frozen=True)
class JsonRepair:
    """A slip of a hand-written medigan metadata file that :func:`parse_medigan_metadata` fixed."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


_CLOSERS = {"{": "}", "[": "]"}


def _repair_json(text: str) -> tuple[str, list[JsonRepair]]:
    """``text`` without trailing commas and with unclosed objects and arrays closed at the end.

    These are the slips of medigan's own model-package template (``templates/examples`` ends
    in ``},`` with the outer object never closed; ``templates/raw_examples`` ends in ``},\n}``).
    Strings are copied untouched; nothing else is guessed.
    """
    out: list[str] = []
    repairs: list[JsonRepair] = []
    stack: list[str] = []
    in_string = False
    escaped = False
    index = 0
    while index < len(text):
        char = text[index]
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            index += 1
            continue
        if char == '"':
            in_string = True
        elif char in _CLOSERS:
            stack.append(_CLOSERS[char])
        elif char in "}]" and stack and stack[-1] == char:
            stack.pop()
        elif char == ",":
            rest = text[index + 1 :].lstrip()
            if not rest or rest[0] in "}]":
                line = text.count("\n", 0, index) + 1
                closing = f"before {rest[0]!r}" if rest else "at the end of the file"
                repairs.append(JsonRepair(line, f"removed a trailing comma {closing}"))
                index += 1
                continue
        out.append(char)
        index += 1
    if stack and not in_string:
        missing = "".join(reversed(stack))
        line = text.count("\n") + 1
        repairs.append(JsonRepair(line, f"closed what the file left open: added {missing!r}"))
        out.append("\n" + missing)
    return "".join(out), repairs


def parse_medigan_metadata(text: str) -> tuple[dict[str, Any], list[JsonRepair]]:
    """Read a medigan ``metadata.json`` (``{model_id: entry}``), fixing known slips.

    Valid JSON is read as it is. Otherwise trailing commas are removed and objects or arrays
    left open at the end are closed, each fix reported as a :class:`JsonRepair`; anything else
    raises :class:`CardInvalidError` with the parser's line and column.
    """
    try:
        data = json.loads(text)
        repairs: list[JsonRepair] = []
    except ValueError as first:
        repaired, repairs = _repair_json(text)
        if not repairs:
            raise CardInvalidError([FieldProblem(loc="", msg=f"not JSON: {first}")]) from None
        try:
            data = json.loads(repaired)
        except ValueError:
            raise CardInvalidError([FieldProblem(loc="", msg=f"not JSON: {first}")]) from None
    if not isinstance(data, dict):
        raise CardInvalidError(
            [FieldProblem(loc="", msg="medigan metadata is an object keyed by model id")]
        )
    return data, repairs


def _set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at a dotted path, creating objects on the way."""
    *parents, last = path.split(".")
    node = document
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[last] = value


def _medigan_inputs(arguments: Sequence[GenerationArgument]) -> Iterator[str]:
    """``description.inputs`` lines in medigan's "name: default=..., help=..." style."""
    for argument in arguments:
        default = (
            list(argument.default) if isinstance(argument.default, tuple) else argument.default
        )
        yield f"{argument.name}: default={default}, help={argument.help}"


def _fill_from_card(entry: dict[str, Any], card: Card) -> None:
    """Give a card that did not come from medigan the medigan keys its blocks do not set."""
    execution = entry["execution"]
    legacy = card.runtime.kind is RuntimeKind.MEDIGAN_LEGACY
    package = card.package_artifact
    size = [card.output.height, card.output.width]
    if card.output.channels > 1:
        size.append(card.output.channels)
    execution.setdefault("package_name", card.name)
    execution.setdefault("package_link", package.urls[0] if package and package.urls else None)
    execution.setdefault("image_size", size)
    execution.setdefault("dependencies", list(card.runtime.dependencies))
    execution.setdefault(
        "generate_method",
        {
            "name": card.runtime.entry_point,
            "args": {
                "base": list(MEDIGAN_BASE_ARGUMENTS if legacy else V2_BASE_ARGUMENTS),
                "custom": {
                    a.name: list(a.default) if isinstance(a.default, tuple) else a.default
                    for a in card.generation_arguments
                },
            },
        },
    )
    selection = entry["selection"]
    selection.setdefault("height", card.output.height)
    selection.setdefault("width", card.output.width)
    selection.setdefault("depth", card.output.channels if card.output.channels > 1 else None)
    selection.setdefault("license", card.provenance.licence)
    description = entry["description"]
    description.setdefault("title", card.title)
    description.setdefault("version", card.version)
    description.setdefault("doi", list(card.provenance.dois))
    description.setdefault("inputs", list(_medigan_inputs(card.generation_arguments)))


def card_to_medigan_entry(card: Card) -> dict[str, Any]:
    """The card as a ``global.json`` entry.

    For an imported card this is exactly the entry medigan had (normalised values are put back
    from ``compat.original_values``). For other cards the medigan blocks are completed from the
    card's own fields (package name and link, image size, dependencies, licence, version, DOIs).
    """
    entry: dict[str, Any] = {
        "execution": card.execution.model_dump(mode="json"),
        "selection": card.selection.model_dump(mode="json"),
        "description": card.description.model_dump(mode="json"),
    }
    if card.compat is None:
        _fill_from_card(entry, card)
    else:
        for path, original in card.compat.original_values.items():
            _set_path(entry, path, copy.deepcopy(original))
    return entry


def export_global_json(cards: Sequence[Card]) -> dict[str, Any]:
    """A ``global.json`` document of the cards, keyed by medigan id, in the cards' order.

    A card imported from medigan keeps its medigan id; any other card uses its name. Raises
    ``ValueError`` when two cards would share an id (pass one release per model).
    """
    document: dict[str, Any] = {}
    for card in cards:
        medigan_id = card.compat.medigan_id if card.compat else card.name
        if medigan_id in document:
            raise ValueError(f"two cards export to the same medigan id {medigan_id!r}")
        document[medigan_id] = card_to_medigan_entry(card)
    return document
