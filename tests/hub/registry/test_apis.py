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


def test_model_search_accepts_xor_under_either_semantics_and_lists_the_newest_version() -> None:
    alice = factories.user("alice")
    for version in ("1.10.0", "1.9.0", "2.0.0-rc.1"):
        factories.release_row(submitter=alice, model_id="alice/noise-16", version=version)
    http = HttpClient()

    results = {
        semantics: http.get(
            "/api/v1/models", {"q": "noise", "operator": "XOR", "semantics": semantics}
        )
        for semantics in ("hub", "medigan")
    }
    listing = http.get("/api/v1/models").json()["results"]

    assert {semantics: answer.status_code for semantics, answer in results.items()} == {
        "hub": 200,
        "medigan": 200,
    }
    # Semantic versions, not publication order: 1.10.0 is newer than 1.9.0 and 2.0.0-rc.1 is a
    # pre-release of 2.0.0, which sorts after 1.10.0.
    assert [entry["latest_version"] for entry in listing] == ["2.0.0-rc.1"]
    assert http.get("/api/v1/models", {"operator": "NAND"}).status_code == 400


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


def _stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_a_card_whose_model_id_ends_in_a_newline_is_refused_before_anything_is_stored(
    tmp_path: Path, settings: Any
) -> None:
    key = factories.token(factories.user("alice"))
    archive, _, card = factories.package_zip(tmp_path / "build")
    card["model_id"] = "alice/noise-16\n"

    with archive.open("rb") as package:
        response = HttpClient().post(
            "/api/v1/releases",
            {"card": json.dumps(card), "package": package},
            HTTP_AUTHORIZATION=f"Token {key}",
        )

    assert response.status_code == 400
    assert response.json()["code"] == "card_invalid"
    assert _stored_files(Path(settings.MEDIA_ROOT)) == []
    assert not Release.objects.exists()


def _push_with_card_text(tmp_path: Path, card_text: str) -> Any:
    key = factories.token(factories.user("alice"))
    archive, _, _ = factories.package_zip(tmp_path / "build")
    with archive.open("rb") as package:
        return HttpClient().post(
            "/api/v1/releases",
            {"card": card_text, "package": package},
            HTTP_AUTHORIZATION=f"Token {key}",
        )


@pytest.mark.parametrize("card_bytes", [1024 * 1024 + 1, 7 * 1024 * 1024, 9 * 1024 * 1024])
def test_a_card_text_field_over_one_mebibyte_is_payload_too_large(
    tmp_path: Path, settings: Any, card_bytes: int
) -> None:
    card = factories.card_data()
    card["description"]["comment"] = ""
    padding = card_bytes - len(json.dumps(card))
    card["description"]["comment"] = "x" * padding

    response = _push_with_card_text(tmp_path, json.dumps(card))

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert set(response.json()) == {"code", "message", "detail"}
    assert _stored_files(Path(settings.MEDIA_ROOT)) == []


def test_a_card_file_part_over_one_mebibyte_is_payload_too_large(tmp_path: Path) -> None:
    key = factories.token(factories.user("alice"))
    archive, _, _ = factories.package_zip(tmp_path / "build")
    card_file = tmp_path / "card.json"
    card_file.write_bytes(b" " * (1024 * 1024 + 1))

    with archive.open("rb") as package, card_file.open("rb") as card_part:
        response = HttpClient().post(
            "/api/v1/releases",
            {"card": card_part, "package": package},
            HTTP_AUTHORIZATION=f"Token {key}",
        )

    assert response.status_code == 413
    assert response.json()["detail"]["field"] == "card"


