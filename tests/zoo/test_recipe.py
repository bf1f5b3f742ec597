"""Tests of ``zoo/recipe.py``, the machinery the zoo's training recipes share."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from zoo import recipe as common

torch = pytest.importorskip("torch")

RECIPE = common.Recipe.beside(
    str(common.REPO_ROOT / "zoo" / "busi_gan_128" / "train.py"),
    "zoo/busi-gan-128",
    "data/breast-ultrasound-busi/breast_ultrasound_busi_128.npz",
)


@dataclasses.dataclass(frozen=True)
class Settings:
    seed: int = 1
    epochs: int = 3
    widths: tuple[int, ...] = (4, 8)


@dataclasses.dataclass
class CountingState(common.RunState):
    critic_steps: int = 0


def arguments(**given: object) -> argparse.Namespace:
    values: dict[str, object] = {"smoke": False, "epochs": None, "out": None, "export_dir": None}
    values.update(given)
    return argparse.Namespace(**values)


def test_recipe_names_its_folder_command_and_data() -> None:
    assert RECIPE.name == "busi_gan_128"
    assert RECIPE.recipe == "zoo/busi_gan_128/train.py"
    assert RECIPE.command == "python -m zoo.busi_gan_128.train"
    assert RECIPE.package_dir == common.REPO_ROOT / "zoo" / "busi_gan_128" / "package"
    assert RECIPE.default_out_dir() == common.REPO_ROOT / "var" / "zoo" / "busi_gan_128"


def test_shared_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MEDIGAN_SHARED_DIR", str(tmp_path))
    assert RECIPE.data_path() == tmp_path / RECIPE.data_file


def test_read_config_makes_tuples_and_refuses_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"seed": 5, "widths": [1, 2, 3]}), encoding="utf-8")
    assert common.read_config(Settings, path) == Settings(seed=5, widths=(1, 2, 3))
    path.write_text(json.dumps({"seed": 5, "sed": 6}), encoding="utf-8")
    with pytest.raises(SystemExit, match=r"unknown config keys \['sed'\]"):
        common.read_config(Settings, path)


def test_epochs_come_from_the_smoke_run_then_the_command_line() -> None:
    assert common.with_epochs(Settings(), arguments(), 2).epochs == 3
    assert common.with_epochs(Settings(), arguments(smoke=True), 2).epochs == 2
    assert common.with_epochs(Settings(), arguments(smoke=True, epochs=7), 2).epochs == 7


def test_output_dirs_of_a_smoke_run_and_of_an_explicit_folder(tmp_path: Path) -> None:
    out, export = common.output_dirs(RECIPE, arguments(smoke=True, out=tmp_path / "run"))
    assert out == export == tmp_path / "run"
    assert out.is_dir()
    out, export = common.output_dirs(RECIPE, arguments(out=tmp_path / "full"))
    assert (out, export) == (tmp_path / "full", RECIPE.recipe_dir)
    temporary, _ = common.output_dirs(RECIPE, arguments(smoke=True))
    assert temporary.name.startswith("busi-gan-128-smoke-")
    temporary.rmdir()


def test_smoke_subset_is_sorted_distinct_and_a_function_of_the_seed() -> None:
    chosen = common.smoke_subset(100, 3, 10)
    assert list(chosen) == sorted(set(chosen.tolist()))
    assert np.array_equal(chosen, common.smoke_subset(100, 3, 10))
    assert not np.array_equal(chosen, common.smoke_subset(100, 4, 10))


def test_changed_settings_ignore_resumable_ones_and_list_tuple_spelling() -> None:
    saved = {"seed": 1, "epochs": 3, "widths": [4, 8]}
    assert common.changed_settings(saved, dataclasses.asdict(Settings()), {"epochs"}) == []
    current = dataclasses.asdict(Settings(seed=2, epochs=9))
    assert common.changed_settings(saved, current, {"epochs"}) == ["seed"]


def test_checkpoints_round_trip_the_state_and_refuse_other_settings(tmp_path: Path) -> None:
    network = torch.nn.Linear(2, 1)
    state = CountingState(epoch=2, step=8, wall_time_seconds=1.5, critic_steps=40)
    state.rows.append({"epoch": 2, "steps": 8, "loss": 0.5})
    state.step_losses.extend([(0.5, 0.25), (0.75, 0.5)])
    common.save_checkpoint(tmp_path, state, config=Settings(), smoke=True, parts={"net": network})
    fresh = torch.nn.Linear(2, 1)
    restored = common.resume(
        tmp_path,
        CountingState,
        config=Settings(epochs=5),
        smoke=True,
        resumable={"epochs"},
        parts={"net": fresh},
        device=torch.device("cpu"),
    )
    assert restored == state
    assert torch.equal(fresh.weight, network.weight)
    with pytest.raises(SystemExit, match=r"other settings \(\['seed'\]\)"):
        common.resume(
            tmp_path,
            CountingState,
            config=Settings(seed=9),
            smoke=True,
            resumable={"epochs"},
            parts={"net": fresh},
            device=torch.device("cpu"),
        )
    with pytest.raises(SystemExit, match="smoke"):
        common.resume(
            tmp_path,
            CountingState,
            config=Settings(),
            smoke=False,
            resumable=(),
            parts={"net": fresh},
            device=torch.device("cpu"),
        )


def test_resuming_restores_the_global_random_state(tmp_path: Path) -> None:
    torch.manual_seed(0)
    common.save_checkpoint(tmp_path, common.RunState(), config=Settings(), smoke=False, parts={})
    expected = torch.rand(3)
    torch.manual_seed(123)
    common.resume(
        tmp_path,
        common.RunState,
        config=Settings(),
        smoke=False,
        resumable=(),
        parts={},
        device=torch.device("cpu"),
    )
    assert torch.equal(torch.rand(3), expected)


def test_close_epoch_counts_time_and_appends_the_row() -> None:
    state = common.RunState(step=4, wall_time_seconds=2.0)
    row = state.close_epoch(1, 0.5, {"loss": 0.25})
    assert row == {
        "epoch": 1,
        "steps": 4,
        "loss": 0.25,
        "epoch_seconds": 0.5,
        "wall_time_seconds": 2.5,
    }
    assert state.rows == [row]
    assert state.epoch == 1


def test_write_log_formats_floats_and_keeps_other_values(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    common.write_log(path, ("epoch", "loss", "note"), [{"epoch": 1, "loss": 0.5, "note": "x"}])
    assert path.read_text(encoding="utf-8").splitlines() == ["epoch,loss,note", "1,0.500000,x"]


def test_grid_image_tiles_grey_and_colour_images() -> None:
    grey = common.grid_image(np.full((64, 4, 4), 200, dtype=np.uint8))
    assert (grey.mode, grey.size) == ("L", (8 * 6 + 2, 8 * 6 + 2))
    assert np.asarray(grey)[2, 2] == 200 and np.asarray(grey)[0, 0] == 0
    colour = common.grid_image(np.zeros((3, 4, 4, 3), dtype=np.uint8), side=2, pad=1)
    assert (colour.mode, colour.size) == ("RGB", (2 * 5 + 1, 2 * 5 + 1))


def test_batchnorm_recalibration_draws_from_its_own_generator() -> None:
    network = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    common.recalibrate_batchnorm(network, 5, 11, lambda rng: [torch.randn(8, 3, generator=rng)])
    assert torch.equal(torch.rand(2), expected)  # the global RNG was not touched
    assert not network.training
    norm = network[1]
    assert isinstance(norm, torch.nn.BatchNorm1d)
    assert int(norm.num_batches_tracked) == 5
    assert norm.momentum == 0.1


def test_moving_average_warms_up_then_follows_slowly() -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    average = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
        average.weight.fill_(0.0)
    common.update_average(average, model, 0.999, step=0)  # decay 1/10 at the first step
    assert float(average.weight.detach()) == pytest.approx(0.9)
    with torch.no_grad():
        average.weight.fill_(0.0)
    common.update_average(average, model, 0.999, step=100_000)
    assert float(average.weight.detach()) == pytest.approx(0.001)


def test_weights_files_have_one_metadata_key_and_are_readable(tmp_path: Path) -> None:
    from safetensors import safe_open

    path = tmp_path / "weights.safetensors"
    common.save_network_weights(torch.nn.Linear(2, 2), path, "net", {"b": 1, "a": 2}, half=True)
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata() == {"net": '{"a": 2, "b": 1}'}
        assert handle.get_tensor("weight").dtype == torch.float16
    assert path.stat().st_mode & 0o777 == 0o644


def test_record_provenance_copies_the_runs_numbers_into_the_card() -> None:
    import datetime as dt

    card: dict[str, object] = {
        "provenance": {"training_data": [{"image_count": 0}]},
        "description": {},
    }
    summary = {
        "hardware": "CPU",
        "wall_time_seconds": 12.5,
        "epochs": 3,
        "steps": 30,
        "seed": 7,
        "recipe": RECIPE.recipe,
        "image_count": 624,
    }
    common.record_provenance(card, summary, dt.datetime(2026, 11, 27, tzinfo=dt.UTC))
    assert card == {
        "provenance": {
            "training_data": [{"image_count": 624}],
            "training": {
                "hardware": "CPU",
                "wall_time_seconds": 12.5,
                "epochs": 3,
                "steps": 30,
                "seed": 7,
                "recipe": "zoo/busi_gan_128/train.py",
            },
        },
        "description": {"provided_after_epoch": 3, "trained_date": "November 2026"},
    }
