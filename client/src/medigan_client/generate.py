"""Generate images with a release: resolve it offline, run it in batches, save PNGs and a manifest.

Seeding: batch ``k`` starts at sample index ``start = k * batch_size`` and is generated with the
seed ``batch_seed(seed, start)``, a hash of the user's seed and that index. The same model
release, seed, batch size, arguments and device therefore give the same images, and two runs
with different seeds never share a batch seed. Images do depend on the batch size (a package
draws a whole batch from one seed); the manifest records ``batch_seed``, ``batch_start`` and
``batch_size`` next to each image so any image can be made again on its own.

Output: ``<index:06d>.png`` per image (mode ``L`` for one channel, ``RGB``/``RGBA`` for three or
four, 16-bit grey for ``uint16``; ``float32`` samples are scaled from the card's ``value_range``
to 8 bits; volumes are written as ``<index:06d>.npy``) and ``manifest.jsonl`` with one line per
image: ``{file, model, version, package_sha256, seed, index, batch_seed, batch_start,
batch_size}``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm  # type: ignore[import-untyped]

from medigan_catalog.errors import CatalogError
from medigan_catalog.schema import Card
from medigan_catalog.validation import check_generation_output, resolve_generation_arguments
from medigan_client.download import cached_sha256, download_release, ensure_package
from medigan_client.download import package_artifact as _package_artifact
from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.http import HubSession
from medigan_client.runtime.loader import load_package, resolve_device
from medigan_client.settings import ClientSettings
from medigan_client.sync import Snapshot, find_release, has_snapshot, load_snapshot, sync

MANIFEST_NAME = "manifest.jsonl"


@dataclass(frozen=True)
class GenerationResult:
    """What :func:`generate` wrote: the image files in index order and the manifest."""

    model_id: str
    version: str
    package_sha256: str
    seed: int
    device: str
    files: list[Path] = field(default_factory=list)
    manifest_path: Path = Path(MANIFEST_NAME)


def batch_seed(seed: int, start_index: int) -> int:
    """The seed of the batch starting at ``start_index``: stable, 31-bit, distinct per batch."""
    digest = hashlib.sha256(f"medigan-client:{seed}:{start_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def current_snapshot(settings: ClientSettings, *, session: HubSession | None = None) -> Snapshot:
    """The cached catalogue; synced once first when nothing is cached and the client is online."""
    if not has_snapshot(settings) and not settings.offline:
        sync(settings, session=session)
    return load_snapshot(settings)


def resolve_arguments(card: Card, given: Mapping[str, object] | None) -> dict[str, object]:
    """The card's generation arguments, typed and defaulted, as the package receives them."""
    try:
        return dict(resolve_generation_arguments(card, dict(given or {})))
    except CatalogError as exc:
        raise BadRequestError(exc.message, detail=exc.detail) from exc


def check_samples(card: Card, samples: np.ndarray, num_samples: int) -> None:
    """Raise :class:`GenerationFailedError` when samples break the card's ``output`` promise."""
    if samples.size == 0:
        problems = [f"the package returned no values (shape {samples.shape})"]
    else:
        problems = check_generation_output(
            card,
            shape=tuple(int(n) for n in samples.shape),
            dtype=str(samples.dtype),
            minimum=float(np.min(samples)),
            maximum=float(np.max(samples)),
            num_samples=num_samples,
        )
    if problems:
        raise GenerationFailedError(
            f"{card.release_id} produced output that does not match its card: "
            + "; ".join(problems),
            detail={"problems": problems},
        )


def _to_image(sample: np.ndarray, card: Card) -> np.ndarray | None:
    """The sample as an 8/16-bit image array, or None when it is not a 2-D image (a volume)."""
    image = sample
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (3, 4))):
        return None
    if image.dtype == np.uint8 or (image.dtype == np.uint16 and image.ndim == 2):
        return image
    low, high = card.output.value_range
    scaled = (np.asarray(image, dtype=np.float64) - low) / (high - low)
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def save_sample(sample: np.ndarray, card: Card, path_stem: Path) -> Path:
    """Write one sample next to ``path_stem`` as PNG (or ``.npy`` for volumes); return the file."""
    from PIL import Image

    image = _to_image(sample, card)
    if image is None:
        target = path_stem.with_suffix(".npy")
        with target.open("wb") as handle:
            np.save(handle, np.ascontiguousarray(sample), allow_pickle=False)
        return target
    target = path_stem.with_suffix(".png")
    Image.fromarray(np.ascontiguousarray(image)).save(target, format="PNG")
    return target


def generate(
    settings: ClientSettings,
    model: str,
    num_samples: int,
    output_dir: Path,
    *,
    seed: int = 0,
    batch_size: int = 16,
    device: str = "auto",
    args: Mapping[str, object] | None = None,
    progress: bool = True,
    session: HubSession | None = None,
) -> GenerationResult:
    """Generate ``num_samples`` images of ``model`` (``ns/name`` or ``ns/name@version``).

    The release is resolved in the cached catalogue (synced first only if none is cached), the
    package is downloaded and extracted once, arguments are typed and defaulted from the card,
    and the package runs in this process in batches of ``batch_size``; each batch is checked
    against the card's ``output`` before it is written. Works offline once the release is cached.
    """
    if num_samples < 1:
        raise BadRequestError(f"num_samples must be at least 1, not {num_samples}")
    if batch_size < 1:
        raise BadRequestError(f"batch_size must be at least 1, not {batch_size}")
    card = find_release(current_snapshot(settings, session=session), model)
    resolved = resolve_arguments(card, args)
    package_dir = ensure_package(settings, card, session=session, progress=progress)
    archive = download_release(settings, card, session=session, progress=progress)
    package_sha256 = cached_sha256(archive, _package_artifact(card)) or ""
    # After the download, so that a missing package is reported before torch is imported.
    chosen_device = resolve_device(device)
    loaded = load_package(package_dir, card)

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = output_dir / MANIFEST_NAME
    files: list[Path] = []
    with (
        manifest_path.open("w", encoding="utf-8") as manifest,
        tqdm(
            total=num_samples,
            unit="img",
            desc=card.release_id,
            file=sys.stderr,
            disable=not progress,
        ) as bar,
    ):
        for start in range(0, num_samples, batch_size):
            count = min(batch_size, num_samples - start)
            this_seed = batch_seed(seed, start)
            samples = loaded.generate_batch(
                count, seed=this_seed, device=chosen_device, args=resolved
            )
            check_samples(card, samples, count)
            for offset in range(count):
                index = start + offset
                written = save_sample(samples[offset], card, output_dir / f"{index:06d}")
                files.append(written)
                record = {
                    "file": written.name,
                    "model": card.model_id,
                    "version": card.version,
                    "package_sha256": package_sha256,
                    "seed": seed,
                    "index": index,
                    "batch_seed": this_seed,
                    "batch_start": start,
                    "batch_size": batch_size,
                }
                manifest.write(json.dumps(record) + "\n")
            manifest.flush()
            bar.update(count)
    return GenerationResult(
        model_id=card.model_id,
        version=card.version,
        package_sha256=package_sha256,
        seed=seed,
        device=chosen_device,
        files=files,
        manifest_path=manifest_path,
    )
