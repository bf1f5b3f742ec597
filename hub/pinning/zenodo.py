"""Zenodo's REST API as the hub speaks it: depositions, bucket uploads, publishing, new versions,
records and their files, over ``requests`` with timeouts and retries.

The base URL and token are settings (``MEDIGAN_ZENODO_URL``, ``MEDIGAN_ZENODO_TOKEN``), so the
same code talks to zenodo.org, sandbox.zenodo.org, or an InvenioRDM instance that keeps Zenodo's
legacy deposit API (``/api/deposit/depositions``, ``/api/files/<bucket>``) and records API
(``/api/records/<id>``). Only what Zenodo documents is used (developers.zenodo.org).

Retries happen at two levels, each where it is safe:

- here, urllib3's ``Retry`` on the session's adapter repeats a request whose connection failed
  (it never reached Zenodo, so any method may be sent again) and a read (GET, HEAD) that timed
  out or got 429 or a 5xx, with exponential backoff, honouring ``Retry-After``;
- a write whose answer was lost (creating a deposition, an upload, publishing) may have happened
  on Zenodo's side, so it is never repeated blindly here: the pinning task
  (``hub.pinning.services``) retries the whole pin later, with Celery's backoff, after reading
  back what Zenodo holds (a deposition it already made, a publication that went through).

urllib3's ``Retry`` rather than tenacity: it ships with requests, knows which methods are
idempotent and honours ``Retry-After`` at the transport where those facts live; retrying whole
operations belongs to Celery, whose retries survive a worker restart that an in-process retry
loop would not.

Every link Zenodo answers (a bucket, a file's content) must be on the configured instance's own
origin, so the hub never follows an answer to another host.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, Final, Self
from urllib.parse import quote, urlsplit

import requests
import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from medigan_catalog.errors import CatalogError, ErrorCode

CHUNK_BYTES: Final = 1024 * 1024
# Zenodo's answers that say "try again later": rate limit, and the server side's failures.
_TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})


class ZenodoUnavailableError(CatalogError):
    """Zenodo could not be reached, timed out, or answered a failure of its own (429, 5xx):
    worth trying again later."""

    code = ErrorCode.ZENODO_UNAVAILABLE


class ZenodoFailedError(CatalogError):
    """Zenodo refused a request (4xx) or answered something that is not its API: trying again
    gives the same answer."""

    code = ErrorCode.ZENODO_FAILED


class RecordGoneError(CatalogError):
    """No record answers to this id (404), or it was deleted (410)."""

    code = ErrorCode.DOI_UNRESOLVABLE


@dataclass(frozen=True)
class DepositionFile:
    """A file of a deposition, as the deposition files API lists it."""

    id: str
    filename: str
    self_url: str


@dataclass(frozen=True)
class Deposition:
    """A deposition: a draft (``submitted`` false) or the published record it became."""

    id: str
    submitted: bool
    bucket_url: str
    concept_record_id: str
    latest_draft_url: str
    files: tuple[DepositionFile, ...]
    doi: str = ""
    concept_doi: str = ""
    record_id: str = ""


@dataclass(frozen=True)
class UploadedFile:
    """What Zenodo says it stored of an upload, and the md5 of what the hub sent."""

    key: str
    size: int
    md5: str
    sent_md5: str


@dataclass(frozen=True)
class RecordFile:
    """A file of a published record: its name, size, Zenodo's md5 and where its bytes are."""

    key: str
    size: int
    md5: str
    content_url: str


@dataclass(frozen=True)
class ZenodoRecord:
    """A published record: its DOIs, its page and its files."""

    id: str
    doi: str
    concept_doi: str
    html_url: str
    files: tuple[RecordFile, ...]


