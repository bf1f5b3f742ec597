"""``manage.py reference_sets_load``: the demo's reference sets, the held-out splits it ships.

Which sets exist (slugs, files, splits, match terms, attribution, pinned pixel hashes) is
``evaluation.references.REFERENCE_SETS``, shared with the zoo's table. By default their images
come from the files that ship with the project (``evaluation/reference_data``), so a fresh clone
needs no data folder; ``--shared-dir`` cuts the same pixels out of ``<shared>/data`` instead (the
hash each set pins makes both sources agree). Idempotent. Loading a set queues the evaluation of
every published release that fits it and has none yet (``reference_set_load``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.references import (
    REFERENCE_SETS,
    PackagedReferenceSet,
    packaged_reference_path,
    packaged_reference_set,
    reference_set_extract,
)
from hub.evaluations.services import reference_set_load


def default_shared_dir() -> Path:
    """``MEDIGAN_SHARED_DIR``, else the ``shared`` folder beside the repository."""
    return Path(os.environ.get("MEDIGAN_SHARED_DIR", Path(settings.BASE_DIR).parent / "shared"))


class Command(BaseCommand):
    help = (
        "Load the demo reference sets (the held-out splits shipped in evaluation/reference_data) "
        "and queue the evaluations of the published releases that fit them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--shared-dir",
            type=Path,
            default=None,
            help="take the images from <shared-dir>/data instead of the shipped files",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        shared_dir: Path | None = options["shared_dir"]
        data_dir = shared_dir / "data" if shared_dir is not None else None
        if data_dir is not None:
            # Every file first: a missing one loads no set rather than some of them.
            missing = [spec for spec in REFERENCE_SETS if not (data_dir / spec.file).is_file()]
            if missing:
                raise CommandError(
                    "; ".join(f"{spec.id}: no {data_dir / spec.file}" for spec in missing)
                )
        for spec in REFERENCE_SETS:
            if data_dir is None:
                loaded = packaged_reference_set(spec)
                source = (
                    f"{spec.file}, split {spec.split}, as shipped in "
                    f"evaluation/reference_data/{packaged_reference_path(spec).name}"
                )
            else:
                loaded = reference_set_extract(spec, data_dir)
                source = f"{spec.file}, split {spec.split}"
            self._load(loaded, source)

    def _load(self, loaded: PackagedReferenceSet, source: str) -> None:
        spec = loaded.spec
        reference_set, queued = reference_set_load(
            slug=spec.id,
            title=spec.title,
            modality=spec.modality,
            match_terms=spec.match_terms,
            split=spec.split,
            licence=spec.licence,
            citation=spec.citation,
            source=source,
            images=loaded.images.images,
            source_paths=loaded.source_paths,
        )
        self.stdout.write(
            f"{spec.id}: {reference_set.image_count} images ({spec.licence}); "
            f"{len(queued)} evaluation(s) queued"
        )
