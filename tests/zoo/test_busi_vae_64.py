"""Tests of the zoo/busi-vae-64 recipe (smoke run) and of its committed v2 package."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from tests.zoo import zoo_checks

MODEL = zoo_checks.ZooModel(
    name="busi_vae_64",
    model_id="zoo/busi-vae-64",
    data_file="data/breast-ultrasound-busi/breast_ultrasound_busi_64.npz",
    image_count=624,
    smoke_image_count=96,
    image_shape=(64, 64),
    loader="load_decoder",
    log_keys=("loss", "reconstruction", "kl", "beta"),
    extra_tensors=frozenset({"observation_std"}),
    client_calls=({}, {"temperature": "0.7"}, {"observation_noise": "false"}),
    recorded=(
        ({}, "3d8b31e2f5401a3b33a8a2eef6d628a46deda86b361b4f4e3d7a447468ffabe6"),
        (
            {"observation_noise": False, "temperature": 0.5},
            "f4d5e3ea4d7e214c6809599a655697081fe78732648d9d08d2a6af5d26284ffe",
        ),
    ),
)


class TestRecipe(zoo_checks.RecipeChecks):
    model = MODEL

    @pytest.mark.shared_data
    def test_recipe_trains_on_the_624_images_the_reference_set_does_not_hold(self) -> None:
        from evaluation.references import load_npz_split
        from zoo.busi_vae_64.train import load_train_images

        self.model.require_data()
        train = load_train_images(self.model.data_path)
        heldout = load_npz_split(self.model.data_path, "heldout", id="busi-heldout").images
        assert train.shape == (624, 64, 64)
        assert heldout.shape == (156, 64, 64)
        held = {image.tobytes() for image in heldout}
        # BUSI has one byte-identical duplicate pair; at most that may appear on both sides
        assert sum(image.tobytes() in held for image in train) <= 1


class TestPackage(zoo_checks.PackageChecks):
    model = MODEL

    def test_temperature_is_bounded_and_below_one_reduces_diversity(
        self, package: ModuleType
    ) -> None:
        zoo_checks.assert_rejected(
            package, "temperature", ({"temperature": 0.05}, {"temperature": 2.5})
        )
        zoo_checks.assert_less_diverse(package, "temperature", 0.3, 1.0)

    def test_observation_noise_adds_pixel_texture_around_the_decoder_mean(
        self, package: ModuleType
    ) -> None:
        noisy = package.generate(16, seed=9).astype(np.float64)
        smooth = package.generate(16, seed=9, observation_noise=False).astype(np.float64)
        # the same latents: the noisy images scatter around the smooth ones, which are blurry
        assert abs(noisy.mean() - smooth.mean()) < 5.0
        roughness_noisy = np.abs(np.diff(noisy, axis=2)).mean()
        roughness_smooth = np.abs(np.diff(smooth, axis=2)).mean()
        assert roughness_noisy > 2 * roughness_smooth

    def test_observation_std_is_a_grey_level_map(self) -> None:
        from safetensors.numpy import load_file

        std = load_file(str(self.model.package_dir / "weights.safetensors"))["observation_std"]
        assert std.shape == (64, 64)
        assert 1.0 < float(std.mean()) < 80.0  # grey levels

    def test_per_sample_seeds_draw_the_noise_with_the_latent(self, package: ModuleType) -> None:
        noisy = package.generate(2, seed=0, seeds=[3, 4]).astype(np.float64)
        smooth = package.generate(2, seed=0, seeds=[3, 4], observation_noise=False)
        assert abs(noisy.mean() - smooth.astype(np.float64).mean()) < 5.0
        assert not np.array_equal(noisy, smooth)
