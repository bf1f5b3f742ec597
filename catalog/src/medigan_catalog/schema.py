"""The model card: one pydantic schema for every release's metadata, and its JSON Schema export.

A card is a superset of a medigan ``global.json`` entry. Our own blocks (runtime, generation
arguments, output, artifacts, provenance, compat) are strict (``extra="forbid"``); medigan's three
blocks (``execution``, ``selection``, ``description``) type every key medigan uses but also keep
unknown keys and the order in which keys were given, so that a medigan entry survives an import and
an export unchanged (see :mod:`medigan_catalog.medigan_compat`).

Run ``python -m medigan_catalog.schema --write docs/schema/card.schema.json`` to refresh the
committed JSON Schema.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from medigan_catalog.errors import CardInvalidError, FieldProblem

SCHEMA_VERSION: Final = "1.0"

# Every id pattern below is matched with ``fullmatch`` (or pydantic's pattern engine, whose ``$``
# is the end of the text): Python's ``re.match`` with ``$`` would also accept a trailing newline,
# and an id such as ``"alice/x\n"`` would then reach storage paths and URLs. The ``^``/``$`` in the
# anchored patterns stay because they are exported to JSON Schema, where they mean what they say.
NAMESPACE_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
MODEL_ID_RE = re.compile(rf"^(?P<namespace>{NAMESPACE_PATTERN})/(?P<name>{NAME_PATTERN})$")
# The official semver 2.0.0 grammar (semver.org), anchored.
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
# Versions are ids too (URLs, storage paths, a 64-character column on the hub); semver alone
# sets no length.
VERSION_MAX_LENGTH: Final = 64
SHA256_PATTERN = r"^[0-9a-f]{64}$"
# A bare DOI as registered by doi.org: prefix "10.<registrant>", a slash, a non-empty suffix.
DOI_PATTERN = r"^10\.\d{4,9}/\S+$"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ARTIFACT_FILENAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$"

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class RuntimeKind(StrEnum):
    """How the client calls a package: the v2 array-returning function or medigan's file writer."""

    V2 = "v2"
    MEDIGAN_LEGACY = "medigan-legacy"


