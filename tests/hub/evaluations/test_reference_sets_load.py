"""Loading reference sets: the shipped sets without ../shared, and the evaluations they queue."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evaluation.references import REFERENCE_SETS
from hub.evaluations import services
from hub.evaluations.models import Evaluation, ReferenceSet
from tests import factories

pytestmark = pytest.mark.django_db

CHEST = {"modality": ["chest x-ray"], "organ": ["chest"], "type": "GAN", "tags": []}
MAMMOGRAPHY = {"modality": ["x-ray mammography"], "organ": ["breast"], "type": "GAN", "tags": []}


def published(model_id: str, selection: dict[str, Any], *, state: str = "published") -> Any:
    """A release in ``state`` with a stored package and the given card selection."""
    release = factories.release_row(
        model_id=model_id, submitter=factories.user("alice"), state=state, package=b"zip"
    )
    release.card = {**release.card, "selection": selection}
    release.save(update_fields=["card"])
    return release


def load_tiny_chest_set() -> tuple[ReferenceSet, list[Evaluation]]:
    images = np.random.default_rng(0).integers(0, 255, size=(6, 8, 8), dtype=np.uint8)
    return services.reference_set_load(
        slug="tiny-chest",
        title="tiny chest",
        modality="chest x-ray",
        match_terms=[["chest"], ["x-ray"]],
        split="test",
        licence="CC0-1.0",
        citation="",
        source="synthetic",
        images=images,
        source_paths=[f"img/{index}.png" for index in range(6)],
    )


def test_the_shipped_sets_load_without_shared_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MEDIGAN_SHARED_DIR", str(tmp_path / "nowhere"))
    output = StringIO()

    call_command("reference_sets_load", stdout=output)

    loaded = {item.slug: item for item in ReferenceSet.objects.all()}
    assert {slug: item.image_count for slug, item in loaded.items()} == {
        "chest-xray-test": 624,
        "dermoscopy-isic2017-test": 600,
        "busi-heldout": 156,
    }
    for spec in REFERENCE_SETS:
        assert loaded[spec.id].images_sha256 == spec.images_sha256
        assert f"evaluation/reference_data/{spec.id}.npz" in loaded[spec.id].source
    assert loaded["dermoscopy-isic2017-test"].channels == 3
    assert loaded["chest-xray-test"].manifest[0]["source"].startswith("dataset/test/")
    assert "chest-xray-test: 624 images (CC-BY-4.0); 0 evaluation(s) queued" in output.getvalue()


def test_a_shared_dir_without_the_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"chest-xray-test: no .*chest_xray_pneumonia_64\.npz"):
        call_command("reference_sets_load", "--shared-dir", str(tmp_path), stdout=StringIO())
    assert not ReferenceSet.objects.exists()


@pytest.mark.shared_data
def test_the_shared_data_gives_the_same_sets_as_the_shipped_files(shared_data: Path) -> None:
    call_command("reference_sets_load", "--shared-dir", str(shared_data.parent), stdout=StringIO())
    from_shared = dict(ReferenceSet.objects.values_list("slug", "images_sha256"))

    call_command("reference_sets_load", stdout=StringIO())  # the same pixels: nothing refused

    assert from_shared == {spec.id: spec.images_sha256 for spec in REFERENCE_SETS}


def test_loading_a_set_queues_every_published_release_that_fits_it_once(
    django_capture_on_commit_callbacks: Any,
) -> None:
    chest = published("alice/chest-gan", CHEST)
    other_chest = published("bob/chest-vae", CHEST)
    published("alice/mammo-gan", MAMMOGRAPHY)  # does not fit the set
    published("alice/chest-draft", CHEST, state="in_review")  # not published
    imported = factories.release_row(
        model_id="medigan/chest-import", submitter=factories.user("op"), state="published"
    )  # no package stored here: cannot be run
    imported.card = {**imported.card, "selection": CHEST}
    imported.save(update_fields=["card"])

    # Tasks are sent on commit; not running them keeps the (unrunnable) packages unrun.
    with django_capture_on_commit_callbacks(execute=False) as sent:
        reference_set, queued = load_tiny_chest_set()
    with django_capture_on_commit_callbacks(execute=False) as sent_again:
        _, queued_again = load_tiny_chest_set()

    assert sorted(evaluation.release_id for evaluation in queued) == [chest.pk, other_chest.pk]
    assert {evaluation.status for evaluation in queued} == {"queued"}
    assert {evaluation.extractor_id for evaluation in queued} == {"medical-cnn"}
    assert {evaluation.num_samples for evaluation in queued} == {100}  # MEDIGAN_EVALUATION_SAMPLES
    assert len(sent) == 2
    assert queued_again == [] and sent_again == []
    assert Evaluation.objects.filter(reference_set=reference_set).count() == 2


def test_a_release_already_evaluated_against_the_set_is_not_queued_again(
    django_capture_on_commit_callbacks: Any,
) -> None:
    chest = published("alice/chest-gan", CHEST)
    with django_capture_on_commit_callbacks(execute=False):
        reference_set, (evaluation,) = load_tiny_chest_set()
    # A failed run is staff's to retry (the API, the admin); loading the set does not.
    Evaluation.objects.filter(pk=evaluation.pk).update(status=Evaluation.Status.FAILED)
    newcomer = published("carol/chest-gan", CHEST)

    with django_capture_on_commit_callbacks(execute=False) as sent:
        queued = services.evaluations_queue_for_reference_set(reference_set=reference_set)

    assert [item.release_id for item in queued] == [newcomer.pk]
    assert len(sent) == 1
    assert Evaluation.objects.get(release=chest).status == "failed"


# Validation and the evaluation run the zoo package in sandboxed child processes.
@pytest.mark.integration
def test_a_set_loaded_after_the_zoo_model_was_published_evaluates_it(
    django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    from hub.registry.services import package_publish_as_operator

    settings.MEDIGAN_EVALUATION_SAMPLES = 200
    operator = factories.user("operator", reviewer=True)
    package = Path(settings.BASE_DIR) / "zoo/chestxray_dcgan_64/package"
    with django_capture_on_commit_callbacks(execute=True):
        release = package_publish_as_operator(package_dir=package, operator=operator, note="t")
    assert not Evaluation.objects.exists()  # no reference set yet: nothing to evaluate against

    with django_capture_on_commit_callbacks(execute=True):
        call_command("reference_sets_load", stdout=StringIO())

    evaluation = Evaluation.objects.get(release=release)
    assert evaluation.reference_set.slug == "chest-xray-test"
    assert evaluation.status == "succeeded", evaluation.error
    assert evaluation.fid_rs is not None and evaluation.fid_rs > 0
