"""Fixtures of the client tests: a real HTTP hub on 127.0.0.1, cards, and model packages on disk.

``FakeHub`` is a ``ThreadingHTTPServer`` that speaks the contract's hub API (catalog with ETag
and 304, artifacts with Range and ``X-Checksum-Sha256``, push answering 202, release status and
review), and the access API: tokens (HTTP Basic sign-in, scopes, namespace restriction, expiry,
revocation), ``/me``, organisations and members, namespaces, visibility with its review. The
catalogue is filtered per viewer (a release entry's ``visibility``) with a serial and an ETag
per viewer. Tests change its state directly and read its request log to count traffic.

It signs as a hub does (``medigan_catalog.signing``): the catalogue, the change feed (served
when ``feed`` is set) and ``/api/v1/keys`` are canonical JSON with an ``X-Catalog-Signature``
by each of ``signing_keys``. ``sign_with`` signs with other keys instead (a wrong key),
``tamper`` alters bodies after signing, ``unsigned`` sends no signature, and
``FakeHubState.rotate`` adds a new key beside the old one (a rotation's overlap).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import re
import secrets
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from medigan_catalog.signing import (
    KEYS_PATH,
    SIGNATURE_HEADER,
    SigningKey,
    attest,
    canonical_json,
    format_signatures,
)
from medigan_catalog.snapshot import (
    CATALOG_PATH,
    CHANGES_PATH,
    ME_PATH,
    NAMESPACES_PATH,
    ORGANISATIONS_PATH,
    RELEASES_PATH,
    SERIAL_HEADER,
    TOKENS_PATH,
    artifact_path,
)
from medigan_client.settings import ClientSettings

# The example snapshot of docs/schema/, which the hub's API test validates against the hub too.
EXAMPLE_SNAPSHOT = Path(__file__).resolve().parents[2] / "docs" / "schema" / "snapshot.example.json"


@dataclass
class Received:
    """One request as the fake hub saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


# The user of the fake hub's built-in token (FakeHubState.token), which has every scope.
DEFAULT_USER = "tester"
ALL_SCOPES = ("read", "push", "review", "admin")
RESERVED_NAMESPACES = frozenset({"zoo", "medigan"})


