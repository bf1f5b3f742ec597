"""Fixtures of the medigan-compatibility tests: medigan's catalogue and medigan-style packages.

``medigan_hub`` publishes medigan's real ``global.json`` (the copy vendored with the hub) on the
fake hub, imported into cards the way the hub imports it. ``publish_legacy`` writes, zips and
publishes a package written in medigan's documented template (``generate(model_file,
num_samples, output_path, save_images, **custom)`` in ``__init__.py`` beside a weights file),
described by a medigan ``global.json`` entry. ``make_generators`` builds ``Generators`` on the
fake hub, with progress bars off. ``account_hub`` is the fake hub answering ``GET /api/v1/me``
as the hub does for its token's user ``alice``.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_catalog.medigan_compat import card_from_medigan_entry, load_global_json
from medigan_catalog.snapshot import ME_PATH
from medigan_client.compat import Generators, ModelMatchCandidate
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from conftest import FakeHub, ZipPackage

REPO_ROOT = Path(__file__).resolve().parents[3]
MEDIGAN_GLOBAL_JSON = REPO_ROOT / "hub" / "registry" / "seed" / "medigan-global.json"
PINNED_RESULTS = Path(__file__).parent / "data" / "medigan-1.0.0-search-results.json"

IMAGES_MODEL = "00901_TEST_NOISE_IMAGES"
MASKS_MODEL = "00902_TEST_NOISE_W_MASKS"
IMAGE_SIZE = 16

# medigan's template: weights beside __init__.py, generate() returns a list of HxWx1 uint8
# arrays, or saves them as PNG files into output_path when save_images is True. It refuses
# zero samples, which medigan asked for when num_samples was a multiple of the batch size.
IMAGES_INIT = '''
"""A medigan-style test model: noise images around a brightness, returned or saved."""
import os

import numpy as np
from PIL import Image


def _offset(model_file):
    with open(model_file) as handle:
        return int(handle.read().strip())


def generate(model_file, num_samples, output_path, save_images: bool, brightness=100):
    if num_samples < 1:
        raise ValueError(f"asked for {num_samples} samples")
    offset = _offset(model_file)
    images = []
    for _ in range(num_samples):
        noise = np.random.randint(0, 20, size=(SIZE, SIZE, 1))
        images.append(np.clip(noise + brightness + offset, 0, 255).astype("uint8"))
    if save_images:
        os.makedirs(output_path, exist_ok=True)
        for index, image in enumerate(images):
            Image.fromarray(image[..., 0]).save(os.path.join(output_path, f"{index}.png"))
        return None
    return images
'''

# The same, returning one (image, mask) tuple per sample (or saving image and mask files).
MASKS_INIT = '''
"""A medigan-style test model returning (image, mask) pairs, or saving both."""
import os

import numpy as np
from PIL import Image


def generate(model_file, num_samples, output_path, save_images: bool, brightness=100):
    if num_samples < 1:
        raise ValueError(f"asked for {num_samples} samples")
    pairs = []
    for _ in range(num_samples):
        image = np.random.randint(brightness, brightness + 20, size=(SIZE, SIZE, 1))
        mask = np.zeros((SIZE, SIZE, 1), dtype="uint8")
        mask[4:12, 4:12] = 255
        pairs.append((image.astype("uint8"), mask))
    if save_images:
        os.makedirs(output_path, exist_ok=True)
        for index, (image, mask) in enumerate(pairs):
            Image.fromarray(image[..., 0]).save(os.path.join(output_path, f"{index}.png"))
            Image.fromarray(mask[..., 0]).save(os.path.join(output_path, f"{index}_mask.png"))
        return None
    return pairs
'''


def medigan_entry(
    package_name: str,
    *,
    custom: dict[str, Any] | None = None,
    selection: dict[str, Any] | None = None,
    title: str = "A medigan-style test model",
) -> dict[str, Any]:
    """A ``global.json`` entry for a test package (weights file ``weights.pt``)."""
    return {
        "execution": {
            "package_name": package_name,
            "package_link": f"https://example.invalid/{package_name}.zip",
            "model_name": "weights",
            "extension": ".pt",
            "image_size": [IMAGE_SIZE, IMAGE_SIZE],
            "dependencies": ["numpy", "Pillow"],
            "generate_method": {
                "name": "generate",
                "args": {
                    "base": ["model_file", "num_samples", "output_path", "save_images"],
                    "custom": {"brightness": 100} if custom is None else custom,
                },
            },
        },
        "selection": {
            "performance": {"SSIM": None, "FID": 42.0},
            "modality": ["test modality"],
            "type": "DCGAN",
            "tags": ["medigan-compat-test"],
            **(selection or {}),
        },
        "description": {"title": title, "version": "1.0.0"},
    }


def write_medigan_package(directory: Path, init_source: str, weights: str = "3") -> Path:
    """Write a package in medigan's template: ``__init__.py`` and the weights file."""
    directory.mkdir(parents=True, exist_ok=True)
    source = textwrap.dedent(init_source).replace("SIZE", str(IMAGE_SIZE))
    (directory / "__init__.py").write_text(source, encoding="utf-8")
    (directory / "weights.pt").write_text(weights + "\n", encoding="utf-8")
    return directory


