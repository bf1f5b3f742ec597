"""Signed catalogues: canonical JSON, Ed25519 signatures, key sets and release attestations.

A hub signs what it tells clients and mirrors about its catalogue, so that a copy fetched through
a proxy, a mirror or a USB stick can be checked against the hub that wrote it:

- The snapshot, each feed page and the key set are signed over the exact bytes of their JSON
  body, as sent (compact UTF-8 JSON in the wire models' field order; a card's free-form blocks
  keep the order they were written in, which medigan's configuration needs). A reader verifies
  the bytes it received before it parses them, so no re-serialisation has to agree with the
  hub's. The signatures travel in the :data:`SIGNATURE_HEADER` header
  (:func:`format_signatures`), one per key the hub signs with; during a key rotation that is the
  old key and the new one.
- ``GET /api/v1/keys`` (:class:`KeySet`) lists the hub's public keys. A client or a mirror pins
  them on first use or from its configuration and then accepts a document only when a pinned key
  signed it (:func:`verify_signed`): a bad signature, a missing one, or signatures by keys it
  does not know are errors, never a silent fallback.
- Each release entry carries an :class:`Attestation`: the publishing hub's signature over what
  identifies the release's content (:func:`attestation_statement`: the origin hub, the model id,
  the version and every artifact's sha256, as **canonical JSON** (:func:`canonical_json`: keys
  sorted, no whitespace, UTF-8), since a reader rebuilds that statement from the entry). A
  mirror copies it unchanged, so a client of the mirror checks the entry against the origin's
  key, not the mirror's.

A key id is ``ed25519:`` and the first 16 bytes of the SHA-256 of the raw public key, in hex: it
names the key, so a configuration may pin an id and learn the key itself from the key set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

from medigan_catalog.errors import CatalogError, ErrorCode

SIGNATURE_HEADER: Final = "X-Catalog-Signature"
KEYS_PATH: Final = "/api/v1/keys"
ALGORITHM: Final = "ed25519"
_KEY_ID_RE: Final = re.compile(r"^ed25519:[0-9a-f]{32}$")
_SIGNATURE_RE: Final = re.compile(
    r"^\s*ed25519\s+keyid=(?P<key>ed25519:[0-9a-f]{32})\s+sig=(?P<sig>[A-Za-z0-9+/=_-]+)\s*$"
)


# --- errors --------------------------------------------------------------------------------


class SignatureInvalidError(CatalogError):
    """A document whose signature by a trusted key does not match its bytes: it was altered."""

    code = ErrorCode.SIGNATURE_INVALID


class SignatureMissingError(CatalogError):
    """A document that should be signed and carries no signature at all."""

    code = ErrorCode.SIGNATURE_MISSING


class KeyChangedError(CatalogError):
    """A document signed only by keys that are not the ones pinned for its hub."""

    code = ErrorCode.KEY_CHANGED

    def __init__(self, message: str, *, pinned: Sequence[str], offered: Sequence[str]) -> None:
        super().__init__(message, {"pinned": list(pinned), "offered": list(offered)})
        self.pinned = tuple(pinned)
        self.offered = tuple(offered)


# --- canonical JSON and keys ---------------------------------------------------------------


def canonical_json(data: object) -> bytes:
    """``data`` as canonical JSON: sorted keys, no whitespace, UTF-8, no NaN or infinity."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalidError("a signature or key is not valid base64") from None


def key_id_of(public_key: bytes) -> str:
    """The id of a raw 32-byte Ed25519 public key: ``ed25519:`` + 32 hex digits."""
    return f"{ALGORITHM}:{hashlib.sha256(public_key).hexdigest()[:32]}"


def is_key_id(text: str) -> bool:
    """Whether ``text`` has the form of a key id."""
    return _KEY_ID_RE.fullmatch(text) is not None


@dataclass(frozen=True)
class Signature:
    """One signature: which key made it and the 64 signature bytes (base64)."""

    key_id: str
    value: str

    def render(self) -> str:
        return f"{ALGORITHM} keyid={self.key_id} sig={self.value}"


class SigningKey:
    """An Ed25519 private key of a hub, with its id and public half."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id_of(self.public_key)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("not an Ed25519 private key")
        return cls(key)

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_key_b64(self) -> str:
        return _b64encode(self.public_key)

    def sign(self, data: bytes) -> Signature:
        return Signature(self.key_id, _b64encode(self._private.sign(data)))


def format_signatures(signatures: Iterable[Signature]) -> str:
    """The header value carrying ``signatures``: ``ed25519 keyid=… sig=…`` joined by commas."""
    return ", ".join(signature.render() for signature in signatures)


def parse_signatures(header: str | None) -> list[Signature]:
    """The signatures of a header value; raises SignatureInvalidError on a malformed one."""
    if not header or not header.strip():
        return []
    signatures = []
    for part in header.split(","):
        match = _SIGNATURE_RE.fullmatch(part)
        if match is None:
            raise SignatureInvalidError(f"malformed signature {part.strip()[:80]!r}")
        signatures.append(Signature(match["key"], match["sig"]))
    return signatures


def public_key_from_b64(text: str) -> bytes:
    """The raw 32 bytes of a base64 public key; raises SignatureInvalidError otherwise."""
    raw = _b64decode(text)
    if len(raw) != 32:
        raise SignatureInvalidError("an Ed25519 public key is 32 bytes")
    return raw


def signature_valid(public_key: bytes, data: bytes, signature: Signature) -> bool:
    """Whether ``signature`` over ``data`` was made by ``public_key``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(_b64decode(signature.value), data)
    except (InvalidSignature, ValueError, SignatureInvalidError):
        return False
    return True


