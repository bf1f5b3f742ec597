"""``manage.py reference_sets_load``: the demo's reference sets, the held-out splits of shared/data.

Idempotent. Each set keeps the attribution and licence of its data set. Without the data folder
the command says so and loads nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from evaluation.references import busi_heldout_mask
from hub.evaluations.services import reference_set_create

KERMANY = (
    "Kermany DS et al. Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep "
    "Learning. Cell 172(5):1122-1131, 2018. doi:10.1016/j.cell.2018.02.010; data: Mendeley Data "
    "v2, doi:10.17632/rscbjbr9sj.2"
)
BUSI = (
    "Al-Dhabyani W, Gomaa M, Khaled H, Fahmy A. Dataset of breast ultrasound images. Data in "
    "Brief 28:104863, 2020. doi:10.1016/j.dib.2019.104863"
)
ISIC = (
    "Codella NCF et al. Skin Lesion Analysis Toward Melanoma Detection: A Challenge at ISBI 2017, "
    "hosted by the ISIC. arXiv:1710.05006"
)


@dataclass(frozen=True)
class _DemoReference:
    slug: str
    title: str
    modality: str
    match_terms: list[list[str]]
    file: str
    split: str
    licence: str
    citation: str


DEMO_REFERENCES = (
    _DemoReference(
        slug="chest-xray-test",
        title="Paediatric chest X-ray, Kermany test split (624 images, 64 px)",
        modality="chest x-ray",
        match_terms=[["chest", "thorax", "lung", "cxr"], ["x-ray", "xray", "cxr", "radiograph"]],
        file="chest-xray-pneumonia/chest_xray_pneumonia_64.npz",
        split="test",
        licence="CC-BY-4.0",
        citation=KERMANY,
    ),
    _DemoReference(
        slug="dermoscopy-isic2017-test",
        title="Dermoscopy, ISIC 2017 test split (600 images, 64 px RGB)",
        modality="dermoscopy",
        match_terms=[["dermoscop", "skin lesion", "melanoma"]],
        file="dermoscopy-isic2017/dermoscopy_isic2017_64.npz",
        split="test",
        licence="CC0-1.0",
        citation=ISIC,
    ),
    _DemoReference(
        slug="busi-heldout",
        title="Breast ultrasound, BUSI held-out fifth (every 5th image, 64 px)",
        modality="breast ultrasound",
        match_terms=[["breast"], ["ultrasound", "sonograph"]],
        file="breast-ultrasound-busi/breast_ultrasound_busi_64.npz",
        split="heldout",
        licence="CC-BY-4.0",
        citation=BUSI,
    ),
)


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
        for spec in DEMO_REFERENCES:
            images, sources = _split_images(data_dir / spec.file, spec.split)
            reference_set = reference_set_create(
                slug=spec.slug,
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
            self.stdout.write(f"{spec.slug}: {reference_set.image_count} images")
