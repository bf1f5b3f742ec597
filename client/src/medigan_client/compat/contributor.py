"""medigan's ``ModelContributor``: describe a local model package and share it through the hub.

medigan uploaded a contributed package to Zenodo and filed a request on GitHub asking for its
metadata to be added to ``global.json``. With a hub, sharing is one push: the package and its
card go to the hub (:meth:`medigan_client.api.Client.push`), which validates them, has them
reviewed and publishes approved releases from its own storage, listing them in its catalogue
(it deposits nothing on Zenodo: a release has a DOI only when its card names one).
So here the medigan metadata of the model becomes a card the way ``medigan-client
import-medigan`` makes it (:func:`medigan_client.compat.importer.card_for_hub`: fields the hub
requires and medigan lacks are asked for by name), a copy of the package folder gets that card
as ``card.json``, and the copy is pushed.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medigan_catalog.errors import CatalogError
from medigan_catalog.medigan_compat import MEDIGAN_BASE_ARGUMENTS, parse_medigan_metadata
from medigan_catalog.schema import Card
from medigan_client.compat.importer import Prompt, card_for_hub
from medigan_client.errors import BadRequestError, CardInvalidError, NotFoundError

if TYPE_CHECKING:
    from medigan_client.push import PushResult

logger = logging.getLogger(__name__)

INIT_PY_FILE = "__init__.py"
METADATA_FILE = "metadata.json"
CARD_FILE = "card.json"
# medigan's rule for ids of contributed models: "00001_GANTYPE_MODALITY", 13 to 30 characters.
MODEL_ID_MIN_CHARS = 13
MODEL_ID_MAX_CHARS = 30
MODEL_ID_DIGITS = 5


def validate_model_id(model_id: str) -> None:
    """Raise :class:`BadRequestError` unless ``model_id`` follows medigan's id convention."""
    if not isinstance(model_id, str):
        raise BadRequestError(f"a model id is a string, not {type(model_id).__name__}")
    if not MODEL_ID_MIN_CHARS <= len(model_id) <= MODEL_ID_MAX_CHARS:
        raise BadRequestError(
            f"the model id {model_id!r} has {len(model_id)} characters; medigan ids have "
            f"{MODEL_ID_MIN_CHARS} to {MODEL_ID_MAX_CHARS}, e.g. '00001_GANTYPE_MODALITY'"
        )
    if not model_id[:MODEL_ID_DIGITS].isdigit():
        raise BadRequestError(
            f"the model id {model_id!r} must start with {MODEL_ID_DIGITS} digits, "
            "e.g. '00001_GANTYPE_MODALITY'"
        )


def read_metadata_file(path: Path) -> tuple[dict[str, Any], Path]:
    """Read a medigan metadata file (or ``<folder>/metadata.json``); return it and its path."""
    candidate = path if path.is_file() else path / METADATA_FILE
    if not candidate.is_file():
        raise NotFoundError(
            f"no metadata file at {path} (nor {path / METADATA_FILE}); create one with "
            "add_metadata_from_input()"
        )
    try:
        text = candidate.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise CardInvalidError(f"cannot read the metadata file {candidate}: {exc}") from exc
    # medigan's template has known JSON slips (trailing commas, an unclosed object): forgiven,
    # one warning per fix, as `medigan-client import-medigan` forgives them.
    try:
        data, repairs = parse_medigan_metadata(text)
    except CatalogError as exc:
        raise CardInvalidError(
            f"cannot read the metadata file {candidate}: {exc.message}", detail=exc.detail
        ) from exc
    for repair in repairs:
        logger.warning("%s: %s", candidate.name, repair)
    return data, candidate


