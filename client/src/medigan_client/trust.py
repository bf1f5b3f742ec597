"""Signed catalogues on the client's side: the keys pinned per hub, and the checks of what a hub
sends before anything of it is parsed, applied or cached.

A hub signs its snapshot, each feed page and its key set (``medigan_catalog.signing``). The
client keeps the keys it trusts for each hub in ``<cache>/catalogs/<hub key>/keys.json`` (0600,
beside that hub's snapshot, so two hubs never share pins; ``cache prune`` never removes it):

- **first use**: with nothing pinned, the client fetches ``GET /api/v1/keys``, checks that the
  key set is signed by one of its own keys, and pins every key of it (trust on first use). When
  the hub's config entry names keys (``key = "ed25519:..."``), the key set must contain one of
  them and be signed by it, else :class:`~medigan_client.errors.KeyChangedError`;
- **every document** (:func:`verified_body`) must carry a valid signature by a pinned key, over
  its exact (decompressed) bytes: none is :class:`~medigan_client.errors.SignatureMissingError`,
  one that does not match is :class:`~medigan_client.errors.SignatureInvalidError`, signatures by
  other keys only are :class:`~medigan_client.errors.KeyChangedError`;
- **rotation**: a document signed by a pinned key *and* a key not pinned yet is accepted, and the
  key set is fetched again, checked against the pinned keys and pinned in their place (keys
  that left the set are unpinned).

``verify = false`` in a hub's entry skips all of this for a hub that signs nothing; the sync
says so every time. :func:`forget_pins` (``medigan-client keys forget HUB``) drops a hub's pins
after a key change was confirmed out of band.

:mod:`medigan_catalog.signing` imports ``cryptography``: it is imported by the functions here
that check signatures, never when the client is imported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from medigan_client.cache import Cache, write_atomic
from medigan_client.errors import (
    AttestationInvalidError,
    ClientError,
    KeyChangedError,
    NotFoundError,
    ServerError,
    SignatureInvalidError,
    SignatureMissingError,
)
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    import httpx

    from medigan_catalog.errors import CatalogError
    from medigan_catalog.signing import Attestation, KeySet
    from medigan_catalog.snapshot import SnapshotRelease
    from medigan_client.http import HubSession

KEYS_FILENAME = "keys.json"


@dataclass(frozen=True)
class PinnedKeys:
    """The keys a client trusts for one hub: ``key id -> base64 public key``, and the hub's own
    name as its key set gave it (attestations name their hub so)."""

    hub_url: str
    hub: str
    keys: Mapping[str, str] = field(default_factory=dict)
    pinned_at: str = ""

    def trusted(self) -> dict[str, bytes]:
        """Key id -> raw public key, each checked against its id."""
        from medigan_catalog.signing import SignatureInvalidError as CatalogSignatureInvalid
        from medigan_catalog.signing import key_id_of, public_key_from_b64

        trusted: dict[str, bytes] = {}
        for key_id, encoded in self.keys.items():
            try:
                raw = public_key_from_b64(encoded)
            except CatalogSignatureInvalid:
                continue
            if key_id_of(raw) == key_id:
                trusted[key_id] = raw
        return trusted


def keys_path(settings: ClientSettings) -> Path:
    """Where the keys pinned for ``settings.hub_url`` are kept."""
    return Cache(settings.cache_dir).catalog_dir(settings.hub_url) / KEYS_FILENAME


def load_pins(settings: ClientSettings) -> PinnedKeys | None:
    """The keys pinned for the hub of ``settings`` (None when none are, or the file is damaged:
    a damaged file is never trusted, and the next sync fails rather than re-pinning silently)."""
    path = keys_path(settings)
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise KeyChangedError(
            f"the pinned keys of {settings.hub_url} in {path} cannot be read ({exc}); "
            f"check the file, or `medigan-client keys forget {settings.hub_name}` to pin again"
        ) from exc
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in keys.items()
    ):
        raise KeyChangedError(
            f"the pinned keys of {settings.hub_url} in {path} are damaged; "
            f"`medigan-client keys forget {settings.hub_name}` to pin again"
        )
    return PinnedKeys(
        hub_url=str(document.get("hub_url") or settings.hub_url),
        hub=str(document.get("hub") or ""),
        keys=dict(keys),
        pinned_at=str(document.get("pinned_at") or ""),
    )


def store_pins(settings: ClientSettings, key_set: KeySet) -> PinnedKeys:
    """Pin every key of ``key_set`` for the hub of ``settings`` (replacing what was pinned)."""
    pins = PinnedKeys(
        hub_url=settings.hub_url,
        hub=key_set.hub,
        keys={key.key_id: key.public_key for key in key_set.keys},
        pinned_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    document = {
        "hub_url": pins.hub_url,
        "hub": pins.hub,
        "keys": dict(pins.keys),
        "pinned_at": pins.pinned_at,
    }
    # write_atomic creates the file 0600: nothing secret, but nobody else should swap trust.
    write_atomic(keys_path(settings), json.dumps(document, indent=2, sort_keys=True).encode())
    return pins


def forget_pins(settings: ClientSettings) -> bool:
    """Unpin the keys of the hub of ``settings``; whether any were pinned. The next sync pins
    the hub's key set again (or the keys its config entry names)."""
    path = keys_path(settings)
    existed = path.is_file()
    path.unlink(missing_ok=True)
    return existed


