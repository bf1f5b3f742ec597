"""``hub.storage.stored_open`` on both backends: the same bytes for every range, a missing file
refused when it is opened, and on S3 a GET for the range alone."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from hub.storage import READ_BYTES, stored_open

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

DATA = bytes(range(256)) * (3 * READ_BYTES // 256 + 7)


@pytest.fixture(params=["filesystem", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    """The test's storage: the suite's filesystem one, or a bucket on the moto server."""
    if request.param == "s3":
        request.getfixturevalue("s3_bucket")
    return str(request.param)


@pytest.mark.parametrize(
    ("start", "length"),
    [(0, None), (0, len(DATA)), (1, 10), (READ_BYTES - 3, READ_BYTES + 9), (len(DATA) - 5, None)],
)
def test_a_range_reads_exactly_its_bytes(backend: str, start: int, length: int | None) -> None:
    name = default_storage.save("releases/a/b/1.0.0/b.zip", ContentFile(DATA))

    with stored_open(default_storage, name, start=start, length=length) as handle:
        read = b"".join(iter(lambda: handle.read(100_000), b""))

    end = None if length is None else start + length
    assert read == DATA[start:end]


def test_an_empty_range_reads_nothing(backend: str) -> None:
    name = default_storage.save("releases/a/b/1.0.0/b.zip", ContentFile(DATA))

    with stored_open(default_storage, name, start=0, length=0) as handle:
        assert handle.read() == b""


def test_a_missing_file_is_refused_when_opened(backend: str) -> None:
    with pytest.raises(FileNotFoundError):
        stored_open(default_storage, "releases/none/none/1.0.0/none.zip")
    with pytest.raises(FileNotFoundError):
        stored_open(default_storage, "releases/none/none/1.0.0/none.zip", length=0)
