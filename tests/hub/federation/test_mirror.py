"""The mirror: this test's hub syncs a live upstream hub (its own gunicorn, worker and database).

The upstream is a demo hub seeded with medigan's catalogue and one zoo model with a stored
package; the mirror is the hub of the test process, calling the sync service directly. A relay
between them (``tests.relay``) alters bodies or plays a hub that is down.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.test import Client as HttpClient

from hub.accounts.models import Namespace
from hub.federation import services
from hub.federation.models import MirroredRelease, Upstream, UpstreamEvent
from hub.registry import services as registry_services
from hub.registry.models import Artifact, CatalogChange, Release
from medigan_catalog.lifecycle import ReleaseState
from medigan_catalog.signing import KEYS_PATH, KeySet, SigningKey
from medigan_catalog.snapshot import CATALOG_PATH, CatalogSnapshot, artifact_path
from tests import factories
from tests.live_hub import LiveHub
from tests.relay import relay

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

ZOO_MODEL = "zoo/chestxray-pca-64"


def _upstream_snapshot(hub: LiveHub) -> CatalogSnapshot:
    return CatalogSnapshot.model_validate_json(httpx.get(hub.url + CATALOG_PATH).content)


def _upstream_key_set(hub: LiveHub) -> KeySet:
    return KeySet.model_validate_json(httpx.get(hub.url + KEYS_PATH).content)


def _zoo_release(model_id: str = ZOO_MODEL) -> Release:
    return Release.objects.select_related("generative_model").get(
        generative_model__namespace=model_id.split("/")[0],
        generative_model__name=model_id.split("/")[1],
    )


def _add(hub_url: str, **options: Any) -> Upstream:
    return services.upstream_add(name="public", url=hub_url, **options)


def test_a_first_sync_pins_the_key_and_mirrors_what_the_filter_takes_with_its_origin(
    upstream_hub: LiveHub,
) -> None:
    upstream = _add(upstream_hub.url, namespaces=["zoo"])

    report = services.upstream_sync(upstream_id=upstream.pk)

    assert report.ok, report.error
    upstream.refresh_from_db()
    key_set = _upstream_key_set(upstream_hub)
    assert set(upstream.public_keys) == {key.key_id for key in key_set.keys}
    assert upstream.hub_name == "public"
    assert upstream.lag == 0 and upstream.last_success_at is not None
    there = _upstream_snapshot(upstream_hub)
    assert upstream.serial == there.serial
    zoo_there = [entry for entry in there.releases if entry.model_id.startswith("zoo/")]
    assert report.mirrored == [f"{entry.model_id}@{entry.version}" for entry in zoo_there]
    # Only the filtered namespace came; medigan's models stayed upstream.
    assert not Release.objects.filter(generative_model__namespace="medigan").exists()

    release = _zoo_release()
    entry_there = zoo_there[0]
    assert release.state == ReleaseState.PUBLISHED
    assert (release.origin_hub, release.origin_url) == ("public", upstream_hub.url)
    assert release.origin_release_id == f"{ZOO_MODEL}@{entry_there.version}"
    assert entry_there.attestation is not None
    assert release.attestation == entry_there.attestation.model_dump(mode="json")
    assert entry_there.attestation.verify(key_set.trusted())
    assert Namespace.objects.get(name="zoo").mirrored_from == "public"
    assert MirroredRelease.objects.get(release=release).upstream == upstream

    # The mirror's own catalogue carries the entry with its origin and the origin's attestation,
    # and serves the artifact itself.
    mine = CatalogSnapshot.model_validate_json(HttpClient().get(CATALOG_PATH).content)
    (entry,) = mine.releases
    assert entry.origin is not None and entry.origin.hub == "public"
    assert entry.attestation == entry_there.attestation
    assert entry.card.artifacts[0].urls[0].startswith("http://testserver/")


def test_a_second_sync_changes_nothing(upstream_hub: LiveHub) -> None:
    upstream = _add(upstream_hub.url, namespaces=["zoo"])
    services.upstream_sync(upstream_id=upstream.pk)
    changes = CatalogChange.objects.count()

    report = services.upstream_sync(upstream_id=upstream.pk)

    assert report.ok and report.mirrored == [] and report.refused == []
    assert CatalogChange.objects.count() == changes


def test_an_artifact_is_fetched_on_first_download_verified_and_kept(
    upstream_hub: LiveHub,
) -> None:
    upstream = _add(upstream_hub.url, namespaces=["zoo"])
    services.upstream_sync(upstream_id=upstream.pk)
    release = _zoo_release()
    artifact = release.artifacts.get(role="package")
    assert not artifact.file

    response = HttpClient().get(artifact_path(ZOO_MODEL, release.version, artifact.filename))

    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert response.status_code == 200
    assert hashlib.sha256(body).hexdigest() == artifact.sha256 == release.origin_sha256
    artifact.refresh_from_db()
    assert artifact.file and artifact.size == len(body)


def test_bytes_that_do_not_match_the_recorded_sha256_are_refused_and_not_stored(
    upstream_hub: LiveHub,
) -> None:
    upstream = _add(upstream_hub.url, namespaces=["zoo"])
    services.upstream_sync(upstream_id=upstream.pk)
    release = _zoo_release()
    artifact = release.artifacts.get(role="package")
    Artifact.objects.filter(pk=artifact.pk).update(sha256="0" * 64)

    response = HttpClient().get(artifact_path(ZOO_MODEL, release.version, artifact.filename))

    assert response.status_code == 422 or response.status_code >= 400
    assert json.loads(response.content)["code"] == "checksum_mismatch"
    artifact.refresh_from_db()
    assert not artifact.file


def test_full_mode_copies_artifacts_during_the_sync(upstream_hub: LiveHub) -> None:
    upstream = _add(upstream_hub.url, namespaces=["zoo"], mode="full")

    report = services.upstream_sync(upstream_id=upstream.pk)

    assert report.ok, report.error
    artifact = _zoo_release().artifacts.get(role="package")
    assert artifact.file
    assert report.fetched == [f"{_zoo_release().release_id}/{artifact.filename}"]


def test_review_policy_lands_mirrored_releases_in_review(upstream_hub: LiveHub) -> None:
    upstream = _add(upstream_hub.url, namespaces=["zoo"], policy="review")

    services.upstream_sync(upstream_id=upstream.pk)

    assert _zoo_release().state == ReleaseState.IN_REVIEW
    assert (
        CatalogSnapshot.model_validate_json(HttpClient().get(CATALOG_PATH).content).releases == ()
    )


@pytest.mark.parametrize(
    ("policy", "ends_in"), [("publish", ReleaseState.PUBLISHED), ("review", ReleaseState.IN_REVIEW)]
)
def test_revalidation_runs_this_hubs_checks_on_the_fetched_package_before_the_policy_applies(
    upstream_hub: LiveHub,
    django_capture_on_commit_callbacks: Any,
    policy: str,
    ends_in: ReleaseState,
) -> None:
    upstream = _add(upstream_hub.url, namespaces=["zoo"], policy=policy, revalidate=True)

    with django_capture_on_commit_callbacks(execute=True):
        report = services.upstream_sync(upstream_id=upstream.pk)

    assert report.ok, report.error
    release = _zoo_release()
    assert release.state == ends_in
    checks = {check.name: check.status for check in release.checks.all()}
    assert checks["smoke_generation"] == "passed" and checks["artifact_integrity"] == "passed"
    package = release.artifacts.get(role="package")
    assert package.file and package.sha256 == release.origin_sha256
    assert release.sample_grid


def test_revalidation_rejects_a_mirrored_package_whose_bytes_are_not_the_attested_ones(
    upstream_hub: LiveHub, django_capture_on_commit_callbacks: Any
) -> None:
    upstream = _add(upstream_hub.url, namespaces=["zoo"], revalidate=True)
    with django_capture_on_commit_callbacks(execute=False):
        services.upstream_sync(upstream_id=upstream.pk)
    release = _zoo_release()
    Artifact.objects.filter(release=release, role="package").update(sha256="0" * 64)

    registry_services.release_validate(release_id=release.pk)

    release.refresh_from_db()
    assert release.state == ReleaseState.REJECTED
    failed = release.checks.get(name="artifact_integrity")
    assert failed.status == "failed" and "nothing was stored" in failed.message
    assert not release.artifacts.get(role="package").file


def test_revalidation_waits_while_the_upstream_is_down(
    upstream_hub: LiveHub, django_capture_on_commit_callbacks: Any
) -> None:
    with relay(upstream_hub.url) as middle:
        upstream = _add(middle.url, namespaces=["zoo"], revalidate=True)
        with django_capture_on_commit_callbacks(execute=False):
            services.upstream_sync(upstream_id=upstream.pk)
        middle.state.down = True

        outcome = registry_services.release_validate(release_id=_zoo_release().pk)

    assert outcome is None
    assert _zoo_release().state == ReleaseState.SUBMITTED


def test_a_tampered_feed_page_stops_the_sync_and_changes_nothing(upstream_hub: LiveHub) -> None:
    with relay(upstream_hub.url) as middle:
        upstream = _add(middle.url, namespaces=["zoo"])
        middle.state.tamper = lambda path, body: (
            body.replace(b"chestxray", b"chestxrax") if path.startswith("/api/v1/changes") else body
        )

        report = services.upstream_sync(upstream_id=upstream.pk)

    assert not report.ok
    assert "altered" in report.error
    upstream.refresh_from_db()
    assert upstream.serial == 0 and upstream.failures == 1 and "altered" in upstream.last_error
    assert not Release.objects.exists()
    assert UpstreamEvent.objects.filter(upstream=upstream, kind="sync_failed").exists()


def test_a_pinned_key_the_upstream_does_not_have_is_a_hard_error(upstream_hub: LiveHub) -> None:
    upstream = _add(upstream_hub.url, pinned_keys=["ed25519:" + "ab" * 16])

    report = services.upstream_sync(upstream_id=upstream.pk)

    assert not report.ok and "pinned" in report.error
    assert not Release.objects.exists()


def test_a_changed_key_stops_the_sync_until_an_operator_forgets_the_stored_one(
    upstream_hub: LiveHub,
) -> None:
    real_key = _upstream_key_set(upstream_hub).keys[0]
    upstream = _add(upstream_hub.url, namespaces=["zoo"], pinned_keys=[real_key.key_id])
    # The key the mirror stored before the upstream's key changed outside an overlap.
    old_key = SigningKey.generate()
    Upstream.objects.filter(pk=upstream.pk).update(
        public_keys={old_key.key_id: old_key.public_key_b64()}
    )

    refused = services.upstream_sync(upstream_id=upstream.pk)

    assert not refused.ok and "key" in refused.error
    assert not Release.objects.exists()

    services.upstream_keys_forget(upstream_id=upstream.pk, actor="operator")
    resumed = services.upstream_sync(upstream_id=upstream.pk)

    assert resumed.ok, resumed.error
    upstream.refresh_from_db()
    assert list(upstream.public_keys) == [real_key.key_id]
    assert _zoo_release().state == ReleaseState.PUBLISHED
    kinds = list(UpstreamEvent.objects.filter(upstream=upstream).values_list("kind", flat=True))
    assert kinds == ["sync_failed", "keys_forgotten", "key_pinned"]


def test_an_upstream_that_is_down_is_recorded_backed_off_and_caught_up_later(
    upstream_hub: LiveHub,
) -> None:
    with relay(upstream_hub.url) as middle:
        upstream = _add(middle.url, namespaces=["zoo"], interval_seconds=60)
        middle.state.down = True

        first = services.upstream_sync(upstream_id=upstream.pk)
        second = services.upstream_sync(upstream_id=upstream.pk)
        upstream.refresh_from_db()
        assert not first.ok and not second.ok
        assert upstream.failures == 2 and "unreachable" in upstream.last_error
        assert upstream.next_attempt_at is not None and upstream.last_error_at is not None
        assert (upstream.next_attempt_at - upstream.last_error_at).total_seconds() == 240
        assert services.upstreams_due() == []
        status = json.loads(HttpClient().get("/api/v1/status").content)["upstreams"][0]
        assert status["failures"] == 2 and "last_error" not in status  # staff only

        middle.state.down = False
        caught_up = services.upstream_sync(upstream_id=upstream.pk)

    assert caught_up.ok and caught_up.mirrored
    upstream.refresh_from_db()
    assert upstream.failures == 0 and upstream.lag == 0


def test_a_local_push_into_a_mirrored_namespace_is_refused(
    upstream_hub: LiveHub, tmp_path: Path
) -> None:
    _add(upstream_hub.url, namespaces=["acme"])
    operator = factories.user("operator", staff=True)
    token = factories.token(operator)
    package, sha256, card = factories.package_zip(tmp_path, model_id="acme/local-model")
    Namespace.objects.filter(name="acme").update(user=operator)

    with package.open("rb") as handle:
        response = HttpClient().post(
            "/api/v1/releases",
            {"card": json.dumps(card), "package": handle, "sha256": sha256},
            HTTP_AUTHORIZATION=f"Token {token}",
        )

    assert response.status_code == 409, response.content
    assert json.loads(response.content)["code"] == "namespace_shadowed"


def test_an_upstream_cannot_claim_a_namespace_that_holds_local_models(
    upstream_hub: LiveHub,
) -> None:
    alice = factories.user("alice")
    factories.release_row(submitter=alice, model_id="zoo/local-thing")

    with pytest.raises(services.UpstreamConfigError, match="holds local models"):
        _add(upstream_hub.url, namespaces=["zoo"])


def test_a_mirrored_entry_never_overwrites_a_local_model(upstream_hub: LiveHub) -> None:
    alice = factories.user("alice")
    local = factories.release_row(submitter=alice, model_id=ZOO_MODEL, version="9.9.9")
    upstream = _add(upstream_hub.url)  # no namespace filter: zoo is discovered in the feed

    report = services.upstream_sync(upstream_id=upstream.pk)

    assert report.ok
    assert any(line.startswith(f"{ZOO_MODEL}@") for line in report.refused)
    assert list(Release.objects.filter(generative_model__namespace="zoo")) == [local]
    assert UpstreamEvent.objects.filter(kind="entry_refused").exists()
    # medigan's models, which clash with nothing, came.
    assert Release.objects.filter(generative_model__namespace="medigan").count() == 23


def test_deprecation_and_withdrawal_upstream_reach_the_mirror(upstream_hub: LiveHub) -> None:
    upstream = _add(upstream_hub.url, namespaces=["medigan"])
    services.upstream_sync(upstream_id=upstream.pk)
    first, second = (
        Release.objects.filter(generative_model__namespace="medigan")
        .order_by("generative_model__name")
        .select_related("generative_model")[:2]
    )
    upstream_hub.shell(
        "from hub.registry import services; from hub.registry.models import Release; "
        "from medigan_catalog.lifecycle import ReleaseState; "
        f"r = Release.objects.get(generative_model__name={first.generative_model.name!r}); "
        "services.release_transition(release_id=r.pk, target=ReleaseState.DEPRECATED, "
        "note='superseded by v2'); print(1)"
    )
    upstream_hub.manage(
        "release_withdraw", second.release_id, "--note", "licence problem", "--as", "admin"
    )

    report = services.upstream_sync(upstream_id=upstream.pk)

    assert report.ok, report.error
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == ReleaseState.DEPRECATED
    assert first.lifecycle_reason == "superseded by v2"
    assert second.state == ReleaseState.WITHDRAWN
    assert sorted(report.retired) == sorted(
        [f"{first.release_id}: deprecated", f"{second.release_id}: withdrawn"]
    )
    assert settings.MEDIGAN_HUB_NAME == "institution"
