"""Request body parsers of the API: every limit is checked before the body is read.

DRF's own parsers read a whole JSON or form body into memory whatever its size, and let Django's
``RequestDataTooBig``, ``TooManyFieldsSent`` or a decoding error escape as a 500. These check the
declared ``Content-Length`` first (413), read at most their limit, and turn every malformed body
into a 400 (or 413) in the API's error shape. The multipart parser streams file parts through
``hub.api.uploads.LimitedUploadHandler`` and holds each text field to its own limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol, cast

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import QueryDict
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from django.utils.datastructures import MultiValueDict
from rest_framework.parsers import BaseParser, DataAndFiles

from hub.api.errors import ApiError
from hub.api.uploads import LimitedUploadHandler
from medigan_catalog.errors import ErrorCode

# A review note, an evaluation request: a JSON or form body of the API is a few hundred bytes.
SMALL_BODY_MAX_BYTES = 64 * 1024
# Multipart headers and boundaries around the fields, on top of the fields' own limits.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# A Content-Length with more digits than this is larger than any limit here.
_MAX_LENGTH_DIGITS = 18
_BEYOND_ANY_LIMIT = 10**18


def _too_large(what: str, limit: int, detail: Mapping[str, Any] | None = None) -> ApiError:
    return ApiError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        f"{what} is larger than {limit} bytes",
        {"limit": limit, **(detail or {})},
    )


def declared_length(meta: Mapping[str, Any]) -> int | None:
    """The request's ``Content-Length``, None when it has none; 400 when it is not a number.

    Never ``int()`` of an unbounded string: thousands of digits are refused by Python itself.
    """
    raw = meta.get("CONTENT_LENGTH")
    if raw is None or str(raw).strip() == "":
        return None
    text = str(raw).strip()
    if not (text.isascii() and text.isdigit()):
        raise ApiError(ErrorCode.BAD_REQUEST, "Content-Length is not a number of bytes")
    significant = text.lstrip("0") or "0"
    if len(significant) > _MAX_LENGTH_DIGITS:
        return _BEYOND_ANY_LIMIT
    return int(significant)


def _body_check(meta: Mapping[str, Any], limit: int) -> None:
    length = declared_length(meta)
    if length is not None and length > limit:
        raise _too_large("the request body", limit, {"content_length": length})


def _read_at_most(stream: IO[bytes], limit: int) -> bytes:
    # Read one byte past the limit so that a body without Content-Length is caught too.
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise _too_large("the request body", limit)
    return data


def _decoded(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except (LookupError, UnicodeDecodeError) as error:
        raise ApiError(ErrorCode.BAD_REQUEST, f"the body is not text in {encoding!r}") from error


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:32]} is out of range for a JSON number")
    return value


def strict_json_loads(text: str | bytes) -> Any:
    """Parse JSON as the standard defines it: no NaN or Infinity, no number that overflows.

    Raises ValueError (malformed, or a number Python refuses) or RecursionError (nested too
    deeply); both are the client's fault, and the callers answer 400 for them.
    """
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def _context_meta(parser_context: Mapping[str, Any] | None) -> tuple[Mapping[str, Any], str]:
    context = parser_context or {}
    request = context.get("request")
    meta: Mapping[str, Any] = getattr(request, "META", {})
    encoding = str(context.get("encoding") or settings.DEFAULT_CHARSET)
    return meta, encoding


def _small_body(stream: IO[Any], parser_context: Mapping[str, Any] | None) -> tuple[bytes, str]:
    """A small body's bytes and encoding: its Content-Length checked, then read with a cap."""
    meta, encoding = _context_meta(parser_context)
    _body_check(meta, SMALL_BODY_MAX_BYTES)
    return _read_at_most(stream, SMALL_BODY_MAX_BYTES), encoding


class LimitedJSONParser(BaseParser):
    """JSON bodies of at most ``SMALL_BODY_MAX_BYTES``; NaN and Infinity are not JSON."""

    media_type = "application/json"

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        body, encoding = _small_body(stream, parser_context)
        text = _decoded(body, encoding)
        try:
            return strict_json_loads(text)
        except (ValueError, RecursionError) as error:
            raise ApiError(ErrorCode.BAD_REQUEST, f"the body is not JSON: {error}") from error