def _client_error(error: CatalogError) -> ClientError:
    """The client's exception for a signing error of the catalog, with the same code."""
    from medigan_catalog.signing import KeyChangedError as CatalogKeyChanged
    from medigan_catalog.signing import SignatureMissingError as CatalogMissing

    if isinstance(error, CatalogKeyChanged):
        return KeyChangedError(
            error.message, detail=error.detail, pinned=error.pinned, offered=error.offered
        )
    if isinstance(error, CatalogMissing):
        return SignatureMissingError(
            error.message
            + "; a hub that signs nothing can be trusted with verify = false in its config entry",
            detail=error.detail,
        )
    return SignatureInvalidError(error.message, detail=error.detail)


def _fetch_key_set(
    settings: ClientSettings, session: HubSession, trusted: Mapping[str, bytes] | None
) -> KeySet:
    """The hub's key set, checked: by ``trusted`` (a refresh) before it is parsed, or, on first
    use, by its own keys and the keys the config names."""
    from medigan_catalog.errors import CatalogError
    from medigan_catalog.signing import (
        KEYS_PATH,
        SIGNATURE_HEADER,
        KeySet,
        parse_signatures,
        verify_signed,
    )

    try:
        response = session.send("GET", KEYS_PATH, headers={"Accept": "application/json"})
    except NotFoundError:
        raise SignatureMissingError(
            f"{settings.hub_url} publishes no key set at {KEYS_PATH}, so nothing it sends can "
            "be verified; a hub that signs nothing can be trusted with verify = false in its "
            "config entry (docs/client-federation.md)"
        ) from None
    body = response.content
    what, source = "the key set", settings.hub_url
    try:
        signatures = parse_signatures(response.headers.get(SIGNATURE_HEADER))
        if trusted is not None:
            verify_signed(body, signatures, trusted, what=what, source=source)
        elif not signatures:
            # Refused before parsing, as every unsigned document is.
            verify_signed(body, signatures, {}, what=what, source=source)
        try:
            key_set = KeySet.model_validate_json(body)
        except ValueError as exc:
            raise ServerError(f"the key set of {settings.hub_url} is invalid") from exc
        own = key_set.trusted()
        if trusted is None:
            anchors = own
            if settings.hub_keys:
                # The config names the keys to trust: the set must hold one, signed by it.
                anchors = {k: v for k, v in own.items() if k in settings.hub_keys}
                if not anchors:
                    raise KeyChangedError(
                        f"the key set of {settings.hub_url} does not hold the key pinned in the "
                        f"config ({', '.join(settings.hub_keys)}); it offers "
                        f"{', '.join(sorted(own)) or 'no key'}: this is not the hub you pinned, "
                        "or its key changed (confirm it out of band, then update the config)",
                        pinned=settings.hub_keys,
                        offered=sorted(own),
                    )
            verify_signed(body, signatures, anchors, what=what, source=source)
        elif settings.hub_keys and not set(settings.hub_keys) & set(own):
            raise KeyChangedError(
                f"the key set of {settings.hub_url} no longer holds the key pinned in the "
                f"config ({', '.join(settings.hub_keys)}); confirm the new key out of band and "
                "update the config",
                pinned=settings.hub_keys,
                offered=sorted(own),
            )
    except CatalogError as error:
        if isinstance(error, _signing_errors()):
            raise _client_error(error) from None
        raise
    return key_set


def _signing_errors() -> tuple[type[CatalogError], ...]:
    from medigan_catalog import signing

    return (signing.SignatureInvalidError, signing.SignatureMissingError, signing.KeyChangedError)


def current_pins(settings: ClientSettings, session: HubSession) -> PinnedKeys:
    """The keys pinned for the hub, pinning its key set first when none are (first use), or
    when the config names keys of which none is pinned (the config changed)."""
    pins = load_pins(settings)
    if pins is not None and (not settings.hub_keys or set(settings.hub_keys) & set(pins.keys)):
        return pins
    return store_pins(settings, _fetch_key_set(settings, session, None))