def candidate_shape(candidate: ModelMatchCandidate | Any) -> dict[str, Any]:
    """A search result (ours or medigan's ``ModelMatchCandidate``) as plain JSON values."""
    return {
        "model_id": candidate.model_id,
        "is_match": candidate.is_match,
        "target_values": [str(value) for value in candidate.target_values],
        "target_values_operator": candidate.target_values_operator,
        "are_keys_also_matched": candidate.are_keys_also_matched,
        "is_case_sensitive": candidate.is_case_sensitive,
        "matched_entries": [
            [entry.key, entry.value, entry.matching_element] for entry in candidate.matched_entries
        ],
    }


def result_shape(method: str, result: Any) -> Any:
    """What a call returned, as JSON values, so medigan's and ours compare with ``==``."""
    if method == "find_matching_models_by_values":
        return [candidate_shape(candidate) for candidate in result]
    return json.loads(json.dumps(result))


@pytest.fixture
def medigan_global_json() -> dict[str, Any]:
    """medigan's ``global.json`` (the copy vendored with the hub), in its key order."""
    data: dict[str, Any] = json.loads(MEDIGAN_GLOBAL_JSON.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def medigan_hub(hub: FakeHub) -> FakeHub:
    """The fake hub serving medigan's whole catalogue as imported cards, in medigan's order."""
    for card in load_global_json(MEDIGAN_GLOBAL_JSON).cards:
        hub.state.releases.append(
            {
                "model_id": card.model_id,
                "version": card.version,
                "published_at": "2025-01-01T00:00:00+00:00",
                "card": card.to_json(),
            }
        )
    hub.state.serial += 1
    return hub


ACCOUNT = {"username": "alice", "namespace": "alice", "reserved_namespaces": ["medigan", "zoo"]}


@pytest.fixture
def account_hub(hub: FakeHub) -> FakeHub:
    """The fake hub, also answering ``GET /api/v1/me`` (:data:`ACCOUNT`) for its token."""
    base: Any = hub.server.RequestHandlerClass

    class AccountHandler(base):  # type: ignore[misc,valid-type]
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            if self.path != ME_PATH:
                super().do_GET()
                return
            self._record()
            if not self._authorised():
                self._error(401, "authentication_required", "a token is required")
                return
            self._json(200, ACCOUNT)

    hub.server.RequestHandlerClass = AccountHandler
    return hub


PublishLegacy = Callable[..., dict[str, Any]]


@pytest.fixture
def publish_legacy(hub: FakeHub, tmp_path: Path, zip_package: ZipPackage) -> PublishLegacy:
    """``publish_legacy(medigan_id, init_source, **entry_options)``: a medigan package on the hub.

    The card is imported from the package's ``global.json`` entry into namespace ``medigan``,
    so the model is known by its medigan id; returns the published card.
    """

    def run(medigan_id: str, init_source: str, **entry_options: Any) -> dict[str, Any]:
        entry = medigan_entry(medigan_id, **entry_options)
        card, _ = card_from_medigan_entry(medigan_id, entry)
        package = write_medigan_package(tmp_path / "packages" / medigan_id, init_source)
        archive = zip_package(package, tmp_path / "dist" / f"{medigan_id}.zip")
        return hub.publish(card.to_json(), archive)

    return run


@pytest.fixture
def images_model(publish_legacy: PublishLegacy) -> str:
    """The medigan-style package returning images, published; its medigan id."""
    publish_legacy(IMAGES_MODEL, IMAGES_INIT)
    return IMAGES_MODEL


@pytest.fixture
def masks_model(publish_legacy: PublishLegacy) -> str:
    """The medigan-style package returning (image, mask) pairs, published; its medigan id."""
    publish_legacy(
        MASKS_MODEL,
        MASKS_INIT,
        selection={"type": "PGGAN", "performance": {"FID": 7.5}},
        title="A medigan-style test model with masks",
    )
    return MASKS_MODEL


MakeGenerators = Callable[..., Generators]


@pytest.fixture
def make_generators(settings: ClientSettings) -> Iterator[MakeGenerators]:
    """``make_generators(**options)``: ``Generators`` on the fake hub; closed after the test."""
    made: list[Generators] = []

    def run(**options: Any) -> Generators:
        options.setdefault("progress", False)
        generators = Generators(settings=settings, **options)
        made.append(generators)
        return generators

    yield run
    for generators in made:
        generators.close()


@pytest.fixture
def shape_result() -> Callable[[str, Any], Any]:
    """``shape_result(method, result)``: a result as JSON values (see :func:`result_shape`)."""
    return result_shape


@pytest.fixture
def pinned_results() -> dict[str, Any]:
    """The search and rank calls and the results medigan 1.0.0 gave for them (recorded)."""
    data: dict[str, Any] = json.loads(PINNED_RESULTS.read_text(encoding="utf-8"))
    return data
