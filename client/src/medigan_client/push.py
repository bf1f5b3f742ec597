"""Share a model package with a hub: check it locally like the hub will, zip it, upload it.

:func:`push` is a dry run of the hub's first validation checks followed by the upload: the card
must validate, a smoke generation of two samples must succeed in the sandboxed child process and
match the card's ``output``; then the directory is zipped deterministically (same files, same
bytes, same sha256) and sent as ``POST /api/v1/releases`` (multipart ``card``, ``package``,
``sha256``, ``visibility`` when the pusher chose who may see a new model, ``mint_doi`` or
``doi`` when the hub is to pin a Zenodo DOI on approval). The hub answers 202 with the release
status.

A failed dry run raises :class:`~medigan_client.errors.GenerationFailedError` whose ``message``
is the failure's short form, as the hub's ``smoke_generation`` check would word it (the
exception, the package's own frames, paths relative to the package), and whose ``traceback`` is
the full traceback (``medigan-client push --verbose`` prints it).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from medigan_catalog.access import Visibility
from medigan_catalog.errors import CardInvalidError as CatalogCardInvalidError
from medigan_catalog.errors import CatalogError
from medigan_catalog.packaging import build_deterministic_zip
from medigan_catalog.schema import Card
from medigan_catalog.snapshot import RELEASES_PATH
from medigan_catalog.validation import validate_card
from medigan_client.batching import check_samples
from medigan_client.errors import (
    ArchiveUnsafeError,
    AuthenticationRequiredError,
    BadRequestError,
    CardInvalidError,
    GenerationFailedError,
    OfflineError,
    ServerError,
)
from medigan_client.generate import resolve_arguments
from medigan_client.http import HubSession
from medigan_client.runtime.environments import dry_run_environment
from medigan_client.runtime.sandbox import generate_in_subprocess
from medigan_client.settings import ClientSettings

SMOKE_SAMPLES = 2
# The values of the push's ``visibility`` field (medigan_catalog.access.Visibility).
VISIBILITIES = tuple(visibility.value for visibility in Visibility)


@dataclass(frozen=True)
class PushResult:
    """The hub's answer to a push: where the release lives, its state, the whole status."""

    release_url: str | None
    state: str | None
    sha256: str
    status: Mapping[str, object] = field(default_factory=dict)
    release_id: str = ""
    """``namespace/name@version`` of the pushed release."""


def read_package_card(package_dir: Path) -> tuple[Card, str]:
    """Validate ``package_dir/card.json``; return the card and the file's text as written."""
    card_path = Path(package_dir) / "card.json"
    try:
        text = card_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CardInvalidError(f"{package_dir} has no card.json") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CardInvalidError(f"cannot read {card_path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CardInvalidError(f"{card_path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CardInvalidError(f"{card_path} must hold a JSON object")
    try:
        return validate_card(data), text
    except CatalogCardInvalidError as exc:
        raise CardInvalidError(f"{card_path}: {exc.message}", detail=exc.detail) from exc


def push(
    settings: ClientSettings,
    package_dir: Path,
    *,
    session: HubSession | None = None,
    smoke_timeout_seconds: float = 300.0,
    smoke_memory_limit_bytes: int | None = 4 << 30,
    visibility: str | None = None,
    mint_doi: bool = False,
    doi: str | None = None,
) -> PushResult:
    """Check, zip and upload the package in ``package_dir``; return the hub's answer.

    ``visibility`` (``public``, ``internal``, ``private``) is sent as the form field of that
    name: who may see the model when this push creates it. ``mint_doi`` (form field
    ``mint_doi``) asks the hub to deposit the package on Zenodo on approval and pin the DOI it
    gets; ``doi`` (form field ``doi``) names a Zenodo record that already holds the package. Fails
    before any upload when the client is offline, has no token, the visibility is unknown, both
    DOI options are given, the card is invalid, or the smoke generation fails or breaks the
    card's output promise.
    """
    package_dir = Path(package_dir).resolve()
    if settings.offline:
        raise OfflineError("offline mode: pushing needs the hub")
    if not settings.token:
        raise AuthenticationRequiredError(
            f"pushing to {settings.hub_url} needs a token: run `medigan-client login`, "
            "pass --token or set MEDIGAN_TOKEN"
        )
    if visibility is not None and visibility not in VISIBILITIES:
        raise BadRequestError(
            f"visibility must be one of {', '.join(VISIBILITIES)}, not {visibility!r}"
        )
    if mint_doi and doi:
        raise BadRequestError(
            "either name the DOI that holds the package or ask the hub to mint one, not both"
        )
    card, card_text = read_package_card(package_dir)
    arguments = resolve_arguments(card, {})
    try:
        samples = generate_in_subprocess(
            package_dir,
            card,
            SMOKE_SAMPLES,
            seed=0,
            device="cpu",
            args=arguments,
            timeout_seconds=smoke_timeout_seconds,
            memory_limit_bytes=smoke_memory_limit_bytes,
            # As on the hub: only what the card declares (MEDIGAN_PUSH_USE_CURRENT_ENV=1 opts out).
            environment=dry_run_environment(card, settings),
        )
        check_samples(card, samples, SMOKE_SAMPLES)
    except GenerationFailedError as exc:
        raise GenerationFailedError(
            f"the dry run failed, so nothing was uploaded: {exc.message}",
            detail=exc.detail,
            traceback=exc.traceback,
        ) from exc

    with tempfile.TemporaryDirectory(prefix="medigan-push-") as scratch:
        archive = Path(scratch) / f"{card.name}-{card.version}.zip"
        try:
            info = build_deterministic_zip(package_dir, archive)
        except CatalogError as exc:
            raise ArchiveUnsafeError(
                f"cannot package {package_dir}: {exc.message}", detail=exc.detail
            ) from exc
        fields = {"card": card_text, "sha256": info.sha256}
        if visibility is not None:
            fields["visibility"] = visibility
        if mint_doi:
            fields["mint_doi"] = "true"
        if doi:
            fields["doi"] = doi
        own_session = session is None
        hub = session or HubSession(settings)
        try:
            with archive.open("rb") as handle:
                response = hub.send(
                    "POST",
                    RELEASES_PATH,
                    data=fields,
                    files={"package": (archive.name, handle, "application/zip")},
                    headers={"Accept": "application/json"},
                )
        finally:
            if own_session:
                hub.close()
    try:
        status = response.json()
    except ValueError as exc:
        raise ServerError(f"the hub answered the push with a body that is not JSON: {exc}") from exc
    if not isinstance(status, dict):
        raise ServerError("the hub answered the push with something that is not a release status")
    url = status.get("url")
    state = status.get("state")
    return PushResult(
        release_url=str(url) if url else None,
        state=str(state) if state else None,
        sha256=info.sha256,
        status=status,
        release_id=card.release_id,
    )
