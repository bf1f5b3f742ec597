"""Tests of the zoo/chestxray-dcgan-64 recipe (smoke run) and of its committed v2 package."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from tests.zoo import zoo_checks

MODEL = zoo_checks.ZooModel(
    name="chestxray_dcgan_64",
    model_id="zoo/chestxray-dcgan-64",
    data_file="data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz",
    image_count=5216,
    smoke_image_count=256,
    image_shape=(64, 64),
    client_calls=({}, {"truncation": "0.7"}),
    recorded=(
        ({}, "c53af5dc21058a85588bfe8709f01a6bd7bd4e6b1e4f5c638d5e457c33ff3109"),
        ({"truncation": 0.7}, "f5582c19adce3625b3172d570975326ea9ce54e673b81c6b1d45dc225179c419"),
    ),
)


class TestRecipe(zoo_checks.RecipeChecks):
    model = MODEL


class TestPackage(zoo_checks.PackageChecks):
    model = MODEL

    def test_truncation_is_bounded_and_below_one_reduces_diversity(
        self, package: ModuleType
    ) -> None:
        zoo_checks.assert_rejected(
            package, "truncation", ({"truncation": 0.0}, {"truncation": 2.5})
        )
        zoo_checks.assert_less_diverse(package, "truncation", 0.3, 1.0)

    def test_latent_vectors_replace_the_seeded_draw(self, package: ModuleType) -> None:
        latents = np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32)
        by_seed_1 = package.generate(3, seed=1, latent_vectors=latents)
        assert np.array_equal(by_seed_1, package.generate(3, seed=2, latent_vectors=latents))
        halved = package.generate(3, seed=1, latent_vectors=latents * 0.5)
        assert np.array_equal(
            halved, package.generate(3, seed=1, latent_vectors=latents, truncation=0.5)
        )
        with pytest.raises(ValueError, match="latent_vectors"):
            package.generate(2, seed=0, latent_vectors=np.zeros((3, 100)))
        with pytest.raises(ValueError, match="not both"):
            package.generate(3, seed=0, latent_vectors=latents, seeds=[1, 2, 3])