class _CountingReader:
    """A file wrapper that hashes (md5) what is read from it, with a known length, so requests
    streams it as the body of a PUT (``Content-Length``, no chunked encoding)."""

    def __init__(self, handle: IO[bytes], size: int) -> None:
        self._handle = handle
        self._size = size
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sent = 0

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(CHUNK_BYTES if size is None or size < 0 else size)
        self.md5.update(chunk)
        self.sent += len(chunk)
        return chunk


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _checksum_md5(value: Any) -> str:
    """Zenodo writes checksums as ``md5:<hex>`` (files, records) or bare hex (deposit files)."""
    text = _text(value).strip().lower()
    algorithm, _, digest = text.rpartition(":")
    if algorithm not in {"", "md5"} or len(digest) != 32:
        raise ZenodoFailedError(f"Zenodo answered a checksum that is not an md5: {value!r}")
    return digest


class ZenodoClient:
    """One conversation with a Zenodo instance; close it (or use it as a context manager)."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str = "",
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        retries: int = 3,
        backoff_seconds: float = 1.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._origin = urlsplit(self.base_url)[:2]
        self._timeout = (connect_timeout, read_timeout)
        self._session = requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            allowed_methods=frozenset({"GET", "HEAD"}),
            status_forcelist=tuple(sorted(_TRANSIENT_STATUS)),
            backoff_factor=backoff_seconds,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["Accept"] = "application/json"
        self._session.headers["User-Agent"] = f"medigan-hub ({settings.MEDIGAN_HUB_NAME})"
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_settings(cls) -> ZenodoClient:
        """A client of the configured instance, with the hub's token and timeouts."""
        return cls(
            base_url=settings.MEDIGAN_ZENODO_URL,
            token=settings.MEDIGAN_ZENODO_TOKEN,
            connect_timeout=settings.MEDIGAN_ZENODO_CONNECT_TIMEOUT_SECONDS,
            read_timeout=settings.MEDIGAN_ZENODO_READ_TIMEOUT_SECONDS,
            retries=settings.MEDIGAN_ZENODO_HTTP_RETRIES,
            backoff_seconds=settings.MEDIGAN_ZENODO_HTTP_BACKOFF_SECONDS,
        )

    def close(self) -> None:
        """Close the session's connections."""
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- depositions ----------------------------------------------------------------------

    def deposition_create(self) -> Deposition:
        """``POST /api/deposit/depositions``: a new, empty draft with its bucket."""
        return self._deposition(self._json("POST", "/api/deposit/depositions", json={}))

    def deposition_get(self, deposition_id: str) -> Deposition:
        """``GET /api/deposit/depositions/<id>``: a draft, or the deposition it published."""
        return self._deposition(self._json("GET", f"/api/deposit/depositions/{deposition_id}"))

    def deposition_new_version(self, deposition_id: str) -> Deposition:
        """``POST …/actions/newversion`` on the latest published version: the draft of the next
        version of the same concept (Zenodo answers the original; ``links.latest_draft`` names
        the draft, which holds a copy of the previous version's files)."""
        original = self._json(
            "POST", f"/api/deposit/depositions/{deposition_id}/actions/newversion"
        )
        links = original.get("links")
        draft_url = _text(links.get("latest_draft")) if isinstance(links, Mapping) else ""
        if not draft_url:
            raise ZenodoFailedError(
                f"Zenodo made no draft of a new version of deposition {deposition_id}"
            )
        return self._deposition(self._json("GET", draft_url))

    def deposition_file_delete(self, file: DepositionFile) -> None:
        """``DELETE …/files/<file id>``: remove a file a new version's draft inherited."""
        self._call("DELETE", file.self_url, expect=(200, 204))

    def deposition_metadata_set(self, deposition_id: str, metadata: Mapping[str, Any]) -> None:
        """``PUT /api/deposit/depositions/<id>`` with the deposition's ``metadata``."""
        self._json(
            "PUT", f"/api/deposit/depositions/{deposition_id}", json={"metadata": dict(metadata)}
        )

    def deposition_publish(self, deposition_id: str) -> Deposition:
        """``POST …/actions/publish``: the draft becomes a record with its DOI (for good)."""
        return self._deposition(
            self._json("POST", f"/api/deposit/depositions/{deposition_id}/actions/publish")
        )

    def bucket_upload(
        self, bucket_url: str, filename: str, handle: IO[bytes], size: int
    ) -> UploadedFile:
        """``PUT <bucket>/<filename>`` with the bytes streamed from ``handle`` (never held whole
        in memory); the md5 of what was sent is compared with Zenodo's checksum of what it
        stored, and a difference is a failed upload."""
        reader = _CountingReader(handle, size)
        answer = self._json(
            "PUT",
            f"{bucket_url.rstrip('/')}/{quote(filename)}",
            data=reader,
            headers={"Content-Type": "application/octet-stream"},
        )
        uploaded = UploadedFile(
            key=_text(answer.get("key")) or filename,
            size=int(answer.get("size") or 0),
            md5=_checksum_md5(answer.get("checksum")),
            sent_md5=reader.md5.hexdigest(),
        )
        if reader.sent != size or (uploaded.md5, uploaded.size) != (uploaded.sent_md5, size):
            raise ZenodoUnavailableError(
                f"the upload of {filename} arrived damaged: Zenodo stored {uploaded.size} bytes "
                f"with md5 {uploaded.md5}, the hub sent {reader.sent} bytes with md5 "
                f"{uploaded.sent_md5}"
            )
        return uploaded

    # --- records ----------------------------------------------------------------------------

    def record_get(self, record_id: str) -> ZenodoRecord:
        """``GET /api/records/<id>``: a published record and its files (404 and 410 raise
        :class:`RecordGoneError`)."""
        body = self._json("GET", f"/api/records/{record_id}", gone_is_error=True)
        links = body.get("links") if isinstance(body.get("links"), Mapping) else {}
        assert isinstance(links, Mapping)
        record_key = _text(body.get("id") or body.get("recid") or record_id)
        return ZenodoRecord(
            id=record_key,
            doi=_text(body.get("doi") or _nested(body, "metadata", "doi")),
            concept_doi=_text(body.get("conceptdoi")),
            html_url=_text(links.get("html") or links.get("self_html")),
            files=tuple(self._record_files(record_key, body.get("files"))),
        )

    def file_stream(self, url: str) -> Iterator[bytes]:
        """The bytes at a record file's content URL, chunk by chunk, never whole in memory."""
        response = self._call("GET", url, stream=True, expect=(200,))
        try:
            yield from response.iter_content(CHUNK_BYTES)
        except requests.RequestException as error:
            raise ZenodoUnavailableError(
                f"the download of {url} from Zenodo broke off: {error}"
            ) from error
        finally:
            response.close()

    def _record_files(self, record_id: str, files: Any) -> Iterator[RecordFile]:
        # Zenodo lists a record's files as a list; InvenioRDM as {"entries": {key: file}} or
        # {"entries": [file, ...]}.
        if isinstance(files, Mapping):
            files = files.get("entries") or []
            if isinstance(files, Mapping):
                files = list(files.values())
        if not isinstance(files, list):
            raise ZenodoFailedError(f"Zenodo's record {record_id} lists its files as {files!r}")
        for item in files:
            if not isinstance(item, Mapping) or not item.get("key"):
                raise ZenodoFailedError(f"Zenodo's record {record_id} lists a file as {item!r}")
            key = _text(item["key"])
            links = item.get("links") if isinstance(item.get("links"), Mapping) else {}
            assert isinstance(links, Mapping)
            content = _text(links.get("content") or links.get("self")) or (
                f"{self.base_url}/api/records/{record_id}/files/{quote(key)}/content"
            )
            yield RecordFile(
                key=key,
                size=int(item.get("size") or 0),
                md5=_checksum_md5(item.get("checksum")),
                content_url=content,
            )

    # --- plumbing -----------------------------------------------------------------------------

    def _deposition(self, body: Mapping[str, Any]) -> Deposition:
        links = body.get("links")
        if not isinstance(links, Mapping) or body.get("id") in (None, ""):
            raise ZenodoFailedError(f"Zenodo answered something that is not a deposition: {body}")
        files = body.get("files") if isinstance(body.get("files"), list) else []
        assert isinstance(files, list)
        api = f"{self.base_url}/api/deposit/depositions/{body['id']}"
        return Deposition(
            id=_text(body["id"]),
            submitted=bool(body.get("submitted")),
            bucket_url=_text(links.get("bucket")),
            concept_record_id=_text(body.get("conceptrecid")),
            latest_draft_url=_text(links.get("latest_draft")),
            files=tuple(
                DepositionFile(
                    id=_text(item.get("id")),
                    filename=_text(item.get("filename")),
                    self_url=_text(_nested(item, "links", "self"))
                    or f"{api}/files/{item.get('id')}",
                )
                for item in files
                if isinstance(item, Mapping)
            ),
            doi=_text(body.get("doi")),
            concept_doi=_text(body.get("conceptdoi")),
            record_id=_text(body.get("record_id")),
        )

    def _url(self, path_or_url: str) -> str:
        url = path_or_url if "://" in path_or_url else f"{self.base_url}{path_or_url}"
        if urlsplit(url)[:2] != self._origin:
            raise ZenodoFailedError(
                f"Zenodo answered a link to {url}, outside {self.base_url}; the hub does not "
                "follow it"
            )
        return url

    def _json(
        self,
        method: str,
        path_or_url: str,
        *,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        gone_is_error: bool = False,
    ) -> dict[str, Any]:
        response = self._call(
            method,
            path_or_url,
            json=json,
            data=data,
            headers=headers,
            expect=(200, 201, 202),
            gone_is_error=gone_is_error,
        )
        try:
            body = response.json()
        except ValueError as error:
            raise ZenodoFailedError(
                f"Zenodo answered {method} {response.url} with something that is not JSON"
            ) from error
        if not isinstance(body, dict):
            raise ZenodoFailedError(f"Zenodo answered {method} {response.url} with {body!r}")
        return body

    def _call(
        self,
        method: str,
        path_or_url: str,
        *,
        expect: tuple[int, ...],
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        gone_is_error: bool = False,
    ) -> requests.Response:
        url = self._url(path_or_url)
        try:
            response = self._session.request(
                method,
                url,
                json=json,
                data=data,
                headers=dict(headers or {}),
                stream=stream,
                timeout=self._timeout,
                # A redirect is followed only within the instance (checked below).
                allow_redirects=method == "GET",
            )
        except requests.RequestException as error:
            if _timed_out(error):
                raise ZenodoUnavailableError(
                    f"Zenodo did not answer {method} {url} within {self._timeout[1]:g} s: {error}"
                ) from error
            raise ZenodoUnavailableError(
                f"Zenodo could not be reached ({method} {url}): {error}"
            ) from error
        self._url(response.url)
        if response.status_code in expect:
            return response
        message = _error_message(response)
        response.close()
        if response.status_code in _TRANSIENT_STATUS:
            raise ZenodoUnavailableError(
                f"Zenodo answered {method} {url} with {response.status_code}: {message}",
                {"status": response.status_code},
            )
        if gone_is_error and response.status_code in {404, 410}:
            raise RecordGoneError(
                f"Zenodo has no record at {url} ({response.status_code}: {message})",
                {"status": response.status_code},
            )
        raise ZenodoFailedError(
            f"Zenodo refused {method} {url} with {response.status_code}: {message}",
            {"status": response.status_code},
        )


def _timed_out(error: requests.RequestException) -> bool:
    """Whether a request failed for want of an answer in time; a read that timed out through
    every retry reaches requests as a ``ConnectionError`` around urllib3's ``ReadTimeoutError``."""
    if isinstance(error, requests.Timeout):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, urllib3.exceptions.ReadTimeoutError)


def _nested(body: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(body, Mapping):
            return None
        body = body.get(key)
    return body


def _error_message(response: requests.Response) -> str:
    """Zenodo's own words for an error (its JSON ``message`` and field ``errors``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason or ""
    if not isinstance(body, Mapping):
        return str(body)[:300]
    message = _text(body.get("message")) or response.reason or ""
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        message += " (" + "; ".join(str(error) for error in errors)[:500] + ")"
    return message
