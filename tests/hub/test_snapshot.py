"""Tests of the catalogue snapshot: the wire format, ETag and 304, the per-serial cache."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hub import snapshot
from hub.evaluations import services as evaluation_services
from hub.evaluations.models import Evaluation, ReferenceSet
from hub.registry import services as registry_services
from medigan_catalog.snapshot import CATALOG_PATH, parse_snapshot
from tests import factories

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).resolve().parents[2] / "docs/schema/snapshot.example.json"
SAMPLES_SHA256 = "ab" * 32


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # Each test's database starts again at the same serials; the process's cache must not
    # carry a document from one test into the next.
    snapshot.snapshot_cache_clear()
    yield
    snapshot.snapshot_cache_clear()


def _bump(release: Any) -> None:
    """The serial bump publishing would have made (release_row stores releases directly)."""
    with transaction.atomic():
        registry_services.catalog_serial_bump(
            kind="release_published", generative_model=release.generative_model, release=release
        )


def _reference_set() -> ReferenceSet:
    existing = ReferenceSet.objects.filter(slug="noise").first()
    return existing if existing is not None else factories.reference_set_row()


def _evaluation(release: Any, **fields: Any) -> Evaluation:
    return Evaluation.objects.create(
        release=release,
        reference_set=_reference_set(),
        extractor_id="medical-cnn",
        preprocess={"resize_filter": "bilinear", "normalise": True},
        preprocess_key="bilinear-normalised",
        num_samples=100,
        **fields,
    )


def _catalogue(submitter: Any) -> list[Any]:
    releases = [
        factories.release_row(submitter=submitter, model_id="alice/noise-16", version=version)
        for version in ("1.0.0", "1.1.0")
    ]
    releases.append(factories.release_row(submitter=submitter, model_id="alice/other-8"))
    _evaluation(
        releases[0],
        status=Evaluation.Status.SUCCEEDED,
        fid_rs=12.5,
        fid_rr_mean=3.0,
        provenance={"generation": {"samples_sha256": SAMPLES_SHA256}, "num_reference": 10},
        finished_at=timezone.now(),
    )
    _bump(releases[-1])
    return releases


def test_the_snapshot_parses_with_the_catalogs_models_and_nothing_is_skipped() -> None:
    _catalogue(factories.user("alice"))

    response = HttpClient().get(CATALOG_PATH)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    parsed = parse_snapshot(json.loads(response.content))
    assert parsed.skipped == ()
    document = parsed.snapshot
    assert document.serial == 1
    assert document.hub.url == "http://testserver"
    assert [(r.model_id, r.version) for r in document.releases] == [
        ("alice/noise-16", "1.0.0"),
        ("alice/noise-16", "1.1.0"),
        ("alice/other-8", "1.0.0"),
    ]
    [summary] = document.releases[0].evaluations
    assert summary.reference == "noise"
    assert summary.value("fid") == 12.5
    assert summary.samples_sha256 == SAMPLES_SHA256
    assert summary.num_reference == 10
    assert [r.version for r in document.newest_releases()] == ["1.1.0", "1.0.0"]


def test_a_revalidation_answers_304_and_a_repeat_reuses_the_rendered_bytes() -> None:
    _catalogue(factories.user("alice"))
    http = HttpClient()
    first = http.get(CATALOG_PATH)
    assert first["ETag"] == '"catalog-1"'
    assert first["Cache-Control"] == "no-cache"
    assert "Accept-Encoding" in first["Vary"]

    with CaptureQueriesContext(connection) as revalidation:
        not_modified = http.get(CATALOG_PATH, HTTP_IF_NONE_MATCH=first["ETag"])
    with CaptureQueriesContext(connection) as repeat:
        again = http.get(CATALOG_PATH)

    assert not_modified.status_code == 304
    assert not_modified["ETag"] == first["ETag"]
    assert not_modified.content == b""
    assert len(revalidation.captured_queries) <= 1
    assert again.status_code == 200
    assert again.content == first.content
    assert len(repeat.captured_queries) <= 1


def test_anonymous_syncs_skip_the_middleware_chain_and_signed_in_ones_get_their_own_scope() -> None:
    alice = factories.user("alice")
    _catalogue(alice)
    http = HttpClient()

    anonymous = http.get(CATALOG_PATH)
    signed_in = http.get(CATALOG_PATH, HTTP_AUTHORIZATION=f"Token {factories.token(alice)}")

    # Answered before the clickjacking middleware ran: the fast path served it.
    assert "X-Frame-Options" not in anonymous
    assert "X-Frame-Options" in signed_in
    # A signed-in viewer's catalogue is their scope's (internal models too): its own tag, kept
    # by no shared cache, with the same releases while every model is public.
    assert signed_in.status_code == 200
    assert signed_in["ETag"] != anonymous["ETag"]
    assert signed_in["Cache-Control"] == "private, no-cache"
    assert "Authorization" in signed_in["Vary"]
    assert json.loads(signed_in.content)["releases"] == json.loads(anonymous.content)["releases"]
    assert signed_in["X-Hub-Serial"] == anonymous["X-Hub-Serial"]


def test_gzip_is_sent_to_a_client_that_accepts_it_with_its_own_etag() -> None:
    _catalogue(factories.user("alice"))
    http = HttpClient()
    plain = http.get(CATALOG_PATH)

    zipped = http.get(CATALOG_PATH, HTTP_ACCEPT_ENCODING="gzip, deflate")
    refused = http.get(CATALOG_PATH, HTTP_ACCEPT_ENCODING="gzip;q=0, identity")

    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == plain.content
    assert zipped["ETag"] == '"catalog-1-gzip"'
    assert int(zipped["Content-Length"]) == len(zipped.content)
    assert "Content-Encoding" not in refused
    assert refused.content == plain.content
    for etag in (plain["ETag"], zipped["ETag"], f"W/{zipped['ETag']}", '"other", ' + plain["ETag"]):
        assert http.get(CATALOG_PATH, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_publishing_bumps_the_serial_and_the_next_request_renders_again() -> None:
    alice = factories.user("alice")
    _catalogue(alice)
    http = HttpClient()
    before = http.get(CATALOG_PATH)
    approved = factories.release_row(submitter=alice, model_id="alice/noise-16", version="2.0.0")
    approved.state = "approved"
    approved.save(update_fields=["state"])

    registry_services.release_publish(release_id=approved.pk)
    after = http.get(CATALOG_PATH, HTTP_IF_NONE_MATCH=before["ETag"])

    assert after.status_code == 200
    assert after["ETag"] == '"catalog-2"'
    versions = [r.version for r in parse_snapshot(json.loads(after.content)).snapshot.releases]
    assert "2.0.0" in versions


def test_a_finished_evaluation_bumps_the_serial_and_its_numbers_reach_the_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    releases = _catalogue(factories.user("alice"))
    http = HttpClient()
    before = http.get(CATALOG_PATH)
    queued = _evaluation(releases[2], status=Evaluation.Status.QUEUED)
    result = {
        "fid_rs": 40.0,
        "fid_rr_mean": 4.0,
        "fid_rr_std": 0.5,
        "r_fid": 0.1,
        "kid_mean": 0.02,
        "kid_std": 0.001,
        "precision": 0.7,
        "recall": 0.6,
        "comparable_with_published": False,
        "generation": {"samples_sha256": "cd" * 32},
    }
    monkeypatch.setattr(evaluation_services, "_compute", lambda evaluation, work_dir: result)

    finished = evaluation_services.evaluation_run(evaluation_id=queued.pk)
    after = http.get(CATALOG_PATH, HTTP_IF_NONE_MATCH=before["ETag"])

    assert finished is not None and finished.status == Evaluation.Status.SUCCEEDED
    assert after.status_code == 200
    assert after["ETag"] == '"catalog-2"'
    document = parse_snapshot(json.loads(after.content)).snapshot
    [summary] = document.releases[2].evaluations
    assert summary.fid_rs == 40.0
    assert summary.samples_sha256 == "cd" * 32


def _keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _keys(item) for key, item in value.items()}
    return None


def test_the_shared_fixture_parses_and_the_hub_renders_the_same_shape() -> None:
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    parsed = parse_snapshot(fixture)
    assert parsed.skipped == ()
    _catalogue(factories.user("alice"))

    rendered = json.loads(HttpClient().get(CATALOG_PATH).content)

    assert _keys(rendered).keys() == _keys(fixture).keys()
    assert rendered["hub"].keys() == fixture["hub"].keys()
    assert rendered["releases"][0].keys() == fixture["releases"][0].keys()
    assert rendered["releases"][0]["card"].keys() == fixture["releases"][0]["card"].keys()
    fixture_summaries = [e for r in fixture["releases"] for e in r["evaluations"]]
    rendered_summaries = [e for r in rendered["releases"] for e in r["evaluations"]]
    assert rendered_summaries[0].keys() == fixture_summaries[0].keys()
