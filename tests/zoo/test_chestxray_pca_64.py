"""Tests of the zoo/chestxray-pca-64 recipe (smoke fit) and of its committed numpy v2 package."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.zoo import zoo_checks

MODEL = zoo_checks.ZooModel(
    name="chestxray_pca_64",
    model_id="zoo/chestxray-pca-64",
    data_file="data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz",
    image_count=5216,
    smoke_image_count=256,
    image_shape=(64, 64),
    max_weights_bytes=4_000_000,
    loader=None,
    extra_tensors=frozenset({"mean", "loadings"}),
    client_calls=({}, {"components": "10", "temperature": "0.5"}),
    recorded=(
        ({}, "1717518f8c65b3c1b85ba2ec70fbbc12bf505ff42efdd426c5b70e960d78013a"),
        (
            {"components": 10, "temperature": 0.5},
            "dfe326a90bc644ad5c82b9d737499adb9a646338b5fa27a241ebba91cebe39ee",
        ),
    ),
    grid_slack=0,  # numpy only: the recipe samples the exported package itself
    defaults_by_card=frozenset({"components"}),  # None: all k components
)


@pytest.mark.shared_data
def test_smoke_recipe_fits_checkpoints_resumes_and_exports_a_working_package(
    tmp_path: Path, import_package: Callable[[Path], ModuleType]
) -> None:
    MODEL.require_data()
    first = MODEL.run_recipe("--smoke", "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "decomposition.npz").stat().st_size > 0
    eigenvalues = [
        float(row["eigenvalue"]) for row in zoo_checks.read_log(tmp_path / "training_log.csv")
    ]
    assert all(np.isfinite(eigenvalues)) and eigenvalues == sorted(eigenvalues, reverse=True)
    summary = zoo_checks.read_json(tmp_path / "training_summary.json")
    assert summary["smoke"] is True and summary["image_count"] == MODEL.smoke_image_count
    weights = (tmp_path / "package" / "weights.safetensors").read_bytes()
    second = MODEL.run_recipe("--smoke", "--out", str(tmp_path))
    assert second.returncode == 0, second.stderr
    assert "resuming" in second.stdout
    assert (tmp_path / "package" / "weights.safetensors").read_bytes() == weights
    smoke_card = MODEL.card(tmp_path / "package")
    assert smoke_card["generation_arguments"][0]["default"] == summary["components"]
    images = import_package(tmp_path / "package").generate(3, seed=1)
    assert images.shape == (3, 64, 64) and images.dtype == np.uint8


class TestPackage(zoo_checks.PackageChecks):
    model = MODEL

    def test_samples_have_the_training_mean_image(self, package: ModuleType) -> None:
        """A Gaussian model's sample mean converges to the fitted mean: the chest shape shows."""
        images = package.generate(400, seed=0).astype(np.float64)
        mean = package.load_model().mean.reshape(64, 64)
        assert np.abs(images.mean(axis=0) - mean).mean() < 6.0
        centre, corner = mean[24:40, 8:56].mean(), mean[:8, :8].mean()
        assert centre != corner  # an image with structure, not a flat field

    def test_components_and_temperature_change_the_spread(self, package: ModuleType) -> None:
        k = package.load_model().components
        full = package.generate(200, seed=7).astype(np.float64)
        few = package.generate(200, seed=7, components=5).astype(np.float64)
        cold = package.generate(200, seed=7, temperature=0.3).astype(np.float64)
        assert few.std(axis=0).mean() < full.std(axis=0).mean()
        assert cold.std(axis=0).mean() < full.std(axis=0).mean()
        assert np.array_equal(
            package.generate(2, seed=1, components=k), package.generate(2, seed=1)
        )

    def test_components_and_temperature_are_bounded(self, package: ModuleType) -> None:
        k = package.load_model().components
        zoo_checks.assert_rejected(
            package, "components", ({"components": 0}, {"components": k + 1})
        )
        zoo_checks.assert_rejected(
            package, "temperature", ({"temperature": 0.05}, {"temperature": 2.5})
        )

    def test_loadings_hold_the_chosen_components(self) -> None:
        from safetensors.numpy import load_file

        tensors = load_file(str(MODEL.package_dir / "weights.safetensors"))
        components = MODEL.summary()["components"]
        assert tensors["loadings"].shape == (components, 64 * 64)
        assert 100 <= components <= 200

    def test_card_describes_a_numpy_pca_with_all_components_by_default(
        self, package: ModuleType
    ) -> None:
        card = MODEL.card()
        assert card["runtime"]["dependencies"] == ["numpy>=1.26", "safetensors>=0.4"]
        assert card["selection"]["type"] == "PCA"
        assert "noise to image" in card["selection"]["function"]
        arguments = {argument["name"]: argument for argument in card["generation_arguments"]}
        assert arguments["components"]["default"] == arguments["components"]["maximum"]
        assert arguments["components"]["default"] == package.load_model().components
        parameters = inspect.signature(package.generate).parameters
        assert parameters["temperature"].default == arguments["temperature"]["default"]

    def test_the_client_cannot_ask_for_no_components(self) -> None:
        validation = pytest.importorskip("medigan_catalog.validation")
        card = validation.validate_card(MODEL.card())
        with pytest.raises(validation.GenerationArgumentError):
            validation.resolve_generation_arguments(card, {"components": "0"})
