"""Write generated samples to files: PNG, NPY, NIfTI or DICOM, every file written atomically.

A :class:`SampleWriter` turns one sample (or its mask) into one file ``<stem><extension>`` in
the run's format; :func:`writer_for` picks the writer of a format. Each file is first written
under a hidden temporary name in the same directory and then renamed with :func:`os.replace`,
so a file under its final name is always complete, whatever stops the run.

Formats (``docs/generation.md`` has the details):

* ``png``: 8-bit ``L``/``RGB``/``RGBA``, 16-bit grey for ``uint16``; ``float32`` is scaled from
  the card's ``value_range`` to 8 bits. Samples that are no 2-D image (volumes, two channels)
  are written as ``.npy``. A ``Description`` text chunk says the image is synthetic. zlib
  level 6 (Pillow's default) unless the run asks for another (``png_compress_level``: the
  pixels are the same, the bytes and the time are not). A PNG a medigan package saved itself
  is adopted instead (:meth:`PngWriter.adopt`): moved, with the text chunks added.
* ``npy``: the array exactly as the package returned it (``np.save``, no pickles).
* ``nifti``: ``.nii.gz`` through nibabel, identity affine (1 mm voxels), axes ``(H, W)`` for
  images and ``(H, W, D)`` for volumes, channels on the fifth axis with intent ``vector``.
* ``dicom``: ``.dcm`` through pydicom, a Secondary Capture object whose header marks the image
  as synthetic and names model, version, seed and sample index (see :class:`DicomWriter`).

nibabel and pydicom are optional (``pip install 'medigan-client[formats]'``) and imported only
by their writers.
"""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import json
import os
import re
import struct
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from medigan_catalog.schema import Card
from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.version import __version__

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

OUTPUT_FORMATS: tuple[str, ...] = ("png", "npy", "nifti", "dicom")
FORMATS_EXTRA = "medigan-client[formats]"
# The libraries each format needs beyond numpy and Pillow (import name -> distribution name).
FORMAT_LIBRARIES: Mapping[str, tuple[str, ...]] = {"nifti": ("nibabel",), "dicom": ("pydicom",)}

Role = Literal["image", "mask"]

SYNTHETIC_PATIENT_NAME = "SYNTHETIC^MEDIGAN"
SYNTHETIC_PATIENT_ID = "SYNTHETIC-MEDIGAN"
# UUID-derived UIDs (ISO/IEC 9834-8) need no registered organisation root.
UUID_UID_ROOT = "2.25."
_UID_ROOT_PATTERN = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*\.$")
_MAX_UID_ROOT_LENGTH = 54  # leaves at least ten digits of randomness in a 64-character UID

# DICOM Secondary Capture SOP classes (PS3.4 B.5): single frame, and multi-frame for volumes.
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
MULTIFRAME_GREY_BYTE_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7.2"
MULTIFRAME_GREY_WORD_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7.3"
MULTIFRAME_TRUE_COLOUR_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7.4"
_PAGE_NUMBER_VECTOR_TAG = 0x00182001

_EXTRA_NAME = re.compile(r"[^A-Za-z0-9_-]+")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