class ArgumentType(StrEnum):
    """The type of one generation argument, as a user passes it and as the package receives it.

    ``str_list`` exists because two medigan models take lists of strings (mask shapes, image
    paths); the other list types are numeric.
    """

    INT = "int"
    FLOAT = "float"
    STR = "str"
    BOOL = "bool"
    INT_LIST = "int_list"
    FLOAT_LIST = "float_list"
    STR_LIST = "str_list"

    @property
    def is_list(self) -> bool:
        """True for the list types."""
        return self in (ArgumentType.INT_LIST, ArgumentType.FLOAT_LIST, ArgumentType.STR_LIST)

    @property
    def element_type(self) -> ArgumentType:
        """The scalar type of one element (the type itself for scalar types)."""
        return {
            ArgumentType.INT_LIST: ArgumentType.INT,
            ArgumentType.FLOAT_LIST: ArgumentType.FLOAT,
            ArgumentType.STR_LIST: ArgumentType.STR,
        }.get(self, self)

    @property
    def is_numeric(self) -> bool:
        """True when minimum and maximum make sense (int, float and their lists)."""
        return self.element_type in (ArgumentType.INT, ArgumentType.FLOAT)

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is already of this type (no coercion; bools are not numbers).

        Lists may be given as ``list`` or ``tuple``; a float argument accepts an ``int``.
        """
        if self.is_list:
            if not isinstance(value, list | tuple):
                return False
            element = self.element_type
            return all(element.accepts(item) for item in value)
        if isinstance(value, bool):
            return self is ArgumentType.BOOL
        if self is ArgumentType.INT:
            return isinstance(value, int)
        if self is ArgumentType.FLOAT:
            return isinstance(value, int | float) and math.isfinite(value)
        if self is ArgumentType.STR:
            return isinstance(value, str)
        return False


class ArtifactRole(StrEnum):
    """What an artifact is: the package zip or a separate weights file."""

    PACKAGE = "package"
    WEIGHTS = "weights"


class OutputDType(StrEnum):
    """The array dtype one generated sample has."""

    UINT8 = "uint8"
    UINT16 = "uint16"
    FLOAT32 = "float32"

    @property
    def bounds(self) -> tuple[float, float]:
        """The representable range; ``value_range`` must lie inside it."""
        if self is OutputDType.UINT8:
            return (0.0, 255.0)
        if self is OutputDType.UINT16:
            return (0.0, 65535.0)
        return (-math.inf, math.inf)


class _CardModel(BaseModel):
    """Base of our own card blocks: frozen and closed to unknown keys."""

    # Validators are built on first use, not at import: a command that never parses a card
    # (``--help``, a search answered from the index) does not pay for building them.
    model_config = ConfigDict(
        frozen=True, extra="forbid", protected_namespaces=(), defer_build=True
    )


Scalar = bool | int | float | str
ArgumentValue = Scalar | tuple[Scalar, ...]


class Runtime(_CardModel):
    """How to run the package: kind, entry function, Python and pip requirements."""

    kind: RuntimeKind
    entry_point: str = Field(default="generate", pattern=IDENTIFIER_PATTERN)
    python_requires: str | None = None
    dependencies: tuple[str, ...] = ()
    # True only for v2 packages whose generate function takes ``precision="float16"`` (or a
    # declared ``dtype`` argument) and whose outputs were checked at half precision.
    half_precision: bool = False

    @field_validator("dependencies")
    @classmethod
    def _no_blank_requirements(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for requirement in value:
            if not requirement.strip():
                raise ValueError("dependencies must not contain empty requirement strings")
        return value


class GenerationArgument(_CardModel):
    """One keyword argument of the package's generate function, typed and defaulted.

    ``choices`` constrain scalar values (or each element of a list value); ``minimum`` and
    ``maximum`` are inclusive bounds for numeric types (or each element of a numeric list).
    A ``default`` of ``None`` means the package decides when the user gives nothing.
    """

    name: str = Field(pattern=IDENTIFIER_PATTERN, max_length=128)
    type: ArgumentType
    default: ArgumentValue | None = None
    choices: tuple[Scalar, ...] | None = None
    minimum: int | float | None = None
    maximum: int | float | None = None
    help: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        element = self.type.element_type
        if self.choices is not None:
            if not self.choices:
                raise ValueError("choices must not be empty when given")
            for choice in self.choices:
                if not element.accepts(choice):
                    raise ValueError(f"choice {choice!r} is not of type {element.value}")
        if (self.minimum is not None or self.maximum is not None) and not self.type.is_numeric:
            raise ValueError(f"minimum/maximum only apply to numeric types, not {self.type.value}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} is greater than maximum {self.maximum}")
        if self.default is not None:
            if not self.type.accepts(self.default):
                raise ValueError(f"default {self.default!r} does not match type {self.type.value}")
            for problem in self.value_problems(self.default):
                raise ValueError(f"default {problem}")
        return self

    def value_problems(self, value: ArgumentValue) -> list[str]:
        """Describe how a value of the right type breaks ``choices``/``minimum``/``maximum``."""
        items: tuple[Scalar, ...] = value if isinstance(value, tuple | list) else (value,)
        problems: list[str] = []
        for item in items:
            if self.choices is not None and item not in self.choices:
                allowed = ", ".join(repr(c) for c in self.choices)
                problems.append(f"{item!r} is not one of the choices ({allowed})")
            if isinstance(item, int | float) and not isinstance(item, bool):
                if self.minimum is not None and item < self.minimum:
                    problems.append(f"{item!r} is below the minimum {self.minimum}")
                if self.maximum is not None and item > self.maximum:
                    problems.append(f"{item!r} is above the maximum {self.maximum}")
        return problems


class OutputSpec(_CardModel):
    """What one generated sample is: size, channels, dtype and the range of its values.

    ``depth`` is for volumes (3-D samples) and stays ``None`` for images.
    """

    height: int = Field(ge=1)
    width: int = Field(ge=1)
    depth: int | None = Field(default=None, ge=1)
    channels: int = Field(default=1, ge=1)
    dtype: OutputDType = OutputDType.UINT8
    value_range: tuple[float, float] = (0.0, 255.0)

    @model_validator(mode="after")
    def _range_fits_dtype(self) -> Self:
        low, high = self.value_range
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError("value_range must be finite")
        if low >= high:
            raise ValueError(f"value_range minimum {low} must be below its maximum {high}")
        floor, ceiling = self.dtype.bounds
        if low < floor or high > ceiling:
            raise ValueError(
                f"value_range {list(self.value_range)} does not fit dtype {self.dtype.value}"
            )
        return self


class Artifact(_CardModel):
    """One downloadable file of a release, with its checksum, size and where to fetch it."""

    role: ArtifactRole
    filename: str = Field(pattern=ARTIFACT_FILENAME_PATTERN)
    sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    size: int | None = Field(default=None, ge=0)
    urls: tuple[str, ...] = ()


class TrainingData(_CardModel):
    """A data set the model was trained on, with its own licence and citation."""

    name: str = Field(min_length=1)
    licence: str | None = None
    citation: str | None = None
    url: str | None = None
    split: str | None = None
    image_count: int | None = Field(default=None, ge=0)


class TrainingRun(_CardModel):
    """How the weights were produced: hardware, time, epochs/steps, seed and recipe."""

    hardware: str | None = None
    wall_time_seconds: float | None = Field(default=None, ge=0)
    epochs: int | None = Field(default=None, ge=0)
    steps: int | None = Field(default=None, ge=0)
    seed: int | None = None
    recipe: str | None = None


class Provenance(_CardModel):
    """Who made the model, under which licence, from which data, with which privacy measures."""

    authors: tuple[str, ...] = ()
    licence: str | None = None
    dois: tuple[str, ...] = ()
    training_data: tuple[TrainingData, ...] = ()
    privacy_measures: str | None = None
    training: TrainingRun | None = None

    @field_validator("dois")
    @classmethod
    def _bare_dois(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for doi in value:
            if not re.fullmatch(DOI_PATTERN, doi):
                raise ValueError(f"{doi!r} is not a bare DOI such as 10.5281/zenodo.5187714")
        return value


class Compat(_CardModel):
    """What an import from medigan changed: the medigan id and each changed path's original value.

    ``original_values`` maps a dotted path inside the medigan entry (``selection.type``,
    ``selection.performance.FID``) to the JSON value medigan had there.
    """

    medigan_id: str = Field(pattern=rf"^{NAME_PATTERN}$")
    original_values: dict[str, Any] = Field(default_factory=dict)


class _MediganBlock(BaseModel):
    """Base of medigan's blocks: typed known keys, unknown keys kept, key order remembered.

    Validation is strict so that, say, a height given as the string ``"224"`` is reported rather
    than silently converted (the medigan import converts it itself and records the original).
    Serialisation writes the keys that were given, in the order they were given, and no others,
    which is what makes an import followed by an export reproduce medigan's file exactly.
    """

    model_config = ConfigDict(
        frozen=True, extra="allow", strict=True, protected_namespaces=(), defer_build=True
    )

    _key_order: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _remember_key_order(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        block = handler(data)
        if isinstance(data, Mapping):
            block._key_order = tuple(str(key) for key in data)
        return block

    @model_serializer(mode="wrap")
    def _serialise_given_keys(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        given = set(self._key_order) | set(self.model_fields_set) | set(self.model_extra or {})
        ordered = {key: dumped[key] for key in self._key_order if key in dumped}
        for key, value in dumped.items():
            if key in given and key not in ordered:
                ordered[key] = value
        return ordered


class GenerateMethodArgs(_MediganBlock):
    """medigan's ``generate_method.args``: the base positional names and the custom keywords."""

    base: list[str] | None = None
    custom: dict[str, Any] | None = None


