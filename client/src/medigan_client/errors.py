"""Typed exceptions of the client, one per hub error code, and the mapping from error bodies.

The hub answers errors as ``{"code", "message", "detail"}`` with ``code`` from
:class:`medigan_catalog.errors.ErrorCode`; :func:`error_from_body` turns such a body into the
matching subclass of :class:`ClientError`, so callers catch what they mean
(``except NotFoundError``) and the CLI prints ``error: <message>``.

:class:`ClientError` is the one root of this distribution's exceptions, as
``medigan_catalog.errors.CatalogError`` is the catalog's; an exception that means the same in
both (``CardInvalidError``, ``ArchiveUnsafeError``, ``ChecksumMismatchError``,
``TransitionNotAllowedError``) has the same name in both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from medigan_catalog.errors import ErrorCode


class ClientError(Exception):
    """Base of every error the client raises on purpose; carries the hub's code, message, detail.

    ``message`` is what a person reads: for a failed model package, its short form (the
    exception and the package's own frames, see :mod:`medigan_client.runtime.failures`).
    ``traceback``, when set, is the full traceback behind it, for logs and ``--verbose``.
    """

    code: ErrorCode = ErrorCode.BAD_REQUEST

    def __init__(
        self,
        message: str,
        *,
        detail: object = None,
        code: ErrorCode | None = None,
        traceback: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.traceback = traceback
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.value!r}, message={self.message!r})"


# The root's name in medigan-client 0.1.0, kept so ``except MediganClientError`` in users' code
# still catches every client error.
MediganClientError = ClientError


class CardInvalidError(ClientError):
    """The card does not follow the schema."""

    code = ErrorCode.CARD_INVALID


class ArchiveUnsafeError(ClientError):
    """The package archive would escape its directory, holds links, or is too large."""

    code = ErrorCode.ARCHIVE_UNSAFE


class ChecksumMismatchError(ClientError):
    """A downloaded or uploaded file does not have the sha256 or size the card names."""

    code = ErrorCode.CHECKSUM_MISMATCH


class ArtifactUnreachableError(ClientError):
    """None of an artifact's URLs answered with its bytes."""

    code = ErrorCode.ARTIFACT_UNREACHABLE


class NotFoundError(ClientError):
    """The model, release or file does not exist (or is not visible to this token)."""

    code = ErrorCode.NOT_FOUND


class AuthenticationRequiredError(ClientError):
    """The operation needs a token and none (or an invalid one) was sent."""

    code = ErrorCode.AUTHENTICATION_REQUIRED


class PermissionDeniedError(ClientError):
    """The token is valid but may not do this."""

    code = ErrorCode.PERMISSION_DENIED


class TransitionNotAllowedError(ClientError):
    """The release's lifecycle state does not allow the requested transition."""

    code = ErrorCode.TRANSITION_NOT_ALLOWED


class ReleaseExistsError(ClientError):
    """A release with this model id and version was already pushed."""

    code = ErrorCode.RELEASE_EXISTS


class ValidationFailedError(ClientError):
    """The hub's validation checks failed for a release."""

    code = ErrorCode.VALIDATION_FAILED


class GenerationFailedError(ClientError):
    """A model package failed to generate, crashed, timed out, or produced the wrong output."""

    code = ErrorCode.GENERATION_FAILED


class BadRequestError(ClientError):
    """The request (or the local configuration) is malformed."""

    code = ErrorCode.BAD_REQUEST


class ServerError(ClientError):
    """The hub failed while answering."""

    code = ErrorCode.SERVER_ERROR


class HubUnreachableError(ClientError):
    """The hub did not answer (connection refused, timeout, gateway errors after retries)."""

    code = ErrorCode.HUB_UNREACHABLE


class OfflineError(ClientError):
    """The client is in offline mode and the operation needs the network."""

    code = ErrorCode.OFFLINE


class PayloadTooLargeError(ClientError):
    """The hub refused a request body over its size limit (a package, a card, a field)."""

    code = ErrorCode.PAYLOAD_TOO_LARGE


class HubBusyError(ClientError):
    """The hub is momentarily busy (its database is locked); retry after ``Retry-After``."""

    code = ErrorCode.HUB_BUSY


class SandboxUnavailableError(ClientError):
    """Isolation for contributed code could not be set up, so the code was not run."""

    code = ErrorCode.SANDBOX_UNAVAILABLE


class ScopeMissingError(PermissionDeniedError):
    """The token is valid but lacks the scope the operation needs (``push``, ``admin``, ...).

    A :class:`PermissionDeniedError`, so code that catches refusals in general still does.
    """

    code = ErrorCode.SCOPE_MISSING


class TokenExpiredError(AuthenticationRequiredError):
    """The token is past its expiry; sign in again (``medigan-client login``)."""

    code = ErrorCode.TOKEN_EXPIRED


class ThrottledError(ClientError):
    """The hub refuses for a while: too many failed sign-ins from this address (HTTP 429).

    ``retry_after_seconds`` is what the hub's ``Retry-After`` header asked for, ``None`` when it
    sent none. The client never retries a ``throttled`` answer by itself: each try would count
    as one more failure, so the wait is the caller's to decide.
    """

    code = ErrorCode.THROTTLED

    def __init__(
        self,
        message: str,
        *,
        detail: object = None,
        code: ErrorCode | None = None,
        traceback: str | None = None,
        retry_after_seconds: float | None = None,
    ):
        super().__init__(message, detail=detail, code=code, traceback=traceback)
        self.retry_after_seconds = retry_after_seconds


class NamespaceNotFoundError(NotFoundError):
    """The namespace named does not exist on the hub."""

    code = ErrorCode.NAMESPACE_NOT_FOUND


class NamespaceTakenError(ClientError):
    """The name is already a namespace (a user's or an organisation's); pick another."""

    code = ErrorCode.NAMESPACE_TAKEN


class FeedGoneError(ClientError):
    """The hub's change feed no longer reaches back to the serial asked for (410): sync whole."""

    code = ErrorCode.FEED_GONE


class SignatureInvalidError(ClientError):
    """A signed document (snapshot, feed page, key set, release attestation) does not match its
    signature by a pinned key: it was altered on the way. Nothing of it was used or cached."""

    code = ErrorCode.SIGNATURE_INVALID


class SignatureMissingError(ClientError):
    """A hub whose documents must be signed sent one without a signature.

    A hub that signs nothing (an older hub) can be trusted explicitly with ``verify = false``
    in its config entry (docs/client-federation.md).
    """

    code = ErrorCode.SIGNATURE_MISSING


class KeyChangedError(ClientError):
    """A document signed only by keys other than the ones pinned for its hub.

    ``pinned`` and ``offered`` are the key ids; after confirming a new key out of band,
    ``medigan-client keys forget HUB`` drops the old pin.
    """

    code = ErrorCode.KEY_CHANGED

    def __init__(
        self,
        message: str,
        *,
        detail: object = None,
        code: ErrorCode | None = None,
        traceback: str | None = None,
        pinned: Sequence[str] = (),
        offered: Sequence[str] = (),
    ):
        super().__init__(message, detail=detail, code=code, traceback=traceback)
        self.pinned = tuple(pinned)
        self.offered = tuple(offered)


class NamespaceShadowedError(ClientError):
    """A hub refused a local release in a namespace one of its upstreams carries."""

    code = ErrorCode.NAMESPACE_SHADOWED


class MirrorClashError(ClientError):
    """A mirroring hub found an upstream's release clashing with one of its own."""

    code = ErrorCode.MIRROR_CLASH


class BundleInvalidError(ClientError):
    """A catalogue bundle (for networks without a route to the hub) failed verification."""

    code = ErrorCode.BUNDLE_INVALID


class UpstreamFailedError(ClientError):
    """A mirroring hub could not reach or use one of its upstreams."""

    code = ErrorCode.UPSTREAM_FAILED


class AttestationInvalidError(SignatureInvalidError):
    """A catalogue entry's attestation, by a key pinned for a configured hub, does not match the
    entry: the release is unusable (code ``signature_invalid``)."""


class HubConflictError(ClientError):
    """Two configured hubs carry the same model (and version) with different content.

    The client refuses to choose (a dependency-confusion guard); ``detail`` is
    ``{"model_id", "version", "hubs"}``. Pin the model to a hub in the config's ``[pins]`` table
    or write ``hub-name:ns/name``.
    """

    code = ErrorCode.HUB_CONFLICT


class ReleaseWithdrawnError(ClientError):
    """The release was withdrawn by its hub after publication; the client will not use it.

    ``detail`` is ``{"release", "reason"}``, the administrator's reason as the hub gives it.
    """

    code = ErrorCode.RELEASE_WITHDRAWN


class GithubSignatureInvalidError(ClientError):
    """A GitHub webhook whose ``X-Hub-Signature-256`` does not verify with its link's secret."""

    code = ErrorCode.GITHUB_SIGNATURE_INVALID


class GithubDeliveryReplayedError(ClientError):
    """A GitHub webhook delivery id the hub has handled before: nothing was done again."""

    code = ErrorCode.GITHUB_DELIVERY_REPLAYED


class GithubTagNotSemverError(BadRequestError):
    """A GitHub release tag that is not a semantic version (``1.2.3`` or ``v1.2.3``)."""

    code = ErrorCode.GITHUB_TAG_NOT_SEMVER


class GithubAssetMissingError(NotFoundError):
    """A GitHub release without the package asset its link names."""

    code = ErrorCode.GITHUB_ASSET_MISSING


class GithubRateLimitedError(ClientError):
    """GitHub refused the hub for its rate limit; the hub retries later by itself."""

    code = ErrorCode.GITHUB_RATE_LIMITED


class GithubFailedError(ClientError):
    """GitHub's API failed otherwise (no such repository or release, an error of GitHub's)."""

    code = ErrorCode.GITHUB_FAILED


class ZenodoUnavailableError(ClientError):
    """The hub could not reach Zenodo, or Zenodo timed out; the hub retries by itself."""

    code = ErrorCode.ZENODO_UNAVAILABLE


class ZenodoFailedError(ClientError):
    """Zenodo refused the hub's request, or answered with something that is not its API."""

    code = ErrorCode.ZENODO_FAILED


class DoiUnresolvableError(BadRequestError):
    """A DOI that names no Zenodo record the hub can read (only ``10.NNNN/zenodo.N`` DOIs are
    resolved; other DOIs are cited in the card, not pinned)."""

    code = ErrorCode.DOI_UNRESOLVABLE


class DoiMintUnavailableError(BadRequestError):
    """``push --mint-doi`` on a hub that deposits nothing on Zenodo (its operator's setting)."""

    code = ErrorCode.DOI_MINT_UNAVAILABLE


class ReleaseLifecycleWarning(UserWarning):
    """A release used although it is deprecated or yanked: the message gives the maintainer's
    reason and the model that replaces it, where one is named."""


_BY_CODE: dict[str, type[ClientError]] = {
    cls.code.value: cls
    for cls in (
        CardInvalidError,
        ArchiveUnsafeError,
        ChecksumMismatchError,
        ArtifactUnreachableError,
        NotFoundError,
        AuthenticationRequiredError,
        PermissionDeniedError,
        TransitionNotAllowedError,
        ReleaseExistsError,
        ValidationFailedError,
        GenerationFailedError,
        BadRequestError,
        ServerError,
        HubUnreachableError,
        OfflineError,
        PayloadTooLargeError,
        HubBusyError,
        SandboxUnavailableError,
        ScopeMissingError,
        TokenExpiredError,
        ThrottledError,
        NamespaceNotFoundError,
        NamespaceTakenError,
        FeedGoneError,
        SignatureInvalidError,
        SignatureMissingError,
        KeyChangedError,
        NamespaceShadowedError,
        MirrorClashError,
        BundleInvalidError,
        UpstreamFailedError,
        HubConflictError,
        ReleaseWithdrawnError,
        GithubSignatureInvalidError,
        GithubDeliveryReplayedError,
        GithubTagNotSemverError,
        GithubAssetMissingError,
        GithubRateLimitedError,
        GithubFailedError,
        ZenodoUnavailableError,
        ZenodoFailedError,
        DoiUnresolvableError,
        DoiMintUnavailableError,
    )
}

_BY_STATUS: dict[int, type[ClientError]] = {
    410: FeedGoneError,
    400: BadRequestError,
    401: AuthenticationRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ReleaseExistsError,
    413: PayloadTooLargeError,
    429: ThrottledError,
    502: HubUnreachableError,
    503: HubUnreachableError,
    504: HubUnreachableError,
}


def error_class_for(code: str) -> type[ClientError] | None:
    """The exception class for an error code value, or None when the code is unknown."""
    return _BY_CODE.get(code)


def error_from_body(
    status: int, body: object, *, retry_after_seconds: float | None = None
) -> ClientError:
    """Map an HTTP error status and its decoded JSON body to the typed client exception.

    A body with a known ``code`` picks the class by code; otherwise the status decides
    (401 authentication, 403 permission, 404 not found, 429 throttled, 5xx server error, else
    bad request). The message is the hub's, or a generic one naming the status when the body has
    none. ``retry_after_seconds`` (the answer's ``Retry-After``) is kept by a
    :class:`ThrottledError`.
    """
    code: str | None = None
    message: str | None = None
    detail: object = None
    if isinstance(body, Mapping):
        raw_code = body.get("code")
        code = raw_code if isinstance(raw_code, str) else None
        raw_message = body.get("message")
        message = raw_message if isinstance(raw_message, str) and raw_message else None
        detail = body.get("detail")
    cls = error_class_for(code) if code else None
    if cls is None:
        cls = _BY_STATUS.get(status, ServerError if status >= 500 else BadRequestError)
    if message is None:
        message = f"the hub answered HTTP {status}" + (f" ({code})" if code else "")
    if issubclass(cls, ThrottledError):
        return cls(message, detail=detail, retry_after_seconds=retry_after_seconds)
    return cls(message, detail=detail)


class OutputExistsError(BadRequestError):
    """``generate`` was pointed at a folder that already holds files, without resume or overwrite.

    Its code is ``bad_request``; ``detail`` is ``{"reason": "output_not_empty", "output_dir",
    "files"}`` with the files in the way (the first few).
    """


# medigan raised KeyError for an unknown model id; scripts written for it say `except KeyError`.
class ModelNotFoundError(NotFoundError, KeyError):
    """No model has this id (code ``not_found``); a ``KeyError`` as in medigan."""

    def __str__(self) -> str:
        return self.message


class AmbiguousModelIdError(BadRequestError, KeyError):
    """A medigan-style id (``00102_...``, ``102``) names models of several namespaces.

    Its code is ``bad_request``; ``detail`` is ``{"model_id": ..., "candidates": [...]}``,
    the ``namespace/name`` ids to choose from.
    """

    def __init__(self, model_id: str, candidates: Sequence[str]):
        listed = ", ".join(candidates)
        super().__init__(
            f"{model_id!r} names {len(candidates)} models: {listed}; write namespace/name",
            detail={"model_id": model_id, "candidates": list(candidates)},
        )
        self.candidates = tuple(candidates)

    def __str__(self) -> str:
        return self.message
