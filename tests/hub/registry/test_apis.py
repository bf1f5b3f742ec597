"""Tests of the registry's HTTP API through Django's test client."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client as HttpClient

from hub.registry import services
from hub.registry.models import Release
from tests import factories

pytestmark = pytest.mark.django_db


def _push(http: HttpClient, tmp_path: Path, key: str | None, capture: Any, **kwargs: Any) -> Any:
    archive, sha256, card = factories.package_zip(tmp_path, **kwargs)
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"} if key else {}
    with capture(execute=True), archive.open("rb") as package:
        return http.post(
            "/api/v1/releases",
            {"card": json.dumps(card), "package": package, "sha256": sha256},
            **headers,
        )


def _published(tmp_path: Path, capture: Any, **kwargs: Any) -> Release:
    http = HttpClient()
    alice = factories.user("alice")
    response = _push(http, tmp_path, factories.token(alice), capture, **kwargs)
    release = Release.objects.get(version=response.json()["version"])
    return services.release_review(
        release_id=release.pk,
        reviewer=factories.user("rita", reviewer=True),
        decision="approve",
    )


def test_push_answers_202_with_the_release_state(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    key = factories.token(factories.user("alice"))

    response = _push(HttpClient(), tmp_path, key, django_capture_on_commit_callbacks)

    assert response.status_code == 202
    body = response.json()
    assert body["model_id"] == "alice/noise-16"
    assert body["state"] == "submitted"
    assert body["card"]["artifacts"][0]["filename"] == "noise-16-1.0.0.zip"
    assert Release.objects.get().state == "in_review"


def test_push_without_a_token_is_refused_with_an_error_code(tmp_path: Path) -> None:
    archive, _, card = factories.package_zip(tmp_path)
    with archive.open("rb") as package:
        response = HttpClient().post(
            "/api/v1/releases", {"card": json.dumps(card), "package": package}
        )

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_required"


def test_push_with_a_bad_card_says_which_field(tmp_path: Path) -> None:
    key = factories.token(factories.user("alice"))
    archive, _, card = factories.package_zip(tmp_path)
    card["version"] = "one"
    with archive.open("rb") as package:
        response = HttpClient().post(
            "/api/v1/releases",
            {"card": json.dumps(card), "package": package},
            HTTP_AUTHORIZATION=f"Token {key}",
        )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "card_invalid"
    assert any("version" in problem["loc"] for problem in body["detail"])


def test_release_status_shows_checks_and_is_hidden_from_strangers(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    alice = factories.user("alice")
    _push(HttpClient(), tmp_path, factories.token(alice), django_capture_on_commit_callbacks)
    url = "/api/v1/models/alice/noise-16/releases/1.0.0"

    mine = HttpClient().get(url, HTTP_AUTHORIZATION=f"Token {factories.token(alice)}")
    stranger = HttpClient().get(url)

    assert mine.status_code == 200
    assert [check["name"] for check in mine.json()["checks"]][:2] == ["card_schema", "licence"]
    assert stranger.status_code == 404
    assert stranger.json()["code"] == "not_found"


def test_only_reviewers_may_review(tmp_path: Path, django_capture_on_commit_callbacks: Any) -> None:
    alice = factories.user("alice")
    _push(HttpClient(), tmp_path, factories.token(alice), django_capture_on_commit_callbacks)
    url = "/api/v1/models/alice/noise-16/releases/1.0.0/review"

    by_author = HttpClient().post(
        url,
        {"decision": "approve"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {factories.token(alice)}",
    )
    by_reviewer = HttpClient().post(
        url,
        {"decision": "approve", "note": "fine"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {factories.token(factories.user('rita', reviewer=True))}",
    )

    assert by_author.status_code == 403
    assert by_author.json()["code"] == "permission_denied"
    assert by_reviewer.status_code == 200
    assert by_reviewer.json()["state"] == "published"


def test_catalog_snapshot_has_an_etag_and_answers_304_until_it_changes(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    http = HttpClient()
    empty = http.get("/api/v1/catalog")
    assert http.get("/api/v1/catalog", HTTP_IF_NONE_MATCH=empty["ETag"]).status_code == 304

    _published(tmp_path, django_capture_on_commit_callbacks)
    changed = http.get("/api/v1/catalog", HTTP_IF_NONE_MATCH=empty["ETag"])

    assert changed.status_code == 200
    assert changed.json()["serial"] > empty.json()["serial"]
    (entry,) = changed.json()["releases"]
    assert entry["model_id"] == "alice/noise-16"
    url = entry["card"]["artifacts"][0]["urls"][0]
    assert url.startswith("http://testserver/api/v1/models/alice/noise-16/releases/1.0.0/")


def test_artifact_download_streams_with_checksum_and_ranges(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    release = _published(tmp_path, django_capture_on_commit_callbacks)
    artifact = release.artifacts.get()
    url = f"/api/v1/models/alice/noise-16/releases/1.0.0/artifacts/{artifact.filename}"
    http = HttpClient()

    whole = http.get(url)
    body = b"".join(whole.streaming_content)  # type: ignore[attr-defined]
    part = http.get(url, HTTP_RANGE="bytes=10-19")
    tail = http.get(url, HTTP_RANGE="bytes=-5")
    beyond = http.get(url, HTTP_RANGE=f"bytes={len(body)}-")

    assert whole.status_code == 200
    assert hashlib.sha256(body).hexdigest() == whole["X-Checksum-Sha256"] == artifact.sha256
    assert part.status_code == 206
    assert b"".join(part.streaming_content) == body[10:20]  # type: ignore[attr-defined]
    assert part["Content-Range"] == f"bytes 10-19/{len(body)}"
    assert b"".join(tail.streaming_content) == body[-5:]  # type: ignore[attr-defined]
    assert beyond.status_code == 416


def test_model_search_finds_by_prefix_and_by_medigan_semantics(
    tmp_path: Path, django_capture_on_commit_callbacks: Any, medigan_global: dict[str, Any]
) -> None:
    services.medigan_catalog_import(raw_catalog=medigan_global, actor=None, source="test")
    http = HttpClient()

    ours = http.get("/api/v1/models", {"q": "mammo dcgan"}).json()["results"]
    medigan = http.get(
        "/api/v1/models", {"q": "mammography dcgan", "operator": "AND", "semantics": "medigan"}
    ).json()["results"]

    expected = [
        "medigan/00001_DCGAN_MMG_CALC_ROI",
        "medigan/00002_DCGAN_MMG_MASS_ROI",
        "medigan/00005_DCGAN_MMG_MASS_ROI",
    ]
    assert [entry["model_id"] for entry in medigan] == expected
    assert set(expected) <= {entry["model_id"] for entry in ours}


def test_external_artifacts_are_not_served_and_say_where_they_live(
    medigan_global: dict[str, Any],
) -> None:
    services.medigan_catalog_import(raw_catalog=medigan_global, actor=None, source="test")

    response = HttpClient().get(
        "/api/v1/models/medigan/00001_DCGAN_MMG_CALC_ROI/releases/0.0.1"
        "/artifacts/00001_DCGAN_MMG_CALC_ROI.zip"
    )

    assert response.status_code == 404
    assert response.json()["code"] == "artifact_unreachable"
    assert response.json()["detail"]["urls"][0].startswith("https://zenodo.org/")


def test_openapi_schema_describes_the_push(db: Any) -> None:
    response = HttpClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert "/api/v1/releases" in json.loads(response.content)["paths"]


def test_push_accepts_the_card_as_a_file_part_like_curl_sends_it(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    key = factories.token(factories.user("alice"))
    archive, _, card = factories.package_zip(tmp_path)
    card_file = tmp_path / "card.json"
    card_file.write_text(json.dumps(card), encoding="utf-8")

    with (
        django_capture_on_commit_callbacks(execute=True),
        archive.open("rb") as package,
        card_file.open("rb") as card_part,
    ):
        response = HttpClient().post(
            "/api/v1/releases",
            {"card": card_part, "package": package},
            HTTP_AUTHORIZATION=f"Token {key}",
        )

    assert response.status_code == 202
    assert response.json()["model_id"] == "alice/noise-16"


def test_a_card_that_is_not_json_is_a_card_error_not_a_crash(tmp_path: Path) -> None:
    key = factories.token(factories.user("alice"))
    archive, _, _ = factories.package_zip(tmp_path)

    with archive.open("rb") as package:
        response = HttpClient().post(
            "/api/v1/releases",
            {"card": "{not json", "package": package},
            HTTP_AUTHORIZATION=f"Token {key}",
        )

    assert response.status_code == 400
    assert response.json()["code"] == "card_invalid"
