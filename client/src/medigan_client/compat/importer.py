"""Turn a medigan model package into one a hub accepts: its ``metadata.json`` becomes ``card.json``.

A package made from medigan's model-package template holds ``__init__.py`` (medigan's
``generate(model_file, num_samples, output_path, save_images, **custom)``), the weights and a
``metadata.json`` of one ``global.json`` entry (``{model_id: {execution, selection,
description}}``). :func:`import_medigan_package` reads that file, forgiving the template's known
JSON slips (:func:`medigan_catalog.medigan_compat.parse_medigan_metadata`, one warning per fix),
makes the entry a ``medigan-legacy`` card with
:func:`medigan_catalog.medigan_compat.card_from_medigan_entry`, and writes it as ``card.json``
into the package, ready for ``medigan-client push``.

What a hub requires and medigan's format cannot say is asked for by its card field: the rules
are the catalogue's (:func:`medigan_catalog.validation.validate_card` and
:func:`medigan_catalog.validation.licence_problems`, the hub's "card schema" and "licence"
checks), so a card accepted here passes those checks on the hub. Answers come from
``answers`` (``{"provenance.training_data.0.licence": "CC-BY-4.0"}``; the CLI's ``--set``), from
``prompt`` (the CLI asks on a terminal), or are reported missing all at once by
:class:`CardFieldsMissingError`, which names each field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medigan_catalog.errors import CatalogError, FieldProblem
from medigan_catalog.medigan_compat import card_from_medigan_entry, parse_medigan_metadata
from medigan_catalog.schema import Card
from medigan_catalog.validation import licence_problems, validate_card
from medigan_client.errors import (
    AuthenticationRequiredError,
    BadRequestError,
    CardInvalidError,
    NotFoundError,
    OfflineError,
    ServerError,
)

if TYPE_CHECKING:
    from medigan_client.api import Client

METADATA_FILE = "metadata.json"
CARD_FILE = "card.json"
INIT_PY_FILE = "__init__.py"
# A short answer key names a provenance field: ``licence``, ``training_data.licence``.
_DEFAULT_BLOCK = "provenance"
# Card fields that hold lists of text: an answer lists them separated by commas.
_LIST_FIELDS = frozenset({"authors", "dois"})

# (card field, what is missing) -> the answer, or None to leave the field empty.
Prompt = Callable[[str, str], str | None]


class CardFieldsMissingError(CardInvalidError):
    """The hub requires card fields that medigan's metadata does not have (code ``card_invalid``).

    ``detail`` is ``{"missing": [{"loc": field, "msg": why}, ...]}``; ``missing_fields`` lists
    the fields. Give each as ``FIELD=VALUE`` (CLI ``--set``, Python ``answers=``).
    """

    def __init__(self, problems: Sequence[FieldProblem]):
        fields = [problem["loc"] for problem in problems]
        reasons = "; ".join(f"{problem['loc']} ({problem['msg']})" for problem in problems)
        super().__init__(
            f"the hub needs card fields that the medigan metadata does not give: {reasons}; "
            "give each as FIELD=VALUE (medigan-client import-medigan --set, or answers= in "
            "Python)",
            detail={"missing": [dict(problem) for problem in problems]},
        )
        self.missing_fields = tuple(fields)


@dataclass(frozen=True)
class ImportedPackage:
    """What :func:`import_medigan_package` made: the card, where it was written, what it fixed."""

    medigan_id: str
    card: Card
    card_path: Path | None
    warnings: tuple[str, ...]


def read_metadata(path: Path) -> tuple[dict[str, Any], list[str]]:
    """A medigan metadata file (or ``<folder>/metadata.json``) and a warning per slip fixed."""
    candidate = path / METADATA_FILE if path.is_dir() else path
    try:
        text = candidate.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"no medigan metadata file at {candidate}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CardInvalidError(f"cannot read {candidate}: {exc}") from exc
    try:
        data, repairs = parse_medigan_metadata(text)
    except CatalogError as exc:
        raise CardInvalidError(f"{candidate}: {exc.message}", detail=exc.detail) from exc
    return data, [f"{candidate.name}: {repair} (fixed)" for repair in repairs]


def select_entry(metadata: Mapping[str, Any], model_id: str | None = None) -> tuple[str, Any]:
    """The ``(model id, entry)`` of ``model_id``, or the metadata's only entry."""
    if model_id is not None:
        if model_id not in metadata:
            raise NotFoundError(
                f"the metadata has no entry {model_id!r}; it has {', '.join(metadata) or 'none'}"
            )
        return model_id, metadata[model_id]
    if len(metadata) != 1:
        raise BadRequestError(
            f"the metadata holds {len(metadata)} entries ({', '.join(metadata) or 'none'}); "
            "name the one to import"
        )
    return next(iter(metadata.items()))


