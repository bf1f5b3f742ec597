"""Tests of ``zoo/evaluate.py``, the zoo's table of FIDs against the per-pixel Gaussian baseline."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from zoo import evaluate as zoo_evaluate

REPO_ROOT = Path(__file__).resolve().parents[2]
PCA_PACKAGE = REPO_ROOT / "zoo" / "chestxray_pca_64" / "package"
CHEST_DATA = Path("data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz")


def data_dir() -> Path:
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return (Path(override) if override else REPO_ROOT.parent / "shared") / "data"


needs_data = pytest.mark.skipif(
    not (data_dir().parent / CHEST_DATA).exists(),
    reason=f"shared data {CHEST_DATA} not found (set MEDIGAN_SHARED_DIR)",
)


@pytest.mark.shared_data
@needs_data
def test_pca_row_has_numbers_and_beats_the_baseline() -> None:
    rows = zoo_evaluate.evaluate_package(PCA_PACKAGE, samples=100, data_dir=data_dir())
    assert [(row.model_id, row.reference_id) for row in rows] == [
        ("zoo/chestxray-pca-64", "chest-xray-test")
    ]
    row = rows[0]
    assert row.model.extractor_id == row.baseline.extractor_id == "medical-cnn"
    assert row.model.num_generated == row.baseline.num_generated == 100
    for value in (row.model.fid_rs, row.model.fid_rr_mean, row.model.r_fid, row.model.kid_mean):
        assert math.isfinite(value)
    assert row.model.fid_rr_mean == row.baseline.fid_rr_mean  # same reference, same options
    assert row.beats_baseline and row.model.fid_rs < row.baseline.fid_rs
    table = zoo_evaluate.table_markdown(rows)
    line = table.splitlines()[2]
    assert line.startswith("| `zoo/chestxray-pca-64` | chest-xray-test | medical-cnn | 100 |")
    assert line.endswith("| yes |")
    assert f"{row.model.fid_rs:.2f}" in line and f"{row.baseline.fid_rs:.2f}" in line


@pytest.mark.shared_data
@needs_data
def test_baseline_has_the_training_split_pixel_statistics_at_the_model_size() -> None:
    chest = zoo_evaluate.REFERENCES[0]
    small = zoo_evaluate.training_images(chest, 32, 32, 1, data_dir())
    assert small.shape == (5216, 32, 32) and small.dtype == np.uint8
    rgb = zoo_evaluate.training_images(chest, 16, 16, 3, data_dir())
    assert rgb.shape == (5216, 16, 16, 3)
    baseline = zoo_evaluate.baseline_generator(small)
    samples = baseline(2000, 0)
    assert samples.shape == (2000, 32, 32) and samples.dtype == np.uint8
    assert np.array_equal(samples[:5], baseline(2000, 0)[:5])
    centre = (slice(8, 24), slice(8, 24))  # away from clipping at 0 and 255
    error = np.abs(samples.mean(axis=0)[centre] - small.mean(axis=0)[centre]).mean()
    assert error < 2.0


def test_reference_sets_are_matched_by_the_cards_selection_terms() -> None:
    def ids(selection: dict[str, object]) -> list[str]:
        return [spec.id for spec in zoo_evaluate.matching_references({"selection": selection})]

    assert ids({"modality": ["x-ray"], "organ": ["chest"]}) == ["chest-xray-test"]
    assert ids({"modality": ["Dermoscopy"], "organ": ["skin"]}) == ["dermoscopy-isic2017-test"]
    assert ids({"modality": ["ultrasound"], "organ": ["breast"]}) == ["busi-heldout"]
    assert ids({"modality": ["x-ray", "mammography"], "organ": ["breast"]}) == []
    assert ids({}) == []


def test_every_zoo_package_is_found_and_matches_a_reference_set() -> None:
    directories = zoo_evaluate.package_dirs()
    assert PCA_PACKAGE in directories
    for directory in directories:
        card = json.loads((directory / "card.json").read_text(encoding="utf-8"))
        assert zoo_evaluate.matching_references(card), directory


def test_readme_table_is_replaced_between_the_markers_only() -> None:
    start, end = zoo_evaluate.TABLE_START, zoo_evaluate.TABLE_END
    readme = f"# zoo\n\nbefore\n{start}\nold table\n{end}\nafter\n"
    updated = zoo_evaluate.readme_with_table(readme, "| new |\n", "note")
    assert updated == f"# zoo\n\nbefore\n{start}\nnote\n\n| new |\n{end}\nafter\n"
    assert zoo_evaluate.readme_with_table(updated, "| new |\n", "note") == updated
    with pytest.raises(ValueError, match="markers"):
        zoo_evaluate.readme_with_table("# no markers\n", "| t |\n", "note")


def test_the_committed_readme_has_the_markers() -> None:
    text = zoo_evaluate.README.read_text(encoding="utf-8")
    assert text.index(zoo_evaluate.TABLE_START) < text.index(zoo_evaluate.TABLE_END)
