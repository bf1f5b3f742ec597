"""The named checks that validation runs on a submitted release, each reported on its own.

Checks run in order; when one fails, the checks that depend on it are reported as skipped rather
than run on bad input. The package is only ever imported inside the sandbox
(:mod:`hub.sandbox`). Every message is for the contributor: a failure of the package reads in
its own terms (the short form of :mod:`medigan_client.runtime.failures`: the exception, the
package's frames, paths relative to the package), what the package printed is quoted as its own
output, and no message carries the hub's paths or secrets. The full traceback goes to the
worker's log and to the check's staff-only ``detail``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from PIL import Image

from hub.registry.models import Artifact, Release
from hub.sandbox import redact, sandbox_generate
from hub.storage import stored_open
from medigan_catalog.errors import CatalogError
from medigan_catalog.packaging import ArchiveLimits, safe_extract
from medigan_catalog.schema import Card
from medigan_catalog.validation import check_generation_output, licence_problems, validate_card
from medigan_client.errors import MediganClientError, SandboxUnavailableError

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
logger = logging.getLogger(__name__)
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one named check; ``grid_png`` carries the reviewers' sample grid.

    ``message`` is for the contributor (a failed package's short form); ``detail``, for staff
    only, holds what is behind it (the full traceback).
    """

    name: str
    status: str
    message: str
    duration_seconds: float
    grid_png: bytes | None = None
    detail: str = ""


class CheckFailedError(Exception):
    """Raised inside a check to fail it with a message meant for the contributor.

    ``detail`` is what staff may need beyond the message (a failed package's full traceback).
    """

    def __init__(self, message: str, *, detail: str = ""):
        super().__init__(message)
        self.detail = detail


@dataclass
class _Context:
    release: Release
    work_dir: Path
    card: Card | None = None
    package_file: Path | None = None
    package_dir: Path | None = None
    samples: np.ndarray[Any, Any] | None = None


def run_checks(release: Release, *, work_dir: Path) -> Iterator[CheckOutcome]:
    """Run every check on ``release`` in order and yield each outcome as soon as it is known."""
    context = _Context(release=release, work_dir=work_dir)
    checks: list[tuple[str, Callable[[_Context], str], str | None]] = [
        ("card_schema", _check_card_schema, None),
        ("licence", _check_licence, "card_schema"),
        ("artifact_integrity", _check_artifact_integrity, "card_schema"),
        ("safe_unpacking", _check_safe_unpacking, "artifact_integrity"),
        ("smoke_generation", _check_smoke_generation, "safe_unpacking"),
        ("output_contract", _check_output_contract, "smoke_generation"),
    ]
    failed: set[str] = set()
    for name, check, depends_on in checks:
        if depends_on is not None and (depends_on in failed):
            failed.add(name)
            yield CheckOutcome(name, SKIPPED, f"skipped because {depends_on} failed", 0.0)
            continue
        started = time.monotonic()
        try:
            message = check(context)
        except CheckFailedError as error:
            failed.add(name)
            message = redact(str(error))
            detail = redact(error.detail)
            # The worker's log keeps the whole story; the check and its audit event, the gist.
            logger.warning(
                "validation of %s: check %s failed: %s%s",
                release.release_id,
                name,
                message,
                f"\n{detail}" if detail else "",
            )
            yield CheckOutcome(name, FAILED, message, time.monotonic() - started, detail=detail)
        else:
            yield CheckOutcome(name, PASSED, redact(message), time.monotonic() - started)
    if context.samples is not None and "output_contract" not in failed:
        started = time.monotonic()
        png = sample_grid_png(context.samples)
        yield CheckOutcome(
            "sample_grid",
            PASSED,
            f"grid of {min(len(context.samples), 16)} samples for reviewers",
            time.monotonic() - started,
            grid_png=png,
        )


def _check_card_schema(context: _Context) -> str:
    try:
        context.card = validate_card(context.release.card)
    except CatalogError as error:
        raise CheckFailedError(f"{error.message}: {error.detail}") from error
    return f"card of {context.card.release_id} is valid (schema {context.card.schema_version})"


def _check_licence(context: _Context) -> str:
    assert context.card is not None
    provenance = context.card.provenance
    problems = licence_problems(context.card)
    if problems:
        raise CheckFailedError("; ".join(f"{p['msg']} ({p['loc']})" for p in problems))
    return f"model licence {provenance.licence}; {len(provenance.training_data)} data set(s)"


