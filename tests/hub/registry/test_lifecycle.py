"""Deprecate, yank and withdraw: the services, their API, the admin actions, and what the
catalogue, the feed and downloads then say (docs/lifecycle.md)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client as HttpClient

from hub import snapshot
from hub.access import viewer_for
from hub.accounts.services import user_get_or_create
from hub.registry import services
from hub.registry.models import CatalogChange, Release
from hub.snapshot import catalog_snapshot
from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.lifecycle import ReleaseState
from medigan_catalog.snapshot import artifact_path, lifecycle_path, release_path
from tests import factories

pytestmark = pytest.mark.django_db


def _api(token: str) -> HttpClient:
    return HttpClient(HTTP_AUTHORIZATION=f"Token {token}")


def _post(client: HttpClient, release: Release, action: str, **payload: str) -> Any:
    return client.post(
        lifecycle_path(release.model_id, release.version, action),
        payload,
        content_type="application/json",
    )


def _entry(release: Release) -> Any:
    snapshot.snapshot_cache_clear()
    document = catalog_snapshot(base_url="http://hub.test/")
    return next(
        entry
        for entry in document.releases
        if (entry.model_id, entry.version) == (release.model_id, release.version)
    )


def test_a_maintainer_deprecates_with_a_reason_and_a_replacement_that_the_catalogue_carries() -> (
    None
):
    alice = factories.user("alice")
    old = factories.release_row(submitter=alice, model_id="alice/noise-16")
    factories.release_row(submitter=alice, model_id="alice/noise-32")
    serial_before = CatalogChange.objects.count()

    answer = _post(
        _api(factories.token(alice)),
        old,
        "deprecate",
        reason="mode collapse above 64 samples",
        replacement="alice/noise-32",
    )

    old.refresh_from_db()
    assert answer.status_code == 200, answer.json()
    assert answer.json()["state"] == "deprecated"
    assert answer.json()["notice"]["replacement"] == "alice/noise-32"
    assert old.state == ReleaseState.DEPRECATED
    event = old.events.get(to_state="deprecated")
    assert (event.actor, event.note) == (alice, "mode collapse above 64 samples")
    entry = _entry(old)
    assert entry.state is ReleaseState.DEPRECATED
    assert entry.notice is not None
    assert (entry.notice.reason, entry.notice.replacement) == (
        "mode collapse above 64 samples",
        "alice/noise-32",
    )
    assert entry.warning == (
        "alice/noise-16@1.0.0 is deprecated: mode collapse above 64 samples; "
        "use alice/noise-32 instead"
    )
    change = CatalogChange.objects.order_by("-serial").first()
    assert CatalogChange.objects.count() == serial_before + 1
    assert change is not None and change.kind == "release_deprecated"


def test_someone_who_is_not_a_maintainer_cannot_deprecate_or_yank() -> None:
    alice = factories.user("alice")
    release = factories.release_row(submitter=alice)
    mallory = _api(factories.token(factories.user("mallory")))

    deprecated = _post(mallory, release, "deprecate", reason="mine now")
    yanked = _post(mallory, release, "yank", reason="mine now")

    release.refresh_from_db()
    assert deprecated.status_code == 403
    assert deprecated.json()["code"] == "permission_denied"
    assert yanked.status_code == 403
    assert release.state == ReleaseState.PUBLISHED
    assert not release.events.exists()


def test_a_token_without_the_push_scope_cannot_deprecate() -> None:
    alice = factories.user("alice")
    release = factories.release_row(submitter=alice)

    answer = _post(
        _api(factories.token(alice, scopes=("read",))), release, "deprecate", reason="old"
    )

    assert answer.status_code == 403
    assert answer.json()["code"] == "scope_missing"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"reason": ""}, "bad_request"),
        ({"reason": "   "}, "bad_request"),
        ({"reason": "old", "replacement": "alice/noise-16"}, "bad_request"),
        ({"reason": "old", "replacement": "noise"}, "bad_request"),
        ({"reason": "old", "replacement": "alice/elsewhere@1.0.0"}, "bad_request"),
        ({"reason": "old", "replacement": "nobody/nothing"}, "not_found"),
    ],
)
def test_a_deprecation_needs_a_reason_and_a_replacement_that_exists(
    payload: dict[str, str], code: str
) -> None:
    alice = factories.user("alice")
    release = factories.release_row(submitter=alice)

    answer = _post(_api(factories.token(alice)), release, "deprecate", **payload)

    release.refresh_from_db()
    assert answer.json()["code"] == code
    assert answer.status_code in (400, 404)
    assert release.state == ReleaseState.PUBLISHED


def test_a_yanked_release_stays_downloadable_by_exact_version_and_is_never_the_newest() -> None:
    alice = factories.user("alice")
    factories.release_row(submitter=alice, version="1.0.0")
    newer = factories.release_row(submitter=alice, version="1.1.0", package=b"weights")

    answer = _post(_api(factories.token(alice)), newer, "yank", reason="wrong output range")
    download = HttpClient().get(artifact_path(newer.model_id, "1.1.0", "noise-16-1.1.0.zip"))
    models = HttpClient().get("/api/v1/models").json()

    assert answer.status_code == 200
    assert answer.json()["state"] == "yanked"
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"weights"
    assert _entry(newer).state is ReleaseState.YANKED
    assert [(m["model_id"], m["latest_version"]) for m in models["results"]] == [
        ("alice/noise-16", "1.0.0")
    ]


def test_a_deprecated_release_can_still_be_yanked_but_never_published_again() -> None:
    alice = factories.user("alice")
    release = factories.release_row(submitter=alice)
    viewer_token = _api(factories.token(alice))

    _post(viewer_token, release, "deprecate", reason="superseded")
    yanked = _post(viewer_token, release, "yank", reason="and broken")
    again = _post(viewer_token, release, "deprecate", reason="once more")

    release.refresh_from_db()
    assert yanked.status_code == 200
    assert release.state == ReleaseState.YANKED
    assert release.lifecycle_reason == "and broken"
    assert again.status_code == 409
    assert again.json()["code"] == "transition_not_allowed"


def test_the_contributor_withdraws_before_publication_and_only_an_admin_after_it() -> None:
    alice = factories.user("alice")
    waiting = factories.release_row(submitter=alice, version="2.0.0", state="in_review")
    published = factories.release_row(submitter=alice, version="1.0.0", package=b"weights")
    admin = user_get_or_create(username="root", is_staff=True, is_superuser=True)
    alice_api = _api(factories.token(alice))

    own = _post(alice_api, waiting, "withdraw", reason="pushed by mistake")
    refused = _post(alice_api, published, "withdraw", reason="I changed my mind")
    by_admin = _post(
        _api(factories.token(admin)), published, "withdraw", reason="patient data in the weights"
    )

    assert own.status_code == 200 and own.json()["state"] == "withdrawn"
    assert refused.status_code == 403
    assert "administrators" in refused.json()["message"]
    assert by_admin.status_code == 200 and by_admin.json()["state"] == "withdrawn"
    published.refresh_from_db()
    assert published.artifacts.get().file, "the artifact is kept for audit"


def test_a_withdrawn_release_answers_410_with_the_reason_to_whoever_sees_its_model() -> None:
    alice = factories.user("alice")
    release = factories.release_row(submitter=alice, package=b"weights")
    admin = user_get_or_create(username="root", is_staff=True, is_superuser=True)
    services.release_withdraw_published(
        release_id=release.pk, actor=admin, note="patient data in the weights"
    )

    status = HttpClient().get(release_path(release.model_id, release.version))
    download = HttpClient().get(artifact_path(release.model_id, "1.0.0", "noise-16-1.0.0.zip"))

    assert status.status_code == 410
    assert status.json()["code"] == "release_withdrawn"
    assert status.json()["detail"] == {
        "release": "alice/noise-16@1.0.0",
        "reason": "patient data in the weights",
    }
    assert download.status_code == 410
    snapshot.snapshot_cache_clear()
    listed = catalog_snapshot(base_url="http://hub.test/").releases
    assert all(entry.model_id != "alice/noise-16" for entry in listed)


def test_a_withdrawal_before_publication_is_not_announced_as_gone() -> None:
    alice = factories.user("alice")
    release = factories.release_row(submitter=alice, state="in_review")
    services.release_withdraw_submission(release_id=release.pk, actor=alice)

    status = HttpClient().get(release_path(release.model_id, release.version))

    assert status.status_code == 404


def test_a_lifecycle_service_refuses_a_mirrored_model() -> None:
    alice = factories.user("alice")
    release = factories.release_row(submitter=alice)
    release.generative_model.mirrored_from = "public"
    release.generative_model.save(update_fields=["mirrored_from"])

    with pytest.raises(CatalogError) as refused:
        services.release_deprecate(
            release_id=release.pk,
            viewer=viewer_for(alice),
            actor=alice,
            reason="not mine to say",
        )

    assert refused.value.code is ErrorCode.PERMISSION_DENIED
    assert "upstream" in refused.value.message


def test_the_admin_deprecates_yanks_and_withdraws_through_the_services() -> None:
    admin = user_get_or_create(
        username="root", password="pw-for-tests", is_staff=True, is_superuser=True
    )
    alice = factories.user("alice")
    first = factories.release_row(submitter=alice, version="1.0.0")
    second = factories.release_row(submitter=alice, version="1.1.0")
    third = factories.release_row(submitter=alice, version="1.2.0")
    browser = HttpClient()
    browser.force_login(admin)

    def act(release: Release, action: str, **fields: str) -> Any:
        return browser.post(
            "/admin/registry/release/",
            {"action": action, "_selected_action": [release.pk], "apply": "1", **fields},
            follow=True,
        )

    asked = browser.post(
        "/admin/registry/release/", {"action": "deprecate", "_selected_action": [first.pk]}
    )
    act(first, "deprecate", reason="superseded", replacement="")
    act(second, "yank", reason="wrong range")
    act(third, "withdraw", reason="licence problem")
    missing_reason = act(first, "yank", reason="")

    states = dict(Release.objects.values_list("version", "state"))
    assert asked.status_code == 200
    assert b"Deprecate these releases?" in asked.content
    assert states == {"1.0.0": "deprecated", "1.1.0": "yanked", "1.2.0": "withdrawn"}
    assert b"This field is required" in missing_reason.content
    assert first.events.get(to_state="deprecated").actor == admin
