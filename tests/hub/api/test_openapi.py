"""The OpenAPI schema describes the error answers and the parameter rules the API enforces."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client as HttpClient

pytestmark = pytest.mark.django_db

_RELEASE = "/api/v1/models/{namespace}/{name}/releases/{version}"


@pytest.fixture
def schema() -> dict[str, Any]:
    response = HttpClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document: dict[str, Any] = json.loads(response.content)
    return document


def _parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [p for p in operation["parameters"] if p["name"] == name]
    return found


def test_every_operation_describes_its_errors_with_the_error_body(schema: dict[str, Any]) -> None:
    error_ref = "#/components/schemas/ApiError"
    body = schema["components"]["schemas"]["ApiError"]
    assert set(body["required"]) == {"code", "message", "detail"}
    assert "payload_too_large" in schema["components"]["schemas"]["CodeEnum"]["enum"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            errors = {
                code: answer for code, answer in operation["responses"].items() if code >= "4"
            }
            if path in {"/api/v1/catalog", "/api/v1/reference-sets"}:
                continue
            assert errors, f"{method.upper()} {path} names no error answer"
            for answer in errors.values():
                assert answer["content"]["application/json"]["schema"]["$ref"] == error_ref


def test_the_push_documents_its_limits(schema: dict[str, Any]) -> None:
    push = schema["paths"]["/api/v1/releases"]["post"]

    assert {"400", "401", "409", "413", "415"} <= set(push["responses"])
    assert push["security"][0] == {"tokenAuth": []}
    assert schema["components"]["securitySchemes"]["tokenAuth"]["name"] == "Authorization"


def test_path_ids_carry_their_patterns(schema: dict[str, Any]) -> None:
    download = schema["paths"][f"{_RELEASE}/artifacts/{{filename}}"]["get"]

    assert _parameter(download, "namespace")["schema"]["pattern"] == "^[a-z0-9][a-z0-9_-]{0,63}$"
    assert _parameter(download, "name")["schema"]["maxLength"] == 128
    assert _parameter(download, "version")["schema"]["maxLength"] == 64
    assert _parameter(download, "filename")["schema"]["pattern"].startswith("^[A-Za-z0-9]")
    assert _parameter(download, "Range")["in"] == "header"
    assert {"400", "404", "416"} <= set(download["responses"])


def test_the_sample_grid_view_is_in_the_schema_as_a_png(schema: dict[str, Any]) -> None:
    grid = schema["paths"][f"{_RELEASE}/sample-grid"]["get"]

    assert "image/png" in grid["responses"]["200"]["content"]
    assert "404" in grid["responses"]


def test_the_evaluation_seed_is_bounded_in_the_schema(schema: dict[str, Any]) -> None:
    request = schema["components"]["schemas"]["EvaluationRequest"]["properties"]

    assert request["seed"]["minimum"] == 0
    assert request["seed"]["maximum"] == 2**63 - 1
    assert (request["num_samples"]["minimum"], request["num_samples"]["maximum"]) == (10, 100_000)