def parse_answers(pairs: Sequence[str]) -> dict[str, str]:
    """``["FIELD=VALUE", ...]`` (the CLI's ``--set``) as a mapping; a clear error otherwise."""
    answers: dict[str, str] = {}
    for pair in pairs:
        field, equals, value = pair.partition("=")
        if not equals or not field.strip():
            raise BadRequestError(f"--set takes FIELD=VALUE, not {pair!r}")
        answers[field.strip()] = value.strip()
    return answers


def _card_path(document: Mapping[str, Any], field: str) -> list[str]:
    """The dotted ``field`` as path parts, a short one (``licence``) under ``provenance``."""
    parts = [part for part in field.strip().split(".") if part]
    if not parts:
        raise BadRequestError("an answer names no card field")
    if parts[0] not in document:
        parts.insert(0, _DEFAULT_BLOCK)
    return parts


def _set_answer(node: Any, parts: Sequence[str], value: str, field: str) -> None:
    """Set ``value`` at ``parts`` below ``node``; a list without an index means each item."""
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        if head.isdigit():
            if int(head) >= len(node):
                raise BadRequestError(f"the card has no field {field!r} (no item {head})")
            if rest:
                _set_answer(node[int(head)], rest, value, field)
            else:
                node[int(head)] = value
            return
        for item in node:
            # Each item that has no value yet; an item answered by its index keeps its own.
            target = item
            for part in parts[:-1]:
                target = target.get(part) if isinstance(target, dict) else None
            if isinstance(target, dict) and not target.get(parts[-1]):
                _set_answer(item, parts, value, field)
        return
    if not isinstance(node, dict) or head not in node:
        raise BadRequestError(f"the card has no field {field!r}")
    if rest:
        _set_answer(node[head], rest, value, field)
    elif head in _LIST_FIELDS:
        node[head] = [item.strip() for item in value.split(",") if item.strip()]
    else:
        node[head] = value


def _answer(document: dict[str, Any], field: str, value: str) -> None:
    parts = _card_path(document, field)
    _set_answer(document, parts, value, field)
    if parts == [_DEFAULT_BLOCK, "licence"]:
        # medigan's own search reads selection.license: keep it saying the same when it is empty.
        selection = document.get("selection")
        if isinstance(selection, dict) and not selection.get("license"):
            selection["license"] = value


def _validated(document: Mapping[str, Any]) -> Card:
    try:
        return validate_card(document)
    except CatalogError as exc:
        raise CardInvalidError(exc.message, detail=exc.detail) from exc


