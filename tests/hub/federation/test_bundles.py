"""Air-gapped bundles: a live hub exports, this test's hub imports (docs/federation.md).

The exporting hub is the session's live upstream (``conftest.upstream_hub``); the importing hub
is the test process's, which never talks to the exporter: it reads the file only.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from hub.federation.bundles import BundleInvalidError, bundle_import
from hub.federation.models import Upstream
from hub.registry.models import CatalogChange, Release
from medigan_catalog.lifecycle import ReleaseState
from medigan_catalog.signing import KEYS_PATH, KeySet
from tests.live_hub import LiveHub

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture(scope="module")
def zoo_bundle(upstream_hub: LiveHub, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bundles") / "zoo.tar"
    upstream_hub.manage("bundle_export", str(path), "--namespaces", "zoo")
    return path


def _key_id(hub: LiveHub) -> str:
    return KeySet.model_validate_json(httpx.get(hub.url + KEYS_PATH).content).keys[0].key_id


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive
        }


def _rewrite(path: Path, target: Path, change: dict[str, bytes]) -> Path:
    members = {**_members(path), **change}
    with tarfile.open(target, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return target


def test_a_bundle_holds_a_signed_manifest_of_every_file(zoo_bundle: Path) -> None:
    members = _members(zoo_bundle)
    manifest = json.loads(members["manifest.json"])

    assert manifest["format"] == "medigan-hub-bundle/1" and manifest["hub"] == "public"
    assert set(manifest["files"]) == set(members) - {"manifest.json", "manifest.sig"}
    for name, entry in manifest["files"].items():
        assert hashlib.sha256(members[name]).hexdigest() == entry["sha256"]
    assert any(name.startswith("artifacts/zoo/") for name in members)
    assert members["manifest.sig"].startswith(b"ed25519 keyid=")
    # Only the filtered namespace: none of medigan's models.
    assert b"medigan/" not in members["feed/0001.json"]


def test_an_import_verifies_then_applies_and_a_second_import_changes_nothing(
    zoo_bundle: Path, upstream_hub: LiveHub
) -> None:
    report = bundle_import(zoo_bundle, keys=[_key_id(upstream_hub)])

    release = Release.objects.get(generative_model__namespace="zoo")
    assert release.state == ReleaseState.PUBLISHED and release.origin_hub == "public"
    package = release.artifacts.get(role="package")
    assert package.file
    with package.file.open("rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == package.sha256
    assert report.mirrored == [release.release_id]
    assert report.stored == [f"{release.release_id}/{package.filename}"]
    upstream = Upstream.objects.get(name="public")
    assert upstream.enabled is False and upstream.hub_name == "public"

    changes = CatalogChange.objects.count()
    again = bundle_import(zoo_bundle)
    assert again.mirrored == [] and again.stored == []
    assert CatalogChange.objects.count() == changes


def test_a_first_import_needs_the_exporting_hubs_key_pinned(zoo_bundle: Path) -> None:
    with pytest.raises(BundleInvalidError, match="--key"):
        bundle_import(zoo_bundle)
    with pytest.raises(BundleInvalidError, match="pinned"):
        bundle_import(zoo_bundle, keys=["ed25519:" + "cd" * 16])
    assert not Release.objects.exists()


@pytest.mark.parametrize("target", ["artifact", "feed", "manifest", "extra"])
def test_a_tampered_bundle_is_refused_whole(
    zoo_bundle: Path, upstream_hub: LiveHub, tmp_path: Path, target: str
) -> None:
    members = _members(zoo_bundle)
    artifact = next(name for name in members if name.startswith("artifacts/"))
    change = {
        "artifact": {artifact: members[artifact] + b"\0"},
        "feed": {"feed/0001.json": members["feed/0001.json"].replace(b"1.0.0", b"1.0.1")},
        "manifest": {"manifest.json": members["manifest.json"].replace(b'"zoo"', b'"zoX"')},
        "extra": {"artifacts/zoo/evil/1.0.0/evil.zip": b"not listed"},
    }[target]
    tampered = _rewrite(zoo_bundle, tmp_path / "tampered.tar", change)

    with pytest.raises(CommandError, match="bundle_invalid"):
        call_command("bundle_import", str(tampered), "--key", _key_id(upstream_hub))

    assert not Release.objects.exists()


def test_a_member_outside_the_bundle_folder_is_refused(
    zoo_bundle: Path, upstream_hub: LiveHub, tmp_path: Path
) -> None:
    tampered = _rewrite(zoo_bundle, tmp_path / "escape.tar", {"../escape": b"x"})

    with pytest.raises(BundleInvalidError, match="not a plain file"):
        bundle_import(tampered, keys=[_key_id(upstream_hub)])
    assert not (tmp_path.parent / "escape").exists()
