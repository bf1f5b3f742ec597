"""Error vocabulary shared by the hub, the client and the catalog: codes and typed exceptions.

The hub answers every error as ``{"code", "message", "detail"}`` (an :class:`ErrorBody`) with a
``code`` from :class:`ErrorCode`; the client maps each code back to a typed exception. The
exceptions below are the ones the catalog itself raises; each knows its code and how to render
itself as a body, so a server can answer ``exc.to_body()`` without a mapping table.

Every one derives from :class:`CatalogError`, the one root of this distribution, as every client
exception derives from ``medigan_client.errors.ClientError``. An exception that means the same
in both has the same name in both, taken from its code (``ARCHIVE_UNSAFE`` ->
``ArchiveUnsafeError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import ClassVar, TypedDict


class ErrorCode(StrEnum):
    """Machine-readable error codes; the values travel over HTTP and never change meaning."""

    CARD_INVALID = "card_invalid"
    ARCHIVE_UNSAFE = "archive_unsafe"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    ARTIFACT_UNREACHABLE = "artifact_unreachable"
    NOT_FOUND = "not_found"
    AUTHENTICATION_REQUIRED = "authentication_required"
    PERMISSION_DENIED = "permission_denied"
    TRANSITION_NOT_ALLOWED = "transition_not_allowed"
    RELEASE_EXISTS = "release_exists"
    VALIDATION_FAILED = "validation_failed"
    GENERATION_FAILED = "generation_failed"
    BAD_REQUEST = "bad_request"
    SERVER_ERROR = "server_error"
    HUB_UNREACHABLE = "hub_unreachable"
    OFFLINE = "offline"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    HUB_BUSY = "hub_busy"
    SANDBOX_UNAVAILABLE = "sandbox_unavailable"
    # Access control: a token without the scope an operation needs, a token past its expiry,
    # too many failed sign-ins from one address, a namespace that does not exist or is taken.
    SCOPE_MISSING = "scope_missing"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - an error code, not a secret
    THROTTLED = "throttled"
    NAMESPACE_NOT_FOUND = "namespace_not_found"
    NAMESPACE_TAKEN = "namespace_taken"
    # The change feed no longer holds changes that far back: sync the whole snapshot.
    FEED_GONE = "feed_gone"
    # Signed catalogues: a signature that does not match, none where one is required, or one by
    # a key other than the pinned one (docs/federation.md).
    SIGNATURE_INVALID = "signature_invalid"
    SIGNATURE_MISSING = "signature_missing"
    KEY_CHANGED = "key_changed"
    # Federation: a local release in a namespace an upstream carries, a mirrored release that
    # clashes with a local one, a bundle that fails verification, an upstream that failed.
    NAMESPACE_SHADOWED = "namespace_shadowed"
    MIRROR_CLASH = "mirror_clash"
    BUNDLE_INVALID = "bundle_invalid"
    UPSTREAM_FAILED = "upstream_failed"
    # A client of several hubs found one model id with different content on two of them and
    # will not choose (the dependency-confusion guard): pin it to a hub.
    HUB_CONFLICT = "hub_conflict"
    # A release its hub withdrew after publication (an administrator's decision, with a
    # reason): it is no longer served, and a client refuses to generate from it.
    RELEASE_WITHDRAWN = "release_withdrawn"
    # GitHub-linked submissions (docs/github.md): a webhook whose X-Hub-Signature-256 does not
    # verify, a delivery id seen before, a release tag that is not a semantic version, a release
    # without the package asset, GitHub's rate limit, and any other failure of GitHub's API.
    GITHUB_SIGNATURE_INVALID = "github_signature_invalid"
    GITHUB_DELIVERY_REPLAYED = "github_delivery_replayed"
    GITHUB_TAG_NOT_SEMVER = "github_tag_not_semver"
    GITHUB_ASSET_MISSING = "github_asset_missing"
    GITHUB_RATE_LIMITED = "github_rate_limited"
    GITHUB_FAILED = "github_failed"
    # DOI pinning with Zenodo (docs/operations.md, "DOI pinning"): Zenodo could not be reached
    # or timed out (retried), Zenodo refused a request or answered what is not its API, a DOI
    # that names no Zenodo record the hub can read, and a DOI deposit this hub does not make.
    ZENODO_UNAVAILABLE = "zenodo_unavailable"
    ZENODO_FAILED = "zenodo_failed"
    DOI_UNRESOLVABLE = "doi_unresolvable"
    DOI_MINT_UNAVAILABLE = "doi_mint_unavailable"


class ErrorBody(TypedDict):
    """The JSON error document: ``code`` is an :class:`ErrorCode` value, ``detail`` any JSON."""

    code: str
    message: str
    detail: object


class FieldProblem(TypedDict):
    """One problem in a card: ``loc`` is a dotted path such as ``output.height``."""

    loc: str
    msg: str


class CatalogError(Exception):
    """Base of every error the catalog raises; carries an :class:`ErrorCode` and a JSON detail.

    ``code`` is a class attribute so that ``except`` clauses and code mappings can be written
    against classes; an instance may override it (``CatalogError("...", code=ErrorCode.X)``),
    which is how a hub or client wraps a code it received without a dedicated subclass.
    """

    code: ClassVar[ErrorCode] = ErrorCode.SERVER_ERROR

    def __init__(self, message: str, detail: object = None, *, code: ErrorCode | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        if code is not None:
            # An instance attribute shadows the class default for this one error only.
            self.code = code  # type: ignore[misc]

    def to_body(self) -> ErrorBody:
        """Render the error as the JSON document the hub answers with."""
        return ErrorBody(code=self.code.value, message=self.message, detail=self.detail)

    def __str__(self) -> str:
        return self.message


class CardInvalidError(CatalogError):
    """A card does not satisfy the schema or the cross-field rules.

    ``detail`` (and ``problems``) is a list of ``{"loc": "a.b.c", "msg": "..."}``, one per
    problem, so a web form can put each message next to its field.
    """

    code = ErrorCode.CARD_INVALID

    def __init__(self, problems: Sequence[FieldProblem], message: str | None = None):
        self.problems: list[FieldProblem] = [
            FieldProblem(loc=p["loc"], msg=p["msg"]) for p in problems
        ]
        if message is None:
            listed = "; ".join(f"{p['loc'] or '(card)'}: {p['msg']}" for p in self.problems)
            message = f"card is invalid: {listed}" if listed else "card is invalid"
        super().__init__(message, list(self.problems))


class TransitionNotAllowedError(CatalogError):
    """A release was asked to move along an edge the lifecycle graph does not have."""

    code = ErrorCode.TRANSITION_NOT_ALLOWED

    def __init__(self, current: str, target: str, allowed: Sequence[str]):
        self.current = current
        self.target = target
        self.allowed = tuple(allowed)
        if self.allowed:
            reachable = ", ".join(self.allowed)
            message = (
                f"a release cannot move from {current!r} to {target!r}; "
                f"from {current!r} it can move to: {reachable}"
            )
        else:
            message = (
                f"a release cannot move from {current!r} to {target!r}; "
                f"{current!r} is a final state"
            )
        super().__init__(
            message, {"current": current, "target": target, "allowed": list(self.allowed)}
        )


class ArchiveUnsafeError(CatalogError):
    """An archive (or a directory about to be archived) breaks a packaging safety rule.

    ``member`` names the offending entry when there is one, and the message always names it.
    """

    code = ErrorCode.ARCHIVE_UNSAFE

    def __init__(self, message: str, member: str | None = None):
        self.member = member
        super().__init__(message, {"member": member})


class ChecksumMismatchError(CatalogError):
    """A file's sha256 (or size) differs from the one the card or the hub promised."""

    code = ErrorCode.CHECKSUM_MISMATCH

    def __init__(self, filename: str, expected: str, actual: str, *, what: str = "sha256"):
        self.filename = filename
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{filename}: {what} is {actual}, expected {expected}",
            {"filename": filename, "what": what, "expected": expected, "actual": actual},
        )


class GenerationArgumentError(CatalogError):
    """A generation argument given by a user is unknown, mistyped or out of range.

    The code is ``bad_request``: the card is fine, the request is not. ``argument`` names the
    offending argument and ``allowed`` lists the names (or values) that would have been accepted.
    """

    code = ErrorCode.BAD_REQUEST

    def __init__(self, message: str, *, argument: str | None, allowed: Sequence[object] = ()):
        self.argument = argument
        self.allowed = tuple(allowed)
        super().__init__(message, {"argument": argument, "allowed": list(self.allowed)})


# The name this exception had in medigan-catalog 0.1.0, kept so code written against it still
# catches and raises the same class.
UnsafeArchiveError = ArchiveUnsafeError
