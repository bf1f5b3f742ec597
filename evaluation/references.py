"""Reference sets of real images: which exist, which cards they fit, and their statistics cache.

`REFERENCE_SETS` is the one list of the held-out image sets of ../shared/data that models are
evaluated against (the hub loads them with `manage.py reference_sets_load`, the zoo's table reads
them directly), and `reference_set_fits` is the one rule deciding whether a set fits a model
card's selection terms; both work on plain values, so the hub, the zoo and this library agree.
The held-out splits themselves ship with the project (`evaluation/reference_data/`, with their
licences and attribution): `packaged_reference_set` reads one without ../shared, and
`reference_set_extract` cuts the same pixels out of ../shared/data (`python -m
evaluation.reference_data.build` writes the shipped files with it).

An FID is only reproducible when the reference images are pinned, so a `ReferenceImages` carries
the sha256 of its pixel array (dtype, shape and bytes) and refuses an array that does not match
it. Reference statistics depend on the images, the extractor and its weights, and every
preprocessing option; `StatisticsKey` names all of them, and `StatisticsCache` computes each
entry once and reuses it across evaluations (and across processes: entries are written
atomically, so a concurrent reader sees either no file or a whole one).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from evaluation.metrics import FeatureStatistics

__all__ = [
    "HELDOUT_MODULUS",
    "REFERENCE_DATA_DIR",
    "REFERENCE_SETS",
    "PackagedReferenceSet",
    "ReferenceImages",
    "ReferenceSetSpec",
    "StatisticsCache",
    "StatisticsKey",
    "busi_heldout_mask",
    "images_sha256",
    "load_npz_split",
    "packaged_reference_images",
    "packaged_reference_path",
    "packaged_reference_set",
    "reference_set_extract",
    "reference_set_fits",
    "reference_sets_fitting",
    "selection_words",
]

HELDOUT_MODULUS = 5
"""A set without its own splits holds out every image whose index is a multiple of this."""


def images_sha256(images: np.ndarray[Any, Any]) -> str:
    """Hex sha256 of an image array: its dtype, its shape, then its bytes in C order.

    Dtype and shape go first so that the same bytes read as a different array (64 x 64 vs
    32 x 128) get a different hash.
    """
    digest = hashlib.sha256()
    digest.update(f"dtype={images.dtype.str};shape={tuple(images.shape)};".encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class ReferenceImages:
    """Real images of one split of a reference set: uint8 (N, H, W) or (N, H, W, C).

    `sha256` must be `images_sha256(images)`; it is checked on construction, so a stored hash
    (the hub's manifest) is verified against the pixels actually loaded. `from_images` computes it.
    """

    id: str
    split: str
    images: np.ndarray[Any, Any]
    sha256: str

    def __post_init__(self) -> None:
        if not isinstance(self.images, np.ndarray) or self.images.dtype != np.uint8:
            raise ValueError("reference images must be a uint8 numpy array")
        if self.images.ndim not in (3, 4) or self.images.shape[0] == 0:
            raise ValueError(
                f"reference images must be (N, H, W) or (N, H, W, C) with N >= 1, "
                f"got {self.images.shape}"
            )
        actual = images_sha256(self.images)
        if actual != self.sha256:
            raise ValueError(
                f"reference set {self.id!r} split {self.split!r}: images have sha256 {actual}, "
                f"expected {self.sha256}"
            )

    @classmethod
    def from_images(cls, id: str, split: str, images: np.ndarray[Any, Any]) -> ReferenceImages:
        """A reference set from an array, its hash computed here."""
        return cls(id=id, split=split, images=images, sha256=images_sha256(images))

    def __len__(self) -> int:
        return int(self.images.shape[0])


def busi_heldout_mask(n: int) -> npt.NDArray[np.bool_]:
    """Held-out images of a set that comes without splits (BUSI): index % 5 == 0, one in five.

    The medical-cnn recipe trains on the complement ("train") and the hub's reference set is this
    mask ("heldout"), so the extractor never saw the images it is evaluated against.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    mask: npt.NDArray[np.bool_] = np.arange(n) % HELDOUT_MODULUS == 0
    return mask


def load_npz_split(path: Path, split: str, *, id: str) -> ReferenceImages:
    """One split of a `../shared/data` .npz file (arrays `images`, `splits`) as a reference set.

    `split` is a value of the file's `splits` array ("train", "test", "val", ...). A file whose
    only split is "all" (BUSI) is divided by `busi_heldout_mask`: "heldout" is every fifth image
    (index % 5 == 0), "train" the rest; "all" still means every image.
    """
    with np.load(path, allow_pickle=False) as data:
        images = np.asarray(data["images"])
        splits = np.asarray(data["splits"]).astype(str)
    mask = _split_mask(path, images, splits, split)
    return ReferenceImages.from_images(id, split, np.ascontiguousarray(images[mask]))


def _split_mask(
    path: Path, images: np.ndarray[Any, Any], splits: np.ndarray[Any, Any], split: str
) -> npt.NDArray[np.bool_]:
    """Which images of a `../shared/data` file belong to `split` (see `load_npz_split`)."""
    if images.dtype != np.uint8 or splits.shape != (images.shape[0],):
        raise ValueError(
            f"{path}: expected uint8 `images` and one `splits` entry per image, got "
            f"{images.dtype} {images.shape} and splits {splits.shape}"
        )
    available = sorted(set(splits.tolist()))
    if split in available:
        mask: npt.NDArray[np.bool_] = splits == split
        return mask
    if available == ["all"] and split in ("heldout", "train"):
        heldout = busi_heldout_mask(images.shape[0])
        return heldout if split == "heldout" else ~heldout
    derived = ["heldout", "train"] if available == ["all"] else []
    raise ValueError(f"{path} has no split {split!r}; available: {', '.join(available + derived)}")


KERMANY_CITATION = (
    "Kermany DS et al. Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep "
    "Learning. Cell 172(5):1122-1131, 2018. doi:10.1016/j.cell.2018.02.010; data: Mendeley Data "
    "v2, doi:10.17632/rscbjbr9sj.2"
)
BUSI_CITATION = (
    "Al-Dhabyani W, Gomaa M, Khaled H, Fahmy A. Dataset of breast ultrasound images. Data in "
    "Brief 28:104863, 2020. doi:10.1016/j.dib.2019.104863"
)
ISIC_CITATION = (
    "Codella NCF et al. Skin Lesion Analysis Toward Melanoma Detection: A Challenge at ISBI 2017, "
    "hosted by the ISIC. arXiv:1710.05006"
)


@dataclass(frozen=True)
class ReferenceSetSpec:
    """A held-out reference set of ../shared/data: its images, its attribution, its match terms.

    ``id`` is the hub's slug and the ``reference_id`` of the statistics cache. ``file`` is
    relative to the shared ``data`` folder; ``split`` is the held-out split evaluated against and
    ``train_split`` the one a model (or the zoo's baseline) may learn from. ``match_terms`` is a
    tuple of groups of alternatives; see `reference_set_fits`.
    """

    id: str
    title: str
    modality: str
    match_terms: tuple[tuple[str, ...], ...]
    file: str
    split: str
    train_split: str
    licence: str
    citation: str
    # The sha256 (`images_sha256`) of the held-out split's pixels: the shipped file
    # (`packaged_reference_set`) and the extraction from ../shared/data must both match it.
    images_sha256: str = ""


REFERENCE_SETS: tuple[ReferenceSetSpec, ...] = (
    ReferenceSetSpec(
        id="chest-xray-test",
        title="Paediatric chest X-ray, Kermany test split (624 images, 64 px)",
        modality="chest x-ray",
        match_terms=(("chest", "thorax", "lung", "cxr"), ("x-ray", "xray", "cxr", "radiograph")),
        file="chest-xray-pneumonia/chest_xray_pneumonia_64.npz",
        split="test",
        train_split="train",
        licence="CC-BY-4.0",
        citation=KERMANY_CITATION,
        images_sha256="709fd7ca090cc04aac5dd2371cdbf3eae6a9cab8b2f306f29f73d64e646fa3f7",
    ),
    ReferenceSetSpec(
        id="dermoscopy-isic2017-test",
        title="Dermoscopy, ISIC 2017 test split (600 images, 64 px RGB)",
        modality="dermoscopy",
        match_terms=(("dermoscop", "skin lesion", "melanoma"),),
        file="dermoscopy-isic2017/dermoscopy_isic2017_64.npz",
        split="test",
        train_split="train",
        licence="CC0-1.0",
        citation=ISIC_CITATION,
        images_sha256="1fb55b362fe647a97d041b14210f4c9190b78ba16b4c9da6447a4fdc2f7e03c3",
    ),
    ReferenceSetSpec(
        id="busi-heldout",
        title="Breast ultrasound, BUSI held-out fifth (every 5th image, 64 px)",
        modality="breast ultrasound",
        match_terms=(("breast",), ("ultrasound", "sonograph")),
        file="breast-ultrasound-busi/breast_ultrasound_busi_64.npz",
        split="heldout",
        train_split="train",
        licence="CC-BY-4.0",
        citation=BUSI_CITATION,
        images_sha256="72a44468516243bd115acbec3b4e4af14a8f8309fdcf1ba5eda3862d8fb83c47",
    ),
)
"""The held-out sets of ../shared/data that models are evaluated against, in table order."""


REFERENCE_DATA_DIR = Path(__file__).resolve().parent / "reference_data"
"""Where the held-out splits of `REFERENCE_SETS` ship: one ``<id>.npz`` each (see its README)."""


@dataclass(frozen=True)
class PackagedReferenceSet:
    """A reference set's images with the path of each image in its source data set."""

    spec: ReferenceSetSpec
    images: ReferenceImages
    source_paths: tuple[str, ...]


def packaged_reference_path(
    spec: ReferenceSetSpec, *, directory: Path = REFERENCE_DATA_DIR
) -> Path:
    """The shipped file of a reference set: ``<directory>/<id>.npz``."""
    return Path(directory) / f"{spec.id}.npz"


def packaged_reference_set(
    spec: ReferenceSetSpec, *, directory: Path = REFERENCE_DATA_DIR
) -> PackagedReferenceSet:
    """The held-out split of `spec` as shipped with the project, its pixels checked.

    The file holds ``images`` (uint8) and ``source_paths`` (one per image); its pixels must
    hash to ``spec.images_sha256`` (a spec without one is refused: nothing would pin it).
    Raises FileNotFoundError for a set that is not shipped, ValueError for a file that does not
    match.
    """
    if not spec.images_sha256:
        raise ValueError(f"reference set {spec.id!r} pins no images_sha256: it is not shipped")
    path = packaged_reference_path(spec, directory=directory)
    with np.load(path, allow_pickle=False) as data:
        images = np.asarray(data["images"])
        sources = tuple(str(value) for value in data["source_paths"])
    if len(sources) != images.shape[0]:
        raise ValueError(f"{path}: {images.shape[0]} images but {len(sources)} source paths")
    reference = ReferenceImages(
        id=spec.id, split=spec.split, images=images, sha256=spec.images_sha256
    )
    return PackagedReferenceSet(spec=spec, images=reference, source_paths=sources)


def packaged_reference_images(
    spec: ReferenceSetSpec, *, directory: Path = REFERENCE_DATA_DIR
) -> ReferenceImages:
    """The shipped images of `spec` (`packaged_reference_set` without the source paths)."""
    return packaged_reference_set(spec, directory=directory).images


def reference_set_extract(spec: ReferenceSetSpec, data_dir: Path) -> PackagedReferenceSet:
    """The held-out split of `spec` cut out of ../shared/data (``data_dir``), its pixels checked.

    These are the pixels `packaged_reference_set` reads back; a spec that pins
    ``images_sha256`` refuses an extraction that does not match it.
    """
    path = Path(data_dir) / spec.file
    with np.load(path, allow_pickle=False) as data:
        images = np.asarray(data["images"])
        splits = np.asarray(data["splits"]).astype(str)
        sources = np.asarray(data["source_paths"]).astype(str)
    mask = _split_mask(path, images, splits, spec.split)
    held_out = np.ascontiguousarray(images[mask])
    reference = (
        ReferenceImages(id=spec.id, split=spec.split, images=held_out, sha256=spec.images_sha256)
        if spec.images_sha256
        else ReferenceImages.from_images(spec.id, spec.split, held_out)
    )
    return PackagedReferenceSet(
        spec=spec, images=reference, source_paths=tuple(str(value) for value in sources[mask])
    )


def selection_words(
    *, modality: object = None, organ: object = None, tags: object = None
) -> list[str]:
    """The lower-cased terms of a card's selection ``modality``, ``organ`` and ``tags``.

    Each field may be a list of terms or a single term (cards imported from medigan are not
    uniform); empty values are dropped.
    """
    words: list[str] = []
    for value in (modality, organ, tags):
        values = value if isinstance(value, list) else [value]
        words.extend(str(item).lower() for item in values if item)
    return words


def reference_set_fits(match_terms: Iterable[Iterable[str]], words: Sequence[str]) -> bool:
    """Whether a reference set with ``match_terms`` fits a card with selection ``words``.

    ``match_terms`` is a list of groups of alternatives, e.g. ``[["chest", "thorax"], ["x-ray",
    "radiograph"]]``: every group needs a term that occurs inside one of the words, so a chest
    X-ray model fits and an X-ray mammography model does not. A set without terms fits nothing,
    so that a set loaded without them is never evaluated against by accident.
    """
    groups = [tuple(group) for group in match_terms]
    return bool(groups) and all(
        any(term in word for term in group for word in words) for group in groups
    )


def reference_sets_fitting(
    *,
    modality: object = None,
    organ: object = None,
    tags: object = None,
    reference_sets: Iterable[ReferenceSetSpec] = REFERENCE_SETS,
) -> list[ReferenceSetSpec]:
    """The ``reference_sets`` that fit a card's selection ``modality``, ``organ`` and ``tags``."""
    words = selection_words(modality=modality, organ=organ, tags=tags)
    return [spec for spec in reference_sets if reference_set_fits(spec.match_terms, words)]


@dataclass(frozen=True)
class StatisticsKey:
    """Everything reference statistics depend on. Two keys are equal iff every field is."""

    reference_id: str
    reference_split: str
    reference_sha256: str
    extractor_id: str
    weights_sha256: str
    preprocess_key: str

    def digest(self) -> str:
        """Hex sha256 of the key's canonical JSON (sorted fields): the cache file's name."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def canonical_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


class StatisticsCache:
    """Reference statistics (and features) on disk, one `.npz` per key, computed once.

    Files are named by `StatisticsKey.digest()` and also store the key itself, which is
    compared on reading: an entry for another key (or a damaged file) is never returned but
    recomputed and overwritten. Writes go to a temporary file in the same directory that is then
    renamed over the target, which is atomic on POSIX and Windows.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, key: StatisticsKey, kind: str = "statistics") -> Path:
        return self.directory / f"{key.digest()}.{kind}.npz"

    def get_or_compute(
        self, key: StatisticsKey, compute: Callable[[], FeatureStatistics]
    ) -> FeatureStatistics:
        """The cached statistics for `key`, or `compute()`'s result, stored for next time."""
        arrays = self._read(key, "statistics")
        if arrays is not None:
            try:
                return FeatureStatistics(
                    mean=arrays["mean"].astype(np.float64),
                    covariance=arrays["covariance"].astype(np.float64),
                    count=int(arrays["count"]),
                )
            except (KeyError, ValueError):
                pass  # malformed entry: recompute below
        statistics = compute()
        self._write(
            key,
            "statistics",
            mean=statistics.mean,
            covariance=statistics.covariance,
            count=np.asarray(statistics.count, dtype=np.int64),
        )
        return statistics

    def get_or_compute_features(
        self, key: StatisticsKey, compute: Callable[[], npt.ArrayLike]
    ) -> npt.NDArray[np.float64]:
        """The cached (N, d) reference features for `key`, or `compute()`'s, stored for next time.

        FID_rr, KID and precision/recall need the reference features themselves, not only their
        statistics; caching them spares re-running the network over the reference set per
        evaluation. They are stored in the precision they were computed in (float32 from the
        extractors here, so half the bytes) and returned as float64, the metrics' precision.
        """
        arrays = self._read(key, "features")
        if arrays is not None and "features" in arrays and arrays["features"].ndim == 2:
            return arrays["features"].astype(np.float64)
        features = np.asarray(compute())
        if features.dtype not in (np.float32, np.float64):
            features = features.astype(np.float64)
        self._write(key, "features", features=features)
        return features.astype(np.float64)

    def _read(self, key: StatisticsKey, kind: str) -> dict[str, np.ndarray[Any, Any]] | None:
        path = self.path_for(key, kind)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: np.asarray(data[name]) for name in data.files}
        except (OSError, ValueError, zipfile.BadZipFile):
            return None
        stored_key = arrays.pop("key", None)
        if stored_key is None or str(stored_key) != key.canonical_json():
            return None
        return arrays

    def _write(self, key: StatisticsKey, kind: str, **arrays: np.ndarray[Any, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path_for(key, kind)
        with tempfile.NamedTemporaryFile(
            dir=self.directory, prefix=f".{target.name}.", suffix=".tmp", delete=False
        ) as handle:
            temporary = Path(handle.name)
            try:
                contents = {"key": np.asarray(key.canonical_json()), **arrays}
                np.savez(handle, allow_pickle=False, **contents)
                handle.flush()
            except BaseException:
                handle.close()
                temporary.unlink(missing_ok=True)
                raise
        temporary.replace(target)
