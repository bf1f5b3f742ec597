"""The hub's Zenodo client on its own: what it refuses, how it reads answers, how it fails."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import pytest

from hub.pinning.zenodo import (
    RecordGoneError,
    ZenodoClient,
    ZenodoFailedError,
    ZenodoUnavailableError,
)
from tests.zenodo_server import ZenodoServer, zenodo_server


@pytest.fixture
def server() -> Iterator[ZenodoServer]:
    with zenodo_server() as running:
        yield running


def _client(server: ZenodoServer, token: str | None = None, **options: float) -> ZenodoClient:
    return ZenodoClient(
        base_url=server.url,
        token=server.token if token is None else token,
        retries=0,
        backoff_seconds=0,
        **options,
    )


def test_a_deposit_goes_through_create_upload_metadata_and_publish(server: ZenodoServer) -> None:
    data = b"weights" * 1000
    with _client(server) as client:
        draft = client.deposition_create()
        uploaded = client.bucket_upload(draft.bucket_url, "w.zip", io.BytesIO(data), len(data))
        client.deposition_metadata_set(
            draft.id,
            {
                "upload_type": "software",
                "title": "t",
                "creators": [{"name": "a"}],
                "description": "d",
            },
        )
        published = client.deposition_publish(draft.id)
        record = client.record_get(published.record_id)
        downloaded = b"".join(client.file_stream(record.files[0].content_url))

    assert uploaded.md5 == uploaded.sent_md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert published.submitted and published.doi == record.doi
    assert [(f.key, f.size, f.md5) for f in record.files] == [("w.zip", len(data), uploaded.md5)]
    assert downloaded == data


def test_a_wrong_token_is_a_refusal_with_zenodos_words(server: ZenodoServer) -> None:
    with _client(server, token="wrong") as client, pytest.raises(ZenodoFailedError) as raised:
        client.deposition_create()

    assert "401" in raised.value.message and "authorized" in raised.value.message


def test_a_deleted_record_is_gone_and_a_5xx_is_unavailable(server: ZenodoServer) -> None:
    record = server.add_record({"a.zip": b"a"})
    server.delete_record(record.id)
    other = server.add_record({"b.zip": b"b"})
    server.fail("GET", rf"^/api/records/{other.id}$", status=502)

    with _client(server) as client:
        with pytest.raises(RecordGoneError, match="410"):
            client.record_get(str(record.id))
        with pytest.raises(ZenodoUnavailableError, match="502"):
            client.record_get(str(other.id))


def test_a_slow_answer_times_out_as_unavailable(server: ZenodoServer) -> None:
    record = server.add_record({"a.zip": b"a"})
    server.delay("GET", rf"^/api/records/{record.id}$", seconds=1.0)

    with (
        _client(server, read_timeout=0.2) as client,
        pytest.raises(ZenodoUnavailableError, match="did not answer"),
    ):
        client.record_get(str(record.id))


def test_links_outside_the_instance_are_never_followed(server: ZenodoServer) -> None:
    with _client(server) as client, pytest.raises(ZenodoFailedError, match="does not follow"):
        list(client.file_stream("http://files.elsewhere.test/api/files/x/y.zip"))

    assert server.requests == []


def test_a_port_where_nothing_listens_is_unavailable_not_refused() -> None:
    client = ZenodoClient(base_url="http://127.0.0.1:9", retries=0, connect_timeout=1)

    with client, pytest.raises(ZenodoUnavailableError, match="could not be reached"):
        client.record_get("1")
