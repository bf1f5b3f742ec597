"""Reads on the registry and the rules of who sees what.

Published and deprecated releases are public. A release on its way (submitted to in review) or
turned down is seen by its submitter, the model's owner and reviewers only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from hub.accounts.selectors import user_is_reviewer
from hub.registry.models import Artifact, CatalogSerial, GenerativeModel, Release
from medigan_catalog.lifecycle import ReleaseState
from medigan_catalog.schema import Card, card_from_json
from medigan_catalog.search import medigan_find_matching, search

PUBLIC_STATES = (ReleaseState.PUBLISHED.value, ReleaseState.DEPRECATED.value)


def catalog_serial_get() -> int:
    """The current catalogue serial (0 before anything was published)."""
    row = CatalogSerial.objects.filter(pk=1).first()
    return row.serial if row is not None else 0


def release_list_published() -> QuerySet[Release]:
    """Every published release, in catalogue order (by model id, then publication)."""
    return (
        Release.objects.filter(state=ReleaseState.PUBLISHED.value)
        .select_related("generative_model")
        .prefetch_related("artifacts")
        .order_by("generative_model__namespace", "generative_model__name", "published_at")
    )


def release_visible_q(user: AbstractBaseUser | AnonymousUser) -> Q:
    """The filter that limits releases to what ``user`` may see."""
    if user_is_reviewer(user) or getattr(user, "is_staff", False):
        return Q()
    visible = Q(state__in=PUBLIC_STATES)
    if user.is_authenticated:
        visible |= Q(submitted_by=user) | Q(generative_model__owner=user)
    return visible


def release_get_visible(
    *, namespace: str, name: str, version: str, user: AbstractBaseUser | AnonymousUser
) -> Release | None:
    """The release ``namespace/name@version`` if ``user`` may see it."""
    return (
        Release.objects.filter(release_visible_q(user))
        .select_related("generative_model")
        .filter(generative_model__namespace=namespace, generative_model__name=name, version=version)
        .first()
    )


def model_get_visible(
    *, namespace: str, name: str, user: AbstractBaseUser | AnonymousUser
) -> tuple[GenerativeModel, list[Release]] | None:
    """A generative model with the releases ``user`` may see, or None if none is visible."""
    generative_model = GenerativeModel.objects.filter(namespace=namespace, name=name).first()
    if generative_model is None:
        return None
    releases = list(
        generative_model.releases.filter(release_visible_q(user)).order_by("created_at")
    )
    if not releases:
        return None
    return generative_model, releases


def artifact_get_downloadable(
    *,
    namespace: str,
    name: str,
    version: str,
    filename: str,
    user: AbstractBaseUser | AnonymousUser,
) -> Artifact | None:
    """The artifact of a visible release, or None."""
    release = release_get_visible(namespace=namespace, name=name, version=version, user=user)
    if release is None:
        return None
    return release.artifacts.filter(filename=filename).first()


def artifact_download_path(release: Release, artifact_filename: str) -> str:
    """The hub-relative path at which an artifact is served."""
    model = release.generative_model
    return (
        f"/api/v1/models/{model.namespace}/{model.name}/releases/{release.version}"
        f"/artifacts/{artifact_filename}"
    )


def release_sample_grid_get(
    *, namespace: str, name: str, version: str, user: AbstractBaseUser | AnonymousUser
) -> Release | None:
    """The release ``namespace/name@version`` if ``user`` may see its sample grid and it has one.

    The grid shows what the package generates, so it is exactly as visible as the release: anyone
    for a published one; for one in review or rejected, its submitter, the model's owner,
    reviewers and staff.
    """
    release = release_get_visible(namespace=namespace, name=name, version=version, user=user)
    if release is None or not release.sample_grid:
        return None
    return release


def release_is_public(release: Release) -> bool:
    """Whether anyone, signed in or not, may see ``release``."""
    return release.state in PUBLIC_STATES


def release_sample_grid_path(release: Release) -> str | None:
    """The hub-relative path of the access-checked view of the release's grid, or None."""
    if not release.sample_grid:
        return None
    model = release.generative_model
    return f"/api/v1/models/{model.namespace}/{model.name}/releases/{release.version}/sample-grid"


def release_card_for_clients(release: Release, *, base_url: str) -> dict[str, Any]:
    """The release's card with every hub-stored artifact's absolute download URL put first."""
    card = dict(release.card)
    stored = {artifact.filename for artifact in release.artifacts.all() if artifact.file}
    artifacts = []
    for entry in card.get("artifacts", []):
        urls = list(entry.get("urls") or [])
        if entry.get("filename") in stored:
            url = base_url.rstrip("/") + artifact_download_path(release, entry["filename"])
            urls = [url, *[u for u in urls if u != url]]
        artifacts.append({**entry, "urls": urls})
    card["artifacts"] = artifacts
    return card


def catalog_snapshot(*, base_url: str) -> dict[str, Any]:
    """The catalogue snapshot: every published release with its card and hub-computed metrics.

    Metrics come from the evaluations app; a finished evaluation bumps the serial, so clients
    revalidating with ``If-None-Match`` see new numbers.
    """
    from django.utils import timezone

    from hub.evaluations.selectors import evaluation_summaries_by_release

    serial = catalog_serial_get()
    published = list(release_list_published())
    evaluations = evaluation_summaries_by_release(release.pk for release in published)
    releases = [
        {
            "model_id": release.model_id,
            "version": release.version,
            "published_at": release.published_at.isoformat() if release.published_at else None,
            "card": release_card_for_clients(release, base_url=base_url),
            "evaluations": evaluations.get(release.pk, []),
        }
        for release in published
    ]
    return {
        "serial": serial,
        "generated_at": timezone.now().isoformat(),
        "hub": {"url": base_url.rstrip("/")},
        "releases": releases,
    }


def _latest_published_cards() -> list[tuple[Release, Card]]:
    latest: dict[int, Release] = {}
    for release in release_list_published():
        latest[release.generative_model_id] = release
    return [(release, card_from_json(release.card)) for release in latest.values()]


def model_search(*, query: str, operator: str, medigan_semantics: bool) -> list[Release]:
    """Latest published release of each model that matches ``query``.

    ``medigan_semantics`` reproduces medigan's value matching (whole values, catalogue order);
    otherwise the hub's token and prefix search ranks the results.
    """
    entries = _latest_published_cards()
    if not query.strip():
        return [release for release, _ in entries]
    by_card = {id(card): release for release, card in entries}
    cards: Sequence[Card] = [card for _, card in entries]
    terms = query.split()
    if medigan_semantics:
        return [by_card[id(card)] for card in medigan_find_matching(cards, terms, operator)]
    return [by_card[id(hit.card)] for hit in search(cards, query, operator=operator)]
