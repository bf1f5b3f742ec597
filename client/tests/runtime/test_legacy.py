"""medigan-legacy packages run unchanged: their paths, their return shapes, their saved files."""

from __future__ import annotations

import io
import json
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.generate import GenerationOptions, generate_from_package
from medigan_client.runtime import Runner, open_runner
from medigan_client.runtime.legacy import resolve_legacy_paths, split_legacy_options

from .conftest import MakePackage, PackageOnDisk

# Written in medigan's template: generate(model_file, num_samples, output_path, save_images,
# **custom); ``form`` picks which of the documented return shapes it uses.
TEMPLATE_PACKAGE = """
import os

import numpy as np
from PIL import Image


def generate(model_file, num_samples, output_path, save_images=False, form="list",
             input_path="models/00099_TEST/inputs", read_hardcoded=False):
    with open(model_file) as handle:
        offset = int(handle.read().strip())
    with open(os.path.join(input_path, "value.txt")) as handle:
        offset += int(handle.read().strip())
    if read_hardcoded:
        # Some packages open files relative to medigan's models/ folder in their own code.
        with open("models/00099_TEST/00099_TEST/DCGAN.pt") as handle:
            offset += 10 * int(handle.read().strip())
    images = [np.full((4, 4), offset + i, dtype=np.uint8) for i in range(num_samples)]
    masks = [np.full((4, 4), 255, dtype=np.uint8) for _ in range(num_samples)]
    others = [np.full((2,), i, dtype=np.float32) for i in range(num_samples)]
    labels = ["benign" if i % 2 == 0 else "malign" for i in range(num_samples)]
    if save_images or form == "saved":
        for i, (image, mask) in enumerate(zip(images, masks)):
            Image.fromarray(image).save(os.path.join(output_path, f"image_{i}.png"))
            Image.fromarray(mask).save(os.path.join(output_path, f"mask_{i}.png"))
        return None
    if form == "list":
        return images
    if form == "pairs":
        return [(image, mask) for image, mask in zip(images, masks)]
    if form == "triples":
        return list(zip(images, masks, others))
    if form == "quadruples":
        return list(zip(images, masks, others, labels))
    if form == "columns":
        return (images, masks, others, labels)
    return {"unexpected": "a dict"}
"""

LEGACY_MODES = ["inprocess", "process"]


@pytest.fixture
def template_package(make_package: MakePackage) -> PackageOnDisk:
    package = make_package(
        "extracted",
        TEMPLATE_PACKAGE,
        model_id="medigan/00099_TEST",
        version="0.0.1",
        kind="medigan-legacy",
        execution={"package_name": "00099_TEST", "model_name": "DCGAN", "extension": ".pt"},
        wrap="00099_TEST",
    )
    inputs = package.directory / "00099_TEST" / "inputs"
    inputs.mkdir()
    (inputs / "value.txt").write_text("10\n")
    return package


@pytest.fixture(params=LEGACY_MODES)
def legacy_runner(
    request: pytest.FixtureRequest,
    template_package: PackageOnDisk,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Runner]:
    # Never the package's folder: the caller's working directory must not matter.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with open_runner(
        template_package.directory, template_package.card, isolation=request.param
    ) as runner:
        yield runner


def _args(**extra: object) -> dict[str, object]:
    return {"input_path": "models/00099_TEST/inputs", **extra}


@pytest.mark.parametrize(
    ("form", "has_masks", "has_other", "has_labels"),
    [
        ("list", False, False, False),
        ("pairs", True, False, False),
        ("triples", True, True, False),
        ("quadruples", True, True, True),
        ("columns", True, True, True),
        ("saved", True, False, False),
    ],
)
def test_every_return_shape_becomes_a_batch(
    legacy_runner: Runner, form: str, has_masks: bool, has_other: bool, has_labels: bool
) -> None:
    batch = legacy_runner.generate_batch(3, seed=1, device="cpu", args=_args(form=form))
    # 7 from the weights file (model_file) + 10 from models/00099_TEST/inputs/value.txt.
    assert batch.images.shape == (3, 4, 4)
    assert batch.images[:, 0, 0].tolist() == [17, 18, 19]
    assert (batch.masks is not None) == has_masks
    if batch.masks is not None:
        assert batch.masks.shape == (3, 4, 4) and int(batch.masks.min()) == 255
    assert ("other" in batch.extras) == has_other
    if has_other:
        assert batch.extras["other"][:, 0].tolist() == [0.0, 1.0, 2.0]
    assert (batch.labels is not None) == has_labels
    if batch.labels is not None:
        assert batch.labels.tolist() == ["benign", "malign", "benign"]


def test_a_result_that_is_not_samples_fails(legacy_runner: Runner) -> None:
    with pytest.raises(GenerationFailedError, match="the package returned dict"):
        legacy_runner.generate_batch(1, seed=0, device="cpu", args=_args(form="other"))


