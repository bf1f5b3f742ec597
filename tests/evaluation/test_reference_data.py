"""The reference sets shipped in evaluation/reference_data: their pixels, licences and builder."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from evaluation.reference_data import build
from evaluation.references import (
    REFERENCE_DATA_DIR,
    REFERENCE_SETS,
    ReferenceSetSpec,
    images_sha256,
    load_npz_split,
    packaged_reference_images,
    packaged_reference_path,
    packaged_reference_set,
    reference_set_extract,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SIZES = {
    "chest-xray-test": (624, 64, 64),
    "dermoscopy-isic2017-test": (600, 64, 64, 3),
    "busi-heldout": (156, 64, 64),
}


def shared_data_dir() -> Path:
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return (Path(override) if override else REPO_ROOT.parent / "shared") / "data"


def tiny_spec(**changes: str) -> ReferenceSetSpec:
    spec = ReferenceSetSpec(
        id="tiny-test",
        title="tiny",
        modality="chest x-ray",
        match_terms=(("chest",),),
        file="tiny/tiny.npz",
        split="test",
        train_split="train",
        licence="CC0-1.0",
        citation="",
    )
    return dataclasses.replace(spec, **changes)


def write_shared_file(data_dir: Path) -> np.ndarray:
    images = np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4)
    (data_dir / "tiny").mkdir(parents=True)
    np.savez_compressed(
        data_dir / "tiny" / "tiny.npz",
        images=images,
        splits=np.array(["train", "test", "train", "test", "test"]),
        source_paths=np.array([f"img/{index}.png" for index in range(5)]),
    )
    return images


def test_every_reference_set_ships_with_its_pinned_pixels_and_source_paths() -> None:
    for spec in REFERENCE_SETS:
        shipped = packaged_reference_set(spec)
        assert shipped.images.images.shape == SIZES[spec.id]
        assert shipped.images.sha256 == spec.images_sha256 == images_sha256(shipped.images.images)
        assert (shipped.images.id, shipped.images.split) == (spec.id, spec.split)
        assert len(shipped.source_paths) == len(shipped.images)
        assert all(path.endswith((".jpg", ".jpeg", ".png")) for path in shipped.source_paths)
        np.testing.assert_array_equal(packaged_reference_images(spec).images, shipped.images.images)


def test_the_shipped_files_are_small_and_named_with_licence_and_hash_in_the_readme() -> None:
    readme = (REFERENCE_DATA_DIR / "README.md").read_text(encoding="utf-8")
    total = 0
    for spec in REFERENCE_SETS:
        path = packaged_reference_path(spec)
        total += path.stat().st_size
        assert f"`{path.name}`" in readme
        assert spec.images_sha256 in readme
        assert build.file_sha256(path) in readme
        assert spec.licence in readme
    assert total < 12 * 1024 * 1024


def test_the_shipped_files_are_not_git_ignored() -> None:
    paths = [str(packaged_reference_path(spec).relative_to(REPO_ROOT)) for spec in REFERENCE_SETS]
    ignored = subprocess.run(
        ["git", "check-ignore", *paths], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert ignored.stdout == ""  # git check-ignore names every ignored path


def test_a_shipped_file_whose_pixels_changed_is_refused(tmp_path: Path) -> None:
    spec = REFERENCE_SETS[2]
    shipped = packaged_reference_set(spec)
    images = shipped.images.images.copy()
    images[0, 0, 0] ^= 1
    build.npz_write(
        packaged_reference_path(spec, directory=tmp_path),
        {"images": images, "source_paths": np.asarray(shipped.source_paths)},
    )
    with pytest.raises(ValueError, match=r"busi-heldout.*expected 72a44468"):
        packaged_reference_set(spec, directory=tmp_path)
    with pytest.raises(FileNotFoundError):
        packaged_reference_set(REFERENCE_SETS[0], directory=tmp_path)
    with pytest.raises(ValueError, match="pins no images_sha256"):
        packaged_reference_set(tiny_spec())


def test_extract_then_write_round_trips_and_the_file_depends_only_on_the_pixels(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    images = write_shared_file(data_dir)
    unpinned = reference_set_extract(tiny_spec(), data_dir)
    np.testing.assert_array_equal(unpinned.images.images, images[[1, 3, 4]])
    assert unpinned.source_paths == ("img/1.png", "img/3.png", "img/4.png")
    spec = tiny_spec(images_sha256=unpinned.images.sha256)
    extracted = reference_set_extract(spec, data_dir)

    first = build.reference_set_write(extracted, tmp_path / "out-a")
    second = build.reference_set_write(extracted, tmp_path / "out-b")
    assert first.read_bytes() == second.read_bytes()
    assert build.reference_set_matches(extracted, tmp_path / "out-a")
    shipped = packaged_reference_set(spec, directory=tmp_path / "out-a")
    np.testing.assert_array_equal(shipped.images.images, images[[1, 3, 4]])
    assert shipped.source_paths == extracted.source_paths

    with pytest.raises(ValueError, match="expected 00"):
        reference_set_extract(tiny_spec(images_sha256="00" * 32), data_dir)
    assert not build.reference_set_matches(extracted, tmp_path / "missing")


@pytest.mark.shared_data
def test_the_shipped_arrays_equal_what_the_builder_extracts_from_shared_data(
    tmp_path: Path,
) -> None:
    data_dir = shared_data_dir()
    if not data_dir.is_dir():
        pytest.skip(f"no shared data at {data_dir}")
    for spec in REFERENCE_SETS:
        extracted = reference_set_extract(spec, data_dir)
        assert build.reference_set_matches(extracted, REFERENCE_DATA_DIR), spec.id
        # The library's own split loader agrees with the extraction.
        assert load_npz_split(data_dir / spec.file, spec.split, id=spec.id).sha256 == (
            spec.images_sha256
        )
        # Rebuilding gives the shipped bytes: the committed files are reproducible.
        rebuilt = build.reference_set_write(extracted, tmp_path)
        assert rebuilt.read_bytes() == packaged_reference_path(spec).read_bytes(), spec.id
    assert build.main(["--shared-dir", str(data_dir.parent), "--check"]) == 0