def verify_signed(
    data: bytes,
    signatures: Sequence[Signature],
    trusted: Mapping[str, bytes],
    *,
    what: str = "the document",
    source: str = "the hub",
) -> str:
    """Check that a key of ``trusted`` (key id -> raw public key) signed ``data``.

    Returns the id of the trusted key whose signature matched. Raises
    :class:`SignatureMissingError` when there is no signature, :class:`SignatureInvalidError` when
    a trusted key's signature does not match (the bytes were altered on the way), and
    :class:`KeyChangedError` when only keys that are not trusted signed it.
    """
    if not signatures:
        raise SignatureMissingError(
            f"{what} from {source} is not signed; refusing it (docs/federation.md)"
        )
    by_trusted = [signature for signature in signatures if signature.key_id in trusted]
    if not by_trusted:
        raise KeyChangedError(
            f"{what} from {source} is signed by {', '.join(s.key_id for s in signatures)}, "
            f"not by the pinned key {', '.join(sorted(trusted)) or '(none)'}: the hub's key "
            "changed, or this is not the hub you pinned. If the operator rotated the key, "
            "confirm the new one out of band and pin it (docs/federation.md)",
            pinned=sorted(trusted),
            offered=[signature.key_id for signature in signatures],
        )
    for signature in by_trusted:
        if signature_valid(trusted[signature.key_id], data, signature):
            return signature.key_id
    raise SignatureInvalidError(
        f"{what} from {source} does not match its signature by {by_trusted[0].key_id}: "
        "it was altered on the way; refusing it"
    )


# --- the key set ---------------------------------------------------------------------------


class _WireModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)


class PublicKey(_WireModel):
    """One of a hub's public keys; ``retires_at`` ends its overlap after a rotation."""

    key_id: str = Field(pattern=_KEY_ID_RE.pattern)
    algorithm: str = ALGORITHM
    public_key: str = Field(description="the raw 32-byte Ed25519 public key, base64")
    created_at: datetime | None = None
    retires_at: datetime | None = None

    def raw(self) -> bytes:
        """The raw key; raises SignatureInvalidError if it does not match its id."""
        raw = public_key_from_b64(self.public_key)
        if key_id_of(raw) != self.key_id:
            raise SignatureInvalidError(f"the key listed as {self.key_id} has another id")
        return raw


class KeySet(_WireModel):
    """``GET /api/v1/keys``: the hub's current public keys, signed by each of them."""

    hub: str
    keys: tuple[PublicKey, ...] = ()

    def trusted(self) -> dict[str, bytes]:
        """Key id -> raw key, each checked against its id."""
        return {key.key_id: key.raw() for key in self.keys}


# --- release attestations ------------------------------------------------------------------


class Attestation(_WireModel):
    """The publishing hub's signature over what identifies a release's content.

    ``hub`` is the origin hub's name (its ``MEDIGAN_HUB_NAME``); ``artifacts`` maps each
    artifact's file name to its sha256 (None where the card gives none). A mirror passes it on
    unchanged.
    """

    hub: str
    model_id: str
    version: str
    artifacts: dict[str, str | None] = Field(default_factory=dict)
    key_id: str = Field(pattern=_KEY_ID_RE.pattern)
    signature: str

    def statement(self) -> bytes:
        return attestation_statement(
            hub=self.hub, model_id=self.model_id, version=self.version, artifacts=self.artifacts
        )

    def verify(self, trusted: Mapping[str, bytes]) -> bool:
        """Whether a key of ``trusted`` made this attestation (False for an unknown key)."""
        key = trusted.get(self.key_id)
        return key is not None and signature_valid(
            key, self.statement(), Signature(self.key_id, self.signature)
        )


def attestation_statement(
    *, hub: str, model_id: str, version: str, artifacts: Mapping[str, str | None]
) -> bytes:
    """The canonical bytes an attestation signs."""
    document: dict[str, Any] = {
        "artifacts": dict(artifacts),
        "hub": hub,
        "model_id": model_id,
        "type": "medigan-hub/release-attestation/v1",
        "version": version,
    }
    return canonical_json(document)


def attest(
    key: SigningKey,
    *,
    hub: str,
    model_id: str,
    version: str,
    artifacts: Mapping[str, str | None],
) -> Attestation:
    """Sign the content identity of a release with ``key``."""
    statement = attestation_statement(
        hub=hub, model_id=model_id, version=version, artifacts=artifacts
    )
    return Attestation(
        hub=hub,
        model_id=model_id,
        version=version,
        artifacts=dict(artifacts),
        key_id=key.key_id,
        signature=key.sign(statement).value,
    )
