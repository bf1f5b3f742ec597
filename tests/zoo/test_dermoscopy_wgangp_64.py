"""Tests of the zoo/dermoscopy-wgangp-64 recipe (smoke run) and of its committed v2 package."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import numpy.typing as npt
import pytest

from tests.zoo import zoo_checks

MODEL = zoo_checks.ZooModel(
    name="dermoscopy_wgangp_64",
    model_id="zoo/dermoscopy-wgangp-64",
    data_file="data/dermoscopy-isic2017/dermoscopy_isic2017_64.npz",
    image_count=2000,
    smoke_image_count=320,
    grid_conditions=("not_melanoma", "melanoma"),
    image_shape=(64, 64, 3),
    log_keys=("loss_d", "loss_g", "wasserstein", "gradient_penalty"),
    client_calls=({}, {"truncation": "0.7", "condition": "melanoma"}),
    recorded=(
        ({}, "5b2671cd02214d93f478482fc23944a8ba1590a12995a20b6e6ad638935a93ca"),
        (
            {"condition": "melanoma"},
            "425791331095ddca153e00d45562549de4dc1ad681bdd32954e7e26d6581c612",
        ),
    ),
)


def isic_melanoma_calls(images: npt.NDArray[np.uint8]) -> tuple[float, float]:
    """Mean P(melanoma | ISIC) and the fraction whose top class is ISIC melanoma (medical-cnn)."""
    torch = pytest.importorskip("torch")
    from evaluation.medical_cnn.extractor import MedicalCnnExtractor

    classifier = MedicalCnnExtractor()
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)
    logits = classifier.classify(batch)
    names = classifier.class_names
    melanoma = names.index("isic2017 melanoma")
    isic = logits[:, [names.index("isic2017 non-melanoma"), melanoma]]
    probability = float(isic.softmax(dim=1)[:, 1].mean())
    top = float((logits.argmax(dim=1) == melanoma).double().mean())
    return probability, top


class TestRecipe(zoo_checks.RecipeChecks):
    model = MODEL


class TestPackage(zoo_checks.PackageChecks):
    model = MODEL

    def test_card_promises_rgb_and_names_the_packages_conditions(self, package: ModuleType) -> None:
        card = self.model.card()
        assert card["output"]["channels"] == 3
        condition = next(a for a in card["generation_arguments"] if a["name"] == "condition")
        assert tuple(condition["choices"]) == package.CONDITIONS

    def test_conditions_share_seeds_but_give_other_images(self, package: ModuleType) -> None:
        first = package.generate(4, seed=11, condition="melanoma")
        assert not np.array_equal(first, package.generate(4, seed=11, condition="not_melanoma"))
        assert package.generate(5, seed=3, condition="melanoma").std() > 10

    def test_truncation_and_condition_are_checked_and_truncation_narrows(
        self, package: ModuleType
    ) -> None:
        zoo_checks.assert_rejected(
            package, "truncation", ({"truncation": 0.0}, {"truncation": 2.5})
        )
        zoo_checks.assert_rejected(package, "condition", ({"condition": "nevus"},))
        zoo_checks.assert_less_diverse(package, "truncation", 0.3, 1.0)

    def test_condition_changes_the_classifiers_melanoma_calls(self, package: ModuleType) -> None:
        # same latents, only the label differs: the classifier must call melanoma more often
        benign_p, benign_top = isic_melanoma_calls(
            package.generate(300, seed=31, condition="not_melanoma")
        )
        melanoma_p, melanoma_top = isic_melanoma_calls(
            package.generate(300, seed=31, condition="melanoma")
        )
        assert melanoma_p > benign_p
        assert melanoma_top > benign_top + 0.05

    @pytest.mark.shared_data
    def test_condition_shifts_colour_statistics_as_in_the_training_data(
        self, package: ModuleType
    ) -> None:
        self.model.require_data()
        with np.load(self.model.data_path, allow_pickle=False) as archive:
            train = archive["splits"] == "train"
            real = archive["images"][train].astype(np.float64)
            labels = archive["labels"][train]
        # direction in the real train split: melanoma images are darker than the others
        real_gap = real[labels == 0].mean() - real[labels == 1].mean()
        assert real_gap > 3.0
        benign = package.generate(300, seed=41, condition="not_melanoma").astype(np.float64)
        melanoma = package.generate(300, seed=41, condition="melanoma").astype(np.float64)
        assert benign.mean() - melanoma.mean() > 0.25 * real_gap
        # and their pixels vary more within an image
        real_spread = (
            real[labels == 1].std(axis=(1, 2, 3)).mean()
            - real[labels == 0].std(axis=(1, 2, 3)).mean()
        )
        assert real_spread > 1.0
        spread = melanoma.std(axis=(1, 2, 3)).mean() - benign.std(axis=(1, 2, 3)).mean()
        assert spread > 0.25 * real_spread
