"""``manage.py reference_sets_load``: the demo's reference sets, the held-out splits of shared/data.

Which sets exist (slugs, files, splits, match terms, attribution) is
``evaluation.references.REFERENCE_SETS``, shared with the zoo's table; this command stores them.
Idempotent. Each set keeps the attribution and licence of its data set. Without the data folder
the command says so and loads nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from evaluation.references import REFERENCE_SETS, busi_heldout_mask
from hub.evaluations.services import reference_set_create


def default_shared_dir() -> Path:
    """``MEDIGAN_SHARED_DIR``, else the ``shared`` folder beside the repository."""
    return Path(os.environ.get("MEDIGAN_SHARED_DIR", Path(settings.BASE_DIR).parent / "shared"))


def _split_images(path: Path, split: str) -> tuple[np.ndarray[Any, Any], list[str]]:
    with np.load(path, allow_pickle=False) as data:
        images = np.asarray(data["images"])
        sources = [str(value) for value in data["source_paths"]]
        if split == "heldout":
            mask = busi_heldout_mask(len(images))
        else:
            mask = np.asarray(data["splits"]) == split
    return images[mask], [source for source, keep in zip(sources, mask, strict=True) if keep]


class Command(BaseCommand):
    help = "Load the demo reference sets (held-out splits of the shared data sets)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shared-dir", type=Path, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = (options["shared_dir"] or default_shared_dir()) / "data"
        if not data_dir.is_dir():
            self.stdout.write(f"no data sets at {data_dir}: no reference sets loaded")
            return
        for spec in REFERENCE_SETS:
            images, sources = _split_images(data_dir / spec.file, spec.split)
            reference_set = reference_set_create(
                slug=spec.id,
                title=spec.title,
                modality=spec.modality,
                match_terms=spec.match_terms,
                split=spec.split,
                licence=spec.licence,
                citation=spec.citation,
                source=f"shared/data/{spec.file}",
                images=images,
                source_paths=sources,
            )
            self.stdout.write(f"{spec.id}: {reference_set.image_count} images")
