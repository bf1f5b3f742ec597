"""The push's upload handler: file parts are streamed to disk with a running byte count per field.

Django's own handlers keep every byte a client sends and leave limits to the view, which then
sees a 512 MiB package only once it is all on disk. This handler knows the limit of each file field
(the card, the package) and stops the upload in the chunk that passes it: it deletes its temporary
file, tells Django to read no more of the body (``StopUpload(connection_reset=True)``) and leaves
the refusal for the parser to raise (``hub.api.parsers``), since an upload handler cannot answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest

from medigan_catalog.errors import ErrorCode


@dataclass(frozen=True)
class UploadRefusal:
    """Why an upload was stopped, as the API will answer it."""

    code: ErrorCode
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


class LimitedUploadHandler(TemporaryFileUploadHandler):
    """Stream each allowed file part to a temporary file, counting; stop at the first excess.

    ``file_limits`` maps each file field the view reads to its byte limit; a file part under any
    other name, or more than ``max_files`` parts, stops the upload too (nothing is kept that the
    view would not read).
    """

    def __init__(
        self,
        request: HttpRequest | None = None,
        *,
        file_limits: Mapping[str, int],
        max_files: int,
    ) -> None:
        super().__init__(request)
        self.file_limits = dict(file_limits)
        self.max_files = max_files
        self.refusal: UploadRefusal | None = None
        self._files_seen = 0
        self._field = ""
        self._limit = 0
        self._received = 0

    def new_file(
        self,
        field_name: str,
        file_name: str,
        content_type: str,
        content_length: int | None,
        charset: str | None = None,
        content_type_extra: dict[str, bytes] | None = None,
    ) -> None:
        self._files_seen += 1
        if self._files_seen > self.max_files:
            self._refuse(
                ErrorCode.BAD_REQUEST,
                f"more than {self.max_files} file parts",
                {"max_files": self.max_files},
            )
        if field_name not in self.file_limits:
            self._refuse(
                ErrorCode.BAD_REQUEST,
                f"unexpected file part {field_name[:64]!r}",
                {"expected": sorted(self.file_limits)},
            )
        self._field = field_name
        self._limit = self.file_limits[field_name]
        self._received = 0
        # A part that announces its own length is refused before a byte of it is stored.
        if content_length is not None and content_length > self._limit:
            self._refuse_too_large()
        super().new_file(
            field_name, file_name, content_type, content_length, charset, content_type_extra
        )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self._received += len(raw_data)
        if self._received > self._limit:
            self._refuse_too_large()
        return super().receive_data_chunk(raw_data, start)

    def _refuse_too_large(self) -> None:
        self._refuse(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"the field {self._field!r} is larger than {self._limit} bytes",
            {"field": self._field, "limit": self._limit},
        )

    def _refuse(self, code: ErrorCode, message: str, detail: dict[str, Any]) -> None:
        self.refusal = UploadRefusal(code, message, detail)
        # Closing a temporary upload deletes it; Django closes it again, which is harmless.
        temporary: Any = getattr(self, "file", None)
        if temporary is not None:
            temporary.close()
        raise StopUpload(connection_reset=True)
