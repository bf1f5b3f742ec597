"""The change feed: a snapshot and the feed applied to it describe the same catalogue.

Random interleavings of what changes a catalogue (publishing, deprecating, yanking, visibility
changes both ways, finished evaluations), in models of an organisation; after each step, for an
anonymous viewer, a signed-in outsider and a member, the feed applied from serial 0 in small
pages equals the snapshot they are answered, release for release.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import Client as HttpClient

from hub import snapshot
from hub.access import viewer_for
from hub.accounts import services as accounts
from hub.registry import services
from hub.registry.models import CatalogChange, GenerativeModel, Release
from medigan_catalog.access import OrgRole, Visibility
from medigan_catalog.lifecycle import ReleaseState
from medigan_catalog.snapshot import (
    CATALOG_PATH,
    CatalogSnapshot,
    ChangePage,
    HubInfo,
    apply_change_page,
    changes_path,
)
from tests import factories

pytestmark = pytest.mark.django_db

MODELS = ("alpha", "beta", "gamma")


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    snapshot.snapshot_cache_clear()
    yield
    snapshot.snapshot_cache_clear()


def _headers(key: str | None) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {key}"} if key else {}


def _entries(document: CatalogSnapshot) -> dict[str, Any]:
    return {
        f"{entry.model_id}@{entry.version}": entry.model_dump(mode="json")
        for entry in document.releases
    }


def _replayed(key: str | None, *, page_size: int) -> tuple[CatalogSnapshot, int]:
    """The catalogue rebuilt from nothing by reading the feed page by page; and the requests."""
    document = CatalogSnapshot(serial=0, hub=HubInfo(url="http://testserver"))
    requests = 0
    while True:
        answer = HttpClient().get(changes_path(document.serial, page_size), **_headers(key))
        requests += 1
        assert answer.status_code == 200, answer.content
        page = ChangePage.model_validate_json(answer.content)
        document = apply_change_page(document, page)
        if not page.more:
            assert page.serial == page.latest == int(answer["X-Hub-Serial"])
            return document, requests


def _snapshot(key: str | None) -> CatalogSnapshot:
    answer = HttpClient().get(CATALOG_PATH, **_headers(key))
    return CatalogSnapshot.model_validate_json(answer.content)


def _publish(release: Release) -> None:
    for target in (ReleaseState.APPROVED, ReleaseState.PUBLISHED):
        services.release_transition(release_id=release.pk, target=target)


def _set_visibility(model: GenerativeModel, target: Visibility, owner: Any) -> None:
    changed = services.model_visibility_request(
        model_id=model.pk, viewer=viewer_for(owner), actor=owner, target=target, note="feed"
    )
    if changed.requested_visibility:
        reviewer = factories.user("rita", reviewer=True)
        services.model_visibility_review(
            model_id=model.pk, viewer=viewer_for(reviewer), reviewer=reviewer, decision="approve"
        )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_feed_from_zero_rebuilds_every_viewers_snapshot_at_every_step(seed: int) -> None:
    owner = factories.user("olivia")
    organisation = accounts.organisation_create(user=owner, name="acme")
    member = factories.user("mia")
    accounts.organisation_member_set(organisation=organisation, user=member, role=OrgRole.READER)
    viewers = {
        "anonymous": None,
        "outsider": factories.token(factories.user("olga")),
        "member": factories.token(member),
    }
    rng = random.Random(seed)  # noqa: S311 - a reproducible test sequence, not a secret
    versions = {name: 0 for name in MODELS}
    for name in MODELS:
        factories.release_row(
            submitter=owner, model_id=f"acme/{name}", version="0.1.0", state="in_review"
        )
    GenerativeModel.objects.filter(name="gamma").update(visibility=Visibility.PRIVATE)

    for _ in range(14):
        name = rng.choice(MODELS)
        model = GenerativeModel.objects.get(name=name)
        step = rng.choice(["publish", "new", "deprecate", "yank", "visibility", "evaluation"])
        with transaction.atomic():
            waiting = model.releases.filter(state="in_review").first()
            published = model.releases.filter(state="published").first()
            if step == "publish" and waiting is not None:
                _publish(waiting)
            elif step == "new":
                versions[name] += 1
                factories.release_row(
                    submitter=owner,
                    model_id=f"acme/{name}",
                    version=f"1.{versions[name]}.0",
                    state="in_review",
                )
            elif step == "deprecate" and published is not None:
                services.release_transition(
                    release_id=published.pk, target=ReleaseState.DEPRECATED, note="superseded"
                )
            elif step == "yank" and published is not None:
                services.release_transition(
                    release_id=published.pk, target=ReleaseState.YANKED, note="broken weights"
                )
            elif step == "visibility":
                target = rng.choice(list(Visibility))
                _set_visibility(model, target, owner)
            elif step == "evaluation" and published is not None:
                services.catalog_serial_bump(
                    kind="evaluation_finished", generative_model=model, release=published
                )
        for viewer, key in viewers.items():
            rebuilt, _ = _replayed(key, page_size=rng.choice([1, 2, 50]))
            current = _snapshot(key)
            assert _entries(rebuilt) == _entries(current), (viewer, step, name)
            assert rebuilt.serial == current.serial, (viewer, step, name)


def test_an_unchanged_catalogue_is_one_small_request_and_a_migrated_history_is_gone() -> None:
    owner = factories.user("olivia")
    release = factories.release_row(submitter=owner, model_id="olivia/alpha", state="in_review")
    _publish(release)
    serial = _snapshot(None).serial

    unchanged = HttpClient().get(changes_path(serial))
    CatalogChange.objects.create(
        serial=serial + 1, kind="baseline", visibility_before="public", visibility_after="public"
    )
    gone = HttpClient().get(changes_path(0))
    malformed = HttpClient().get("/api/v1/changes?since=-1")

    assert unchanged.status_code == 200
    assert len(unchanged.content) < 1024
    assert json.loads(unchanged.content)["changes"] == []
    assert (gone.status_code, gone.json()["code"]) == (410, "feed_gone")
    assert gone.json()["detail"] == {"oldest_serial": serial + 1}
    assert malformed.status_code == 400