def card_for_hub(
    medigan_id: str,
    entry: Mapping[str, Any],
    *,
    namespace: str,
    answers: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    authors: Sequence[str] = (),
) -> tuple[Card, list[str]]:
    """The card a hub accepts for one medigan entry, and a warning per value normalised.

    The card has no artifacts (pushing adds the package). ``answers`` fill card fields first;
    fields the hub still requires are asked through ``prompt``, or raise
    :class:`CardFieldsMissingError` naming each one.
    """
    if not isinstance(entry, Mapping):
        raise CardInvalidError(f"the metadata entry {medigan_id!r} is not an object")
    try:
        card, normalised = card_from_medigan_entry(medigan_id, entry, namespace=namespace)
    except CatalogError as exc:
        raise CardInvalidError(exc.message, detail=exc.detail) from exc
    document = card.to_json()
    document["artifacts"] = []
    if authors:
        document["provenance"]["authors"] = list(authors)
    for field, value in (answers or {}).items():
        _answer(document, field, value)
    while True:
        card = _validated(document)
        problems = licence_problems(card)
        if not problems:
            return card, [str(warning) for warning in normalised]
        if prompt is None:
            raise CardFieldsMissingError(problems)
        answered = False
        for problem in problems:
            reply = prompt(problem["loc"], problem["msg"])
            if reply is not None and reply.strip():
                _answer(document, problem["loc"], reply.strip())
                answered = True
        if not answered:
            raise CardFieldsMissingError(problems)


def import_medigan_package(
    directory: Path | str,
    *,
    namespace: str,
    answers: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    model_id: str | None = None,
    force: bool = False,
) -> ImportedPackage:
    """Write ``card.json`` into a medigan package folder from its ``metadata.json``.

    ``namespace`` is where the model will be published (``alice`` gives
    ``alice/00102_MY_GAN``); ``model_id`` picks an entry when the metadata holds several. An
    existing ``card.json`` is kept unless ``force``. Nothing is written when a field is missing.
    """
    package = Path(directory)
    if not package.is_dir():
        raise NotFoundError(f"{package} is not a folder")
    if not (package / INIT_PY_FILE).is_file():
        raise NotFoundError(
            f"{package} has no {INIT_PY_FILE}: a medigan package's generate function lives there"
        )
    target = package / CARD_FILE
    if target.exists() and not force:
        raise BadRequestError(
            f"{target} exists already; pass --force (force=True) to replace it",
            detail={"reason": "card_exists", "path": str(target)},
        )
    metadata, warnings = read_metadata(package)
    medigan_id, entry = select_entry(metadata, model_id)
    card, normalised = card_for_hub(
        medigan_id, entry, namespace=namespace, answers=answers, prompt=prompt
    )
    warnings.extend(normalised)
    execution = entry.get("execution") if isinstance(entry, Mapping) else None
    if isinstance(execution, Mapping):
        weights = f"{execution.get('model_name') or ''}{execution.get('extension') or ''}"
        if weights and not (package / weights).is_file():
            warnings.append(f"the weights file {weights} named by the metadata is not in {package}")
    target.write_text(json.dumps(card.to_json(), indent=2) + "\n", encoding="utf-8")
    return ImportedPackage(medigan_id, card, target, tuple(warnings))


def hub_namespace(client: Client) -> str:
    """The namespace the hub gives the client's token (``GET /api/v1/me``), to push into."""
    from pydantic import ValidationError

    from medigan_catalog.access import AccountInfo
    from medigan_catalog.snapshot import ME_PATH

    hint = "name the namespace to publish in (namespace=..., --namespace)"
    if client.settings.offline:
        raise OfflineError(f"offline mode: asking the hub for your namespace needs it; {hint}")
    if not client.settings.token:
        raise AuthenticationRequiredError(
            f"finding your namespace on {client.settings.hub_url} needs a token "
            f"(--token or MEDIGAN_TOKEN); or {hint}"
        )
    answer = client.session.get_json(ME_PATH)
    try:
        account = AccountInfo.model_validate(answer)
    except ValidationError as exc:
        raise ServerError(f"the hub's answer to {ME_PATH} is not an account: {exc}") from exc
    if account.namespace is None:
        raise BadRequestError(
            f"the hub has no namespace for the user {account.username!r}; {hint}",
            detail={"username": account.username},
        )
    return account.namespace
