"""What every zoo model's tests check, written once: the recipe's smoke run and the v2 package.

A model's test module (``tests/zoo/test_<name>.py``) describes the model in a ``ZooModel`` and
subclasses ``RecipeChecks`` and ``PackageChecks`` with it::

    MODEL = ZooModel(name="busi_gan_128", model_id="zoo/busi-gan-128", ...)

    class TestRecipe(RecipeChecks):
        model = MODEL

    class TestPackage(PackageChecks):
        model = MODEL

        def test_something_only_this_model_does(self, package: ModuleType) -> None: ...

pytest collects the inherited tests in every subclass (this module's classes are not named
``Test...``, so they are not collected here). Packages are imported the way the client imports
them: by path, under a fresh module name, never from the working directory.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib.util
import inspect
import itertools
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
MEDIGAN_GLOBAL = Path("anchors/medigan/global.json")
CARD_KEYS = {
    "schema_version",
    "model_id",
    "version",
    "runtime",
    "generation_arguments",
    "output",
    "artifacts",
    "provenance",
    "execution",
    "selection",
    "description",
    "compat",
}
# Where the images behind ``ZooModel.recorded`` were generated: float rounding (hence a grey
# level here and there) differs between CPU instruction sets and library versions.
RECORDED_ON = {"torch": "2.13.0+cpu", "numpy": "2.4.6", "cpu_capability": "AVX512"}
RECORDED_SEED = 123
RECORDED_COUNT = 6
_module_names = (f"zoo_package_under_test_{n}" for n in itertools.count())


def shared_dir() -> Path:
    """The shared folder: ``$MEDIGAN_SHARED_DIR`` if set, else ``<repo root>/../shared``."""
    override = os.environ.get("MEDIGAN_SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


def load_package(directory: Path) -> ModuleType:
    """Import the package in ``directory`` by path, under a fresh name, as the client would."""
    name = next(_module_names)
    spec = importlib.util.spec_from_file_location(
        name, directory / "__init__.py", submodule_search_locations=[str(directory)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # relative imports (.network) and dataclasses look it up there
    spec.loader.exec_module(module)
    return module


def unload_package(module: ModuleType) -> None:
    """Forget a package ``load_package`` imported, with its submodules."""
    for key in [
        k for k in sys.modules if k == module.__name__ or k.startswith(module.__name__ + ".")
    ]:
        del sys.modules[key]


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def read_log(path: Path) -> list[dict[str, str]]:
    """The rows of a recipe's ``training_log.csv``."""
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def images_sha256(images: npt.NDArray[np.uint8]) -> str:
    """Hex sha256 of an image array's bytes (C order)."""
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def recording_platform() -> dict[str, str]:
    """The library versions and CPU instruction set of this machine, as in ``RECORDED_ON``."""
    torch = pytest.importorskip("torch")
    return {
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
    }


def grid_tiles(path: Path, size: int, channels: int) -> list[npt.NDArray[np.int16]]:
    """The 64 tiles of an 8x8 sample grid of ``size`` px images with 2 px padding."""
    mode = "RGB" if channels == 3 else "L"
    grid = np.asarray(Image.open(path).convert(mode), dtype=np.int16)
    pad = 2
    assert grid.shape[:2] == (8 * (size + pad) + pad,) * 2
    tiles = []
    for index in range(64):
        row, col = divmod(index, 8)
        top, left = pad + row * (size + pad), pad + col * (size + pad)
        tiles.append(grid[top : top + size, left : left + size])
    return tiles