def verified_body(
    settings: ClientSettings, session: HubSession, response: httpx.Response, *, what: str
) -> bytes:
    """The body of ``response`` once its signature by a pinned key of the hub is checked.

    Nothing is parsed before the check. A document also signed by a key not pinned yet (a
    rotation) is accepted on the pinned key's signature, and the key set is fetched, checked
    against the pinned keys and pinned instead. With ``settings.verify`` false the body is
    returned unchecked. Raises ``SignatureMissingError``, ``SignatureInvalidError`` or
    ``KeyChangedError``.
    """
    body = response.content
    if not settings.verify:
        return body
    from medigan_catalog.errors import CatalogError
    from medigan_catalog.signing import SIGNATURE_HEADER, parse_signatures, verify_signed

    try:
        signatures = parse_signatures(response.headers.get(SIGNATURE_HEADER))
        if not signatures:
            verify_signed(body, signatures, {}, what=what, source=settings.hub_url)
        trusted = current_pins(settings, session).trusted()
        verify_signed(body, signatures, trusted, what=what, source=settings.hub_url)
    except CatalogError as error:
        if isinstance(error, _signing_errors()):
            raise _client_error(error) from None
        raise
    if any(signature.key_id not in trusted for signature in signatures):
        # A rotation's overlap: the pinned key vouches for the new set.
        store_pins(settings, _fetch_key_set(settings, session, trusted))
    return body


def unverified_warning(settings: ClientSettings) -> str:
    """What a sync of a hub with ``verify = false`` says each time."""
    return (
        f"the signatures of hub {settings.hub_name} ({settings.hub_url}) are not verified "
        "(verify = false in its config entry): anyone on the way can change its catalogue"
    )


# --- release attestations ------------------------------------------------------------------


@dataclass(frozen=True)
class AttestationCheck:
    """What the client can say of an entry's attestation: ``verified`` True (a pinned key of
    ``key_hub`` made it), False (it does not match: the entry is unusable), or None (no
    attestation, or by a key no configured hub pins)."""

    verified: bool | None
    key_hub: str | None = None
    reason: str = ""


def trusted_keys_by_hub(hubs: Sequence[ClientSettings]) -> dict[str, tuple[str, bytes]]:
    """Key id -> (the name its hub gives itself, raw key), over every configured hub's pins."""
    found: dict[str, tuple[str, bytes]] = {}
    for settings in hubs:
        try:
            pins = load_pins(settings)
        except ClientError:
            continue
        if pins is None:
            continue
        for key_id, raw in pins.trusted().items():
            found.setdefault(key_id, (pins.hub, raw))
    return found


def check_attestation(
    release: SnapshotRelease, keys: Mapping[str, tuple[str, bytes]]
) -> AttestationCheck:
    """Check ``release``'s attestation when a pinned key of a configured hub made it.

    The attestation must name this release, its artifacts' sha256 must be the card's, the hub
    it names must be the one whose key signed, and the signature must match.
    """
    attestation: Attestation | None = release.attestation
    if attestation is None:
        return AttestationCheck(None, reason="no attestation")
    known = keys.get(attestation.key_id)
    if known is None:
        return AttestationCheck(None, reason=f"signed by {attestation.key_id}, not a pinned key")
    key_hub, raw = known
    card_artifacts = {a.filename: a.sha256 for a in release.card.artifacts}
    problems = []
    if (attestation.model_id, attestation.version) != (release.model_id, release.version):
        problems.append(f"it attests {attestation.model_id}@{attestation.version}")
    if key_hub and attestation.hub != key_hub:
        problems.append(f"it names hub {attestation.hub!r}, the key is {key_hub!r}'s")
    for filename, digest in attestation.artifacts.items():
        if (
            filename in card_artifacts
            and (card_artifacts[filename] or "").lower() != (digest or "").lower()
        ):
            problems.append(f"the sha256 of {filename} differs from the card's")
    if not problems and not attestation.verify({attestation.key_id: raw}):
        problems.append("its signature does not match")
    if problems:
        return AttestationCheck(False, key_hub, "; ".join(problems))
    return AttestationCheck(True, key_hub)


def require_valid_attestation(
    release: SnapshotRelease, keys: Mapping[str, tuple[str, bytes]], *, hub: str
) -> AttestationCheck:
    """:func:`check_attestation`, raising ``AttestationInvalidError`` for a mismatch."""
    check = check_attestation(release, keys)
    if check.verified is False:
        raise AttestationInvalidError(
            f"{release.model_id}@{release.version} of hub {hub} is unusable: its attestation "
            f"by {release.attestation.key_id if release.attestation else '?'} "
            f"({check.key_hub}) does not hold: {check.reason}",
            detail={"model_id": release.model_id, "version": release.version, "hub": hub},
        )
    return check