class LimitedFormParser(BaseParser):
    """URL-encoded form bodies of at most ``SMALL_BODY_MAX_BYTES``."""

    media_type = "application/x-www-form-urlencoded"

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        data, encoding = _small_body(stream, parser_context)
        try:
            return QueryDict(data, encoding=encoding)
        except TooManyFieldsSent as error:
            raise ApiError(ErrorCode.BAD_REQUEST, "the form has too many fields") from error
        except (LookupError, UnicodeDecodeError) as error:
            raise ApiError(ErrorCode.BAD_REQUEST, "the form is not decodable text") from error


@dataclass(frozen=True)
class MultipartLimits:
    """What one multipart operation accepts: each file and text field with its byte limit.

    A text field not named in ``texts`` may be at most ``other_text_bytes``; a file part not named
    in ``files`` is refused.
    """

    files: Mapping[str, int]
    texts: Mapping[str, int] = field(default_factory=dict)
    other_text_bytes: int = 1024
    max_parts: int = 16

    @property
    def body_bytes(self) -> int:
        """The largest body these fields can add up to."""
        return (
            sum(self.files.values())
            + sum(self.texts.values())
            + self.max_parts * self.other_text_bytes
            + MULTIPART_OVERHEAD_BYTES
        )


class HasMultipartLimits(Protocol):
    """A view that reads multipart bodies says which fields it takes and how large each may be."""

    def multipart_limits(self) -> MultipartLimits: ...


def _close_files(files: MultiValueDict[str, Any]) -> None:
    # Closing a temporary upload deletes it at once rather than at garbage collection.
    for _, uploads in files.lists():
        for upload in uploads:
            upload.close()


class LimitedMultiPartParser(BaseParser):
    """``multipart/form-data`` within the view's ``multipart_limits()``, file parts streamed."""

    media_type = "multipart/form-data"

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> DataAndFiles[Any, Any]:
        meta, encoding = _context_meta(parser_context)
        view: HasMultipartLimits = (parser_context or {})["view"]
        limits = view.multipart_limits()
        _body_check(meta, limits.body_bytes)
        handler = LimitedUploadHandler(
            file_limits=limits.files, max_files=min(limits.max_parts, len(limits.files))
        )
        # Django's parser reads the boundary from CONTENT_TYPE, which DRF may have normalised.
        parser_meta = {**meta, "CONTENT_TYPE": media_type or meta.get("CONTENT_TYPE", "")}
        try:
            parser = DjangoMultiPartParser(parser_meta, cast(Any, stream), [handler], encoding)
            data, files = parser.parse()
        except RequestDataTooBig as error:
            raise _too_large("the text fields", settings.DATA_UPLOAD_MAX_MEMORY_SIZE) from error
        except (TooManyFieldsSent, TooManyFilesSent) as error:
            raise ApiError(ErrorCode.BAD_REQUEST, "the form has too many parts") from error
        except (MultiPartParserError, LookupError, UnicodeDecodeError) as error:
            raise ApiError(ErrorCode.BAD_REQUEST, f"malformed multipart body: {error}") from error
        try:
            if handler.refusal is not None:
                refusal = handler.refusal
                raise ApiError(refusal.code, refusal.message, refusal.detail)
            self._check_fields(data, files, limits)
        except ApiError:
            _close_files(files)
            raise
        return DataAndFiles(data, files)

    @staticmethod
    def _check_fields(
        data: QueryDict, files: MultiValueDict[str, Any], limits: MultipartLimits
    ) -> None:
        parts = sum(len(values) for _, values in data.lists()) + sum(
            len(values) for _, values in files.lists()
        )
        if parts > limits.max_parts:
            raise ApiError(
                ErrorCode.BAD_REQUEST,
                f"the form has more than {limits.max_parts} parts",
                {"max_parts": limits.max_parts},
            )
        for name, values in data.lists():
            limit = limits.texts.get(name, limits.other_text_bytes)
            for value in values:
                # Characters never outnumber their UTF-8 bytes: count bytes only when needed.
                if len(value) > limit or len(value.encode("utf-8", "surrogatepass")) > limit:
                    raise _too_large(f"the field {name[:64]!r}", limit, {"field": name[:64]})