@dataclasses.dataclass(frozen=True)
class ZooModel:
    """What the shared checks need to know about one zoo model."""

    name: str
    model_id: str
    # the training archive, relative to the shared folder
    data_file: str
    # training images of the committed run and of a smoke run
    image_count: int
    smoke_image_count: int
    # one image's shape: (height, width) or (height, width, 3)
    image_shape: tuple[int, ...]
    max_weights_bytes: int = 8_000_000
    # the package function that returns the loaded network, whose state is the weights file's
    # (None: the weights file holds ``extra_tensors`` only)
    loader: str | None = "load_generator"
    # generation arguments that keep test calls quick (a diffusion model's sampler steps)
    quick: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # log columns every smoke epoch must fill with finite numbers (default: a GAN's)
    log_keys: tuple[str, ...] = ("loss_d", "loss_g", "d_real", "d_fake")
    # tensors in the weights file besides the network's state
    extra_tensors: frozenset[str] = frozenset()
    # generation arguments the client may send (strings, as on a command line), each a call
    client_calls: tuple[Mapping[str, str], ...] = ({},)
    # (arguments, sha256) of generate(RECORDED_COUNT, seed=RECORDED_SEED, **arguments) recorded
    # before the package learnt per-sample seeds; the images must not change without them. A
    # sha256 may be several, separated by "|": the same instruction set on another CPU can
    # round a grey level differently.
    recorded: tuple[tuple[Mapping[str, Any], str], ...] = ()
    # grey levels a committed grid tile may differ from a fresh generation by (float rounding)
    grid_slack: int = 2
    # generation arguments whose package default is None, standing for the card's default
    defaults_by_card: frozenset[str] = frozenset()
    # a conditional model's sample grid: the same 32 seeded latents under each condition
    grid_conditions: tuple[str, ...] = ()

    @property
    def recipe_dir(self) -> Path:
        """``zoo/<name>``."""
        return REPO_ROOT / "zoo" / self.name

    @property
    def package_dir(self) -> Path:
        """The committed package."""
        return self.recipe_dir / "package"

    @property
    def data_path(self) -> Path:
        """Where the training archive is expected."""
        return shared_dir() / self.data_file

    def card(self, package_dir: Path | None = None) -> dict[str, Any]:
        """The committed card, or the one in ``package_dir``."""
        return read_json((package_dir or self.package_dir) / "card.json")

    def summary(self) -> dict[str, Any]:
        """The committed ``training_summary.json``."""
        return read_json(self.recipe_dir / "training_summary.json")

    def run_recipe(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``python -m zoo.<name>.train *args`` from the repository root."""
        return subprocess.run(
            [sys.executable, "-m", f"zoo.{self.name}.train", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def require_data(self) -> None:
        """Skip the calling test when the training archive is missing."""
        if not self.data_path.exists():
            pytest.skip(f"shared training data {self.data_file} not found (set MEDIGAN_SHARED_DIR)")


# A smoke training run is a child process per test: slow, so not in `make test-fast`.
@pytest.mark.integration
@pytest.mark.shared_data
class RecipeChecks:
    """The recipe's ``--smoke`` run trains, checkpoints, logs, resumes and exports a package."""

    model: ClassVar[ZooModel]

    @pytest.fixture(scope="class")
    @classmethod
    def smoke_run(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        cls.model.require_data()
        out = tmp_path_factory.mktemp("smoke")
        result = cls.model.run_recipe("--smoke", "--out", str(out))
        assert result.returncode == 0, result.stderr
        return out

    def test_smoke_recipe_writes_checkpoint_log_and_a_working_package(
        self, smoke_run: Path, import_package: Callable[[Path], ModuleType]
    ) -> None:
        assert (smoke_run / "checkpoint.pt").stat().st_size > 0
        rows = read_log(smoke_run / "training_log.csv")
        assert [int(row["epoch"]) for row in rows] == [1, 2]
        for row in rows:
            for key in self.model.log_keys:
                assert math.isfinite(float(row[key])), key
        summary = read_json(smoke_run / "training_summary.json")
        assert summary["smoke"] is True
        assert summary["image_count"] == self.model.smoke_image_count
        assert summary["steps"] == int(rows[-1]["steps"]) > 0
        smoke_card = self.model.card(smoke_run / "package")
        assert smoke_card["provenance"]["training"]["steps"] == summary["steps"]
        package = import_package(smoke_run / "package")
        images = package.generate(3, seed=1, **self.model.quick)
        assert images.shape == (3, *self.model.image_shape)
        assert images.dtype == np.uint8

    def test_smoke_recipe_resumes_to_the_same_weights(
        self, smoke_run: Path, tmp_path: Path
    ) -> None:
        first = self.model.run_recipe("--smoke", "--out", str(tmp_path), "--epochs", "1")
        assert first.returncode == 0, first.stderr
        second = self.model.run_recipe("--smoke", "--out", str(tmp_path))
        assert second.returncode == 0, second.stderr
        assert "resuming" in second.stdout
        assert [row["epoch"] for row in read_log(tmp_path / "training_log.csv")] == ["1", "2"]
        resumed = (tmp_path / "package" / "weights.safetensors").read_bytes()
        assert resumed == (smoke_run / "package" / "weights.safetensors").read_bytes()

    def test_a_checkpoint_of_other_settings_is_refused(
        self, smoke_run: Path, tmp_path: Path
    ) -> None:
        config = read_json(self.model.recipe_dir / "config.json")
        config["seed"] += 1
        changed = tmp_path / "config.json"
        changed.write_text(json.dumps(config), encoding="utf-8")
        result = self.model.run_recipe("--smoke", "--out", str(smoke_run), "--config", str(changed))
        assert result.returncode != 0
        assert "other settings (['seed'])" in result.stderr


def grey_levels_apart(first: npt.NDArray[np.uint8], second: npt.NDArray[np.uint8]) -> int:
    """The largest difference between two images (or stacks) in grey levels."""
    return int(np.abs(first.astype(np.int16) - second.astype(np.int16)).max())


class PackageChecks:
    """The committed v2 package keeps the card's promises and the client's contract."""

    model: ClassVar[ZooModel]

    @pytest.fixture(scope="class")
    @classmethod
    def package(cls) -> Iterator[ModuleType]:
        module = load_package(cls.model.package_dir)
        yield module
        unload_package(module)

    def grid_images(self, package: ModuleType) -> npt.NDArray[np.uint8]:
        """What the committed ``samples.png`` shows, generated afresh (overridden by models
        whose grid uses other sampler settings)."""
        seed = self.model.summary()["config"]["sample_seed"]
        conditions = self.model.grid_conditions
        if conditions:
            count = 64 // len(conditions)
            return np.concatenate(
                [package.generate(count, seed=seed, condition=name) for name in conditions]
            )
        images: npt.NDArray[np.uint8] = package.generate(64, seed=seed, **self.model.quick)
        return images

    def test_generate_returns_uint8_images_of_the_card_shape(self, package: ModuleType) -> None:
        output = self.model.card()["output"]
        images = package.generate(5, seed=3, **self.model.quick)
        channels = (output["channels"],) if output["channels"] > 1 else ()
        expected = (output["height"], output["width"], *channels)
        assert images.shape == (5, *expected) == (5, *self.model.image_shape)
        assert images.dtype == np.uint8
        assert images.std() > 10  # images, not a constant field

    def test_generate_is_reproducible_by_seed_from_any_working_directory(
        self,
        package: ModuleType,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        import_package: Callable[[Path], ModuleType],
    ) -> None:
        first = package.generate(3, seed=11, **self.model.quick)
        assert np.array_equal(first, package.generate(3, seed=11, **self.model.quick))
        assert not np.array_equal(first, package.generate(3, seed=12, **self.model.quick))
        monkeypatch.chdir(tmp_path)
        fresh = import_package(self.model.package_dir)
        assert np.array_equal(fresh.generate(3, seed=11, **self.model.quick), first)
        assert list(tmp_path.iterdir()) == []

    def test_generate_rejects_a_bad_count_and_device(self, package: ModuleType) -> None:
        assert package.generate(0, seed=0).shape == (0, *self.model.image_shape)
        assert package.generate(1, seed=0, device="auto", **self.model.quick).shape == (
            1,
            *self.model.image_shape,
        )
        for count in (-1, 1.5, True):
            with pytest.raises(ValueError, match="num_samples"):
                package.generate(count, seed=0)
        with pytest.raises(ValueError, match="device"):
            package.generate(1, seed=0, device="tpu")

    def test_per_sample_seeds_give_each_image_its_own_seed(self, package: ModuleType) -> None:
        # The network runs over the whole call, so another batch may round a value the other way:
        # images agree to one grey level, not bit for bit (the price of batched throughput).
        seeds = [11, 2**31 - 5, 0]
        together = package.generate(3, seed=99, seeds=seeds, **self.model.quick)
        one_by_one = [
            package.generate(1, seed=k, seeds=[s], **self.model.quick) for k, s in enumerate(seeds)
        ]
        assert together.shape == (3, *self.model.image_shape)
        assert grey_levels_apart(together, np.concatenate(one_by_one)) <= 1
        # the same seed in another call, at another position, gives the same image
        again = package.generate(2, seed=5, seeds=[7, seeds[1]], **self.model.quick)
        assert grey_levels_apart(again[1], together[1]) <= 1
        assert grey_levels_apart(together[0], together[2]) > 1
        # the same call again is the same, bit for bit
        assert np.array_equal(
            package.generate(3, seed=99, seeds=seeds, **self.model.quick), together
        )

    def test_per_sample_seeds_are_checked(self, package: ModuleType) -> None:
        for seeds in ([1, 2], [1, 2, 3, 4], [1, -2, 3], [1, True, 3], [1, 2.0, 3]):
            with pytest.raises(ValueError, match="seeds"):
                package.generate(3, seed=0, seeds=seeds, **self.model.quick)
        assert package.generate(0, seed=0, seeds=[]).shape == (0, *self.model.image_shape)

    def test_without_seeds_the_images_are_those_recorded_before_seeds(
        self, package: ModuleType
    ) -> None:
        assert self.model.recorded, "record generate()'s sha256 for this model"
        platform = recording_platform()
        if platform != RECORDED_ON:
            pytest.skip(f"images recorded on {RECORDED_ON}, this is {platform}")
        for arguments, expected in self.model.recorded:
            images = package.generate(RECORDED_COUNT, seed=RECORDED_SEED, **arguments)
            assert images_sha256(images) in expected.split("|"), arguments

    def test_committed_sample_grid_is_what_the_package_generates(self, package: ModuleType) -> None:
        generated = self.grid_images(package).astype(np.int16)
        channels = self.model.image_shape[2] if len(self.model.image_shape) == 3 else 1
        tiles = grid_tiles(
            self.model.recipe_dir / "samples.png", self.model.image_shape[0], channels
        )
        for tile, image in zip(tiles, generated, strict=True):
            assert np.abs(tile - image).max() <= self.model.grid_slack

    def test_weights_are_the_network_only_and_small(self, package: ModuleType) -> None:
        from safetensors.numpy import load_file

        weights = self.model.package_dir / "weights.safetensors"
        assert weights.stat().st_size <= self.model.max_weights_bytes
        names = set(load_file(str(weights)))
        network_state: set[str] = set()
        if self.model.loader is not None:
            network_state = set(getattr(package, self.model.loader)("cpu").state_dict())
        assert names == network_state | self.model.extra_tensors

    def test_card_has_the_contract_fields_and_matches_the_package_and_the_run(
        self, package: ModuleType
    ) -> None:
        card = self.model.card()
        assert set(card) == CARD_KEYS
        assert card["schema_version"] == "1.0"
        assert card["model_id"] == self.model.model_id
        assert card["runtime"]["kind"] == "v2"
        assert card["artifacts"] == []
        parameters = inspect.signature(getattr(package, card["runtime"]["entry_point"])).parameters
        for argument in card["generation_arguments"]:
            parameter = parameters[argument["name"]]
            assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
            if argument["name"] in self.model.defaults_by_card:
                assert parameter.default is None
            else:
                assert parameter.default == argument["default"]
        assert parameters["seeds"].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters["seeds"].default is None
        summary = self.model.summary()
        training = card["provenance"]["training"]
        keys = ("epochs", "steps", "seed", "wall_time_seconds")
        assert {k: training[k] for k in keys} == {k: summary[k] for k in keys}
        image_count = card["provenance"]["training_data"][0]["image_count"]
        assert image_count == summary["image_count"] == self.model.image_count
        assert card["description"]["provided_after_epoch"] == summary["epochs"]

    def test_card_medigan_blocks_use_the_medigan_key_sets(self) -> None:
        anchors = shared_dir() / MEDIGAN_GLOBAL
        if not anchors.exists():
            pytest.skip(f"medigan global.json anchor not found at {anchors}")
        entry = read_json(anchors)["00001_DCGAN_MMG_CALC_ROI"]
        card = self.model.card()
        for block in ("execution", "selection", "description"):
            assert set(card[block]) == set(entry[block]), block
        assert set(card["execution"]["generate_method"]) == set(
            entry["execution"]["generate_method"]
        )

    def test_card_validates_and_the_package_keeps_its_promises_to_the_client(
        self, package: ModuleType
    ) -> None:
        validation = pytest.importorskip("medigan_catalog.validation")
        raw = self.model.card()
        card = validation.validate_card(raw)  # schema plus the cross-field rules
        assert card.model_id == self.model.model_id
        # nothing in the committed card is dropped or rewritten (the schema may add defaults)
        assert_kept(raw, card.to_json())
        for given in self.model.client_calls:
            arguments = validation.resolve_generation_arguments(card, dict(given))
            images = package.generate(4, seed=21, device="cpu", **arguments)
            problems = validation.check_generation_output(
                card,
                shape=images.shape,
                dtype=str(images.dtype),
                minimum=float(images.min()),
                maximum=float(images.max()),
                num_samples=4,
            )
            assert problems == [], given


def assert_kept(given: object, parsed: object, where: str = "card") -> None:
    """Every entry of ``given`` is in ``parsed`` with the same value; ``parsed`` may add keys."""
    if isinstance(given, dict) and isinstance(parsed, dict):
        for key, value in given.items():
            assert key in parsed, f"{where}.{key} was dropped"
            assert_kept(value, parsed[key], f"{where}.{key}")
    else:
        assert given == parsed, f"{where} was rewritten: {given!r} -> {parsed!r}"


def assert_less_diverse(
    package: ModuleType, argument: str, low: float, high: float, **fixed: Any
) -> None:
    """A lower value of ``argument`` (truncation, temperature) gives less varied images."""
    wide = package.generate(64, seed=7, **{argument: high}, **fixed).astype(np.float64)
    narrow = package.generate(64, seed=7, **{argument: low}, **fixed).astype(np.float64)
    assert narrow.std(axis=0).mean() < wide.std(axis=0).mean()


def assert_rejected(package: ModuleType, match: str, calls: Sequence[Mapping[str, Any]]) -> None:
    """Each call's arguments make ``generate`` raise a ValueError naming ``match``."""
    for arguments in calls:
        with pytest.raises(ValueError, match=match):
            package.generate(1, seed=0, **arguments)