def test_paths_hard_coded_below_models_resolve_in_a_child_process(
    template_package: PackageOnDisk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_runner(
        template_package.directory, template_package.card, isolation="process"
    ) as runner:
        batch = runner.generate_batch(1, seed=0, device="cpu", args=_args(read_hardcoded=True))
    assert int(batch.images[0, 0, 0]) == 87


@pytest.mark.parametrize("isolation", LEGACY_MODES)
def test_save_images_writes_into_the_callers_output_path(
    template_package: PackageOnDisk,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    isolation: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_runner(template_package.directory, template_package.card, isolation=isolation) as r:
        batch = r.generate_batch(
            2, seed=0, device="cpu", args=_args(save_images=True, output_path="saved")
        )
    saved = sorted(p.name for p in (tmp_path / "saved").iterdir())
    assert saved == ["image_0.png", "image_1.png", "mask_0.png", "mask_1.png"]
    assert batch.images[:, 0, 0].tolist() == [17, 18]
    assert batch.masks is not None and batch.masks.shape == (2, 4, 4)


def test_scratch_output_folders_do_not_pile_up(
    template_package: PackageOnDisk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tmp").mkdir()
    # tempfile reads TMPDIR again once its cached choice is cleared.
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)
    with open_runner(
        template_package.directory, template_package.card, isolation="inprocess"
    ) as runner:
        for _ in range(3):
            runner.generate_batch(1, seed=0, device="cpu", args=_args(form="saved"))
    assert list((tmp_path / "tmp").iterdir()) == []


def test_models_paths_are_rewritten_inside_strings_and_lists(tmp_path: Path) -> None:
    package_dir = tmp_path / "package"
    root = package_dir / "00003_CYCLEGAN"
    (package_dir / "images").mkdir(parents=True)
    (root / "checkpoints").mkdir(parents=True)
    ids = ["00003_CYCLEGAN_MMG_DENSITY_FULL", "00003_CYCLEGAN"]

    def resolve(value: object) -> object:
        return resolve_legacy_paths(value, package_dir=package_dir, root=root, model_ids=ids)

    assert resolve("models/00003_CYCLEGAN_MMG_DENSITY_FULL/images") == str(package_dir / "images")
    assert resolve("./models/00003_CYCLEGAN/checkpoints") == str(root / "checkpoints")
    assert resolve(["models/00003_CYCLEGAN/images/a.png"]) == [str(package_dir / "images/a.png")]
    assert resolve("models/other_model/images") == "models/other_model/images"
    assert resolve("input/") == "input/"
    assert resolve(7) == 7


def test_output_options_are_checked() -> None:
    custom, options = split_legacy_options({"save_images": False, "gpu_id": 0})
    assert custom == {"gpu_id": 0}
    assert options.output_path is None and options.save_images is False
    with pytest.raises(BadRequestError, match="needs an output_path"):
        split_legacy_options({"save_images": True})
    with pytest.raises(BadRequestError, match="true or false"):
        split_legacy_options({"save_images": "yes", "output_path": "out"})


def test_loose_numpy_arrays_saved_as_npy_are_read_back(make_package: MakePackage) -> None:
    package = make_package(
        "npy",
        "import os\n"
        "import numpy as np\n"
        "def generate(model_file, num_samples, output_path, save_images=False, brightness=0):\n"
        "    for i in range(num_samples):\n"
        "        np.save(os.path.join(output_path, f'volume_{i}.npy'), np.full((2, 3, 3), i))\n",
        kind="medigan-legacy",
    )
    with open_runner(package.directory, package.card, isolation="inprocess") as runner:
        batch = runner.generate_batch(12, seed=0, device="cpu", args={})
    assert batch.images.shape == (12, 2, 3, 3)
    assert batch.images[:, 0, 0, 0].tolist() == list(range(12)), "natural order: 2 before 10"
    assert np.all(batch.images[11] == 11)


# Saves its PNGs at zlib level 1 with its own text, its masks as 1-bit PNGs, and returns None.
SAVING_PACKAGE = """
import os

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo


def generate(model_file, num_samples, output_path, save_images=False, brightness=0):
    for i in range(num_samples):
        info = PngInfo()
        info.add_text("Description", "the package's own words")
        image = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3 + i
        Image.fromarray(image).save(
            os.path.join(output_path, f"{i}.png"), compress_level=1, pnginfo=info
        )
        Image.fromarray(image > 100).save(os.path.join(output_path, f"{i}_mask.png"))
"""


def _png_data(data: bytes) -> bytes:
    """The concatenated IDAT payloads of a PNG file: its compressed pixels."""
    position, payload = 8, b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        if kind == b"IDAT":
            payload += data[position + 8 : position + 8 + length]
        position += 12 + length
    return payload


@pytest.mark.parametrize("isolation", LEGACY_MODES)
def test_pngs_a_package_saved_are_moved_into_the_run_not_encoded_again(
    make_package: MakePackage, tmp_path: Path, isolation: str
) -> None:
    package = make_package("saving", SAVING_PACKAGE, kind="medigan-legacy")
    out = tmp_path / "run"
    options = GenerationOptions(batch_size=4, isolation=isolation, progress=False)
    generate_from_package(package.card, package.directory, 5, out, options)
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [line["file"] for line in lines] == [f"{i:06d}.png" for i in range(5)]
    for index in range(5):
        expected = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3 + index % 4
        data = (out / f"{index:06d}.png").read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            assert np.array_equal(np.asarray(image), expected)
            assert image.text["Description"].startswith("SYNTHETIC image generated by")
        encoded = io.BytesIO()
        Image.fromarray(expected).save(encoded, format="PNG", compress_level=1)
        # The package's own zlib stream (level 1), where the client's writer would use level 6.
        assert _png_data(data) == _png_data(encoded.getvalue())
        # 1-bit masks are not what the client writes (0/255 grey): those are encoded again.
        with Image.open(out / f"{index:06d}_mask.png") as mask:
            assert mask.mode == "L"
            assert np.array_equal(np.asarray(mask), np.where(expected > 100, 255, 0))
