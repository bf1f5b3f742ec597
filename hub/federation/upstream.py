"""Talking to an upstream hub: its key set, its signed feed and snapshot, its artifacts.

Everything the upstream says about its catalogue is verified against the keys this hub pinned for
it before it is parsed (``medigan_catalog.signing.verify_signed``); a bad or missing signature, or
one by a key that is not pinned, is an error that stops the sync, never a fallback. The token is
sent to the upstream's own URL only. Artifacts stream in chunks, so a large package never sits in
memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import httpx
from pydantic import ValidationError

from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.signing import (
    KEYS_PATH,
    SIGNATURE_HEADER,
    KeyChangedError,
    KeySet,
    Signature,
    SignatureInvalidError,
    parse_signatures,
    public_key_from_b64,
    verify_signed,
)
from medigan_catalog.snapshot import (
    CATALOG_PATH,
    CatalogSnapshot,
    ChangePage,
    changes_path,
)

CHUNK_BYTES: Final = 1024 * 1024
USER_AGENT: Final = "medigan-hub-mirror/1"


class UpstreamError(CatalogError):
    """The upstream could not be reached, answered an error, or sent something unreadable."""

    code = ErrorCode.UPSTREAM_FAILED


class FeedGoneError(UpstreamError):
    """The upstream's feed does not reach back to the serial asked for: take its snapshot."""


@dataclass(frozen=True)
class Signed:
    """Bytes the upstream signed, the signatures they came with, and the key that verified."""

    body: bytes
    signatures: tuple[Signature, ...]
    verified_by: str

    @property
    def unknown_keys(self) -> tuple[str, ...]:
        """Keys that signed beside the verified one: a rotation the mirror has yet to learn."""
        return tuple(s.key_id for s in self.signatures if s.key_id != self.verified_by)


def trusted_keys(public_keys: Mapping[str, str]) -> dict[str, bytes]:
    """Key id -> raw key, from the base64 keys an Upstream row keeps."""
    return {key_id: public_key_from_b64(text) for key_id, text in public_keys.items()}


class UpstreamClient:
    """One upstream: its URL, the token for it, the keys it must sign with."""

    def __init__(
        self,
        *,
        url: str,
        token: str = "",
        name: str,
        keys: Mapping[str, bytes],
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.name = name
        self.keys = dict(keys)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"}
        if token:
            headers["Authorization"] = f"Token {token}"
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> UpstreamClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- raw requests -----------------------------------------------------------------

    def _get(self, path: str) -> httpx.Response:
        try:
            response = self._http.get(path)
        except httpx.HTTPError as error:
            raise UpstreamError(
                f"upstream {self.name} ({self.url}) is unreachable: {error}",
                {"upstream": self.name},
            ) from error
        if response.status_code == 410:
            raise FeedGoneError(f"upstream {self.name}: the feed does not reach back that far")
        if response.status_code != 200:
            raise UpstreamError(
                f"upstream {self.name} answered {path.split('?')[0]} with "
                f"{response.status_code}: {response.text[:200]}",
                {"upstream": self.name, "status": response.status_code},
            )
        return response

    def _signed(self, path: str, what: str, keys: Mapping[str, bytes] | None = None) -> Signed:
        response = self._get(path)
        body = response.content  # httpx undoes the gzip content coding: these are the signed bytes
        signatures = tuple(parse_signatures(response.headers.get(SIGNATURE_HEADER)))
        verified_by = verify_signed(
            body,
            signatures,
            self.keys if keys is None else keys,
            what=what,
            source=f"upstream {self.name} ({self.url})",
        )
        return Signed(body, signatures, verified_by)

    # --- documents --------------------------------------------------------------------

    def key_set(self, *, pinned: Sequence[str] = ()) -> KeySet:
        """The upstream's key set, checked against itself and, when given, the pinned ids.

        With nothing pinned and no keys known yet, the keys it lists are trusted on first use,
        provided they signed the set themselves.
        """
        response = self._get(KEYS_PATH)
        try:
            key_set = KeySet.model_validate_json(response.content)
            listed = key_set.trusted()
        except (ValidationError, ValueError) as error:
            raise UpstreamError(f"upstream {self.name}: unreadable key set: {error}") from error
        signatures = parse_signatures(response.headers.get(SIGNATURE_HEADER))
        # Known keys vouch for a new set (a rotation); on first use, the set vouches for itself.
        vouching = self.keys or listed
        verify_signed(
            response.content,
            signatures,
            vouching,
            what="the key set",
            source=f"upstream {self.name} ({self.url})",
        )
        if pinned and not set(pinned) & set(listed):
            raise KeyChangedError(
                f"upstream {self.name} ({self.url}) lists keys {', '.join(sorted(listed))}, "
                f"none of which is the pinned {', '.join(pinned)}",
                pinned=list(pinned),
                offered=sorted(listed),
            )
        return key_set

    def changes(self, since: int, limit: int) -> tuple[ChangePage, Signed]:
        signed = self._signed(changes_path(since, limit), "a feed page")
        try:
            return ChangePage.model_validate_json(signed.body), signed
        except ValidationError as error:
            raise UpstreamError(f"upstream {self.name}: unreadable feed page: {error}") from error

    def snapshot(self) -> tuple[CatalogSnapshot, Signed]:
        signed = self._signed(CATALOG_PATH, "the catalogue snapshot")
        try:
            return CatalogSnapshot.model_validate_json(signed.body), signed
        except ValidationError as error:
            raise UpstreamError(f"upstream {self.name}: unreadable snapshot: {error}") from error

    def stream(self, path_or_url: str) -> Iterator[bytes]:
        """The bytes at a path of the upstream, or a URL under its own, in chunks.

        A URL of another host is refused: the token goes to the upstream only.
        """
        if "://" in path_or_url and not path_or_url.startswith(self.url + "/"):
            raise UpstreamError(
                f"refusing to fetch {path_or_url}: it is not under upstream {self.name}'s URL"
            )
        path = path_or_url[len(self.url) :] if "://" in path_or_url else path_or_url
        try:
            with self._http.stream("GET", path) as response:
                if response.status_code != 200:
                    raise UpstreamError(
                        f"upstream {self.name} answered {path} with {response.status_code}",
                        {"upstream": self.name, "status": response.status_code},
                    )
                yield from response.iter_raw(CHUNK_BYTES)
        except httpx.HTTPError as error:
            raise UpstreamError(
                f"upstream {self.name} ({self.url}) broke off {path}: {error}"
            ) from error


__all__ = [
    "FeedGoneError",
    "KeyChangedError",
    "SignatureInvalidError",
    "Signed",
    "UpstreamClient",
    "UpstreamError",
    "trusted_keys",
]