def require_format_libraries(format: str) -> None:
    """Raise :class:`BadRequestError` unless ``format`` is known and its libraries are installed."""
    if format not in OUTPUT_FORMATS:
        raise BadRequestError(f"format must be one of {', '.join(OUTPUT_FORMATS)}, not {format!r}")
    missing = [name for name in FORMAT_LIBRARIES.get(format, ()) if not _installed(name)]
    if missing:
        raise BadRequestError(
            f"format {format!r} needs {', '.join(missing)}, which is not installed; "
            f"install it with: pip install '{FORMATS_EXTRA}'"
        )


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def write_atomically(target: Path, write: Callable[[Path], None]) -> Path:
    """Let ``write`` fill a temporary file beside ``target``, then rename it to ``target``.

    The temporary name is hidden and unique to the process and thread, so concurrent writers
    never share one; it is removed when ``write`` fails.
    """
    temporary = target.with_name(f".{target.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        write(temporary)
        temporary.replace(target)  # os.replace: atomic on one file system
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


@dataclass(frozen=True)
class RunProvenance:
    """What made the samples of one run; writers put it into the files' own metadata."""

    model_id: str
    version: str
    package_sha256: str = ""
    seed: int = 0
    precision: str = "float32"


@dataclass(frozen=True)
class WrittenFile:
    """A file a writer wrote, and what the manifest line of its sample should say about it."""

    path: Path
    manifest_fields: Mapping[str, object] = field(default_factory=dict)


def describe_sample(provenance: RunProvenance, record: Mapping[str, object], role: Role) -> str:
    """One sentence saying that the sample is synthetic and what exactly made it.

    ``record`` is the sample's manifest line; the fields it lacks are left out.
    """
    what = "segmentation mask of a synthetic image" if role == "mask" else "image"
    facts = f"Model {provenance.model_id} version {provenance.version}"
    if provenance.package_sha256:
        facts += f" (package sha256 {provenance.package_sha256})"
    facts += f", seed {provenance.seed}"
    if "index" in record:
        facts += f", sample index {record['index']}"
    if "sample_seed" in record:  # then the image does not depend on its batch
        facts += f", sample seed {record['sample_seed']}"
    elif "batch_seed" in record:
        facts += (
            f", batch seed {record['batch_seed']} (batch start {record.get('batch_start')},"
            f" batch size {record.get('batch_size')})"
        )
    if record.get("args"):
        facts += f", arguments {json.dumps(record['args'], sort_keys=True)}"
    if provenance.precision != "float32":
        facts += f", precision {provenance.precision}"
    return (
        f"SYNTHETIC {what} generated by medigan-client {__version__}: "
        f"not an image of a patient. {facts}."
    )


# -- pixel conversions ------------------------------------------------------------------------


def spatial_rank(card: Card) -> int:
    """2 for images, 3 for volumes (the card's ``output.depth`` is set)."""
    return 2 if card.output.depth is None else 3


def drop_single_channel(array: np.ndarray, card: Card) -> np.ndarray:
    """``(..., 1)`` one-channel samples as plain ``(H, W)`` / ``(D, H, W)`` arrays."""
    if array.ndim == spatial_rank(card) + 1 and array.shape[-1] == 1:
        return array[..., 0]
    return array


def channel_count(array: np.ndarray, card: Card) -> int:
    """The number of channels of a sample whose one-channel axis was dropped."""
    return int(array.shape[-1]) if array.ndim == spatial_rank(card) + 1 else 1


def scale_to_uint8(array: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Map ``value_range`` linearly onto 0..255 (clipped, rounded)."""
    low, high = value_range
    scaled = (np.asarray(array, dtype=np.float64) - low) / (high - low)
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def display_pixels(image: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """``uint8`` as it is, ``uint16`` grey as it is, anything else scaled to 8 bits."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16 and (image.ndim == 2 or image.shape[-1] == 1):
        return image
    return scale_to_uint8(image, value_range)


def mask_pixels(mask: np.ndarray) -> np.ndarray:
    """A mask as unsigned integers, keeping label values.

    Boolean masks become 0/255 (the PNG convention for binary masks); integer (or integral
    float) masks keep their values as ``uint8`` when they fit, else ``uint16``; other float
    masks in ``[0, 1]`` (probabilities) are scaled to 0..255.
    """
    if mask.dtype == np.bool_:
        return mask.astype(np.uint8) * np.uint8(255)
    values = np.asarray(mask)
    if values.size == 0:
        return values.astype(np.uint8)
    low, high = float(values.min()), float(values.max())
    integral = values.dtype.kind in "iu" or bool(np.all(np.equal(np.mod(values, 1), 0)))
    if integral and low >= 0 and high <= 255:
        return values.astype(np.uint8)
    if integral and low >= 0 and high <= 65535:
        return values.astype(np.uint16)
    if values.dtype.kind == "f" and low >= 0.0 and high <= 1.0:
        return scale_to_uint8(values, (0.0, 1.0))
    raise GenerationFailedError(
        f"a mask of dtype {values.dtype} with values {low}..{high} cannot be stored as an "
        "image; use format npy"
    )


# -- writers ----------------------------------------------------------------------------------


class SampleWriter:
    """Writes the samples of one run in one format; safe to call from several threads."""

    format: ClassVar[str] = ""

    def __init__(self, card: Card, provenance: RunProvenance):
        self.card = card
        self.provenance = provenance

    @property
    def image_extension(self) -> str:
        """The extension of every image file of the run (masks may differ for PNG)."""
        return image_extension(self.format, self.card)

    def write(
        self, array: np.ndarray, stem: Path, record: Mapping[str, object], *, role: Role = "image"
    ) -> WrittenFile:
        """Write one sample (or mask) to ``<stem><extension>``; ``record`` is its manifest line."""
        raise NotImplementedError

    def adopt(
        self, source: Path, stem: Path, record: Mapping[str, object], *, role: Role = "image"
    ) -> WrittenFile | None:
        """Take over a file the package saved for this sample, or ``None`` when it cannot.

        Only a writer whose format the file already is can (see :meth:`PngWriter.adopt`); the
        caller then writes the sample's pixels itself.
        """
        return None

    def write_extra(self, name: str, array: np.ndarray, stem: Path) -> Path:
        """Write a further array of a sample as ``<stem>_<name>.npy``, whatever the format."""
        safe = _EXTRA_NAME.sub("_", name).strip("_") or "extra"
        return _write_npy(array, stem.with_name(f"{stem.name}_{safe}.npy"))


def _write_npy(array: np.ndarray, target: Path) -> Path:
    def save(path: Path) -> None:
        with path.open("wb") as handle:
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)

    return write_atomically(target, save)


def _suffixed(stem: Path, extension: str) -> Path:
    return stem.with_name(stem.name + extension)


class NpyWriter(SampleWriter):
    """``.npy`` files holding the arrays exactly as the package returned them."""

    format = "npy"

    def write(
        self, array: np.ndarray, stem: Path, record: Mapping[str, object], *, role: Role = "image"
    ) -> WrittenFile:
        return WrittenFile(_write_npy(array, _suffixed(stem, ".npy")))


def is_png_image(card: Card) -> bool:
    """Whether the card's samples are 2-D images PNG can hold (1, 3 or 4 channels)."""
    return card.output.depth is None and card.output.channels in (1, 3, 4)


def image_extension(format: str, card: Card) -> str:
    """The extension of every image file a run of ``card`` writes in ``format``."""
    if format == "png":
        return ".png" if is_png_image(card) else ".npy"
    extensions = {"npy": ".npy", "nifti": ".nii.gz", "dicom": ".dcm"}
    if format not in extensions:
        raise BadRequestError(f"format must be one of {', '.join(OUTPUT_FORMATS)}, not {format!r}")
    return extensions[format]


def png_with_text(data: bytes, texts: Mapping[str, str]) -> bytes:
    """PNG bytes with ``tEXt`` chunks for ``texts`` right after the header; nothing decoded.

    Text chunks with the same keywords are dropped, so the file says one thing. Raises
    :class:`ValueError` when ``data`` is not a well-formed PNG.
    """
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    keywords = {key.encode("latin-1", "replace") for key in texts}
    chunks: list[bytes] = []
    position = len(_PNG_SIGNATURE)
    while position < len(data):
        if position + 8 > len(data):
            raise ValueError("a PNG chunk is cut off")
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        end = position + 12 + length
        if end > len(data):
            raise ValueError("a PNG chunk is cut off")
        body = data[position + 8 : end - 4]
        if not (kind in _PNG_TEXT_CHUNKS and body.split(b"\0", 1)[0] in keywords):
            chunks.append(data[position:end])
        position = end
        if kind == b"IEND":
            break
    if not chunks or chunks[0][4:8] != b"IHDR" or chunks[-1][4:8] != b"IEND":
        raise ValueError("a PNG file without IHDR or IEND")
    added = []
    for key, text in texts.items():
        body = key.encode("latin-1", "replace") + b"\0" + text.encode("latin-1", "replace")
        crc = zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF
        added.append(struct.pack(">I4s", len(body), b"tEXt") + body + struct.pack(">I", crc))
    return _PNG_SIGNATURE + chunks[0] + b"".join(added) + b"".join(chunks[1:])


class PngWriter(SampleWriter):
    """PNG files (8-bit L/RGB/RGBA, 16-bit grey); samples PNG cannot hold go to ``.npy``.

    ``compress_level`` is zlib's level (0 to 9; ``None``: Pillow's default, 6).
    """

    format = "png"

    def __init__(self, card: Card, provenance: RunProvenance, compress_level: int | None = None):
        super().__init__(card, provenance)
        self.compress_level = compress_level

    def texts(self, record: Mapping[str, object], role: Role) -> dict[str, str]:
        """The text chunks of a sample's file: what made it, and which software wrote it."""
        # Latin-1 tEXt: model ids, versions and numbers are ASCII; other characters become "?".
        text = describe_sample(self.provenance, record, role)
        return {
            "Description": text.encode("latin-1", "replace").decode("latin-1"),
            "Software": f"medigan-client {__version__}",
        }

    def adopt(
        self, source: Path, stem: Path, record: Mapping[str, object], *, role: Role = "image"
    ) -> WrittenFile | None:
        """Move a PNG the package saved to ``<stem>.png``, adding the text chunks of
        :meth:`write`: its pixel data is neither decoded nor encoded again. ``None`` for a
        sample this run does not write as PNG (volumes) or a file that is not a PNG.
        """
        if self.card.output.depth is not None or source.suffix.lower() != ".png":
            return None
        try:
            payload = png_with_text(source.read_bytes(), self.texts(record, role))
        except ValueError:
            return None

        def save(path: Path) -> None:
            path.write_bytes(payload)

        written = write_atomically(_suffixed(stem, ".png"), save)
        source.unlink(missing_ok=True)
        return WrittenFile(written)

    def write(
        self, array: np.ndarray, stem: Path, record: Mapping[str, object], *, role: Role = "image"
    ) -> WrittenFile:
        from PIL import Image
        from PIL.PngImagePlugin import PngInfo

        sample = drop_single_channel(array, self.card)
        flat = sample.ndim == 2 or (sample.ndim == 3 and sample.shape[-1] in (3, 4))
        if self.card.output.depth is not None or not flat:
            return WrittenFile(_write_npy(array, _suffixed(stem, ".npy")))
        if role == "mask":
            pixels = mask_pixels(sample)
            if pixels.dtype == np.uint16 and pixels.ndim == 3:
                return WrittenFile(_write_npy(array, _suffixed(stem, ".npy")))
        else:
            pixels = display_pixels(sample, self.card.output.value_range)
        info = PngInfo()
        for key, text in self.texts(record, role).items():
            info.add_text(key, text)
        image = Image.fromarray(np.ascontiguousarray(pixels))
        options: dict[str, Any] = {}
        if self.compress_level is not None:
            options["compress_level"] = self.compress_level

        def save(path: Path) -> None:
            image.save(path, format="PNG", pnginfo=info, **options)

        return WrittenFile(write_atomically(_suffixed(stem, ".png"), save))


class NiftiWriter(SampleWriter):
    """``.nii.gz`` files through nibabel (see the module docstring for axes and affine)."""

    format = "nifti"

    def __init__(self, card: Card, provenance: RunProvenance):
        require_format_libraries(self.format)
        super().__init__(card, provenance)

    def nifti_array(self, array: np.ndarray) -> np.ndarray:
        """The sample in NIfTI axis order: ``(H, W)``, ``(H, W, D)``, channels on axis 5."""
        sample = drop_single_channel(array, self.card)
        channels = channel_count(sample, self.card)
        if sample.dtype == np.bool_:
            sample = sample.astype(np.uint8)
        volume = self.card.output.depth is not None
        if volume:  # (D, H, W[, C]) -> (H, W, D[, C]): slices on the third axis, as NIfTI has it
            sample = np.moveaxis(sample, 0, 2)
        if channels == 1:
            return np.ascontiguousarray(sample)
        height, width = sample.shape[0], sample.shape[1]
        depth = sample.shape[2] if volume else 1
        return np.ascontiguousarray(sample.reshape(height, width, depth, 1, channels))

    def write(
        self, array: np.ndarray, stem: Path, record: Mapping[str, object], *, role: Role = "image"
    ) -> WrittenFile:
        # nibabel's functions carry no annotations; typed as Any here rather than ignored.
        nibabel: Any = importlib.import_module("nibabel")
        data = self.nifti_array(array)
        affine = np.eye(4)
        image = nibabel.Nifti1Image(data, affine)
        header = image.header
        header.set_xyzt_units(xyz="mm")
        # Code 2 ("aligned"): the identity affine is read back as it is, not from pixdim.
        image.set_qform(affine, code=2)
        image.set_sform(affine, code=2)
        if data.ndim == 5:
            header.set_intent("vector", (), name="channels")
        if role == "image":
            low, high = self.card.output.value_range
            header["cal_min"] = low
            header["cal_max"] = high
        descrip = (
            f"SYNTHETIC {self.provenance.model_id}@{self.provenance.version} "
            f"seed {self.provenance.seed} index {record.get('index')}"
        )
        header["descrip"] = descrip.encode("ascii", "replace")[:79]
        # gzip with mtime 0: the same sample always gives the same bytes.
        payload = gzip.compress(image.to_bytes(), compresslevel=6, mtime=0)

        def save(path: Path) -> None:
            path.write_bytes(payload)

        return WrittenFile(write_atomically(_suffixed(stem, ".nii.gz"), save))


@dataclass(frozen=True)
class DicomSeries:
    """The study and series a run's DICOM files belong to (one of each per run, masks apart)."""

    uid_root: str | None
    study_instance_uid: str
    series_instance_uid: str
    mask_series_instance_uid: str
    created: datetime

    def manifest_fields(self, role: Role, sop_instance_uid: str) -> dict[str, object]:
        """What the manifest records about one DICOM file of this run."""
        series = self.mask_series_instance_uid if role == "mask" else self.series_instance_uid
        key = "mask_dicom" if role == "mask" else "dicom"
        return {
            key: {
                "study_instance_uid": self.study_instance_uid,
                "series_instance_uid": series,
                "sop_instance_uid": sop_instance_uid,
            }
        }


def normalise_uid_root(uid_root: str | None) -> str | None:
    """A valid UID root ending in ``.``, or ``None`` for UUID-derived ``2.25.`` UIDs."""
    if uid_root is None or uid_root.strip() in ("", UUID_UID_ROOT, UUID_UID_ROOT[:-1]):
        return None
    root = uid_root.strip()
    if not root.endswith("."):
        root += "."
    if len(root) > _MAX_UID_ROOT_LENGTH or not _UID_ROOT_PATTERN.match(root):
        raise BadRequestError(
            f"{uid_root!r} is not a DICOM UID root: digits separated by dots, no leading zeros, "
            f"at most {_MAX_UID_ROOT_LENGTH} characters (e.g. 1.2.826.0.1.3680043.10.999.)"
        )
    return root


def new_uid(uid_root: str | None) -> str:
    """A fresh random UID under ``uid_root`` (``None``: a UUID-derived ``2.25.`` UID)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(prefix=uid_root))


def new_dicom_series(uid_root: str | None = None) -> DicomSeries:
    """Fresh study and series UIDs for a run, under ``uid_root`` (validated)."""
    require_format_libraries("dicom")
    root = normalise_uid_root(uid_root)
    return DicomSeries(
        uid_root=root,
        study_instance_uid=new_uid(root),
        series_instance_uid=new_uid(root),
        mask_series_instance_uid=new_uid(root),
        created=datetime.now(UTC),
    )


def _long_string(text: str, limit: int = 63) -> str:
    """LO values hold 64 characters, padding included; keep the start, which names the model."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class _DicomPixels:
    pixels: np.ndarray
    frames: int | None
    channels: int
    bits: int
    rescale: tuple[float, float] | None  # (intercept, slope) back to the card's values


class DicomWriter(SampleWriter):
    """DICOM Secondary Capture files whose header says, everywhere it can, that they are synthetic.

    * SOP class Secondary Capture Image Storage (multi-frame SC classes for volumes),
      Conversion Type ``SYN`` (synthetic image), Modality ``OT``.
    * Image Type ``DERIVED\\SECONDARY\\SYNTHETIC`` (``...\\MASK`` for masks), Burned In
      Annotation and Recognizable Visual Features ``NO``.
    * Patient Name ``SYNTHETIC^MEDIGAN`` and Patient ID ``SYNTHETIC-MEDIGAN``: no real patient.
    * Series Description, Image Comments and Derivation Description start with ``SYNTHETIC`` and
      name model id, version, seed and sample index (Image Comments has the whole provenance).
    * Study, Series and SOP Instance UIDs are fresh (``pydicom.uid.generate_uid``) under the
      run's UID root; one study and series per run, masks in a second series.
    * ``MONOCHROME2`` for grey, ``RGB`` for colour; 8 bits for ``uint8``, 16 for ``uint16`` grey;
      ``float32`` grey is scaled to 16 bits with Rescale Slope/Intercept back to the card's
      values (single frames), ``float32`` colour to 8 bits. Alpha channels cannot be stored.
    """

    format = "dicom"

    def __init__(self, card: Card, provenance: RunProvenance, series: DicomSeries):
        require_format_libraries(self.format)
        if card.output.channels not in (1, 3):
            raise BadRequestError(
                f"DICOM stores grey or RGB images; {card.release_id} has "
                f"{card.output.channels} channels: use format png or npy"
            )
        super().__init__(card, provenance)
        self.series = series

    def dicom_pixels(self, array: np.ndarray, role: Role) -> _DicomPixels:
        """The sample as DICOM can store it, and how to read the stored values back."""
        sample = drop_single_channel(array, self.card)
        channels = channel_count(sample, self.card)
        if channels not in (1, 3):
            raise GenerationFailedError(
                f"DICOM stores grey or RGB pixels, not {channels} channels; use format npy"
            )
        frames = int(sample.shape[0]) if self.card.output.depth is not None else None
        rescale: tuple[float, float] | None = None
        if role == "mask":
            pixels = mask_pixels(sample)
            if channels == 3 and pixels.dtype != np.uint8:
                pixels = scale_to_uint8(pixels, (0.0, 65535.0))
        elif sample.dtype == np.uint8 or (sample.dtype == np.uint16 and channels == 1):
            pixels = sample
        elif channels == 1:
            low, high = self.card.output.value_range
            scaled = (np.asarray(sample, dtype=np.float64) - low) / (high - low)
            pixels = np.clip(np.rint(scaled * 65535.0), 0, 65535).astype(np.uint16)
            if frames is None:  # the multi-frame word SC class allows no rescaling
                rescale = (low, (high - low) / 65535.0)
        else:
            pixels = scale_to_uint8(sample, self.card.output.value_range)
        bits = 8 if pixels.dtype == np.uint8 else 16
        return _DicomPixels(np.ascontiguousarray(pixels), frames, channels, bits, rescale)

    def sop_class_uid(self, layout: _DicomPixels) -> str:
        """Secondary Capture for single frames, the matching multi-frame SC class for volumes."""
        if layout.frames is None:
            return SECONDARY_CAPTURE
        if layout.channels == 3:
            return MULTIFRAME_TRUE_COLOUR_SECONDARY_CAPTURE
        if layout.bits == 8:
            return MULTIFRAME_GREY_BYTE_SECONDARY_CAPTURE
        return MULTIFRAME_GREY_WORD_SECONDARY_CAPTURE

    def dataset(
        self, array: np.ndarray, record: Mapping[str, object], role: Role = "image"
    ) -> Dataset:
        """The DICOM data set of one sample, with a fresh SOP Instance UID."""
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

        layout = self.dicom_pixels(array, role)
        provenance = self.provenance
        series = self.series
        sop_class_uid = self.sop_class_uid(layout)
        sop_instance_uid = new_uid(series.uid_root)
        description = describe_sample(provenance, record, role)
        model = f"{provenance.model_id}@{provenance.version}"
        date = series.created.strftime("%Y%m%d")
        time = series.created.strftime("%H%M%S")

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(sop_class_uid)
        meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "MEDIGAN_CLIENT"

        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID = sop_class_uid
        ds.SOPInstanceUID = sop_instance_uid
        ds.ImageType = ["DERIVED", "SECONDARY", "SYNTHETIC"] + (["MASK"] if role == "mask" else [])
        # Patient: nobody. The name and ID say so to every viewer and PACS.
        ds.PatientName = SYNTHETIC_PATIENT_NAME
        ds.PatientID = SYNTHETIC_PATIENT_ID
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "SYNTHETIC: generated by a model, no patient"
        # Study and series: one of each per run.
        ds.StudyInstanceUID = series.study_instance_uid
        ds.StudyDate = date
        ds.StudyTime = time
        ds.StudyID = "SYNTHETIC"
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = _long_string(f"SYNTHETIC {model}")
        ds.Modality = "OT"
        ds.SeriesInstanceUID = (
            series.mask_series_instance_uid if role == "mask" else series.series_instance_uid
        )
        ds.SeriesNumber = 2 if role == "mask" else 1
        ds.SeriesDate = date
        ds.SeriesTime = time
        ds.SeriesDescription = _long_string(
            f"SYNTHETIC {'MASK ' if role == 'mask' else ''}{model} seed {provenance.seed}"
        )
        # Equipment: a secondary capture whose conversion type is "synthetic image".
        ds.Manufacturer = "medigan hub"
        ds.ConversionType = "SYN"
        ds.SecondaryCaptureDeviceManufacturer = "medigan hub"
        ds.SecondaryCaptureDeviceManufacturerModelName = _long_string(provenance.model_id)
        ds.SecondaryCaptureDeviceSoftwareVersions = [
            f"medigan-client {__version__}",
            _long_string(f"{model}"),
        ]
        # Image: where it came from, and that nothing in it identifies anyone.
        index = record.get("index")
        ds.InstanceNumber = int(index) + 1 if isinstance(index, int) else 1
        ds.ContentDate = date
        ds.ContentTime = time
        ds.PatientOrientation = ""
        ds.BurnedInAnnotation = "NO"
        ds.RecognizableVisualFeatures = "NO"
        ds.LossyImageCompression = "00"
        ds.ImageComments = description
        ds.DerivationDescription = description[:1024]
        # Pixels.
        pixels = layout.pixels
        ds.SamplesPerPixel = layout.channels
        ds.PhotometricInterpretation = "RGB" if layout.channels == 3 else "MONOCHROME2"
        if layout.channels == 3:
            ds.PlanarConfiguration = 0
        if layout.frames is None:
            ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
        else:
            ds.NumberOfFrames = layout.frames
            ds.Rows, ds.Columns = int(pixels.shape[1]), int(pixels.shape[2])
            ds.FrameIncrementPointer = _PAGE_NUMBER_VECTOR_TAG
            ds.PageNumberVector = list(range(1, layout.frames + 1))
        ds.BitsAllocated = layout.bits
        ds.BitsStored = layout.bits
        ds.HighBit = layout.bits - 1
        ds.PixelRepresentation = 0
        if layout.rescale is not None:
            intercept, slope = layout.rescale
            ds.RescaleIntercept = f"{intercept:.10g}"
            ds.RescaleSlope = f"{slope:.10g}"
            ds.RescaleType = "US"
        little_endian = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
        ds.PixelData = little_endian.tobytes()
        return ds

    def write(
        self, array: np.ndarray, stem: Path, record: Mapping[str, object], *, role: Role = "image"
    ) -> WrittenFile:
        ds = self.dataset(array, record, role)

        def save(path: Path) -> None:
            ds.save_as(path, enforce_file_format=True)

        target = write_atomically(_suffixed(stem, ".dcm"), save)
        return WrittenFile(target, self.series.manifest_fields(role, str(ds.SOPInstanceUID)))


def writer_for(
    format: str,
    card: Card,
    provenance: RunProvenance,
    *,
    dicom_series: DicomSeries | None = None,
    png_compress_level: int | None = None,
) -> SampleWriter:
    """The writer of ``format`` for a run; raises :class:`BadRequestError` before any work when
    the format is unknown, its library is missing, or the card's samples cannot be stored in it.
    ``png_compress_level`` is the PNG writer's zlib level (``None``: Pillow's default).
    """
    require_format_libraries(format)
    if format == "png":
        return PngWriter(card, provenance, compress_level=png_compress_level)
    if format == "npy":
        return NpyWriter(card, provenance)
    if format == "nifti":
        return NiftiWriter(card, provenance)
    return DicomWriter(card, provenance, dicom_series or new_dicom_series())
