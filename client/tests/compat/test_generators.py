"""``Generators.generate`` and friends, driven as medigan's README and tutorial drive them.

The models are packages written in medigan's template (see the compat conftest), published on
the fake hub and run through the client's runtime, from working directories that hold nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from medigan_client.compat import ModelExecutor
from medigan_client.errors import BadRequestError, NotFoundError

if TYPE_CHECKING:
    from conftest import FakeHub, MakeGenerators

# The test package's weights file holds 3; images are noise in [brightness, brightness + 20).
OFFSET = 3


def _files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory: no config/, no models/, nothing medigan relied on."""
    folder = tmp_path / "some" / "working" / "directory"
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    return folder


def test_readme_generate_writes_files_below_the_working_directory(
    images_model: str, make_generators: MakeGenerators, elsewhere: Path
) -> None:
    generators = make_generators()
    # README: generators.generate(model_id=1, num_samples=6, install_dependencies=True)
    assert generators.generate(model_id=901, num_samples=6, install_dependencies=True) is None
    runs = list((elsewhere / "output" / images_model).iterdir())
    assert len(runs) == 1
    assert _files(runs[0]) == [f"batch_0_{index}.png" for index in range(6)]
    # Only medigan's output folder appeared; the package came from the client's cache.
    assert _files(elsewhere) == ["output"]


