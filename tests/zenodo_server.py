"""A Zenodo for the tests: the part of Zenodo's REST API the hub speaks, on 127.0.0.1.

Written from Zenodo's documented API (developers.zenodo.org: "Deposit", "Deposition files",
"Deposition actions", "Files" and "Records"), stateful, in one thread per request:

- ``POST /api/deposit/depositions`` makes a draft (``state`` ``unsubmitted``) with a bucket
  (``links.bucket``); ``GET``/``PUT`` read it and set its ``metadata``; ``GET …/files`` lists its
  files and ``DELETE …/files/<file id>`` removes one from a draft.
- ``PUT /api/files/<bucket>/<key>`` streams a file into a draft's bucket and answers its
  ``checksum`` as ``md5:<hex>``; a published bucket is locked (403).
- ``POST …/actions/publish`` checks the required metadata (``upload_type``, ``title``,
  ``creators``, ``description``), mints ``<prefix>/zenodo.<record id>`` and a concept DOI and
  answers ``202`` with the deposition; ``POST …/actions/newversion`` (on the latest published
  version only) makes a draft of the same concept with a snapshot of the files, and answers
  ``201`` with the *original* deposition, whose ``links.latest_draft`` names the draft.
- ``GET /api/records/<id>`` is a published record with its ``files`` (``key``, ``size``,
  ``checksum``, ``links.self`` to ``…/files/<key>/content``); a deleted record answers 410.

Only a request with the server's token (``Authorization: Bearer …`` or ``?access_token=``) may
use the deposit and files APIs; records are public. Faults are switched on by the test:
:meth:`ZenodoServer.fail_upload_midway` (a 5xx after part of an upload), :meth:`delay` (an
answer later than the client waits; the work is done first, so a lost answer is tested too),
:meth:`fail` (a 5xx for matching requests), :meth:`replace_file` (a record edited after
pinning) and :meth:`delete_record` (a record that vanished).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "zenodo-test-token"
_REQUIRED_METADATA = ("upload_type", "title", "creators", "description")
_CHUNK = 64 * 1024


@dataclass
class _Deposition:
    id: int
    concept_id: int
    bucket: str
    metadata: dict[str, Any] = field(default_factory=dict)
    submitted: bool = False
    file_ids: dict[str, str] = field(default_factory=dict)  # key -> file id


@dataclass
class _Record:
    id: int
    concept_id: int
    doi: str
    concept_doi: str
    metadata: dict[str, Any]
    files: dict[str, bytes]
    deleted: bool = False


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    status: int = 500
    times: int = 1
    delay_seconds: float = 0.0
    after_bytes: int | None = None


class ZenodoServer:
    """The fake Zenodo's state and its controls; :func:`zenodo_server` starts one."""

    def __init__(self, *, prefix: str = "10.5072") -> None:
        self.prefix = prefix
        self.url = ""
        self.token = TOKEN
        self._ids = itertools.count(1001)
        self._lock = threading.RLock()
        self.depositions: dict[int, _Deposition] = {}
        self.buckets: dict[str, dict[str, bytes]] = {}
        self.locked_buckets: set[str] = set()
        self.records: dict[int, _Record] = {}
        self.requests: list[tuple[str, str]] = []
        self._faults: list[_Fault] = []

    # --- controls ------------------------------------------------------------------------

    def add_record(
        self,
        files: dict[str, bytes],
        *,
        record_id: int | None = None,
        prefix: str | None = None,
        title: str = "a record",
    ) -> _Record:
        """A published record made elsewhere (a contributor's, one of medigan's)."""
        with self._lock:
            concept_id = next(self._ids)
            record_id = record_id if record_id is not None else next(self._ids)
            doi_prefix = prefix or self.prefix
            record = _Record(
                id=record_id,
                concept_id=concept_id,
                doi=f"{doi_prefix}/zenodo.{record_id}",
                concept_doi=f"{doi_prefix}/zenodo.{concept_id}",
                metadata={"title": title},
                files=dict(files),
            )
            self.records[record_id] = record
            return record

    def replace_file(self, record_id: int, key: str, data: bytes) -> None:
        """Edit a published record's file behind everyone's back (its checksum changes too)."""
        with self._lock:
            self.records[record_id].files[key] = data

    def remove_file(self, record_id: int, key: str) -> None:
        """Take one file out of a published record."""
        with self._lock:
            del self.records[record_id].files[key]

    def delete_record(self, record_id: int) -> None:
        """A record that vanished: it answers 410 Gone from now on."""
        with self._lock:
            self.records[record_id].deleted = True

    def fail(self, method: str, path: str, *, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` requests of ``method`` whose path matches ``path`` with
        ``status`` and do nothing else."""
        with self._lock:
            self._faults.append(_Fault(method, re.compile(path), status=status, times=times))

    def fail_upload_midway(self, *, status: int = 500, after_bytes: int = 1024) -> None:
        """The next upload reads ``after_bytes`` of its body, then answers ``status`` and closes
        the connection; nothing of it is kept."""
        with self._lock:
            self._faults.append(
                _Fault("PUT", re.compile(r"^/api/files/"), status=status, after_bytes=after_bytes)
            )

    def delay(self, method: str, path: str, seconds: float, *, times: int = 1) -> None:
        """Answer the next ``times`` matching requests ``seconds`` late, after doing their work:
        a client that gave up earlier has lost an answer to something that happened."""
        with self._lock:
            self._faults.append(
                _Fault(method, re.compile(path), status=0, times=times, delay_seconds=seconds)
            )

    def count(self, method: str, path: str) -> int:
        """How many requests of ``method`` matching ``path`` arrived so far."""
        pattern = re.compile(path)
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and pattern.search(p))

    def published(self) -> list[_Record]:
        """The records published through the deposit API, oldest first."""
        with self._lock:
            return [
                record
                for record in self.records.values()
                if any(d.id == record.id and d.submitted for d in self.depositions.values())
            ]

    # --- what the handler uses --------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.path.search(path) and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _deposition_json(self, deposition: _Deposition) -> dict[str, Any]:
        api = f"{self.url}/api/deposit/depositions/{deposition.id}"
        record = self.records.get(deposition.id) if deposition.submitted else None
        latest_draft = next(
            (
                d.id
                for d in sorted(self.depositions.values(), key=lambda d: -d.id)
                if d.concept_id == deposition.concept_id and not d.submitted
            ),
            deposition.id,
        )
        files = self.buckets.get(deposition.bucket, {})
        body: dict[str, Any] = {
            "id": deposition.id,
            "record_id": deposition.id,
            "conceptrecid": str(deposition.concept_id),
            "state": "done" if deposition.submitted else "unsubmitted",
            "submitted": deposition.submitted,
            "title": deposition.metadata.get("title", ""),
            "metadata": {
                **deposition.metadata,
                "prereserve_doi": {
                    "doi": f"{self.prefix}/zenodo.{deposition.id}",
                    "recid": deposition.id,
                },
            },
            "files": [
                {
                    "id": deposition.file_ids[key],
                    "filename": key,
                    "filesize": len(data),
                    "checksum": hashlib.md5(data).hexdigest(),  # noqa: S324 - Zenodo's checksum
                    "links": {"self": f"{api}/files/{deposition.file_ids[key]}"},
                }
                for key, data in files.items()
            ],
            "links": {
                "self": api,
                "html": f"{self.url}/deposit/{deposition.id}",
                "bucket": f"{self.url}/api/files/{deposition.bucket}",
                "files": f"{api}/files",
                "publish": f"{api}/actions/publish",
                "newversion": f"{api}/actions/newversion",
                "edit": f"{api}/actions/edit",
                "discard": f"{api}/actions/discard",
                "latest_draft": f"{self.url}/api/deposit/depositions/{latest_draft}",
            },
        }
        if record is not None:
            body["doi"] = record.doi
            body["conceptdoi"] = record.concept_doi
            body["doi_url"] = f"https://doi.org/{record.doi}"
            body["record_url"] = f"{self.url}/records/{record.id}"
            body["links"]["record_html"] = f"{self.url}/records/{record.id}"
            body["links"]["latest_html"] = f"{self.url}/records/{record.id}/latest"
        return body

    def _record_json(self, record: _Record) -> dict[str, Any]:
        api = f"{self.url}/api/records/{record.id}"
        return {
            "id": record.id,
            "recid": str(record.id),
            "doi": record.doi,
            "conceptdoi": record.concept_doi,
            "conceptrecid": str(record.concept_id),
            "doi_url": f"https://doi.org/{record.doi}",
            "metadata": {**record.metadata, "doi": record.doi},
            "files": [
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{record.id}/{key}")),
                    "key": key,
                    "size": len(data),
                    "checksum": "md5:" + hashlib.md5(data).hexdigest(),  # noqa: S324
                    "links": {"self": f"{api}/files/{key}/content"},
                }
                for key, data in record.files.items()
            ],
            "links": {
                "self": api,
                "html": f"{self.url}/records/{record.id}",
                "doi": f"https://doi.org/{record.doi}",
            },
        }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    @property
    def zenodo(self) -> ZenodoServer:
        return self.server.zenodo

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing ---------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        with self.zenodo._lock:
            self.zenodo.requests.append((method, path))
        fault = self.zenodo._take_fault(method, path)
        if fault is not None and fault.after_bytes is not None:
            self._read_some(fault.after_bytes)
            self.close_connection = True
            self._answer(fault.status, {"status": fault.status, "message": "upload failed"})
            return
        if fault is not None and fault.status:
            self._drain()
            self._answer(fault.status, {"status": fault.status, "message": "internal error"})
            return
        try:
            status, body, raw = self._route(method, path, query)
        except _HttpError as error:
            self._drain()
            status, body, raw = (
                error.status,
                {"status": error.status, "message": error.message},
                None,
            )
        if fault is not None and fault.delay_seconds:
            time.sleep(fault.delay_seconds)
        if raw is not None:
            self._send_bytes(raw)
        else:
            self._answer(status, body)

    def _authorised(self, query: dict[str, list[str]]) -> bool:
        header = self.headers.get("Authorization", "")
        return header == f"Bearer {self.zenodo.token}" or query.get("access_token") == [
            self.zenodo.token
        ]

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError as error:
            raise _HttpError(400, f"the body is not JSON: {error}") from error

    def _body_chunks(self) -> Iterator[bytes]:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    def _read_some(self, limit: int) -> None:
        read = 0
        for chunk in self._body_chunks():
            read += len(chunk)
            if read >= limit:
                return

    def _drain(self) -> None:
        for _ in self._body_chunks():
            pass

    def _answer(self, status: int, body: Any) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(data)

    def _send_bytes(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):
            for start in range(0, len(data), _CHUNK):
                self.wfile.write(data[start : start + _CHUNK])

    # --- the API ----------------------------------------------------------------------------

    def _route(
        self, method: str, path: str, query: dict[str, list[str]]
    ) -> tuple[int, Any, bytes | None]:
        zenodo = self.zenodo
        if path.startswith(("/api/deposit/", "/api/files/")) and not self._authorised(query):
            raise _HttpError(401, "The server could not verify that you are authorized")
        if match := re.fullmatch(r"/api/records/(\d+)", path):
            return 200, zenodo._record_json(self._record(int(match[1]))), None
        if match := re.fullmatch(r"/api/records/(\d+)/files/(.+)/content", path):
            record = self._record(int(match[1]))
            with zenodo._lock:
                data = record.files.get(match[2])
            if data is None:
                raise _HttpError(404, f"Record '{record.id}' has no file '{match[2]}'.")
            return 200, None, data
        if path == "/api/deposit/depositions" and method == "POST":
            body = self._read_json()
            with zenodo._lock:
                deposition_id = next(zenodo._ids)
                deposition = _Deposition(
                    id=deposition_id,
                    concept_id=next(zenodo._ids),
                    bucket=str(uuid.uuid4()),
                    metadata=dict(body.get("metadata") or {}),
                )
                zenodo.depositions[deposition.id] = deposition
                zenodo.buckets[deposition.bucket] = {}
                return 201, zenodo._deposition_json(deposition), None
        if match := re.fullmatch(r"/api/deposit/depositions/(\d+)", path):
            deposition = self._deposition(int(match[1]))
            if method == "GET":
                with zenodo._lock:
                    return 200, zenodo._deposition_json(deposition), None
            if method == "PUT":
                metadata = self._read_json().get("metadata")
                if not isinstance(metadata, dict):
                    raise _HttpError(400, "Validation error: metadata is required")
                with zenodo._lock:
                    if deposition.submitted:
                        raise _HttpError(400, "Deposition is published; edit it first")
                    deposition.metadata = dict(metadata)
                    return 200, zenodo._deposition_json(deposition), None
        if match := re.fullmatch(r"/api/deposit/depositions/(\d+)/files", path):
            deposition = self._deposition(int(match[1]))
            with zenodo._lock:
                return 200, zenodo._deposition_json(deposition)["files"], None
        if match := re.fullmatch(r"/api/deposit/depositions/(\d+)/files/([^/]+)", path):
            deposition = self._deposition(int(match[1]))
            if method == "DELETE":
                with zenodo._lock:
                    if deposition.submitted:
                        raise _HttpError(403, "The files of a published deposition are locked")
                    key = next((k for k, v in deposition.file_ids.items() if v == match[2]), None)
                    if key is None:
                        raise _HttpError(404, "No such file")
                    del deposition.file_ids[key]
                    zenodo.buckets[deposition.bucket].pop(key, None)
                    return 204, None, None
        if (match := re.fullmatch(r"/api/files/([^/]+)/(.+)", path)) and method == "PUT":
            return self._upload(match[1], match[2])
        if match := re.fullmatch(r"/api/deposit/depositions/(\d+)/actions/publish", path):
            return self._publish(self._deposition(int(match[1])))
        if match := re.fullmatch(r"/api/deposit/depositions/(\d+)/actions/newversion", path):
            return self._new_version(self._deposition(int(match[1])))
        raise _HttpError(404, f"no route {method} {path}")

    def _record(self, record_id: int) -> _Record:
        with self.zenodo._lock:
            record = self.zenodo.records.get(record_id)
        if record is None:
            raise _HttpError(404, "PID does not exist.")
        if record.deleted:
            raise _HttpError(410, "PID has been deleted.")
        return record

    def _deposition(self, deposition_id: int) -> _Deposition:
        with self.zenodo._lock:
            deposition = self.zenodo.depositions.get(deposition_id)
        if deposition is None:
            raise _HttpError(404, "Deposition not found")
        return deposition

    def _upload(self, bucket: str, key: str) -> tuple[int, Any, bytes | None]:
        zenodo = self.zenodo
        with zenodo._lock:
            if bucket not in zenodo.buckets:
                raise _HttpError(404, "Bucket does not exist.")
            if bucket in zenodo.locked_buckets:
                raise _HttpError(403, "Bucket is locked: the deposition is published")
        digest = hashlib.md5()  # noqa: S324 - Zenodo's checksum
        parts = []
        for chunk in self._body_chunks():
            digest.update(chunk)
            parts.append(chunk)
        data = b"".join(parts)
        with zenodo._lock:
            zenodo.buckets[bucket][key] = data
            deposition = next(d for d in zenodo.depositions.values() if d.bucket == bucket)
            deposition.file_ids.setdefault(key, str(uuid.uuid4()))
        return (
            201,
            {
                "key": key,
                "size": len(data),
                "checksum": f"md5:{digest.hexdigest()}",
                "mimetype": "application/zip",
                "links": {"self": f"{zenodo.url}/api/files/{bucket}/{key}"},
            },
            None,
        )

    def _publish(self, deposition: _Deposition) -> tuple[int, Any, bytes | None]:
        zenodo = self.zenodo
        with zenodo._lock:
            if deposition.submitted:
                raise _HttpError(400, "The deposition is published already")
            missing = [name for name in _REQUIRED_METADATA if not deposition.metadata.get(name)]
            if missing:
                raise _HttpError(400, f"Validation error: missing {', '.join(missing)}")
            files = dict(zenodo.buckets[deposition.bucket])
            if not files:
                raise _HttpError(400, "Minimum one file must be provided.")
            deposition.submitted = True
            zenodo.locked_buckets.add(deposition.bucket)
            zenodo.records[deposition.id] = _Record(
                id=deposition.id,
                concept_id=deposition.concept_id,
                doi=f"{zenodo.prefix}/zenodo.{deposition.id}",
                concept_doi=f"{zenodo.prefix}/zenodo.{deposition.concept_id}",
                metadata=dict(deposition.metadata),
                files=files,
            )
            return 202, zenodo._deposition_json(deposition), None

    def _new_version(self, deposition: _Deposition) -> tuple[int, Any, bytes | None]:
        zenodo = self.zenodo
        with zenodo._lock:
            if not deposition.submitted:
                raise _HttpError(400, "Only a published deposition gets a new version")
            versions = [
                d for d in zenodo.depositions.values() if d.concept_id == deposition.concept_id
            ]
            draft = next((d for d in versions if not d.submitted), None)
            latest = max(d.id for d in versions if d.submitted)
            if deposition.id != latest:
                raise _HttpError(400, "A new version is made from the latest version only")
            if draft is None:
                bucket = str(uuid.uuid4())
                zenodo.buckets[bucket] = dict(zenodo.buckets[deposition.bucket])
                draft = _Deposition(
                    id=next(zenodo._ids),
                    concept_id=deposition.concept_id,
                    bucket=bucket,
                    metadata={k: v for k, v in deposition.metadata.items() if k != "doi"},
                    file_ids={key: str(uuid.uuid4()) for key in zenodo.buckets[bucket]},
                )
                zenodo.depositions[draft.id] = draft
            return 201, zenodo._deposition_json(deposition), None


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, zenodo: ZenodoServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.zenodo = zenodo


@contextlib.contextmanager
def zenodo_server(*, prefix: str = "10.5072") -> Iterator[ZenodoServer]:
    """Run a fake Zenodo on a free port of 127.0.0.1 for the duration of the block."""
    zenodo = ZenodoServer(prefix=prefix)
    server = _Server(zenodo)
    zenodo.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-zenodo", daemon=True)
    thread.start()
    try:
        yield zenodo
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
