"""The hub signs its catalogue: snapshot, feed pages and key set, and attests what it publishes.

Each document is checked the way a client or a mirror checks it: the signatures of the
``X-Catalog-Signature`` header against the keys of ``GET /api/v1/keys``, over the body's bytes.
"""

from __future__ import annotations

import gzip
import json
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client as HttpClient

from hub import signing, snapshot
from hub.registry import services
from hub.registry.models import Release
from medigan_catalog.lifecycle import ReleaseState
from medigan_catalog.signing import (
    KEYS_PATH,
    SIGNATURE_HEADER,
    Attestation,
    KeyChangedError,
    KeySet,
    SignatureInvalidError,
    parse_signatures,
    verify_signed,
)
from medigan_catalog.snapshot import CATALOG_PATH, changes_path
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_keys() -> Iterator[None]:
    signing.forget_loaded_keys()
    snapshot.snapshot_cache_clear()
    yield
    signing.forget_loaded_keys()
    snapshot.snapshot_cache_clear()


def _published(model_id: str = "alice/noise-16", version: str = "1.0.0") -> Release:
    alice = factories.user("alice")
    release = factories.release_row(
        submitter=alice, model_id=model_id, version=version, state="approved"
    )
    return services.release_transition(release_id=release.pk, target=ReleaseState.PUBLISHED)


def _key_set(client: HttpClient) -> tuple[KeySet, Any]:
    response = client.get(KEYS_PATH)
    assert response.status_code == 200
    return KeySet.model_validate_json(response.content), response


def _body(response: Any) -> bytes:
    content: bytes = response.content
    return gzip.decompress(content) if response.get("Content-Encoding") == "gzip" else content


def _verify(response: Any, trusted: dict[str, bytes]) -> str:
    return verify_signed(
        _body(response), parse_signatures(response[SIGNATURE_HEADER]), trusted, what="test"
    )


def test_the_snapshot_bytes_are_signed_by_the_key_the_key_set_lists() -> None:
    _published()
    client = HttpClient()
    key_set, keys_response = _key_set(client)
    trusted = key_set.trusted()

    response = client.get(CATALOG_PATH, HTTP_ACCEPT_ENCODING="gzip")

    assert _verify(response, trusted) == key_set.keys[0].key_id
    # The key set vouches for itself on first use.
    assert _verify(keys_response, trusted) == key_set.keys[0].key_id
    assert key_set.hub == settings.MEDIGAN_HUB_NAME


def test_a_feed_page_is_signed_and_a_changed_byte_breaks_the_signature() -> None:
    _published()
    client = HttpClient()
    trusted = _key_set(client)[0].trusted()

    response = client.get(changes_path(0))
    _verify(response, trusted)

    tampered = _body(response).replace(b"alice/noise-16", b"alice/noise-17")
    with pytest.raises(SignatureInvalidError, match="altered"):
        verify_signed(tampered, parse_signatures(response[SIGNATURE_HEADER]), trusted)


def test_another_hubs_key_is_a_key_change_not_a_pass(tmp_path: Path) -> None:
    _published()
    client = HttpClient()
    first = _key_set(client)[0].trusted()
    settings.MEDIGAN_SIGNING_KEY_DIR = tmp_path / "other-keys"
    signing.forget_loaded_keys()
    snapshot.snapshot_cache_clear()

    response = client.get(CATALOG_PATH)

    with pytest.raises(KeyChangedError, match="not by the pinned key"):
        _verify(response, first)


def test_a_rotation_signs_with_both_keys_until_the_overlap_ends() -> None:
    _published()
    client = HttpClient()
    old_set = _key_set(client)[0]
    client.get(CATALOG_PATH)  # rendered and kept, signed by the old key only

    new = signing.rotate(overlap=timedelta(days=14))

    key_set, keys_response = _key_set(client)
    assert {key.key_id for key in key_set.keys} == {old_set.keys[0].key_id, new.key_id}
    assert next(k for k in key_set.keys if k.key_id != new.key_id).retires_at is not None
    # A client that pinned the old key accepts the new set through the old key's signature,
    # and the kept snapshot was signed again with both.
    _verify(keys_response, old_set.trusted())
    response = client.get(CATALOG_PATH)
    signers = {signature.key_id for signature in parse_signatures(response[SIGNATURE_HEADER])}
    assert signers == {old_set.keys[0].key_id, new.key_id}

    signing.rotate(overlap=timedelta(0))  # the old keys retire now
    response = client.get(CATALOG_PATH)
    with pytest.raises(KeyChangedError):
        _verify(response, old_set.trusted())


def test_keys_live_in_private_files_outside_the_database() -> None:
    _published()
    folder = Path(settings.MEDIGAN_SIGNING_KEY_DIR)
    pems = list(folder.glob("*.pem"))

    assert len(pems) == 1
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(pems[0].stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in pems[0].read_bytes()


def test_a_release_is_attested_when_published_and_the_attestation_outlives_a_rotation() -> None:
    release = _published()
    client = HttpClient()
    key_set = _key_set(client)[0]

    signing.rotate(overlap=timedelta(days=1))
    release.refresh_from_db()
    attestation = Attestation.model_validate(release.attestation)
    entry = json.loads(client.get(CATALOG_PATH).content)["releases"][0]

    assert attestation.key_id == key_set.keys[0].key_id
    assert attestation.verify(key_set.trusted())
    assert entry["attestation"] == release.attestation
    assert (attestation.model_id, attestation.version) == ("alice/noise-16", "1.0.0")


def test_signing_key_rotate_command_prints_both_keys(capsys: pytest.CaptureFixture[str]) -> None:
    first = signing.newest_key().key_id

    call_command("signing_key", "rotate", "--overlap-days", "2")

    out = capsys.readouterr().out
    assert first in out
    assert out.count(", made") == 2
    assert out.count("  signing, made") == 2
    assert "retires" in out
