"""An upload handler that stops a file part at the package size limit, before it reaches disk.

The API's push parser counts the bytes of a package as they stream and stops at
``MEDIGAN_MAX_PACKAGE_BYTES``. A web form's body is parsed by Django itself (the CSRF check reads
it before any view runs), so without this handler an oversize upload would be spooled to a
temporary file whole and refused only afterwards. Installed first in ``FILE_UPLOAD_HANDLERS``, it
counts each file part's bytes and stops the upload once one passes the limit; the rest of the
body is read and dropped, so the browser still gets an answer, which the view makes a clear
``413`` (:func:`upload_too_large`).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

_FLAG = "_medigan_upload_too_large"


class PackageSizeLimitHandler(FileUploadHandler):
    """Refuses any file part larger than ``MEDIGAN_MAX_PACKAGE_BYTES`` while it arrives."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self._received += len(raw_data)
        if self._received > int(settings.MEDIGAN_MAX_PACKAGE_BYTES):
            if self.request is not None:
                setattr(self.request, _FLAG, True)
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        # The next handlers (memory, then a temporary file) build the file; this one only counts.
        return None


def upload_too_large(request: HttpRequest) -> bool:
    """Whether this request's upload was stopped at the package size limit."""
    request.POST  # noqa: B018 - parsing the body is what sets the flag
    return bool(getattr(request, _FLAG, False))