class GenerateMethod(_MediganBlock):
    """medigan's ``execution.generate_method``: the function name and its arguments."""

    name: str | None = None
    args: GenerateMethodArgs | None = None
    input_latent_vector_size: int | None = None


class ExecutionInfo(_MediganBlock):
    """medigan's ``execution`` block: where the package is and how medigan calls it."""

    package_name: str | None = None
    package_link: str | None = None
    model_name: str | None = None
    extension: str | None = None
    image_size: list[int] | None = None
    dependencies: list[str] | None = None
    generate_method: GenerateMethod | None = None


class SelectionInfo(_MediganBlock):
    """medigan's ``selection`` block: what search and rank look at (modality, organ, metrics)."""

    performance: dict[str, Any] | None = None
    use_cases: list[str] | None = None
    organ: list[str] | None = None
    modality: list[str] | None = None
    vendors: list[str] | None = None
    centres: list[str] | None = None
    function: list[str] | None = None
    condition: list[str] | None = None
    dataset: list[str] | None = None
    augmentations: list[str] | None = None
    generates: list[str] | None = None
    height: int | None = None
    width: int | None = None
    depth: int | None = None
    type: str | None = None
    license: str | None = None
    dataset_type: str | None = None
    privacy_preservation: str | None = None
    tags: list[str] | None = None
    year: str | None = None


