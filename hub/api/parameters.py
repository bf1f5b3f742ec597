"""Path and query parameters of the API: one definition each, for the views and for OpenAPI.

Every id in a URL (namespace, name, version, artifact filename, reference set) is held to the
catalogue's own rules before any lookup, so a bad value answers 400 in the API's error shape rather
than reaching the database (where PostgreSQL refuses a NUL and a long value may not fit a column).
Patterns are matched with ``fullmatch``: Python's ``$`` also matches before a trailing newline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from drf_spectacular.utils import OpenApiParameter
from pydantic import BaseModel, ValidationError
from rest_framework.request import Request

from hub.api.errors import ApiError
from medigan_catalog.access import Visibility
from medigan_catalog.errors import ErrorCode, FieldProblem
from medigan_catalog.schema import (
    ARTIFACT_FILENAME_PATTERN,
    NAME_PATTERN,
    NAMESPACE_PATTERN,
    SEMVER_RE,
    VERSION_MAX_LENGTH,
)

# A reference set's slug: the alphabet of Django's SlugField, and the length of ReferenceSet.slug.
SLUG_PATTERN = r"^[-a-zA-Z0-9_]+$"
SLUG_MAX_LENGTH = 64
# Search terms longer than this are not a search; they are only work for the server.
QUERY_MAX_LENGTH = 1000


@dataclass(frozen=True)
class IdRule:
    """How one id parameter is spelled: an anchored pattern, a length limit and the words for it."""

    pattern: str
    max_length: int
    rule: str

    def accepts(self, value: str) -> bool:
        """Whether ``value`` is a well-formed id (the whole string, no trailing newline)."""
        return len(value) <= self.max_length and re.fullmatch(self.pattern, value) is not None

    def schema(self) -> dict[str, Any]:
        """The OpenAPI schema of the parameter."""
        return {"type": "string", "pattern": self.pattern, "maxLength": self.max_length}


ID_RULES: dict[str, IdRule] = {
    "namespace": IdRule(
        f"^{NAMESPACE_PATTERN}$",
        64,
        "1-64 of a-z, 0-9, '_', '-', starting with a letter or digit",
    ),
    "name": IdRule(
        f"^{NAME_PATTERN}$",
        128,
        "1-128 of A-Z, a-z, 0-9, '.', '_', '-', starting with a letter or digit",
    ),
    "version": IdRule(
        SEMVER_RE.pattern,
        VERSION_MAX_LENGTH,
        f"a semantic version such as 1.0.0, at most {VERSION_MAX_LENGTH} characters",
    ),
    "filename": IdRule(
        ARTIFACT_FILENAME_PATTERN,
        255,
        "1-255 of A-Z, a-z, 0-9, '.', '_', '+', '-', starting with a letter or digit",
    ),
    "reference": IdRule(SLUG_PATTERN, SLUG_MAX_LENGTH, "1-64 of A-Z, a-z, 0-9, '_', '-'"),
}


def _path_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        ID_RULES[name].schema(),
        OpenApiParameter.PATH,
        required=True,
        description=f"{description}: {ID_RULES[name].rule}",
    )


NAMESPACE = _path_parameter("namespace", "the namespace of the generative model")
NAME = _path_parameter("name", "the name of the generative model")
VERSION = _path_parameter("version", "the release's version")
FILENAME = _path_parameter("filename", "the artifact's file name")
REFERENCE = _path_parameter("reference", "the reference set's slug")
MODEL_PATH = [NAMESPACE, NAME]
RELEASE_PATH = [NAMESPACE, NAME, VERSION]


def path_ids_check(**values: str) -> None:
    """Raise a 400 naming each of ``values`` (keyed by parameter name) that breaks its rule."""
    problems: list[FieldProblem] = [
        {"loc": f"path.{key}", "msg": f"must be {ID_RULES[key].rule}"}
        for key, value in values.items()
        if not ID_RULES[key].accepts(value)
    ]
    if problems:
        names = ", ".join(problem["loc"].removeprefix("path.") for problem in problems)
        raise ApiError(ErrorCode.BAD_REQUEST, f"malformed path parameter: {names}", problems)


def query_choice(request: Request, name: str, choices: Iterable[str], default: str) -> str:
    """The query parameter ``name``, which must be one of ``choices`` (``default`` if absent)."""
    allowed = list(choices)
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    if value not in allowed:
        raise ApiError(
            ErrorCode.BAD_REQUEST,
            f"{name} must be one of {', '.join(allowed)}",
            [{"loc": f"query.{name}", "msg": f"must be one of {', '.join(allowed)}"}],
        )
    return value


_Document = TypeVar("_Document", bound=BaseModel)


def body_document(document: type[_Document], data: object) -> _Document:
    """A request body read as one of the wire format's documents (``medigan_catalog``); its
    problems answered as ``400 bad_request`` with a ``{loc, msg}`` per field."""
    try:
        return document.model_validate(data)
    except ValidationError as error:
        problems = [
            {"loc": ".".join(str(part) for part in problem["loc"]), "msg": problem["msg"]}
            for problem in error.errors()
        ]
        raise ApiError(ErrorCode.BAD_REQUEST, "the request is not valid", problems) from error


def visibility_choice(value: object) -> Visibility | None:
    """A form or body field naming a visibility; None when absent."""
    if value is None or value == "":
        return None
    allowed = [visibility.value for visibility in Visibility]
    if value not in allowed:
        raise ApiError(
            ErrorCode.BAD_REQUEST,
            f"visibility must be one of {', '.join(allowed)}",
            [{"loc": "visibility", "msg": f"must be one of {', '.join(allowed)}"}],
        )
    return Visibility(str(value))


def query_int(
    request: Request, name: str, *, minimum: int, maximum: int, default: int | None = None
) -> int:
    """The integer query parameter ``name`` within ``[minimum, maximum]``; required unless it
    has a ``default``. Anything else is ``400 bad_request`` naming the parameter."""
    value = request.query_params.get(name)
    if value is None or value == "":
        if default is None:
            raise ApiError(
                ErrorCode.BAD_REQUEST,
                f"the query parameter {name} is required",
                [{"loc": f"query.{name}", "msg": "required"}],
            )
        return default
    if not re.fullmatch(r"[0-9]{1,19}", value) or not minimum <= int(value) <= maximum:
        raise ApiError(
            ErrorCode.BAD_REQUEST,
            f"{name} must be a whole number from {minimum} to {maximum}",
            [{"loc": f"query.{name}", "msg": f"a whole number from {minimum} to {maximum}"}],
        )
    return int(value)


def query_id(request: Request, name: str, rule: str) -> str | None:
    """The query parameter ``name`` checked against the id rule ``rule``; None when absent."""
    value = request.query_params.get(name)
    if not value:
        return None
    if not ID_RULES[rule].accepts(value):
        raise ApiError(
            ErrorCode.BAD_REQUEST,
            f"malformed query parameter: {name}",
            [{"loc": f"query.{name}", "msg": f"must be {ID_RULES[rule].rule}"}],
        )
    return value


def query_text(request: Request, name: str, *, max_length: int = QUERY_MAX_LENGTH) -> str:
    """Free text from the query string, at most ``max_length`` characters and without NUL."""
    value = request.query_params.get(name, "")
    if len(value) > max_length or "\x00" in value:
        raise ApiError(
            ErrorCode.BAD_REQUEST,
            f"{name} must be at most {max_length} characters of text",
            [{"loc": f"query.{name}", "msg": f"at most {max_length} characters, no NUL"}],
        )
    return value


def query_parameter(
    name: str, *, description: str = "", enum: list[str] | None = None, rule: str | None = None
) -> OpenApiParameter:
    """The OpenAPI description of a query parameter checked by one of the functions above."""
    if enum is not None:
        return OpenApiParameter(name, str, description=description, enum=enum)
    schema = (
        ID_RULES[rule].schema()
        if rule is not None
        else {"type": "string", "maxLength": QUERY_MAX_LENGTH}
    )
    return OpenApiParameter(name, schema, description=description)
