"""Bad input to the API answers 4xx in the error shape: bodies, parameters, ids and routes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client as HttpClient

from hub.evaluations.models import Evaluation
from tests import factories

pytestmark = pytest.mark.django_db

_RELEASE = "/api/v1/models/alice/noise-16/releases/1.0.0"


def _error_shaped(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "detail"}
    return body


def _staff_key() -> str:
    return factories.token(factories.user("sam", staff=True))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seed", 10**30),
        ("seed", -1),
        ("seed", 2**63),
        ("seed", "9" * 5000),
        ("num_samples", 10**30),
        ("num_samples", 9),
        ("num_samples", 100_001),
    ],
)
def test_an_evaluation_request_out_of_range_is_a_bad_request(field: str, value: Any) -> None:
    factories.release_row(submitter=factories.user("alice"))

    response = HttpClient().post(
        f"{_RELEASE}/evaluations",
        {"reference": "noise", field: value},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {_staff_key()}",
    )

    assert response.status_code == 400
    body = _error_shaped(response)
    assert body["code"] == "bad_request"
    assert field in body["detail"]


def test_the_largest_seed_the_hub_stores_is_accepted() -> None:
    factories.release_row(submitter=factories.user("alice"))
    factories.reference_set_row()

    response = HttpClient().post(
        f"{_RELEASE}/evaluations",
        {"reference": "noise", "seed": 2**63 - 1, "num_samples": 10},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {_staff_key()}",
    )

    assert response.status_code == 202
    assert Evaluation.objects.get().seed == 2**63 - 1


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/json", b"{not json", 400),
        ("application/json", b'{"decision": NaN}', 400),
        ("application/json", b"\xff\xfe{}", 400),
        ("application/json; charset=no-such-codec", b"{}", 400),
        ("application/json", b"[" * 30_000 + b"]" * 30_000, 400),
        ("application/json", b"[" * 50_000 + b"]" * 50_000, 413),
        ("application/json", b'{"note": "' + b"x" * 70_000 + b'"}', 413),
        ("application/x-www-form-urlencoded", b"&".join([b"a=1"] * 2000), 400),
        ("application/x-www-form-urlencoded", b"note=" + b"x" * 70_000, 413),
        ("multipart/form-data; boundary=x", b"--x\r\n", 415),
        ("text/plain", b"decision=approve", 415),
    ],
)
def test_a_malformed_review_body_is_a_4xx_in_the_error_shape(
    content_type: str, body: bytes, status: int
) -> None:
    factories.release_row(submitter=factories.user("alice"), state="in_review")
    key = factories.token(factories.user("rita", reviewer=True))

    response = HttpClient().generic(
        "POST",
        f"{_RELEASE}/review",
        body,
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Token {key}",
    )

    assert response.status_code == status
    _error_shaped(response)


def test_a_review_with_a_nul_in_its_note_is_a_bad_request() -> None:
    factories.release_row(submitter=factories.user("alice"), state="in_review")
    key = factories.token(factories.user("rita", reviewer=True))

    response = HttpClient().post(
        f"{_RELEASE}/review",
        json.dumps({"decision": "reject", "note": "bad\u0000"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )

    assert response.status_code == 400
    assert "note" in _error_shaped(response)["detail"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/models", {"q": "x" * 1001}),
        ("/api/v1/models", {"q": "mammo\u0000"}),
        ("/api/v1/models", {"operator": "NAND"}),
        ("/api/v1/models", {"semantics": "sql"}),
        ("/api/v1/leaderboards", {"reference": "noise\u0000"}),
        ("/api/v1/leaderboards", {"reference": "x" * 65}),
        ("/api/v1/leaderboards", {"extractor": "no-such-extractor"}),
        ("/api/v1/leaderboards", {"sort": "name; drop table"}),
        ("/api/v1/leaderboards", {"order": "sideways"}),
    ],
)
def test_a_bad_query_parameter_is_a_bad_request(path: str, params: dict[str, str]) -> None:
    response = HttpClient().get(path, params)

    assert response.status_code == 400
    assert _error_shaped(response)["code"] == "bad_request"


def test_a_path_under_api_that_no_route_matches_is_a_404_in_the_error_shape() -> None:
    response = HttpClient().get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert _error_shaped(response)["code"] == "not_found"


def test_a_disallowed_host_under_api_is_a_400_in_the_error_shape() -> None:
    response = HttpClient().get("/api/v1/models", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert _error_shaped(response)["code"] == "bad_request"


def test_pages_outside_the_api_keep_djangos_own_404() -> None:
    response = HttpClient().get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("length", ["12abc", "-5", "\u0661\u0662"])
def test_a_content_length_that_is_not_a_number_is_a_bad_request(length: str) -> None:
    key = factories.token(factories.user("alice"))

    response = HttpClient().generic(
        "POST",
        "/api/v1/releases",
        b"",
        HTTP_AUTHORIZATION=f"Token {key}",
        CONTENT_TYPE="multipart/form-data; boundary=xyz",
        CONTENT_LENGTH=length,
    )

    assert response.status_code == 400
    _error_shaped(response)


@pytest.mark.parametrize(
    "path", ["/api/v1/models", "/api/v1/models/alice/noise-16", "/api/schema/"]
)
def test_more_query_parameters_than_django_reads_is_a_bad_request(path: str) -> None:
    response = HttpClient().get(
        path + "?" + "&".join(["a=1"] * 1200), HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 400
    # The schema view has not negotiated a renderer yet when Django refuses the query: YAML.
    assert b"bad_request" in response.content