def test_a_package_over_the_limit_stops_the_upload_and_leaves_no_temporary_file(
    tmp_path: Path, settings: Any
) -> None:
    settings.MEDIGAN_MAX_PACKAGE_BYTES = 20_000
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    (tmp_path / "upload-tmp").mkdir()
    key = factories.token(factories.user("alice"))
    big = tmp_path / "big.zip"
    big.write_bytes(b"\0" * 200_000)

    with big.open("rb") as package:
        response = HttpClient().post(
            "/api/v1/releases",
            {"card": json.dumps(factories.card_data()), "package": package},
            HTTP_AUTHORIZATION=f"Token {key}",
        )

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert response.json()["detail"] == {"field": "package", "limit": 20_000}
    assert list((tmp_path / "upload-tmp").iterdir()) == []
    assert _stored_files(Path(settings.MEDIA_ROOT)) == []
    assert not Release.objects.exists()


class _UnreadableBody:
    """A request body that fails the test if anything reads it."""

    def read(self, *args: Any) -> bytes:
        raise AssertionError("the body was read although Content-Length was over the limit")

    readline = read


def test_a_declared_content_length_over_the_limit_is_refused_before_the_body_is_read(
    settings: Any,
) -> None:
    settings.MEDIGAN_MAX_PACKAGE_BYTES = 20_000
    key = factories.token(factories.user("alice"))

    response = HttpClient().generic(
        "POST",
        "/api/v1/releases",
        b"",
        HTTP_AUTHORIZATION=f"Token {key}",
        # The test client sets these only for a body it sends itself.
        CONTENT_TYPE="multipart/form-data; boundary=xyz",
        CONTENT_LENGTH=str(600 * 1024 * 1024),
        **{"wsgi.input": _UnreadableBody()},
    )

    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "payload_too_large"
    assert body["detail"]["content_length"] == 600 * 1024 * 1024


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nnot a part\r\n--xyz--"),
        ("multipart/form-data", b"anything"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data; na"),
        ("application/json", b'{"card": {}}'),
        ("text/plain", b"card=x"),
    ],
)
def test_a_malformed_push_body_is_a_4xx_in_the_error_shape(content_type: str, body: bytes) -> None:
    key = factories.token(factories.user("alice"))

    response = HttpClient().generic(
        "POST",
        "/api/v1/releases",
        body,
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Token {key}",
    )

    assert response.status_code in {400, 415}
    assert set(response.json()) == {"code", "message", "detail"}


def test_a_push_with_a_malformed_sha256_is_refused(tmp_path: Path) -> None:
    key = factories.token(factories.user("alice"))
    archive, _, card = factories.package_zip(tmp_path / "build")

    with archive.open("rb") as package:
        response = HttpClient().post(
            "/api/v1/releases",
            {"card": json.dumps(card), "package": package, "sha256": "z" * 64},
            HTTP_AUTHORIZATION=f"Token {key}",
        )

    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == "sha256"


@pytest.mark.parametrize(
    "card_text",
    [
        '{"model_id": NaN}',
        '{"height": 1e400}',
        "[" * 100_000 + "]" * 100_000,
        '{"model_id": "alice/noise-16", "description": {"title": "\\u0000"}}',
        '{"title": "\\ud800"}',
    ],
    ids=["nan", "overflow", "deep", "nul", "surrogate"],
)
def test_a_card_no_database_could_store_is_card_invalid(tmp_path: Path, card_text: str) -> None:
    response = _push_with_card_text(tmp_path, card_text)

    assert response.status_code == 400
    assert response.json()["code"] == "card_invalid"


def _range_get(release: Release, header: str) -> Any:
    artifact = release.artifacts.get()
    url = f"/api/v1/models/alice/noise-16/releases/1.0.0/artifacts/{artifact.filename}"
    return HttpClient().get(url, HTTP_RANGE=header)


@pytest.mark.parametrize(
    ("header", "expected_status", "expected_body"),
    [
        ("bytes=0-9999999999999999999999999", 206, b"0123456789"),
        ("bytes=-9999999999999999999999999", 206, b"0123456789"),
        ("bytes=2-", 206, b"23456789"),
        ("bytes=abc", 200, b"0123456789"),
        ("bytes=0-1,4-5", 200, b"0123456789"),
        ("bytes=5-3", 200, b"0123456789"),
        ("items=0-1", 200, b"0123456789"),
        ("bytes=9999999999999999999999999-", 416, None),
        ("bytes=10-", 416, None),
        ("bytes=-0", 416, None),
    ],
)
def test_range_requests_are_honoured_ignored_or_unsatisfiable_never_a_crash(
    header: str, expected_status: int, expected_body: bytes | None
) -> None:
    release = factories.release_row(submitter=factories.user("alice"), package=b"0123456789")

    response = _range_get(release, header)

    assert response.status_code == expected_status
    if expected_body is None:
        assert response["Content-Range"] == "bytes */10"
        assert response.json()["code"] == "bad_request"
    else:
        assert b"".join(response.streaming_content) == expected_body


