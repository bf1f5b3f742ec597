"""Namespaces decide who pushes; visibility decides who sees; changes are audited and reviewed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client as HttpClient

from hub.accounts import services as accounts
from hub.registry.models import CatalogChange, GenerativeModel, ModelEvent, Release
from medigan_catalog.access import OrgRole, VisibilityState
from medigan_catalog.snapshot import (
    CATALOG_PATH,
    RELEASES_PATH,
    visibility_path,
    visibility_review_path,
)
from tests import factories

pytestmark = pytest.mark.django_db


def _push(
    tmp_path: Path, key: str, capture: Any, visibility: str | None = None, **card: Any
) -> Any:
    archive, sha256, data = factories.package_zip(tmp_path, **card)
    form = {"card": json.dumps(data), "package": archive.open("rb"), "sha256": sha256}
    if visibility is not None:
        form["visibility"] = visibility
    # Validation is not what these tests are about: it is left queued.
    with capture(execute=False), form["package"]:
        return HttpClient().post(RELEASES_PATH, form, HTTP_AUTHORIZATION=f"Token {key}")


def _acme() -> dict[str, Any]:
    owner = factories.user("olivia")
    organisation = accounts.organisation_create(user=owner, name="acme")
    people = {"owner": owner}
    for username, role in (("mia", OrgRole.MAINTAINER), ("rory", OrgRole.READER)):
        people[username] = factories.user(username)
        accounts.organisation_member_set(
            organisation=organisation, user=people[username], role=role
        )
    return people


def _post(path: str, key: str, body: dict[str, Any]) -> Any:
    return HttpClient().post(
        path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
    )


def test_a_push_needs_an_existing_namespace_of_ones_own(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    _acme()
    outsider = factories.token(factories.user("olga"))
    capture = django_capture_on_commit_callbacks

    missing = _push(tmp_path, outsider, capture, model_id="nowhere/noise-16")
    not_theirs = _push(tmp_path, outsider, capture, model_id="acme/noise-16")
    private_personal = _push(tmp_path, outsider, capture, "private", model_id="olga/noise-16")

    assert (missing.status_code, missing.json()["code"]) == (404, "namespace_not_found")
    assert "namespace create nowhere" in missing.json()["message"]
    assert (not_theirs.status_code, not_theirs.json()["code"]) == (403, "permission_denied")
    assert "owner or maintainer" in not_theirs.json()["message"]
    assert private_personal.status_code == 400
    assert "organisations" in private_personal.json()["message"]
    assert Release.objects.count() == 0


def test_a_maintainer_pushes_a_private_model_that_only_members_see(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    people = _acme()
    maintainer = factories.token(people["mia"])
    reader = factories.token(people["rory"])
    outsider = factories.token(factories.user("olga"))

    pushed = _push(
        tmp_path, maintainer, django_capture_on_commit_callbacks, "private", model_id="acme/secret"
    )
    Release.objects.update(state="published")

    assert pushed.status_code == 202
    assert GenerativeModel.objects.get().visibility == "private"
    for key, sees in ((reader, True), (outsider, False), (None, False)):
        headers = {"HTTP_AUTHORIZATION": f"Token {key}"} if key else {}
        model = HttpClient().get("/api/v1/models/acme/secret", **headers)
        catalogue = HttpClient().get(CATALOG_PATH, **headers)
        assert model.status_code == (200 if sees else 404)
        assert ("acme/secret" in catalogue.content.decode()) is sees


def test_a_private_change_moves_only_the_members_serial(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    people = _acme()
    owner = factories.token(people["owner"])
    reader = factories.token(people["rory"])
    public = factories.release_row(submitter=people["mia"], model_id="acme/open")
    secret = factories.release_row(submitter=people["mia"], model_id="acme/secret")
    GenerativeModel.objects.filter(name="secret").update(visibility="private")
    from django.db import transaction

    from hub.registry import services

    with transaction.atomic():
        services.catalog_serial_bump(
            kind="release_published", generative_model=public.generative_model
        )
    anonymous_before = HttpClient().get(CATALOG_PATH)
    reader_before = HttpClient().get(CATALOG_PATH, HTTP_AUTHORIZATION=f"Token {reader}")

    with transaction.atomic():
        services.catalog_serial_bump(
            kind="release_published",
            generative_model=GenerativeModel.objects.get(name="secret"),
            release=secret,
        )
    anonymous_after = HttpClient().get(CATALOG_PATH)
    reader_after = HttpClient().get(
        CATALOG_PATH,
        HTTP_AUTHORIZATION=f"Token {reader}",
        HTTP_IF_NONE_MATCH=reader_before["ETag"],
    )

    assert anonymous_after["X-Hub-Serial"] == anonymous_before["X-Hub-Serial"]
    assert anonymous_after["ETag"] == anonymous_before["ETag"]
    assert int(reader_after["X-Hub-Serial"]) == int(reader_before["X-Hub-Serial"]) + 1
    assert reader_after.status_code == 200
    assert "acme/secret" in reader_after.content.decode()
    assert "acme/secret" not in anonymous_after.content.decode()
    assert owner  # the owner's token exists for symmetry with the other tests


def test_making_a_model_public_waits_for_a_hub_reviewer_and_every_step_is_audited() -> None:
    people = _acme()
    owner = factories.token(people["owner"])
    maintainer = factories.token(people["mia"])
    reviewer_user = factories.user("rita", reviewer=True)
    reviewer = factories.token(reviewer_user)
    factories.release_row(submitter=people["mia"], model_id="acme/secret")
    GenerativeModel.objects.update(visibility="private")
    path = visibility_path("acme/secret")

    by_maintainer = _post(path, maintainer, {"visibility": "internal"})
    to_internal = _post(path, owner, {"visibility": "internal", "note": "for the whole hub"})
    requested = _post(path, owner, {"visibility": "public", "note": "paper accepted"})
    still_internal = GenerativeModel.objects.get().visibility
    approved = _post(visibility_review_path("acme/secret"), reviewer, {"decision": "approve"})

    assert by_maintainer.status_code == 403
    assert to_internal.status_code == 200
    assert requested.status_code == 202
    state = VisibilityState.model_validate(requested.json())
    assert (state.visibility, state.requested, state.requested_by) == (
        "internal",
        "public",
        "olivia",
    )
    assert still_internal == "internal"
    assert approved.status_code == 200
    assert GenerativeModel.objects.get().visibility == "public"
    events = list(
        ModelEvent.objects.values_list("kind", "from_value", "to_value", "actor__username")
    )
    assert events == [
        ("visibility_changed", "private", "internal", "olivia"),
        ("visibility_requested", "internal", "public", "olivia"),
        ("visibility_changed", "internal", "public", "rita"),
    ]
    changes = list(CatalogChange.objects.values_list("visibility_before", "visibility_after"))
    assert changes == [("private", "internal"), ("internal", "public")]


def test_nobody_approves_their_own_request_and_an_org_reviewer_is_no_hub_reviewer() -> None:
    people = _acme()
    rita = factories.user("rita", reviewer=True)
    accounts.organisation_member_set(
        organisation=accounts.Organisation.objects.get(name="acme"), user=rita, role=OrgRole.OWNER
    )
    org_reviewer = factories.user("rex")
    accounts.organisation_member_set(
        organisation=accounts.Organisation.objects.get(name="acme"),
        user=org_reviewer,
        role=OrgRole.REVIEWER,
    )
    factories.release_row(submitter=people["mia"], model_id="acme/secret")
    GenerativeModel.objects.update(visibility="private")
    _post(visibility_path("acme/secret"), factories.token(rita), {"visibility": "public"})

    own = _post(
        visibility_review_path("acme/secret"), factories.token(rita), {"decision": "approve"}
    )
    by_org_reviewer = _post(
        visibility_review_path("acme/secret"),
        factories.token(org_reviewer),
        {"decision": "approve"},
    )

    assert (own.status_code, own.json()["code"]) == (403, "permission_denied")
    assert "own request" in own.json()["message"]
    assert by_org_reviewer.status_code == 403
    assert GenerativeModel.objects.get().visibility == "private"
