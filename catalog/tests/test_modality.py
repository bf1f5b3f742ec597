"""Modality families: medigan's and the zoo's spellings fall into one family each."""

from __future__ import annotations

import pytest

from medigan_catalog.modality import MODALITY_FAMILIES, modality_family


@pytest.mark.parametrize(
    ("values", "family"),
    [
        (["MMG"], "mammography"),
        (["full-field digital MMG"], "mammography"),
        (["x-ray mammography"], "mammography"),
        (["CXR"], "X-ray"),
        (["xray"], "X-ray"),
        (["x-ray", "X-Ray"], "X-ray"),
        (["Brain MRI", "T1"], "MRI"),
        (["dce-mri"], "MRI"),
        (["Flair"], "MRI"),
        (["breast ultrasound", "ultrasound"], "ultrasound"),
        (["dermoscopy"], "dermoscopy"),
        (["gastrointestinal endoscopy"], "endoscopy"),
        (["Cardiac imaging"], "cardiac imaging"),
        (["test noise"], "other"),
        ([], "other"),
        (None, "other"),
        ("CXR", "X-ray"),
    ],
)
def test_each_spelling_falls_into_its_family(values: object, family: str) -> None:
    assert modality_family(values) == family  # type: ignore[arg-type]


def test_the_families_are_distinct_names() -> None:
    assert len(set(MODALITY_FAMILIES)) == len(MODALITY_FAMILIES)
    assert "other" not in MODALITY_FAMILIES