class ModelContributor:
    """A local model package (the folder of its ``__init__.py``) and its medigan metadata."""

    def __init__(self, model_id: str, init_py_path: str | Path):
        validate_model_id(model_id)
        init_py = Path(init_py_path)
        if init_py.name != INIT_PY_FILE or not init_py.is_file():
            raise NotFoundError(
                f"{model_id}: {init_py_path} is not an existing {INIT_PY_FILE} file; it must be "
                "the package's __init__.py with medigan's generate function"
            )
        self.model_id = model_id
        self.init_py_path = str(init_py)
        self.package_path = str(init_py.parent.resolve())
        self.package_name = init_py.parent.resolve().name
        self.metadata_file_path = ""
        self.metadata: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"ModelContributor(model_id={self.model_id}, metadata={self.metadata})"

    def entry(self) -> dict[str, Any]:
        """The model's ``global.json`` entry; :class:`BadRequestError` before metadata is added."""
        if self.metadata is None:
            raise BadRequestError(
                f"{self.model_id}: add metadata first with add_metadata_from_file() or "
                "add_metadata_from_input()"
            )
        entry = self.metadata.get(self.model_id)
        if not isinstance(entry, dict):
            raise CardInvalidError(
                f"the metadata of {self.model_id} holds no entry keyed by {self.model_id!r}"
            )
        return entry

    def add_metadata_from_file(self, metadata_file_path: str | Path) -> dict[str, Any]:
        """Read the metadata, find the weights file, point ``package_link`` at the package."""
        metadata, path = read_metadata_file(Path(metadata_file_path))
        self.metadata = metadata
        self.metadata_file_path = str(path)
        self._point_at_weights(path.parent)
        return metadata

    def add_metadata_from_input(
        self,
        model_weights_name: str | None = None,
        model_weights_extension: str | None = None,
        generate_method_name: str | None = None,
        dependencies: Sequence[str] = (),
        fill_more_fields_interactively: bool = True,
        output_path: str | Path = "config",
        *,
        image_size: Sequence[int] | None = None,
    ) -> dict[str, Any]:
        """Build the metadata from these values and store it as ``<output_path>/<model id>.json``.

        No questions are asked on the terminal (medigan prompted for every empty field when
        ``fill_more_fields_interactively``); complete the stored file and use
        :meth:`add_metadata_from_file` to add selection and description details.
        """
        if fill_more_fields_interactively:
            logger.info(
                "%s: fields are not filled interactively; edit %s/%s.json to add more",
                self.model_id,
                output_path,
                self.model_id,
            )
        entry: dict[str, Any] = {
            "execution": {
                "package_name": self.package_name,
                "package_link": self.package_path,
                "model_name": model_weights_name,
                "extension": model_weights_extension,
                "image_size": list(image_size) if image_size else [],
                "dependencies": list(dependencies or []),
                "generate_method": {
                    "name": generate_method_name or "generate",
                    "args": {"base": list(MEDIGAN_BASE_ARGUMENTS), "custom": {}},
                },
            },
            "selection": {},
            "description": {},
        }
        self.metadata = {self.model_id: entry}
        folder = Path(output_path)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{self.model_id}.json"
        target.write_text(json.dumps(self.metadata, indent=4), encoding="utf-8")
        self.metadata_file_path = str(target)
        self._point_at_weights(folder)
        return self.metadata

    def _point_at_weights(self, metadata_dir: Path) -> None:
        """Find ``<model_name><extension>`` in the package (or beside the metadata file)."""
        execution = self.entry().get("execution")
        if not isinstance(execution, dict):
            raise CardInvalidError(f"the metadata of {self.model_id} has no execution block")
        weights = f"{execution.get('model_name') or ''}{execution.get('extension') or ''}"
        candidates = [Path(self.package_path) / weights, metadata_dir / weights]
        for candidate in candidates:
            if weights and candidate.is_file():
                execution["package_link"] = str(candidate.parent.resolve())
                return
        raise NotFoundError(
            f"{self.model_id}: no weights file {weights!r} in {candidates[0].parent} or "
            f"{candidates[1].parent}"
        )

    def card(
        self,
        namespace: str,
        *,
        creator_name: str = "",
        model_description: str = "",
        answers: Mapping[str, str] | None = None,
        prompt: Prompt | None = None,
    ) -> Card:
        """The model's card in ``namespace`` as the hub requires it, without artifacts.

        A ``card.json`` that ``medigan-client import-medigan`` already wrote into the package
        folder for this model and namespace is used as it is (its answers were given then).
        Otherwise the card is built by :func:`medigan_client.compat.importer.card_for_hub`, as
        ``import-medigan`` builds it: fields the hub requires and the metadata lacks come from
        ``answers`` or ``prompt``, or raise
        :class:`~medigan_client.compat.importer.CardFieldsMissingError` naming them.
        """
        imported = self._imported_card(namespace)
        if imported is not None:
            return imported
        entry = json.loads(json.dumps(self.entry()))
        description = entry.setdefault("description", {})
        if model_description and isinstance(description, dict):
            description.setdefault("comment", model_description)
        authors = (creator_name,) if creator_name not in {"unknown name", ""} else ()
        card, warnings = card_for_hub(
            self.model_id,
            entry,
            namespace=namespace,
            answers=answers,
            prompt=prompt,
            authors=authors,
        )
        for warning in warnings:
            logger.warning("%s", warning)
        return card

    def _imported_card(self, namespace: str) -> Card | None:
        """The package folder's ``card.json`` when it describes this model in ``namespace``."""
        path = Path(self.package_path) / CARD_FILE
        if not path.is_file():
            return None
        try:
            card = Card.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise CardInvalidError(f"{path} is not a valid card: {exc}") from exc
        if card.model_id != f"{namespace}/{self.model_id}":
            logger.warning(
                "%s describes %s, not %s/%s; building the card from the metadata instead",
                path,
                card.model_id,
                namespace,
                self.model_id,
            )
            return None
        logger.info("%s: using the card import-medigan wrote, %s", self.model_id, path)
        return card

    def package_for_push(self, card: Card, destination: Path) -> Path:
        """Copy the package folder to ``destination`` and write ``card.json`` into the copy."""
        source = Path(self.package_path)
        target = destination / source.name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (target / CARD_FILE).write_text(json.dumps(card.to_json(), indent=2), encoding="utf-8")
        return target


def push_contribution(
    contributor: ModelContributor, card: Card, push: Callable[[Path], PushResult]
) -> str | None:
    """Push a copy of the contributor's package with ``card`` through ``push(dir)``; its URL."""
    with tempfile.TemporaryDirectory(prefix="medigan-contribute-") as scratch:
        package = contributor.package_for_push(card, Path(scratch))
        result = push(package)
    return result.release_url


def local_package_dir(entry: Mapping[str, Any]) -> Path | None:
    """The local folder an entry's ``execution.package_link`` names, or ``None`` (a URL)."""
    execution = entry.get("execution")
    link = execution.get("package_link") if isinstance(execution, dict) else None
    if not isinstance(link, str) or not link or "://" in link:
        return None
    path = Path(link).expanduser()
    return path if path.is_dir() else None
