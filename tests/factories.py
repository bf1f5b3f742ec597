"""Factories for the server tests: model packages, archives, users and tokens.

Packages written here are real v2 packages (numpy only, so they import fast in the sandbox) with
valid cards; tests change one thing at a time through the keyword arguments.
"""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap
import zipfile
from pathlib import Path
from typing import Any

from medigan_catalog.packaging import build_deterministic_zip

NOISE_GENERATOR = """
    '''A test generative model: seeded noise images with a brightness offset.'''

    import numpy as np


    def generate(num_samples, *, seed, device="cpu", brightness=0):
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 128, size=(num_samples, 16, 16), dtype=np.int64) + brightness
        return images.clip(0, 255).astype(np.uint8)
"""


def card_data(
    *, model_id: str = "alice/noise-16", version: str = "1.0.0", **overrides: Any
) -> dict[str, Any]:
    """A valid v2 card for the noise package; ``overrides`` replace top-level fields."""
    card: dict[str, Any] = {
        "schema_version": "1.0",
        "model_id": model_id,
        "version": version,
        "runtime": {
            "kind": "v2",
            "entry_point": "generate",
            "python_requires": ">=3.11",
            "dependencies": ["numpy>=1.26"],
        },
        "generation_arguments": [
            {
                "name": "brightness",
                "type": "int",
                "default": 0,
                "minimum": 0,
                "maximum": 127,
                "help": "added to every pixel",
            }
        ],
        "output": {
            "height": 16,
            "width": 16,
            "depth": None,
            "channels": 1,
            "dtype": "uint8",
            "value_range": [0, 255],
        },
        "artifacts": [],
        "provenance": {
            "authors": ["test suite"],
            "licence": "MIT",
            "dois": [],
            "training_data": [
                {"name": "none (procedural noise)", "licence": "CC0-1.0", "image_count": 0}
            ],
        },
        "selection": {
            "modality": ["test noise"],
            "organ": ["none"],
            "type": "NOISE",
            "tags": ["test"],
        },
        "description": {"title": f"Noise test model {model_id}", "version": version},
    }
    card.update(overrides)
    return card


def package_dir(
    root: Path,
    *,
    generator_source: str = NOISE_GENERATOR,
    **card_kwargs: Any,
) -> Path:
    """Write a package directory (card.json and __init__.py) under ``root`` and return it."""
    directory = root / "package"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "__init__.py").write_text(textwrap.dedent(generator_source), encoding="utf-8")
    (directory / "card.json").write_text(
        json.dumps(card_data(**card_kwargs), indent=2), encoding="utf-8"
    )
    return directory


def package_zip(root: Path, **kwargs: Any) -> tuple[Path, str, dict[str, Any]]:
    """Build a package's deterministic zip; return (zip path, sha256, card)."""
    directory = package_dir(root, **kwargs)
    archive = root / "package.zip"
    info = build_deterministic_zip(directory, archive)
    card = json.loads((directory / "card.json").read_text(encoding="utf-8"))
    return archive, info.sha256, card


def evil_zip(root: Path) -> Path:
    """A zip that tries to write outside its folder (``../evil``) beside a valid package."""
    archive = root / "evil.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("__init__.py", textwrap.dedent(NOISE_GENERATOR))
        handle.writestr("../evil", "overwrite something")
    return archive


def user(username: str, *, reviewer: bool = False, staff: bool = False) -> Any:
    """A user, optionally in the reviewer group or staff."""
    from hub.accounts.services import user_get_or_create

    return user_get_or_create(
        username=username, password="test-password", is_staff=staff or reviewer, reviewer=reviewer
    )


def token(
    for_user: Any,
    *,
    scopes: tuple[str, ...] = ("read", "push", "review", "admin"),
    namespace: str | None = None,
    expires_in_days: int | None = 90,
) -> str:
    """A fresh API token key for ``for_user``: every scope unless told otherwise."""
    from hub.accounts.services import api_token_create

    _, raw_key = api_token_create(
        user=for_user,
        name="test",
        scopes=scopes,
        namespace=namespace,
        expires_in_days=expires_in_days,
    )
    return raw_key


def png_bytes(*, size: int = 8) -> bytes:
    """A small grey PNG, as a sample grid would be."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (size, size), color=128).save(buffer, format="PNG")
    return buffer.getvalue()


def release_row(
    *,
    submitter: Any,
    model_id: str = "alice/noise-16",
    version: str = "1.0.0",
    state: str = "published",
    grid: bool = True,
    package: bytes | None = None,
    **card_overrides: Any,
) -> Any:
    """A release stored directly in ``state``, with a sample grid and optionally a package.

    ``card_overrides`` replace top-level fields of its card (:func:`card_data`).

    For tests of reads (visibility, downloads, grids) that need a release in a given state without
    running a push and its validation.
    """
    import hashlib

    from django.core.files.base import ContentFile
    from django.utils import timezone

    from hub.registry.models import Artifact, GenerativeModel, Release

    namespace, name = model_id.split("/", 1)
    generative_model, _ = GenerativeModel.objects.get_or_create(
        namespace=namespace, name=name, defaults={"owner": submitter}
    )
    release = Release.objects.create(
        generative_model=generative_model,
        version=version,
        state=state,
        card=card_data(model_id=model_id, version=version, **card_overrides),
        submitted_by=submitter,
        published_at=timezone.now() if state in {"published", "deprecated", "yanked"} else None,
    )
    if grid:
        release.sample_grid.save(f"{name}-{version}.png", ContentFile(png_bytes()))
    if package is not None:
        filename = f"{name}-{version}.zip"
        artifact = Artifact(
            release=release,
            role="package",
            filename=filename,
            sha256=hashlib.sha256(package).hexdigest(),
            size=len(package),
        )
        artifact.file.save(f"{namespace}/{name}/{version}/{filename}", ContentFile(package))
    return release


def reference_set_row(slug: str = "noise") -> Any:
    """A reference set row of ten 16x16 grey images, for tests that only need it to exist."""
    from hub.evaluations.models import ReferenceSet

    return ReferenceSet.objects.create(
        slug=slug,
        title=slug,
        modality="test noise",
        split="test",
        licence="CC0-1.0",
        image_count=10,
        height=16,
        width=16,
        channels=1,
        images=f"references/{slug}.npz",
        images_sha256="0" * 64,
    )


def evaluation_row(release: Any, *, fid_rs: float, reference_set: Any = None, seed: int = 0) -> Any:
    """A finished evaluation of ``release`` with the ``medical-cnn`` extractor, for reads."""
    from django.utils import timezone

    from hub.evaluations.models import Evaluation, ReferenceSet

    if reference_set is None:
        reference_set = ReferenceSet.objects.filter(slug="noise").first() or reference_set_row()
    return Evaluation.objects.create(
        release=release,
        reference_set=reference_set,
        extractor_id="medical-cnn",
        preprocess_key="default",
        num_samples=1000,
        seed=seed,
        status=Evaluation.Status.SUCCEEDED,
        fid_rs=fid_rs,
        fid_rr_mean=fid_rs / 4,
        provenance={},
        finished_at=timezone.now(),
    )


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def dep_wheel(directory: Path, *, version: str = "1.0") -> Path:
    """A pure-Python wheel of ``medigan-test-dep`` (``VALUE = 42``), written as a zip."""
    dist_info = f"medigan_test_dep-{version}.dist-info"
    members = {
        "medigan_test_dep/__init__.py": b"VALUE = 42\n",
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: medigan-test-dep\nVersion: {version}\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: medigan-hub-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in members.items()]
    members[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"medigan_test_dep-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    return wheel
