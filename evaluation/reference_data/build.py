"""Regenerate the shipped reference sets from ../shared/data, byte for byte.

    python -m evaluation.reference_data.build [--shared-dir DIR] [--output DIR] [--check]

Each set of ``evaluation.references.REFERENCE_SETS`` is cut out of its shared data file by
``reference_set_extract`` (which checks the pixels against the set's pinned ``images_sha256``)
and written as ``<id>.npz`` with the arrays ``images`` and ``source_paths``. The archive is
written with fixed member timestamps and order, so the same pixels give the same file: running
the script again changes nothing in the repository. ``--check`` writes nothing and fails when a
shipped file's arrays differ from the extraction.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.references import (
    REFERENCE_DATA_DIR,
    REFERENCE_SETS,
    PackagedReferenceSet,
    packaged_reference_path,
    packaged_reference_set,
    reference_set_extract,
)

# ZIP's earliest representable time: a member's timestamp says nothing about its pixels.
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def default_shared_dir() -> Path:
    """``$MEDIGAN_SHARED_DIR``, else the ``shared`` folder beside the repository."""
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REFERENCE_DATA_DIR.parents[2] / "shared"


def npz_write(path: Path, arrays: Mapping[str, np.ndarray[Any, Any]]) -> None:
    """Write ``arrays`` as a compressed ``.npz`` that depends only on their contents.

    ``numpy.savez_compressed`` stamps each member with the current time; this writes the same
    format (``numpy.load`` reads it) with a fixed time, members in the order given, and renames a
    finished temporary file over ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                with archive.open(info, "w", force_zip64=True) as handle:
                    np.lib.format.write_array(handle, np.asanyarray(array), allow_pickle=False)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def reference_set_write(extracted: PackagedReferenceSet, output_dir: Path) -> Path:
    """Write one extracted set as ``<output_dir>/<id>.npz``; return its path."""
    path = packaged_reference_path(extracted.spec, directory=output_dir)
    npz_write(
        path,
        {
            "images": extracted.images.images,
            "source_paths": np.asarray(extracted.source_paths, dtype=str),
        },
    )
    return path


def reference_set_matches(extracted: PackagedReferenceSet, output_dir: Path) -> bool:
    """Whether the shipped file of a set holds exactly the extracted images and source paths."""
    try:
        shipped = packaged_reference_set(extracted.spec, directory=output_dir)
    except (OSError, ValueError, KeyError):
        return False
    return (
        np.array_equal(shipped.images.images, extracted.images.images)
        and shipped.source_paths == extracted.source_paths
    )


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shared-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=REFERENCE_DATA_DIR)
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    options = parser.parse_args(argv)
    data_dir = (options.shared_dir or default_shared_dir()) / "data"
    if not data_dir.is_dir():
        print(f"no data sets at {data_dir} (set --shared-dir or MEDIGAN_SHARED_DIR)")
        return 2
    differing: list[str] = []
    for spec in REFERENCE_SETS:
        extracted = reference_set_extract(spec, data_dir)
        if options.check:
            same = reference_set_matches(extracted, options.output)
            print(f"{spec.id}: {'matches' if same else 'DIFFERS from'} {data_dir / spec.file}")
            if not same:
                differing.append(spec.id)
            continue
        path = reference_set_write(extracted, options.output)
        print(
            f"{spec.id}: {len(extracted.images)} images, images_sha256 {extracted.images.sha256}, "
            f"file sha256 {file_sha256(path)}"
        )
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
