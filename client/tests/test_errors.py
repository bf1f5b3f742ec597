"""Error bodies of the hub map to the typed client exceptions."""

from __future__ import annotations

import pytest

from medigan_catalog.errors import ErrorCode
from medigan_client import errors
from medigan_client.errors import error_class_for, error_from_body


def test_every_error_code_has_a_typed_exception() -> None:
    for code in ErrorCode:
        cls = error_class_for(code.value)
        assert cls is not None, code
        assert issubclass(cls, errors.MediganClientError)
        assert cls.code == code


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("not_found", errors.NotFoundError),
        ("release_exists", errors.ReleaseExistsError),
        ("checksum_mismatch", errors.ChecksumMismatchError),
        ("card_invalid", errors.CardInvalidError),
        ("permission_denied", errors.PermissionDeniedError),
    ],
)
def test_code_decides_the_class(code: str, expected: type[Exception]) -> None:
    error = error_from_body(400, {"code": code, "message": "the message", "detail": {"x": 1}})
    assert type(error) is expected
    assert error.message == "the message"
    assert str(error) == "the message"
    assert error.detail == {"x": 1}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, errors.AuthenticationRequiredError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (500, errors.ServerError),
        (503, errors.HubUnreachableError),
        (418, errors.BadRequestError),
    ],
)
def test_status_decides_when_the_body_has_no_known_code(
    status: int, expected: type[Exception]
) -> None:
    error = error_from_body(status, "<html>oops</html>")
    assert type(error) is expected
    assert str(status) in error.message


def test_unknown_code_falls_back_to_status() -> None:
    error = error_from_body(404, {"code": "brand_new_code", "message": "gone"})
    assert isinstance(error, errors.NotFoundError)
    assert error.message == "gone"
