"""The hub's S3 storage configuration (``MEDIGAN_STORAGE=s3``), built from an environment.

A function of its own, outside the settings module, so that the storage tests and the memory
benchmark configure the hub's storage for their local S3 server with exactly the code a
production hub runs (``tests/s3_server.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# boto3 uploads a file in parts of this size once it is larger (S3's smallest part is 5 MiB;
# a 512 MiB package is 64 parts, far below S3's limit of 10,000).
S3_PART_BYTES = 8 * 1024 * 1024
# An object read through the storage API's file interface (django-storages' S3File) is first
# downloaded into a spooled temporary file; beyond this size it spools to disk, not memory
# (django-storages' default, 0, never spools). The artifact paths do not use that interface
# (hub.storage streams ranged GETs), but sample grids and reference sets do.
S3_READ_MEMORY_BYTES = 8 * 1024 * 1024


def s3_storage(environ: Mapping[str, str]) -> dict[str, Any]:
    """``STORAGES["default"]`` for an S3 bucket, from ``MEDIGAN_S3_*`` and ``AWS_*`` in
    ``environ``; unset values fall to django-storages' defaults (boto3's credential chain)."""
    from boto3.s3.transfer import TransferConfig

    # One part at a time, in the thread that stores: s3transfer reads each part of an upload
    # into memory before sending it, and its default ten threads keep up to ten parts at once
    # (a 300 MB upload to moto with boto3's defaults grew the process by 122 MB; one part at a
    # time by 6 MB). Parts sent in turn cost the parallel requests, not correctness.
    transfer = TransferConfig(
        multipart_threshold=S3_PART_BYTES, multipart_chunksize=S3_PART_BYTES, use_threads=False
    )
    options: dict[str, Any] = {
        "bucket_name": environ.get("MEDIGAN_S3_BUCKET", "medigan-hub"),
        "endpoint_url": environ.get("MEDIGAN_S3_ENDPOINT_URL") or None,
        "region_name": environ.get("MEDIGAN_S3_REGION") or None,
        "default_acl": None,
        # A name already taken gets a suffix rather than overwriting: two pushes of one version
        # that race past the checks must not replace each other's bytes before the database
        # picks one (django-storages overwrites by default).
        "file_overwrite": False,
        "max_memory_size": S3_READ_MEMORY_BYTES,
        "transfer_config": transfer,
    }
    access_key = environ.get("AWS_ACCESS_KEY_ID")
    secret_key = environ.get("AWS_SECRET_ACCESS_KEY")
    if access_key and secret_key:
        options["access_key"] = access_key
        options["secret_key"] = secret_key
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