def test_a_multiple_of_the_batch_size_makes_no_empty_batch(
    images_model: str, make_generators: MakeGenerators, elsewhere: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    # The package raises for num_samples=0, which medigan asked for as a third batch here.
    make_generators().generate(images_model, num_samples=64, output_path=str(output))
    names = _files(output)
    assert len(names) == 64
    assert {re.match(r"batch_(\d+)_", name).group(1) for name in names} == {"0", "1"}  # type: ignore[union-attr]


def test_save_images_false_returns_medigans_list_of_arrays(
    images_model: str, make_generators: MakeGenerators, elsewhere: Path
) -> None:
    samples = make_generators().generate(
        model_id="00901", num_samples=5, save_images=False, brightness=10, batch_size=2
    )
    assert isinstance(samples, list)
    assert len(samples) == 5
    for sample in samples:
        assert isinstance(sample, np.ndarray)
        assert sample.shape == (16, 16, 1)
        assert sample.dtype == np.uint8
        assert int(sample.min()) >= 10 + OFFSET and int(sample.max()) < 30 + OFFSET
    # Nothing is written in memory mode (medigan still made an empty output folder).
    assert _files(elsewhere) == []


def test_a_package_returning_masks_gives_image_mask_tuples(
    masks_model: str, make_generators: MakeGenerators, elsewhere: Path, tmp_path: Path
) -> None:
    generators = make_generators()
    pairs = generators.generate(masks_model, num_samples=3, save_images=False)
    assert len(pairs) == 3
    for image, mask in pairs:
        assert image.shape == mask.shape == (16, 16, 1)
        assert set(np.unique(mask).tolist()) == {0, 255}
    output = tmp_path / "masks"
    generators.generate(masks_model, num_samples=3, output_path=str(output))
    names = _files(output)
    assert [name for name in names if "mask" in name] == [
        f"batch_0_{index}_mask.png" for index in range(3)
    ]
    assert len(names) == 6


def test_the_generate_function_saves_by_default_and_takes_overrides(
    images_model: str, make_generators: MakeGenerators, elsewhere: Path, tmp_path: Path
) -> None:
    output = tmp_path / "gen"
    # Tutorial: gen_function = generators.get_generate_function(model_id=..., num_samples=3)
    gen_function = make_generators().get_generate_function(
        model_id=images_model, num_samples=3, output_path=str(output)
    )
    assert gen_function() is None
    assert len(_files(output)) == 3
    samples = gen_function(save_images=False, num_samples=2, brightness=200)
    assert len(samples) == 2
    assert int(samples[0].min()) >= 200
    # The overrides were for that call only.
    assert len(gen_function(save_images=False)) == 3


def test_find_model_and_generate_needs_exactly_one_match(
    images_model: str,
    masks_model: str,
    make_generators: MakeGenerators,
    elsewhere: Path,
    tmp_path: Path,
) -> None:
    generators = make_generators()
    output = tmp_path / "found"
    generators.find_model_and_generate(
        values=["medigan-compat-test", "dcgan"], num_samples=2, output_path=str(output)
    )
    assert len(_files(output)) == 2
    with pytest.raises(BadRequestError, match="2 models match") as raised:
        generators.find_model_and_generate(values=["medigan-compat-test"], num_samples=1)
    assert raised.value.detail == {"matching_models": [images_model, masks_model]}
    with pytest.raises(NotFoundError, match="0 models match"):
        generators.find_model_and_generate(values=["nothing like this"])


def test_find_models_rank_and_generate_uses_the_best_ranked_model(
    images_model: str,
    masks_model: str,
    make_generators: MakeGenerators,
    elsewhere: Path,
    tmp_path: Path,
) -> None:
    generators = make_generators()
    samples = generators.find_models_rank_and_generate(
        values=["medigan-compat-test"], metric="FID", order="asc", num_samples=2, save_images=False
    )
    # The masks model has the lower FID (7.5 < 42), so pairs come back.
    assert [len(sample) for sample in samples] == [2, 2]
    with pytest.raises(NotFoundError, match="SSIM"):
        generators.find_models_rank_and_generate(values=["medigan-compat-test"], metric="SSIM")


def test_a_seed_makes_generation_repeatable(
    images_model: str, make_generators: MakeGenerators, elsewhere: Path
) -> None:
    first = make_generators(seed=7).generate(images_model, num_samples=4, save_images=False)
    second = make_generators(seed=7).generate(images_model, num_samples=4, save_images=False)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_executors_are_prepared_once_and_listed(
    images_model: str, make_generators: MakeGenerators, hub: FakeHub, elsewhere: Path
) -> None:
    generators = make_generators()
    executor = generators.get_model_executor(901)
    assert isinstance(executor, ModelExecutor)
    assert generators.get_model_executor(images_model) is executor
    assert generators.is_model_executor_already_added("00901")
    assert len(generators) == 1
    assert generators[0] is executor
    assert executor.generate_method_name == "generate"
    assert Path(executor.serialised_model_file_path).name == "weights.pt"
    downloads = [r for r in hub.state.log if "/artifacts/" in r.path and r.method == "GET"]
    generators.generate(901, num_samples=1, save_images=False)
    assert [r for r in hub.state.log if "/artifacts/" in r.path and r.method == "GET"] == downloads


def test_bad_sample_counts_are_clear_errors(
    images_model: str, make_generators: MakeGenerators, elsewhere: Path
) -> None:
    generators = make_generators()
    assert generators.generate(images_model, num_samples=0, save_images=False) == []
    with pytest.raises(BadRequestError, match="num_samples"):
        generators.generate(images_model, num_samples=-1, save_images=False)
    with pytest.raises(BadRequestError, match="batch_size"):
        generators.generate(images_model, num_samples=2, save_images=False, batch_size=0)


def test_a_legacy_package_runs_in_a_child_process_too(
    images_model: str, make_generators: MakeGenerators, elsewhere: Path, tmp_path: Path
) -> None:
    generators = make_generators(isolation="process")
    output = tmp_path / "child"
    generators.generate(images_model, num_samples=3, output_path=str(output))
    assert len(_files(output)) == 3
    samples = generators.generate(images_model, num_samples=2, save_images=False)
    assert [sample.shape for sample in samples] == [(16, 16, 1), (16, 16, 1)]


def test_our_own_v2_models_generate_through_the_same_calls(
    published: dict[str, object], make_generators: MakeGenerators, elsewhere: Path, tmp_path: Path
) -> None:
    generators = make_generators(seed=1)
    samples = generators.generate("zoo/noise-8", num_samples=3, save_images=False, brightness=50)
    assert [sample.shape for sample in samples] == [(8, 8)] * 3
    output = tmp_path / "v2"
    generators.generate("zoo/noise-8", num_samples=5, output_path=str(output), batch_size=2)
    assert _files(output) == sorted(
        [f"batch_0_{i}.png" for i in range(2)]
        + [f"batch_1_{i}.png" for i in range(2)]
        + ["batch_2_0.png"]
    )
    with pytest.raises(BadRequestError, match="no generation argument"):
        generators.generate("zoo/noise-8", num_samples=1, save_images=False, unknown=1)


def test_a_release_is_pinned_with_at_version(
    images_model: str, make_generators: MakeGenerators, elsewhere: Path
) -> None:
    generators = make_generators()
    pinned = f"{images_model}@1.0.0"
    assert generators.get_config_by_id(pinned, "description.version") == "1.0.0"
    samples = generators.generate(pinned, num_samples=2, save_images=False)
    assert len(samples) == 2
    with pytest.raises(NotFoundError, match=r"no release 9\.9\.9 in the catalogue"):
        generators.generate(f"{images_model}@9.9.9", num_samples=1)