@dataclass
class FakeToken:
    """A token of the fake hub."""

    id: int
    key: str
    name: str
    username: str
    scopes: tuple[str, ...] = ALL_SCOPES
    namespace: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def info(self) -> dict[str, Any]:
        """The token as ``TokenInfo`` (never the key)."""
        return {
            "id": self.id,
            "name": self.name,
            "key_prefix": self.key[:8],
            "scopes": list(self.scopes),
            "namespace": self.namespace,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "last_used_at": None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass
class FakeOrganisation:
    """An organisation of the fake hub: its title and ``username -> role``."""

    title: str = ""
    members: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeHubState:
    """What the fake hub serves; tests mutate it."""

    serial: int = 1
    releases: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    announced_sha256: dict[str, str] = field(default_factory=dict)
    support_range: bool = True
    token: str = "secret-token"
    fail_next: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    # The error code of the answers fail_next injects.
    injected_code: str = "server_error"
    pushes: list[dict[str, Any]] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    log: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Artifact bodies: the next responses stop after this many bytes and drop the connection.
    cut_artifact_after: list[int] = field(default_factory=list)
    # When set, an artifact body stops half way until the event is set (or 60 s pass).
    artifact_gate: threading.Event | None = None
    # Throttle: artifact bodies go out in chunks of this many bytes with a pause after each.
    artifact_chunk_bytes: int = 0
    artifact_chunk_delay_seconds: float = 0.0
    # Access: passwords by username, tokens by key, organisations and extra user namespaces by
    # name, hub reviewers, model visibility, and the serial each viewer sees (None: anonymous).
    users: dict[str, str] = field(default_factory=lambda: {DEFAULT_USER: "tester-password"})
    tokens: dict[str, FakeToken] = field(default_factory=dict)
    organisations: dict[str, FakeOrganisation] = field(default_factory=dict)
    user_namespaces: dict[str, str] = field(default_factory=dict)
    hub_reviewers: set[str] = field(default_factory=set)
    visibilities: dict[str, dict[str, Any]] = field(default_factory=dict)
    viewer_serials: dict[str | None, int] = field(default_factory=dict)
    # When set, sign-ins (HTTP Basic) answer 429 throttled with this Retry-After.
    throttle_sign_in_seconds: int | None = None
    # Signing: the hub's name and keys; other keys to sign with instead (a wrong key); bodies
    # altered after signing; no signature at all.
    name: str = "fake"
    signing_keys: list[SigningKey] = field(default_factory=lambda: [SigningKey.generate()])
    sign_with: list[SigningKey] | None = None
    tamper: bool = False
    unsigned: bool = False
    canonical: bool = False
    # The change feed: served when set (every current entry of each model, as one change each).
    feed: bool = False

    def rotate(self, *, retire_old: bool = False) -> SigningKey:
        """A new signing key beside the current ones (or instead of them); returns it."""
        key = SigningKey.generate()
        self.signing_keys = [key] if retire_old else [*self.signing_keys, key]
        return key

    @property
    def key_id(self) -> str:
        """The id of the hub's first signing key."""
        return self.signing_keys[0].key_id

    def key_set(self) -> dict[str, Any]:
        return {
            "hub": self.name,
            "keys": [
                {"key_id": key.key_id, "public_key": key.public_key_b64()}
                for key in self.signing_keys
            ],
        }

    def signed(self, document: object) -> tuple[bytes, dict[str, str]]:
        """The canonical body of ``document`` and its signature header, as the state says."""
        # Signed over the exact bytes sent. Not canonical_json: sorting keys would reorder the
        # free-form tables of medigan's cards, whose global.json export keeps their order.
        body = canonical_json(document) if self.canonical else json.dumps(document).encode()
        headers: dict[str, str] = {"Content-Type": "application/json"}
        if not self.unsigned:
            keys = self.sign_with if self.sign_with is not None else self.signing_keys
            headers[SIGNATURE_HEADER] = format_signatures(key.sign(body) for key in keys)
        if self.tamper:
            body = body.replace(b'"serial":', b'"serial":  ', 1)
        return body, headers

    def attest(self, release: dict[str, Any], key: SigningKey | None = None) -> None:
        """Add the hub's attestation of ``release`` (its card's artifacts) to the entry."""
        artifacts = {a["filename"]: a.get("sha256") for a in release["card"].get("artifacts", [])}
        attestation = attest(
            key or self.signing_keys[0],
            hub=self.name,
            model_id=release["model_id"],
            version=release["version"],
            artifacts=artifacts,
        )
        release["attestation"] = attestation.model_dump(mode="json")

    def __post_init__(self) -> None:
        self.tokens[self.token] = FakeToken(
            id=1, key=self.token, name="built-in", username=DEFAULT_USER
        )

    def add_token(self, username: str, **options: Any) -> FakeToken:
        """A new token for ``username`` (``scopes``, ``namespace``, ``expires_at``, ``name``)."""
        with self.lock:
            token = FakeToken(
                id=max(t.id for t in self.tokens.values()) + 1,
                key=f"key-{secrets.token_hex(12)}",
                name=options.pop("name", "test"),
                username=username,
                **options,
            )
            self.tokens[token.key] = token
        return token

    def add_organisation(self, name: str, members: dict[str, str], title: str = "") -> None:
        """An organisation (and its namespace) with ``username -> role`` members."""
        self.organisations[name] = FakeOrganisation(title, dict(members))

    def serial_for(self, viewer: str | None) -> int:
        return self.viewer_serials.get(viewer, self.serial)

    def etag(self, viewer: str | None = DEFAULT_USER) -> str:
        return f'"catalog-{self.serial_for(viewer)}-{viewer or "anonymous"}"'

    def role_in(self, username: str | None, namespace: str) -> str | None:
        """``username``'s role in the owner of ``namespace`` (``owner`` of their own)."""
        if username is None:
            return None
        if namespace == username or self.user_namespaces.get(namespace) == username:
            return "owner"
        organisation = self.organisations.get(namespace)
        return organisation.members.get(username) if organisation else None

    def can_see(self, viewer: str | None, release: dict[str, Any]) -> bool:
        visibility = release.get("visibility", "public")
        if visibility == "public":
            return True
        if visibility == "internal":
            return viewer is not None
        return self.role_in(viewer, str(release["model_id"]).split("/")[0]) is not None

    def catalog(self, base_url: str, viewer: str | None = DEFAULT_USER) -> dict[str, Any]:
        return {
            "serial": self.serial_for(viewer),
            "generated_at": "2025-01-01T00:00:00+00:00",
            "hub": {"url": base_url},
            "releases": [r for r in self.releases if self.can_see(viewer, r)],
        }

    def requests_to(self, prefix: str) -> list[Received]:
        return [r for r in self.log if r.path.startswith(prefix)]


_RELEASE_PATH = re.compile(
    r"^/api/v1/models/(?P<ns>[^/]+)/(?P<name>[^/]+)/releases/(?P<version>[^/]+)"
    r"(?P<rest>/.*)?$"
)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    @property
    def state(self) -> FakeHubState:
        return self.server.state

    def _record(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.state.lock:
            self.state.log.append(
                Received(self.command, self.path, {k: v for k, v in self.headers.items()}, body)
            )
        return body

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        self._send(
            status,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"code": code, "message": message, "detail": None})

    def _injected_failure(self) -> bool:
        with self.state.lock:
            if not self.state.fail_next:
                return False
            status, headers = self.state.fail_next.pop(0)
        if status == 0:  # drop the connection without any answer
            self.close_connection = True
            return True
        body = {"code": self.state.injected_code, "message": "injected", "detail": None}
        self._json(status, body, headers)
        return True

    def _token(self) -> FakeToken | None:
        """The live token the request names, or None (no token, unknown, revoked, expired)."""
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Token "):
            return None
        token = self.state.tokens.get(header.removeprefix("Token "))
        if token is None or token.revoked_at is not None:
            return None
        if token.expires_at is not None and token.expires_at <= datetime.now(UTC):
            return None
        return token

    def _authorised(self) -> bool:
        return self._token() is not None

    def _caller(self) -> FakeToken | None:
        """The calling token, or None after answering 401 as the hub does."""
        token = self._token()
        if token is None:
            header = self.headers.get("Authorization") or ""
            known = self.state.tokens.get(header.removeprefix("Token "))
            if known is not None and known.expires_at is not None and known.revoked_at is None:
                self._error(401, "token_expired", "the token expired; sign in again")
            else:
                self._error(401, "authentication_required", "a token is required")
        return token

    def do_GET(self) -> None:
        self._record()
        if self._injected_failure():
            return
        if self.path == CATALOG_PATH:
            # Unknown tokens read the catalogue as anonymous, so old tests keep their answers.
            token = self._token()
            viewer = token.username if token else None
            etag = self.state.etag(viewer)
            headers = {
                "ETag": etag,
                "Vary": "Authorization",
                SERIAL_HEADER: str(self.state.serial_for(viewer)),
            }
            if self.headers.get("If-None-Match") == etag:
                self._send(304, b"", headers)
                return
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            document = self.state.catalog(base, viewer)
            if self.state.feed:
                document["scope"] = viewer or "anonymous"
            self._signed(200, document, headers)
            return
        if self.path == KEYS_PATH:
            self._signed(200, self.state.key_set())
            return
        if self.path.startswith(CHANGES_PATH + "?") and self.state.feed:
            self._changes()
            return
        if self._access_get():
            return
        match = _RELEASE_PATH.match(self.path)
        if match and match["rest"] and match["rest"].startswith("/artifacts/"):
            self._artifact(self.path)
            return
        if match and not match["rest"]:
            release = f"{match['ns']}/{match['name']}@{match['version']}"
            if release not in self.state.states:
                self._error(404, "not_found", f"no release {release}")
                return
            self._json(200, self._status(release))
            return
        self._error(404, "not_found", f"nothing at {self.path}")

    def _signed(self, status: int, document: object, headers: dict[str, str] | None = None) -> None:
        body, signature = self.state.signed(document)
        self._send(status, body, {**signature, **(headers or {})})

    def _changes(self) -> None:
        """A feed page from ``since``: nothing when it is current, else every model's entries."""
        query = dict(part.split("=", 1) for part in self.path.split("?", 1)[1].split("&"))
        since = int(query["since"])
        token = self._token()
        viewer = token.username if token else None
        serial = self.state.serial_for(viewer)
        changes = []
        if since < serial:
            visible = [r for r in self.state.releases if self.state.can_see(viewer, r)]
            models = sorted({str(r["model_id"]) for r in visible})
            for model_id in models:
                changes.append(
                    {
                        "serial": serial,
                        "kind": "release_published",
                        "model_id": model_id,
                        "releases": [r for r in visible if r["model_id"] == model_id],
                    }
                )
        page = {
            "since": since,
            "serial": max(since, serial),
            "latest": serial,
            "scope": viewer or "anonymous",
            "more": False,
            "changes": changes,
        }
        self._signed(200, page)

    def _status(self, release: str) -> dict[str, Any]:
        model_id, version = release.split("@")
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        return {
            "model_id": model_id,
            "version": version,
            "state": self.state.states[release],
            "checks": [],
            "events": [],
            "card": None,
            "doi": None,
            "pinned": False,
            "url": f"{base}/api/v1/models/{model_id}/releases/{version}",
        }

    def _artifact(self, path: str) -> None:
        data = self.state.artifacts.get(path)
        if data is None:
            self._error(404, "not_found", f"no artifact at {path}")
            return
        headers = {
            "Content-Type": "application/zip",
            "X-Checksum-Sha256": self.state.announced_sha256.get(
                path, hashlib.sha256(data).hexdigest()
            ),
        }
        requested = self.headers.get("Range")
        if self.state.support_range:
            headers["Accept-Ranges"] = "bytes"
            if requested and requested.startswith("bytes="):
                start = int(requested.removeprefix("bytes=").split("-")[0])
                part = data[start:]
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                self._send_artifact(206, part, headers)
                return
        self._send_artifact(200, data, headers)

    def _send_artifact(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        """Like ``_send``, honouring the state's cut, gate and throttle options for bodies."""
        with self.state.lock:
            cut = self.state.cut_artifact_after.pop(0) if self.state.cut_artifact_after else None
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        payload = body if cut is None else body[:cut]
        pieces = [payload]
        if self.state.artifact_gate is not None:
            pieces = [payload[: len(payload) // 2], payload[len(payload) // 2 :]]
        for number, piece in enumerate(pieces):
            if number and self.state.artifact_gate is not None:
                self.state.artifact_gate.wait(timeout=60)
            step = self.state.artifact_chunk_bytes or max(1, len(piece))
            for offset in range(0, len(piece), step):
                self.wfile.write(piece[offset : offset + step])
                self.wfile.flush()
                if self.state.artifact_chunk_delay_seconds:
                    time.sleep(self.state.artifact_chunk_delay_seconds)
        if cut is not None:
            self.close_connection = True

    def do_POST(self) -> None:
        body = self._record()
        if self._injected_failure():
            return
        authorization = self.headers.get("Authorization") or ""
        if self.path == TOKENS_PATH and authorization.startswith("Basic "):
            self._sign_in(body)
            return
        caller = self._caller()
        if caller is None:
            return
        if self._access_post(caller, body):
            return
        if self.path == RELEASES_PATH:
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body
            )
            fields: dict[str, Any] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                fields[str(name)] = part.get_payload(decode=True)
            card = json.loads(fields["card"])
            release = f"{card['model_id']}@{card['version']}"
            namespace = card["model_id"].split("/")[0]
            if "push" not in caller.scopes:
                self._error(403, "scope_missing", "pushing needs a token with the push scope")
                return
            if caller.namespace is not None and caller.namespace != namespace:
                self._error(403, "permission_denied", f"the token is for {caller.namespace} only")
                return
            if release in self.state.states:
                self._error(409, "release_exists", f"{release} was already pushed")
                return
            with self.state.lock:
                self.state.pushes.append(fields)
                self.state.states[release] = "submitted"
                if card["model_id"] not in self.state.visibilities:
                    chosen = fields.get("visibility")
                    self.state.visibilities[card["model_id"]] = {
                        "model_id": card["model_id"],
                        "visibility": chosen.decode() if chosen else "public",
                        "requested": None,
                        "requested_by": None,
                    }
            self._json(202, self._status(release))
            return
        match = _RELEASE_PATH.match(self.path)
        if match and match["rest"] == "/review":
            release = f"{match['ns']}/{match['name']}@{match['version']}"
            decision = json.loads(body)["decision"]
            if self.state.states.get(release) != "in_review":
                self._error(409, "transition_not_allowed", f"{release} is not in review")
                return
            self.state.states[release] = "approved" if decision == "approve" else "rejected"
            self._json(200, self._status(release))
            return
        self._error(404, "not_found", f"nothing at {self.path}")

    # -- access ----------------------------------------------------------------------------

    def _organisation_document(self, name: str, username: str) -> dict[str, Any]:
        organisation = self.state.organisations[name]
        return {
            "name": name,
            "title": organisation.title,
            "role": organisation.members.get(username),
            "members": [
                {"username": user, "role": role} for user, role in organisation.members.items()
            ],
        }

    def _account(self, token: FakeToken) -> dict[str, Any]:
        user = token.username
        organisations = [
            {"name": name, "title": org.title, "role": org.members[user]}
            for name, org in self.state.organisations.items()
            if user in org.members
        ]
        return {
            "username": user,
            "namespace": user,
            "namespaces": self._push_namespaces(user),
            "reserved_namespaces": sorted(RESERVED_NAMESPACES),
            "organisations": organisations,
            "hub_reviewer": user in self.state.hub_reviewers,
            "token": {
                "id": token.id,
                "scopes": list(token.scopes),
                "namespace": token.namespace,
                "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            },
        }

    def _push_namespaces(self, user: str) -> list[str]:
        owned = [user, *(ns for ns, owner in self.state.user_namespaces.items() if owner == user)]
        maintained = [
            name
            for name, org in self.state.organisations.items()
            if org.members.get(user) in ("owner", "maintainer")
        ]
        return owned + maintained

    def _visibility_match(self) -> re.Match[str] | None:
        return _VISIBILITY_PATH.match(self.path)

    def _visibility_state(self, model_id: str) -> dict[str, Any]:
        return self.state.visibilities.setdefault(
            model_id,
            {"model_id": model_id, "visibility": "public", "requested": None, "requested_by": None},
        )

    def _access_get(self) -> bool:
        """Answer a GET of the access API; False when the path is not one of it."""
        match = self._visibility_match()
        known = {ME_PATH, TOKENS_PATH, ORGANISATIONS_PATH, NAMESPACES_PATH}
        organisation = _ORGANISATION_PATH.match(self.path)
        if self.path not in known and not organisation and not (match and not match["review"]):
            return False
        caller = self._caller()
        if caller is None:
            return True
        user = caller.username
        if self.path == ME_PATH:
            self._json(200, self._account(caller))
        elif self.path == TOKENS_PATH:
            mine = [t.info() for t in self.state.tokens.values() if t.username == user]
            self._json(200, {"tokens": sorted(mine, key=lambda t: -int(t["id"]))})
        elif self.path == ORGANISATIONS_PATH:
            self._json(200, {"organisations": self._account(caller)["organisations"]})
        elif self.path == NAMESPACES_PATH:
            self._json(
                200,
                {
                    "namespaces": [
                        {"name": name, "user": user, "can_push": True}
                        if name not in self.state.organisations
                        else {"name": name, "organisation": name, "can_push": True}
                        for name in self._push_namespaces(user)
                    ]
                },
            )
        elif organisation:
            name = organisation["name"]
            org = self.state.organisations.get(name)
            if org is None or user not in org.members or organisation["rest"]:
                self._error(404, "not_found", f"no organisation {name}")
            else:
                self._json(200, self._organisation_document(name, user))
        else:
            assert match is not None
            model_id = f"{match['ns']}/{match['name']}"
            self._json(200, self._visibility_state(model_id))
        return True

    def _sign_in(self, body: bytes) -> None:
        """``POST /api/v1/tokens`` with HTTP Basic: a new token for a username and password."""
        if self.state.throttle_sign_in_seconds is not None:
            self._json(
                429,
                {"code": "throttled", "message": "too many failed sign-ins", "detail": None},
                {"Retry-After": str(self.state.throttle_sign_in_seconds)},
            )
            return
        encoded = (self.headers.get("Authorization") or "").removeprefix("Basic ")
        username, _, password = base64.b64decode(encoded).decode().partition(":")
        if self.state.users.get(username) != password or not password:
            self._error(401, "authentication_required", "invalid username or password")
            return
        self._new_token(username, json.loads(body), ceiling=None)

    def _new_token(self, username: str, request: dict[str, Any], ceiling: FakeToken | None) -> None:
        scopes = tuple(request.get("scopes") or ("read", "push"))
        namespace = request.get("namespace")
        expires_at = datetime.now(UTC) + timedelta(days=int(request.get("expires_in_days", 90)))
        if ceiling is not None:
            if not set(scopes) <= set(ceiling.scopes):
                self._error(403, "scope_missing", "a token cannot grant scopes its creator lacks")
                return
            if ceiling.namespace is not None and namespace != ceiling.namespace:
                self._error(403, "permission_denied", f"the token is for {ceiling.namespace}")
                return
            if ceiling.expires_at is not None:
                expires_at = min(expires_at, ceiling.expires_at)
        token = self.state.add_token(
            username,
            name=request["name"],
            scopes=scopes,
            namespace=namespace,
            expires_at=expires_at,
        )
        self._json(201, {**token.info(), "key": token.key})

    def _access_post(self, caller: FakeToken, body: bytes) -> bool:
        """Answer a POST of the access API with a token; False when the path is not one of it."""
        user = caller.username
        organisation = _ORGANISATION_PATH.match(self.path)
        match = self._visibility_match()
        if self.path == TOKENS_PATH:
            self._new_token(user, json.loads(body), ceiling=caller)
        elif self.path == ORGANISATIONS_PATH:
            request = json.loads(body)
            name = request["name"]
            if "admin" not in caller.scopes:
                self._error(403, "scope_missing", "creating an organisation needs admin")
            elif name in RESERVED_NAMESPACES:
                self._error(403, "permission_denied", f"{name} is reserved")
            elif self._taken(name):
                self._error(409, "namespace_taken", f"{name} is taken")
            else:
                self.state.organisations[name] = FakeOrganisation(
                    request.get("title", ""), {user: "owner"}
                )
                self._json(201, self._organisation_document(name, user))
        elif organisation and organisation["rest"] == "/members":
            name = organisation["name"]
            org = self.state.organisations.get(name)
            if org is None or user not in org.members:
                self._error(404, "not_found", f"no organisation {name}")
            elif org.members[user] != "owner":
                self._error(403, "permission_denied", f"only owners of {name} manage members")
            else:
                request = json.loads(body)
                if request["username"] not in self.state.users:
                    self._error(404, "not_found", f"no user {request['username']}")
                    return True
                org.members[request["username"]] = request.get("role", "reader")
                self._json(200, self._organisation_document(name, user))
        elif self.path == NAMESPACES_PATH:
            name = json.loads(body)["name"]
            if self._taken(name) or name in RESERVED_NAMESPACES:
                self._error(409, "namespace_taken", f"{name} is taken")
            else:
                self.state.user_namespaces[name] = user
                self._json(201, {"name": name, "user": user, "can_push": True})
        elif match:
            self._change_visibility(caller, match, json.loads(body))
        else:
            return False
        return True

    def _taken(self, name: str) -> bool:
        return (
            name in self.state.organisations
            or name in self.state.users
            or name in self.state.user_namespaces
        )

    def _change_visibility(
        self, caller: FakeToken, match: re.Match[str], request: dict[str, Any]
    ) -> None:
        model_id = f"{match['ns']}/{match['name']}"
        state = self._visibility_state(model_id)
        user = caller.username
        if match["review"]:
            if "review" not in caller.scopes:
                self._error(403, "scope_missing", "reviewing needs the review scope")
            elif user not in self.state.hub_reviewers or state["requested"] is None:
                self._error(403, "permission_denied", "only hub reviewers decide")
            else:
                if request["decision"] == "approve":
                    state["visibility"] = state["requested"]
                state["requested"] = state["requested_by"] = None
                self._json(200, state)
            return
        if "admin" not in caller.scopes:
            self._error(403, "scope_missing", "changing visibility needs the admin scope")
            return
        if self.state.role_in(user, match["ns"]) not in ("owner", "maintainer"):
            self._error(403, "permission_denied", f"you may not change {model_id}")
            return
        wanted = request["visibility"]
        if wanted == "public" and user not in self.state.hub_reviewers:
            state["requested"], state["requested_by"] = wanted, user
            self._json(202, state)
            return
        state["visibility"], state["requested"], state["requested_by"] = wanted, None, None
        self._json(200, state)

    def do_DELETE(self) -> None:
        self._record()
        if self._injected_failure():
            return
        caller = self._caller()
        if caller is None:
            return
        token_match = re.match(rf"^{TOKENS_PATH}/(?P<id>[0-9]+)$", self.path)
        member = _ORGANISATION_PATH.match(self.path)
        if token_match:
            found = [
                t
                for t in self.state.tokens.values()
                if t.id == int(token_match["id"]) and t.username == caller.username
            ]
            if not found:
                self._error(404, "not_found", "no such token")
                return
            found[0].revoked_at = datetime.now(UTC)
            self._send(204, b"")
        elif member and (member["rest"] or "").startswith("/members/"):
            name = member["name"]
            org = self.state.organisations.get(name)
            if org is None or org.members.get(caller.username) != "owner":
                self._error(403, "permission_denied", f"only owners of {name} manage members")
                return
            org.members.pop(member["rest"].removeprefix("/members/"), None)
            self._json(200, self._organisation_document(name, caller.username))
        else:
            self._error(404, "not_found", f"nothing at {self.path}")


_VISIBILITY_PATH = re.compile(
    r"^/api/v1/models/(?P<ns>[^/]+)/(?P<name>[^/]+)/visibility(?P<review>/review)?$"
)
_ORGANISATION_PATH = re.compile(r"^/api/v1/organisations/(?P<name>[^/]+)(?P<rest>/.*)?$")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FakeHubState):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@dataclass
class FakeHub:
    """A running fake hub: its URL and its state."""

    url: str
    state: FakeHubState
    server: _Server

    def artifact_url(self, model_id: str, version: str, filename: str) -> str:
        return f"{self.url}{self.artifact_path(model_id, version, filename)}"

    @staticmethod
    def artifact_path(model_id: str, version: str, filename: str) -> str:
        return artifact_path(model_id, version, filename)

    def serve_example_snapshot(self) -> dict[str, Any]:
        """Serve the shared example snapshot's releases (at its serial); return the document."""
        document: dict[str, Any] = json.loads(EXAMPLE_SNAPSHOT.read_text(encoding="utf-8"))
        self.state.releases = list(document["releases"])
        self.state.serial = document["serial"]
        return document

    def publish(self, card: dict[str, Any], package_zip: Path) -> dict[str, Any]:
        """Serve ``package_zip`` as the card's package and list the release in the catalogue."""
        data = package_zip.read_bytes()
        path = self.artifact_path(card["model_id"], card["version"], package_zip.name)
        self.state.artifacts[path] = data
        published = dict(card)
        published["artifacts"] = [
            {
                "role": "package",
                "filename": package_zip.name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "urls": [self.url + path],
            }
        ]
        self.state.releases.append(
            {
                "model_id": card["model_id"],
                "version": card["version"],
                "published_at": "2025-01-01T00:00:00+00:00",
                "card": published,
            }
        )
        self.state.serial += 1
        return published


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """A fake hub listening on 127.0.0.1 on a free port, stopped after the test."""
    yield from _running_hub(FakeHubState())


@pytest.fixture
def other_hub() -> Iterator[FakeHub]:
    """A second fake hub (named ``other``, its own keys), for clients of several hubs."""
    yield from _running_hub(FakeHubState(name="other"))


def _running_hub(state: FakeHubState) -> Iterator[FakeHub]:
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield FakeHub(
            url=f"http://127.0.0.1:{server.server_address[1]}", state=state, server=server
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def settings(tmp_path: Path, hub: FakeHub) -> ClientSettings:
    """Settings pointing at the fake hub with a cache inside tmp_path."""
    return ClientSettings(
        hub_url=hub.url, token=hub.state.token, cache_dir=tmp_path / "cache", timeout=5.0
    )


def _make_card(
    model_id: str = "zoo/noise-8",
    version: str = "1.0.0",
    *,
    kind: str = "v2",
    modality: list[str] | None = None,
    title: str = "Noise images for tests",
    model_type: str = "DCGAN",
    fid: float | None = None,
    height: int = 8,
    width: int = 8,
    channels: int = 1,
) -> dict[str, Any]:
    """A valid package card (artifacts empty, as inside a package directory)."""
    card: dict[str, Any] = {
        "schema_version": "1.0",
        "model_id": model_id,
        "version": version,
        "runtime": {"kind": kind, "entry_point": "generate", "dependencies": ["numpy"]},
        "generation_arguments": [
            {
                "name": "brightness",
                "type": "int",
                "default": 128,
                "minimum": 0,
                "maximum": 255,
                "help": "mean grey value",
            }
        ],
        "output": {
            "height": height,
            "width": width,
            "channels": channels,
            "dtype": "uint8",
            "value_range": [0, 255],
        },
        "artifacts": [],
        "provenance": {"authors": ["Test Author"], "licence": "MIT"},
        "selection": {
            "modality": modality or ["X-ray", "Chest X-ray"],
            "organ": ["chest"],
            "type": model_type,
            "tags": ["test"],
            "performance": {"FID": fid},
        },
        "description": {"title": title, "version": version},
    }
    return card


V2_INIT = '''
"""A v2 test package: numpy noise around a brightness, deterministic per seed."""
import numpy as np

from .noise import spread


def generate(num_samples, *, seed, device, brightness=128):
    rng = np.random.default_rng(seed)
    values = rng.normal(brightness, spread(), size=(num_samples, {height}, {width}))
    return np.clip(values, 0, 255).astype(np.uint8)
'''

LEGACY_INIT = '''
"""A medigan-legacy test package: returns a list of images, reads its weights file."""
import os

import numpy as np


def generate(model_file, num_samples, output_path, save_images, brightness=128):
    with open(model_file) as handle:
        offset = int(handle.read().strip())
    images = []
    for _ in range(num_samples):
        image = np.random.randint(0, 50, size=({height}, {width}, 1)) + brightness + offset
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    if save_images:
        raise AssertionError("the client asks for arrays, never files")
    return images
'''


def _write_package(
    directory: Path, card: dict[str, Any], *, init_source: str | None = None
) -> Path:
    """Write a model package (card.json, __init__.py, helpers) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    height = card["output"]["height"]
    width = card["output"]["width"]
    if init_source is None:
        template = LEGACY_INIT if card["runtime"]["kind"] == "medigan-legacy" else V2_INIT
        init_source = template.replace("{height}", str(height)).replace("{width}", str(width))
    (directory / "__init__.py").write_text(textwrap.dedent(init_source), encoding="utf-8")
    (directory / "noise.py").write_text("def spread():\n    return 20.0\n", encoding="utf-8")
    if card["runtime"]["kind"] == "medigan-legacy":
        (directory / "DCGAN.pt").write_text("7\n", encoding="utf-8")
    (directory / "card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return directory


def _zip_package(directory: Path, destination: Path) -> Path:
    """Zip a package directory deterministically (the catalogue's packaging rules)."""
    from medigan_catalog.packaging import build_deterministic_zip

    destination.parent.mkdir(parents=True, exist_ok=True)
    build_deterministic_zip(directory, destination)
    return destination


MakeCard = Callable[..., dict[str, Any]]
WritePackage = Callable[..., Path]
ZipPackage = Callable[[Path, Path], Path]


@pytest.fixture
def make_card() -> MakeCard:
    """Build a valid package card: ``make_card(model_id=..., version=..., kind=...)``."""
    return _make_card


@pytest.fixture
def write_package() -> WritePackage:
    """Write a package: ``write_package(directory, card, init_source=None)``."""
    return _write_package


@pytest.fixture
def zip_package() -> ZipPackage:
    """Zip a package directory deterministically: ``zip_package(directory, destination)``."""
    return _zip_package


@pytest.fixture
def publish(hub: FakeHub, tmp_path: Path) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Write, zip and publish a package for a card on the fake hub; returns the catalogue card."""

    def run(card: dict[str, Any]) -> dict[str, Any]:
        slug = f"{card['model_id'].replace('/', '_')}-{card['version']}"
        package = _write_package(tmp_path / "src" / slug, card)
        archive = _zip_package(package, tmp_path / "dist" / f"{slug}.zip")
        return hub.publish(card, archive)

    return run


@pytest.fixture
def published(publish: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """One v2 release (zoo/noise-8@1.0.0) published on the fake hub; its catalogue card."""
    return publish(_make_card())
