"""What a model's page shows, gathered from the registry and evaluations for one viewer.

The page is the card rendered as text (never as markup: every field goes through the template's
escaping), the release's sample grid, its versions and checks, what changed in its card since the
previous version, the hub's evaluations with their
provenance and the release's place on each leaderboard, its typed generation arguments, snippets
to use it, where its package comes from, and the DOI pinned for it (with a warning when a
re-check found its Zenodo record changed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from hub.access import Viewer
from hub.evaluations import selectors as evaluation_selectors
from hub.pinning import selectors as pinning_selectors
from hub.pinning.selectors import PinSummary
from hub.registry import selectors
from hub.registry.models import GenerativeModel, Release
from hub.web.review_page import DiffLine, card_diff
from medigan_catalog.lifecycle import CATALOGUE_STATES
from medigan_catalog.schema import Card
from medigan_catalog.snapshot import EvaluationSummary, newest, newest_selectable, version_key

_ZENODO_HINTS: Final = ("zenodo.org", "10.5281/zenodo")
_SNIPPET_SAMPLES: Final = 8


@dataclass(frozen=True)
class Placing:
    """A release's place on one leaderboard (one reference set and extractor)."""

    reference: str
    extractor: str
    position: int
    of: int


@dataclass
class ModelPage:
    model: GenerativeModel
    release: Release
    card: Card
    releases: list[Release]
    grid_url: str | None
    checks: list[Any]
    evaluations: list[EvaluationSummary]
    placings: list[Placing]
    package_url: str | None
    package_elsewhere: list[str]
    on_zenodo: bool
    dois: list[str]
    pin: PinSummary | None = None
    previous: Release | None = None
    changes: list[DiffLine] = field(default_factory=list)
    snippets: dict[str, str] = field(default_factory=dict)


def _chosen_release(releases: list[Release], version: str | None) -> Release | None:
    if version is not None:
        return next((release for release in releases if release.version == version), None)
    listed = [
        release for release in releases if release.state in {s.value for s in CATALOGUE_STATES}
    ]
    # The release a bare model id means (published, else deprecated, never yanked); a model
    # whose releases are all yanked, or not yet published, shows its newest.
    return newest_selectable(listed) or newest(listed or releases)


def _placings(
    release: Release, summaries: list[EvaluationSummary], viewer: Viewer
) -> list[Placing]:
    placings = []
    for summary in summaries:
        rows = evaluation_selectors.leaderboard(
            viewer=viewer, reference=summary.reference, extractor=summary.extractor
        )
        ranked = [row for row in rows if row.fid_rs is not None]
        position = next(
            (
                index
                for index, row in enumerate(ranked, start=1)
                if (row.model_id, row.version) == (release.model_id, release.version)
            ),
            None,
        )
        if position is not None:
            placings.append(Placing(summary.reference, summary.extractor, position, len(ranked)))
    return placings


def _snippets(card: Card) -> dict[str, str]:
    model_id = f"{card.model_id}@{card.version}"
    arguments = {
        argument.name: argument.default
        for argument in card.generation_arguments
        if argument.default is not None
    }
    cli_args = "".join(f" --arg {name}={value}" for name, value in arguments.items())
    python_args = f", args={json.dumps(arguments)}" if arguments else ""
    return {
        "cli": (f"medigan-client generate {model_id} -n {_SNIPPET_SAMPLES} -o samples{cli_args}"),
        "python": (
            "from medigan_client import Client\n\n"
            f'Client().generate("{model_id}", {_SNIPPET_SAMPLES}, "samples"{python_args})'
        ),
        "medigan": (
            "from medigan_client import Generators\n\n"
            f'Generators().generate(model_id="{card.model_id}", num_samples={_SNIPPET_SAMPLES}, '
            'output_path="samples")'
        ),
    }


def model_page(
    *, namespace: str, name: str, version: str | None, viewer: Viewer
) -> ModelPage | None:
    """The page of ``namespace/name`` (at ``version``, else its newest catalogue release) as
    ``viewer`` may see it, or None when they may not see it at all."""
    found = selectors.model_get_visible(namespace=namespace, name=name, viewer=viewer)
    if found is None:
        return None
    model, releases = found
    release = _chosen_release(releases, version)
    if release is None:
        return None
    card = selectors.release_card(release)
    summaries = evaluation_selectors.evaluation_summaries_of_releases([release.pk]).get(
        release.pk, []
    )
    package = release.artifacts.filter(role="package").first()
    pin = pinning_selectors.release_pin_summary(release)
    # Held, or fetched on first download: from the upstream of a mirrored release, from the
    # Zenodo record of a pinned one (verified by the sha256 recorded when it was pinned).
    served = package is not None and (
        bool(package.file)
        or bool(release.origin_hub)
        or (pin is not None and pin.pinned and bool(package.sha256))
    )
    package_elsewhere = list(package.external_urls) if package is not None else []
    # The release's own DOI is shown with its pin; the card's are citations.
    dois = [
        doi
        for doi in [*card.provenance.dois, *(card.description.doi or [])]
        if pin is None or doi.lower() != pin.doi.lower()
    ]
    previous = selectors.release_previous_version(release, viewer)
    locations = " ".join([*package_elsewhere, *dois]).lower()
    return ModelPage(
        model=model,
        release=release,
        card=card,
        releases=sorted(releases, key=lambda item: version_key(item.version), reverse=True),
        grid_url=selectors.release_sample_grid_path(release),
        checks=list(release.checks.order_by("id")),
        evaluations=summaries,
        placings=_placings(release, summaries, viewer),
        package_url=(
            selectors.artifact_download_path(release, package.filename)
            if served and package is not None
            else None
        ),
        package_elsewhere=package_elsewhere,
        on_zenodo=any(hint in locations for hint in _ZENODO_HINTS),
        dois=list(dict.fromkeys(dois)),
        pin=pin,
        previous=previous,
        changes=(
            card_diff(
                previous.card,
                release.card,
                before_label=previous.release_id,
                after_label=release.release_id,
            )
            if previous is not None
            else []
        ),
        snippets=_snippets(card),
    )