class DescriptionInfo(_MediganBlock):
    """medigan's ``description`` block: title, dates, version, publication, DOIs, comment."""

    title: str | None = None
    provided_date: str | None = None
    trained_date: str | None = None
    provided_after_epoch: int | list[int] | None = None
    version: str | None = None
    publication: str | None = None
    doi: list[str] | None = None
    inputs: list[str] | None = None
    comment: str | None = None


RELEASE_NOTES_MAX_LENGTH = 20_000


class Card(_CardModel):
    """The metadata of one release: what the model is, how to run it, what it produces, whence.

    Field meanings are fixed in ``docs/contracts.md``; ``docs/model-card.md`` explains them for
    contributors.
    """

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    model_id: str = Field(
        description="namespace/name, e.g. medigan/00001_DCGAN_MMG_CALC_ROI",
        json_schema_extra={"pattern": f"^{NAMESPACE_PATTERN}/{NAME_PATTERN}$"},
    )
    version: str = Field(
        description="semver, e.g. 1.0.0", json_schema_extra={"pattern": SEMVER_RE.pattern}
    )
    runtime: Runtime
    generation_arguments: tuple[GenerationArgument, ...] = ()
    output: OutputSpec
    artifacts: tuple[Artifact, ...] = ()
    provenance: Provenance = Field(default_factory=Provenance)
    execution: ExecutionInfo = Field(default_factory=ExecutionInfo)
    selection: SelectionInfo = Field(default_factory=SelectionInfo)
    description: DescriptionInfo = Field(default_factory=DescriptionInfo)
    compat: Compat | None = None
    # Left out of the document when absent, so cards written before it read and hash as before.
    release_notes: str | None = Field(
        default=None,
        max_length=RELEASE_NOTES_MAX_LENGTH,
        description="what changed in this version, for the model's users (plain text)",
        exclude_if=lambda value: value is None,
    )

    @field_validator("model_id")
    @classmethod
    def _valid_model_id(cls, value: str) -> str:
        # Checked here rather than with Field(pattern=...) so the message explains the rule.
        if not MODEL_ID_RE.fullmatch(value):
            raise ValueError(
                f"{value!r} is not namespace/name: the namespace is 1-64 of a-z, 0-9, '_', '-' "
                "(starting with a letter or digit), the name 1-128 of A-Z, a-z, 0-9, '.', '_', '-'"
            )
        return value

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not SEMVER_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a semantic version such as 1.0.0")
        if len(value) > VERSION_MAX_LENGTH:
            raise ValueError(f"the version is longer than {VERSION_MAX_LENGTH} characters")
        return value

    @field_validator("generation_arguments")
    @classmethod
    def _unique_argument_names(
        cls, value: tuple[GenerationArgument, ...]
    ) -> tuple[GenerationArgument, ...]:
        seen: set[str] = set()
        for argument in value:
            if argument.name in seen:
                raise ValueError(f"generation argument {argument.name!r} is declared twice")
            seen.add(argument.name)
        return value

    @field_validator("artifacts")
    @classmethod
    def _valid_artifacts(cls, value: tuple[Artifact, ...]) -> tuple[Artifact, ...]:
        for problem in artifact_problems(value):
            raise ValueError(problem)
        return value

    @property
    def namespace(self) -> str:
        """The part of ``model_id`` before the slash."""
        return self.model_id.split("/", 1)[0]

    @property
    def name(self) -> str:
        """The part of ``model_id`` after the slash."""
        return self.model_id.split("/", 1)[1]

    @property
    def release_id(self) -> str:
        """``namespace/name@version``: the name of this release everywhere."""
        return f"{self.model_id}@{self.version}"

    @property
    def title(self) -> str:
        """A human title: ``description.title`` when there is one, else the model id."""
        title = self.description.title
        return title if title and title.strip() else self.model_id

    @property
    def package_artifact(self) -> Artifact | None:
        """The artifact with role ``package`` (the zip), or ``None`` before the hub fills it."""
        for artifact in self.artifacts:
            if artifact.role is ArtifactRole.PACKAGE:
                return artifact
        return None

    def argument(self, name: str) -> GenerationArgument | None:
        """The generation argument called ``name``, or ``None``."""
        for argument in self.generation_arguments:
            if argument.name == name:
                return argument
        return None

    def to_json(self) -> dict[str, Any]:
        """The card as a JSON-ready dict, keys in schema order, that ``card_from_json`` reads back.

        medigan's blocks keep the keys they were given, in the order given.
        """
        return self.model_dump(mode="json", by_alias=True)

    def with_artifacts(self, artifacts: Sequence[Artifact]) -> Card:
        """A copy of this card whose artifacts are replaced (what the hub does on upload)."""
        replaced = tuple(artifacts)
        problems = artifact_problems(replaced)
        if problems:
            raise CardInvalidError([FieldProblem(loc="artifacts", msg=p) for p in problems])
        return self.model_copy(update={"artifacts": replaced})


