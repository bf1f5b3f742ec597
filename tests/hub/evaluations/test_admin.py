"""The evaluation admin shows how long each phase of a run took."""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient
from django.utils import timezone

from hub.evaluations.models import Evaluation
from tests import factories

pytestmark = pytest.mark.django_db

TIMINGS = {
    "package_s": 0.25,
    "reference_load_s": 0.05,
    "load_extractor_s": 0.7,
    "features_reference_s": 0.0,
    "generate_s": 6.0,
    "features_generated_s": 2.0,
    "metrics_s": 1.0,
    "total_s": 10.0,
}


def _evaluation(provenance: dict[str, object], seed: int = 0) -> Evaluation:
    release = Evaluation._meta.get_field("release").related_model.objects.first()
    if release is None:
        release = factories.release_row(submitter=factories.user("alice"))
    reference_set = Evaluation._meta.get_field("reference_set").related_model.objects.first()
    return Evaluation.objects.create(
        release=release,
        reference_set=reference_set or factories.reference_set_row(),
        extractor_id="medical-cnn",
        preprocess_key="default",
        num_samples=1000,
        seed=seed,
        status=Evaluation.Status.SUCCEEDED,
        fid_rs=12.5,
        provenance=provenance,
        finished_at=timezone.now(),
    )


def test_the_change_page_and_the_list_show_the_time_of_each_phase() -> None:
    evaluation = _evaluation({"timings": TIMINGS})
    older = _evaluation({"durations": {"total_s": 3.0}}, seed=1)  # from before timings
    admin = HttpClient()
    admin.force_login(factories.user("sam", staff=True))

    page = admin.get(f"/admin/evaluations/evaluation/{evaluation.pk}/change/").content.decode()
    older_page = admin.get(f"/admin/evaluations/evaluation/{older.pk}/change/").content.decode()
    listing = admin.get("/admin/evaluations/evaluation/").content.decode()

    assert "<td>generate_s</td><td>6.00</td><td>60 %</td>" in page
    assert "<td>total_s</td><td>10.00</td><td>100 %</td>" in page
    assert "not recorded" in older_page
    assert '<td class="field-run_seconds">10.0</td>' in listing