def test_a_five_thousand_digit_range_header_is_a_bad_request() -> None:
    release = factories.release_row(submitter=factories.user("alice"), package=b"0123456789")

    response = _range_get(release, "bytes=" + "9" * 5000 + "-")

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def test_an_artifact_missing_from_storage_is_unreachable_not_a_crash(settings: Any) -> None:
    release = factories.release_row(submitter=factories.user("alice"), package=b"0123456789")
    artifact = release.artifacts.get()
    (Path(settings.MEDIA_ROOT) / artifact.file.name).unlink()

    response = _range_get(release, "")

    assert response.status_code == 404
    assert response.json()["code"] == "artifact_unreachable"


def _grid_get(key: str | None, **kwargs: Any) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Token {key}"} if key else {}
    return HttpClient().get(
        "/api/v1/models/alice/noise-16/releases/1.0.0/sample-grid", **headers, **kwargs
    )


def test_a_rejected_releases_grid_is_shown_to_its_submitter_and_reviewers_only() -> None:
    alice = factories.user("alice")
    factories.release_row(submitter=alice, state="rejected")

    anonymous = _grid_get(None)
    other_contributor = _grid_get(factories.token(factories.user("bob")))
    submitter = _grid_get(factories.token(alice))
    reviewer = _grid_get(factories.token(factories.user("rita", reviewer=True)))

    assert anonymous.status_code == 404
    assert anonymous.json()["code"] == "not_found"
    assert other_contributor.status_code == 404
    assert other_contributor.json()["code"] == "not_found"
    for allowed in (submitter, reviewer):
        assert allowed.status_code == 200
        assert allowed["Content-Type"] == "image/png"
        assert allowed["Cache-Control"] == "private, no-store"
        assert b"".join(allowed.streaming_content) == factories.png_bytes()


def test_a_published_releases_grid_is_public_and_its_url_is_the_checked_view() -> None:
    release = factories.release_row(submitter=factories.user("alice"))

    grid = _grid_get(None)
    status_body = HttpClient().get("/api/v1/models/alice/noise-16/releases/1.0.0").json()

    assert grid.status_code == 200
    assert b"".join(grid.streaming_content).startswith(b"\x89PNG")
    assert status_body["sample_grid_url"] == (
        "http://testserver/api/v1/models/alice/noise-16/releases/1.0.0/sample-grid"
    )
    assert HttpClient().get(f"/media/{release.sample_grid.name}").status_code == 404


def test_a_release_without_a_grid_answers_404() -> None:
    factories.release_row(submitter=factories.user("alice"), grid=False)

    response = _grid_get(None)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/models/alice/noise-16%0A/releases/1.0.0",
        "/api/v1/models/Alice/noise-16/releases/1.0.0",
        "/api/v1/models/alice/noise-16/releases/1.0.0%0A",
        "/api/v1/models/alice/noise-16/releases/1.0",
        "/api/v1/models/alice/noise%00-16/releases/1.0.0",
        "/api/v1/models/alice/noise-16/releases/1.0.0/artifacts/..zip",
        "/api/v1/models/alice/noise-16/releases/1.0.0/sample-grid".replace("alice", "a" * 65),
        "/api/v1/models/alice/noise-16%0A",
    ],
)
def test_a_malformed_id_in_a_url_is_a_bad_request(path: str) -> None:
    response = HttpClient().get(path)

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert response.json()["detail"][0]["loc"].startswith("path.")
