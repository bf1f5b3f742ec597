"""Tests of the zoo/chestxray-ddpm-32 recipe (smoke run) and of its committed v2 package."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import numpy.typing as npt
import pytest

from tests.zoo import zoo_checks

FAST = 10  # the fewest sampler steps the card allows; keeps the tests quick
MODEL = zoo_checks.ZooModel(
    name="chestxray_ddpm_32",
    model_id="zoo/chestxray-ddpm-32",
    data_file="data/chest-xray-pneumonia/chest_xray_pneumonia_64.npz",
    image_count=5216,
    smoke_image_count=128,
    image_shape=(32, 32),
    max_weights_bytes=4_000_000,
    loader="load_network",
    quick={"steps": FAST},
    log_keys=("loss",),
    client_calls=({"steps": "10"},),
    recorded=(
        ({"steps": FAST}, "30a471fae36b5b2c987894a03a80389b51a718d72cf1a5a01b76c915036931cd"),
        ({}, "096fddce587fbf0ea8ed005ddd51ff8cb50fbe52a8ad3eb0245fcbfe73621c64"),
    ),
)


class TestRecipe(zoo_checks.RecipeChecks):
    model = MODEL


class TestPackage(zoo_checks.PackageChecks):
    model = MODEL

    def grid_images(self, package: ModuleType) -> npt.NDArray[np.uint8]:
        """The grid, sampled with the seed and DDIM steps the summary records."""
        settings = self.model.summary()["sample_grid"]
        images: npt.NDArray[np.uint8] = package.generate(
            64, seed=settings["seed"], steps=settings["steps"]
        )
        return images

    def test_fewer_steps_give_different_images_for_the_same_seed(self, package: ModuleType) -> None:
        ten = package.generate(4, seed=5, steps=10).astype(np.int16)
        fifty = package.generate(4, seed=5, steps=50).astype(np.int16)
        assert ten.shape == fifty.shape
        assert np.abs(ten - fifty).mean() > 0.5

    def test_steps_are_validated_by_the_card_and_the_package(self, package: ModuleType) -> None:
        validation = pytest.importorskip("medigan_catalog.validation")
        card = validation.validate_card(self.model.card())
        assert validation.resolve_generation_arguments(card, {}) == {"steps": 50}
        assert validation.resolve_generation_arguments(card, {"steps": "10"}) == {"steps": 10}
        for bad in ("9", "1001", "0", "ten", "2.5"):
            with pytest.raises(validation.GenerationArgumentError, match="steps"):
                validation.resolve_generation_arguments(card, {"steps": bad})
        zoo_checks.assert_rejected(package, "steps", ({"steps": 9}, {"steps": 1001}))