def artifact_problems(artifacts: Sequence[Artifact]) -> list[str]:
    """Rules across a card's artifacts: unique filenames and at most one package."""
    problems: list[str] = []
    filenames = [artifact.filename for artifact in artifacts]
    for filename in sorted({f for f in filenames if filenames.count(f) > 1}):
        problems.append(f"artifact filename {filename!r} appears more than once")
    packages = [a for a in artifacts if a.role is ArtifactRole.PACKAGE]
    if len(packages) > 1:
        problems.append(f"a release has one package artifact, this card has {len(packages)}")
    return problems


def flatten_validation_error(error: ValidationError) -> list[FieldProblem]:
    """Turn pydantic's errors into ``[{loc: "a.b.c", msg}]`` (list indices become path parts)."""
    problems: list[FieldProblem] = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"])
        # pydantic prefixes messages raised from validators; the prefix says nothing to a user.
        message = message.removeprefix("Value error, ")
        problems.append(FieldProblem(loc=loc, msg=message))
    return problems


def card_from_json(data: Mapping[str, Any]) -> Card:
    """Parse a card document; raise :class:`CardInvalidError` listing every schema problem."""
    try:
        return Card.model_validate(dict(data))
    except ValidationError as error:
        raise CardInvalidError(flatten_validation_error(error)) from None


def export_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a card document, as committed in ``docs/schema/``."""
    schema = Card.model_json_schema(mode="validation")
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def render_json_schema() -> str:
    """The committed text of ``docs/schema/card.schema.json``: indented JSON and a newline."""
    return json.dumps(export_json_schema(), indent=2, ensure_ascii=False) + "\n"


def schema_command(
    render: Callable[[], str], *, prog: str, description: str | None, argv: Sequence[str] | None
) -> int:
    """Print the JSON Schema ``render`` gives, or write it to the file given with ``--write``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--write", type=Path, help="file to write the schema to")
    options = parser.parse_args(argv)
    text = render()
    if options.write is None:
        sys.stdout.write(text)
    else:
        options.write.parent.mkdir(parents=True, exist_ok=True)
        options.write.write_text(text, encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Print the card JSON Schema, or write it to the file given with ``--write``."""
    return schema_command(
        render_json_schema,
        prog="python -m medigan_catalog.schema",
        description=main.__doc__,
        argv=argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
