"""Reading stored artifacts as streams, on the filesystem and on S3 alike.

Django's storage API opens a stored file as a whole. On the filesystem that is an open file
that reads and seeks lazily. django-storages' S3 backend instead downloads the whole object into
a temporary file the first time it is read, so a download of a 300 MB package would hold it (in
memory, or on disk with ``max_memory_size``) before its first byte is sent, and a ``Range`` of a
hundred bytes would fetch all of it. Every path that streams an artifact out of storage (the
download view, validation, evaluation, bundles, ``storage_check``) reads through
:func:`stored_open`, which asks S3 for exactly the bytes wanted (a ranged ``GET``) and reads the
response body as it arrives; elsewhere it opens the file and seeks.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import Any

from django.core.files.storage import Storage

# How much one read asks of the underlying stream: a bounded buffer, whatever the file's size.
READ_BYTES = 1024 * 1024


class _LimitedRaw(io.RawIOBase):
    """A read-only raw stream over ``read(n)``, stopping after ``length`` bytes (None: at EOF)."""

    def __init__(
        self, read: Callable[[int], bytes], close: Callable[[], None], length: int | None
    ) -> None:
        super().__init__()
        self._read = read
        self._close = close
        self._remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = len(view) if self._remaining is None else min(len(view), self._remaining)
        if wanted <= 0:
            return 0
        chunk = self._read(wanted)
        view[: len(chunk)] = chunk
        if self._remaining is not None:
            self._remaining -= len(chunk)
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            try:
                self._close()
            finally:
                super().close()


def _s3_backend(storage: Storage) -> Any | None:
    """The S3Storage class when ``storage`` is one, else None (without importing boto3)."""
    # Reading __class__ sets up a lazy storage (default_storage), which imports its backend.
    backend = storage.__class__
    module = sys.modules.get("storages.backends.s3")
    if module is None or not issubclass(backend, module.S3Storage):
        return None
    return module


def _s3_open(module: Any, storage: Any, name: str, start: int, length: int | None) -> _LimitedRaw:
    from botocore.exceptions import ClientError

    # The object key and the download parameters (customer-provided encryption keys) exactly
    # as django-storages' own S3File works them out.
    key = storage._normalize_name(module.clean_name(name))
    parameters = module._filter_download_params(storage.get_object_parameters(name))
    if length is not None and length <= 0:
        # Nothing to read, but a missing object is still an error, as on the filesystem.
        if not storage.exists(name):
            raise FileNotFoundError(f"no stored file {name}")
        return _LimitedRaw(lambda _: b"", lambda: None, 0)
    if start or length is not None:
        last = "" if length is None else str(start + length - 1)
        parameters["Range"] = f"bytes={start}-{last}"
    try:
        response = storage.connection.meta.client.get_object(
            Bucket=storage.bucket_name, Key=key, **parameters
        )
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in {"NoSuchKey", "404"}:
            raise FileNotFoundError(f"no stored file {name}") from error
        raise OSError(f"{name} could not be read from S3: {error}") from error
    body = response["Body"]
    return _LimitedRaw(body.read, body.close, length)


def _file_open(storage: Storage, name: str, start: int, length: int | None) -> _LimitedRaw:
    handle = storage.open(name, "rb")
    try:
        if start:
            handle.seek(start)
    except BaseException:
        handle.close()
        raise
    return _LimitedRaw(handle.read, handle.close, length)


def stored_open(
    storage: Storage, name: str, *, start: int = 0, length: int | None = None
) -> io.BufferedReader:
    """The bytes of the stored file ``name`` from ``start``, ``length`` of them (None: to the
    end), as a buffered binary stream; close it (or use it in ``with``).

    The file is opened at once, so a missing one raises ``FileNotFoundError`` here rather than
    at the first read. On S3 only the wanted range is requested and the body is read as it
    arrives: memory stays at the buffer, whatever the file's size.
    """
    module = _s3_backend(storage)
    raw = (
        _s3_open(module, storage, name, start, length)
        if module is not None
        else _file_open(storage, name, start, length)
    )
    return io.BufferedReader(raw, READ_BYTES)