def _check_artifact_integrity(context: _Context) -> str:
    assert context.card is not None
    artifact = context.release.artifacts.filter(role="package").first()
    if artifact is None or not artifact.file:
        raise CheckFailedError("the release has no stored package artifact")
    described = context.card.package_artifact
    destination = context.work_dir / artifact.filename
    digest, size = _copy_and_hash(artifact, destination)
    expected = {
        "stored record": (artifact.sha256, artifact.size),
        "card": (described.sha256, described.size) if described else (None, None),
    }
    if artifact.declared_sha256:
        expected["uploader's declaration"] = (artifact.declared_sha256, size)
    for source, (want_sha, want_size) in expected.items():
        if want_sha != digest or want_size != size:
            raise CheckFailedError(
                f"package {artifact.filename}: sha256 {digest} and size {size} differ from the "
                f"{source} (sha256 {want_sha}, size {want_size})"
            )
    context.package_file = destination
    return f"{artifact.filename}: {size} bytes, sha256 {digest}"


def _copy_and_hash(artifact: Artifact, destination: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    # Streamed out of storage: on S3 the object's body is read as it arrives, never held whole.
    with (
        stored_open(artifact.file.storage, str(artifact.file.name)) as source,
        destination.open("wb") as target,
    ):
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            target.write(chunk)
    return digest.hexdigest(), size


def _check_safe_unpacking(context: _Context) -> str:
    assert context.package_file is not None
    destination = context.work_dir / "package"
    try:
        members = safe_extract(context.package_file, destination, ArchiveLimits())
    except CatalogError as error:
        shutil.rmtree(destination, ignore_errors=True)
        raise CheckFailedError(error.message) from error
    if not (destination / "__init__.py").is_file():
        raise CheckFailedError("the package has no __init__.py at the root of its zip")
    context.package_dir = destination
    return f"{len(members)} members unpacked safely"


def _check_smoke_generation(context: _Context) -> str:
    assert context.card is not None and context.package_dir is not None
    count = int(settings.MEDIGAN_SMOKE_SAMPLES)
    started = time.monotonic()
    try:
        result = sandbox_generate(
            context.package_dir,
            context.card,
            count,
            seed=0,
            device="cpu",
            args=None,
            wall_seconds=float(settings.MEDIGAN_SMOKE_TIMEOUT_SECONDS),
        )
    except SandboxUnavailableError as error:
        # The operator's problem, not the contributor's: said plainly, and the code never ran.
        raise CheckFailedError(
            "the hub could not isolate contributed code, so the package was not run "
            f"(operators: see docs/security.md): {error.message}"
        ) from error
    except MediganClientError as error:
        # The message is the failure's short form (the package's frames, its own paths); the
        # full traceback is for staff.
        raise CheckFailedError(error.message, detail=error.traceback or "") from error
    context.samples = result.samples
    samples = result.samples
    return (
        f"imported the package and generated {count} samples {tuple(samples.shape)} "
        f"{samples.dtype} in {time.monotonic() - started:.1f} s in the sandbox "
        f"({result.isolation})"
    )


def _check_output_contract(context: _Context) -> str:
    assert context.card is not None and context.samples is not None
    samples = context.samples
    minimum = float(samples.min()) if samples.size else math.nan
    maximum = float(samples.max()) if samples.size else math.nan
    problems = check_generation_output(
        context.card,
        shape=tuple(int(n) for n in samples.shape),
        dtype=str(samples.dtype),
        minimum=minimum,
        maximum=maximum,
        num_samples=int(settings.MEDIGAN_SMOKE_SAMPLES),
    )
    if problems:
        raise CheckFailedError("; ".join(problems))
    return f"shape {tuple(samples.shape)}, dtype {samples.dtype}, values in [{minimum}, {maximum}]"


def sample_grid_png(samples: np.ndarray[Any, Any], *, columns: int = 4, limit: int = 16) -> bytes:
    """Tile up to ``limit`` samples into one PNG so reviewers can see what the model makes."""
    images = samples[:limit]
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.dtype != np.uint8:
        low, high = float(images.min()), float(images.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        images = ((images.astype(np.float64) - low) * scale).round().astype(np.uint8)
    count = len(images)
    rows = math.ceil(count / columns)
    height, width = images.shape[1], images.shape[2]
    channels = images.shape[3] if images.ndim == 4 else None
    shape = (rows * height, columns * width) + ((channels,) if channels else ())
    canvas = np.zeros(shape, dtype=np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        canvas[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()
