"""Tests for medigan_catalog.errors: codes, bodies and the typed exceptions."""

from __future__ import annotations

import json
import re

from medigan_catalog.errors import (
    CardInvalidError,
    CatalogError,
    ChecksumMismatchError,
    ErrorCode,
    FieldProblem,
    GenerationArgumentError,
    TransitionNotAllowedError,
    UnsafeArchiveError,
)


def test_codes_are_lower_snake_and_complete() -> None:
    required = {
        "CARD_INVALID", "ARCHIVE_UNSAFE", "CHECKSUM_MISMATCH", "ARTIFACT_UNREACHABLE",
        "NOT_FOUND", "AUTHENTICATION_REQUIRED", "PERMISSION_DENIED", "TRANSITION_NOT_ALLOWED",
        "RELEASE_EXISTS", "VALIDATION_FAILED", "GENERATION_FAILED", "BAD_REQUEST",
        "SERVER_ERROR", "HUB_UNREACHABLE", "OFFLINE",
    }  # fmt: skip
    assert required <= set(ErrorCode.__members__)
    for code in ErrorCode:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code.value)
        assert code.value == code.name.lower()


def test_card_invalid_body_lists_problems() -> None:
    error = CardInvalidError([FieldProblem(loc="output.height", msg="must be positive")])
    body = error.to_body()
    assert body == {
        "code": "card_invalid",
        "message": "card is invalid: output.height: must be positive",
        "detail": [{"loc": "output.height", "msg": "must be positive"}],
    }
    assert json.loads(json.dumps(body)) == body


def test_each_subclass_carries_its_code() -> None:
    assert TransitionNotAllowedError("published", "submitted", ["deprecated"]).code == (
        ErrorCode.TRANSITION_NOT_ALLOWED
    )
    assert UnsafeArchiveError("x", member="../a").to_body()["detail"] == {"member": "../a"}
    assert ChecksumMismatchError("a.zip", "1" * 64, "2" * 64).code is ErrorCode.CHECKSUM_MISMATCH
    generation = GenerationArgumentError("bad", argument="seed", allowed=["a", "b"])
    assert generation.to_body() == {
        "code": "bad_request",
        "message": "bad",
        "detail": {"argument": "seed", "allowed": ["a", "b"]},
    }


def test_instance_code_override_leaves_class_default() -> None:
    wrapped = CatalogError("hub said no", code=ErrorCode.NOT_FOUND)
    assert wrapped.to_body()["code"] == "not_found"
    assert CatalogError("plain").to_body()["code"] == "server_error"
    assert CatalogError.code is ErrorCode.SERVER_ERROR


def test_checksum_message_names_file_and_both_sums() -> None:
    error = ChecksumMismatchError("pkg.zip", "a" * 64, "b" * 64)
    assert "pkg.zip" in str(error)
    assert "a" * 64 in str(error)
    assert "b" * 64 in str(error)
