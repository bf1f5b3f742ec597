"""Webhook secrets and signatures: made, kept encrypted, and checked in constant time.

GitHub signs each delivery with ``X-Hub-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the raw
body keyed with the webhook's secret. Verifying it needs the secret itself, so the hub keeps it
encrypted with Fernet (AES-128-CBC and HMAC-SHA256) under a key derived from
``MEDIGAN_GITHUB_SECRET_KEY``: a copy of the database alone does not give an attacker the means
to sign deliveries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

SIGNATURE_HEADER: Final = "X-Hub-Signature-256"
_SIGNATURE_PREFIX = "sha256="
# 32 random bytes, as GitHub's own documentation suggests for a webhook secret.
_SECRET_BYTES = 32
# Separates this key from every other use of the hub's secret key.
_KEY_CONTEXT = b"medigan-hub github webhook secrets v1\x00"


class SecretUnreadableError(Exception):
    """A stored secret that the current key cannot decrypt (the key changed since linking)."""


def secret_generate() -> str:
    """A new webhook secret: 64 hexadecimal characters (GitHub accepts any text)."""
    return secrets.token_hex(_SECRET_BYTES)


def _fernet() -> Fernet:
    key = hashlib.sha256(_KEY_CONTEXT + settings.MEDIGAN_GITHUB_SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def secret_encrypt(secret: str) -> str:
    """The secret as stored."""
    return _fernet().encrypt(secret.encode()).decode("ascii")


def secret_decrypt(stored: str) -> str:
    """The secret of a stored value; :class:`SecretUnreadableError` if the key changed."""
    try:
        return _fernet().decrypt(stored.encode("ascii")).decode()
    except (InvalidToken, ValueError) as error:
        raise SecretUnreadableError("the webhook secret cannot be decrypted") from error


def signature_of(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body`` signed with ``secret``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return _SIGNATURE_PREFIX + digest


def signature_matches(body: bytes, secret: str, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` with ``secret``, compared in constant
    time (a byte-by-byte comparison would tell an attacker how much of a guess was right)."""
    expected = signature_of(body, secret)
    return hmac.compare_digest(expected.encode(), (header or "").strip().encode())
