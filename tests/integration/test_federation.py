"""Three live hubs federated (docs/federation.md): `public`, an `institution` mirror, an `airgap`.

Each hub is its own gunicorn and Celery worker with its own database: SQLite on the embedded
default, PostgreSQL (and a Redis broker) where CI provides them. `institution` mirrors `public`'s
`zoo` namespace in metadata mode and holds a private model of its own; `airgap` never reaches
either and gets `public`'s releases as a bundle. A user's client is configured with
`institution` first and `public` second.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from medigan_catalog.signing import KEYS_PATH, KeySet
from medigan_catalog.snapshot import CATALOG_PATH, CatalogSnapshot, artifact_path
from tests import factories
from tests.live_hub import REPO_ROOT, LiveHub, live_hub, production_path
from tests.relay import relay

pytestmark = pytest.mark.integration

CLI = Path(os.environ.get("VIRTUAL_ENV", REPO_ROOT / ".venv")) / "bin" / "medigan-client"
ZOO_MODEL = "zoo/chestxray-pca-64"
PRIVATE_MODEL = "radiology/private-noise"
PATH = "production" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "embedded"


@dataclass
class Federation:
    public: LiveHub
    institution: LiveHub
    airgap: LiveHub
    admin_token: str


def _hub(name: str, redis_db: int, tmp: pytest.TempPathFactory, seed: list[str] | None) -> Any:
    return live_hub(
        env={
            "MEDIGAN_HUB_NAME": name,
            "MEDIGAN_SMOKE_TIMEOUT_SECONDS": "120",
            # Small pages, so that a sync can be stopped between two of them.
            "MEDIGAN_MIRROR_PAGE": "2",
        },
        data_dir=tmp.mktemp(name),
        production=production_path(PATH, redis_db=redis_db, database_prefix=f"medigan_{name}"),
        seed=seed,
    )


def _shell(hub: LiveHub, code: str) -> str:
    return hub.shell("\n".join(line.strip() for line in code.strip().splitlines()))


def _publish_private_model(hub: LiveHub, package_dir: Path) -> None:
    state = _shell(
        hub,
        f"""
        from pathlib import Path
        from django.contrib.auth.models import User
        from hub.accounts import services as accounts
        from hub.registry import services
        from hub.registry.models import GenerativeModel
        admin = User.objects.get(username="admin")
        accounts.organisation_create(user=admin, name="radiology", title="Radiology")
        GenerativeModel.objects.create(namespace="radiology", name="private-noise", owner=admin, visibility="private")
        release = services.package_publish_as_operator(package_dir=Path({str(package_dir)!r}), operator=admin, note="test")
        print(release.state)
        """,  # noqa: E501 - one statement per line for manage.py shell
    )
    assert state == "published", state


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    package = factories.package_dir(tmp_path_factory.mktemp("private"), model_id=PRIVATE_MODEL)
    with (
        _hub("public", 11, tmp_path_factory, ["--zoo", "chestxray_pca_64"]) as public,
        _hub("institution", 12, tmp_path_factory, ["--skip-zoo"]) as institution,
        _hub("airgap", 13, tmp_path_factory, None) as airgap,
    ):
        credentials = json.loads((institution.data_dir / "demo-credentials.json").read_text())
        _publish_private_model(institution, package)
        institution.manage(
            "upstream_add", "public", public.url, "--namespaces", "zoo", "--key", _key_id(public)
        )
        yield Federation(public, institution, airgap, credentials["admin"]["token"])


def _key_id(hub: LiveHub) -> str:
    return KeySet.model_validate_json(httpx.get(hub.url + KEYS_PATH).content).keys[0].key_id


def _catalogue(hub: LiveHub, token: str | None = None) -> CatalogSnapshot:
    headers = {"Authorization": f"Token {token}"} if token else {}
    answer = httpx.get(hub.url + CATALOG_PATH, headers=headers, timeout=60)
    return CatalogSnapshot.model_validate_json(answer.content)


def _zoo(snapshot: CatalogSnapshot) -> set[str]:
    return {
        f"{entry.model_id}@{entry.version}"
        for entry in snapshot.releases
        if entry.model_id.startswith("zoo/")
    }


def _sync(hub: LiveHub, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return hub.manage("upstream_sync", "public", *extra, check=check)


def _publish_external(hub: LiveHub, model_id: str, version: str = "1.0.0") -> None:
    card = factories.card_data(model_id=model_id, version=version)
    card["artifacts"] = [
        {
            "filename": "weights.zip",
            "role": "package",
            "urls": ["https://zenodo.org/records/1/files/weights.zip"],
            "sha256": hashlib.sha256(model_id.encode()).hexdigest(),
            "size": 1024,
        }
    ]
    _shell(
        hub,
        f"""
        import json
        from django.contrib.auth.models import User
        from hub.registry import services
        from medigan_catalog.validation import validate_card
        card = validate_card(json.loads({json.dumps(card)!r}))
        services.release_import_external(card=card, actor=User.objects.get(username="hub-operator"), source="test")
        print("ok")
        """,  # noqa: E501 - one statement per line for manage.py shell
    )


def _cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MEDIGAN_CACHE_DIR": str(home / "cache"),
        "MEDIGAN_CONFIG": str(home / "config.toml"),
    }
    for name in ("MEDIGAN_TOKEN", "MEDIGAN_HUB_URL"):
        env.pop(name, None)
    done = subprocess.run(
        [str(CLI), *args], env=env, cwd=home, capture_output=True, text=True, timeout=600
    )
    if check and done.returncode != 0:
        raise AssertionError(f"medigan-client {' '.join(args)}: {done.stdout}\n{done.stderr}")
    return done


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive}  # type: ignore[union-attr]


# --- the tests, in the order a federation lives ---------------------------------------------


def test_institution_mirrors_public_and_keeps_its_private_model_to_itself(
    federation: Federation,
) -> None:
    public, institution = federation.public, federation.institution

    _sync(institution)

    assert _zoo(_catalogue(institution)) == _zoo(_catalogue(public)) != set()
    mirrored = next(e for e in _catalogue(institution).releases if e.model_id == ZOO_MODEL)
    assert mirrored.origin is not None and mirrored.origin.hub == "public"
    assert mirrored.attestation is not None and mirrored.attestation.hub == "public"
    # The private model: on institution for its members only, nowhere else.
    assert PRIVATE_MODEL in {
        e.model_id for e in _catalogue(institution, federation.admin_token).releases
    }
    assert PRIVATE_MODEL not in {e.model_id for e in _catalogue(institution).releases}
    assert PRIVATE_MODEL not in {e.model_id for e in _catalogue(public).releases}
    status = httpx.get(institution.url + "/api/v1/status").json()["upstreams"]
    assert status[0]["name"] == "public" and status[0]["lag"] == 0


def test_new_deprecated_and_withdrawn_releases_reach_the_mirror(federation: Federation) -> None:
    public, institution = federation.public, federation.institution
    for name in ("alpha", "beta", "gamma"):
        _publish_external(public, f"zoo/extra-{name}")
    _sync(institution)
    assert {"zoo/extra-alpha@1.0.0", "zoo/extra-beta@1.0.0"} <= _zoo(_catalogue(institution))

    _shell(
        public,
        """
        from hub.registry import services
        from hub.registry.models import Release
        from medigan_catalog.lifecycle import ReleaseState
        release = Release.objects.get(generative_model__name="extra-alpha")
        services.release_transition(release_id=release.pk, target=ReleaseState.DEPRECATED)
        print("ok")
        """,
    )
    public.manage("release_withdraw", "zoo/extra-beta@1.0.0", "--note", "licence", "--as", "admin")
    _sync(institution)

    states = json.loads(
        _shell(
            institution,
            """
            import json
            from hub.registry.models import Release
            print(json.dumps({r.release_id: r.state for r in Release.objects.filter(generative_model__name__startswith="extra-")}))
            """,  # noqa: E501
        )
    )
    assert states == {
        "zoo/extra-alpha@1.0.0": "deprecated",
        "zoo/extra-beta@1.0.0": "withdrawn",
        "zoo/extra-gamma@1.0.0": "published",
    }
    assert _zoo(_catalogue(institution)) == _zoo(_catalogue(public))


def test_a_client_of_institution_then_public_generates_from_both(
    federation: Federation, tmp_path: Path
) -> None:
    institution, public = federation.institution, federation.public
    (tmp_path / "config.toml").write_text(
        f'[[hubs]]\nname = "institution"\nurl = "{institution.url}"\n'
        f'token = "{federation.admin_token}"\n\n'
        f'[[hubs]]\nname = "public"\nurl = "{public.url}"\n'
    )

    _cli(tmp_path, "sync")
    found = _cli(tmp_path, "search", "chest").stdout
    _cli(tmp_path, "generate", PRIVATE_MODEL, "-n", "2", "-o", "private")
    _cli(tmp_path, "generate", ZOO_MODEL, "-n", "2", "-o", "mirrored")
    _cli(tmp_path, "generate", f"public:{ZOO_MODEL}", "-n", "2", "-o", "origin")

    assert "institution" in found
    for folder in ("private", "mirrored", "origin"):
        assert len(list((tmp_path / folder).glob("*.png"))) == 2, folder
    # The mirror fetched the package from public on that first download and kept it.
    release = next(e for e in _catalogue(institution).releases if e.model_id == ZOO_MODEL)
    package = release.card.artifacts[0]
    stored = httpx.get(
        institution.url + artifact_path(ZOO_MODEL, release.version, package.filename)
    )
    assert hashlib.sha256(stored.content).hexdigest() == package.sha256


def test_a_local_push_into_the_mirrored_namespace_is_refused(
    federation: Federation, tmp_path: Path
) -> None:
    archive, sha256, card = factories.package_zip(tmp_path, model_id="zoo/local-impostor")
    with archive.open("rb") as package:
        answer = httpx.post(
            federation.institution.url + "/api/v1/releases",
            data={"card": json.dumps(card), "sha256": sha256},
            files={"package": package},
            headers={"Authorization": f"Token {federation.admin_token}"},
            timeout=60,
        )

    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "namespace_shadowed"
    assert "mirrored from the upstream hub 'public'" in answer.json()["message"]


def test_a_tampered_feed_page_is_refused_with_a_clear_error(
    federation: Federation, tmp_path: Path
) -> None:
    with relay(federation.public.url) as middle:
        (tmp_path / "config.toml").write_text(f'[[hubs]]\nname = "public"\nurl = "{middle.url}"\n')
        _cli(tmp_path, "sync")
        _publish_external(federation.public, "zoo/extra-delta")
        middle.state.tamper = lambda path, body: (
            body.replace(b"extra-delta", b"extra-delts")
            if path.startswith("/api/v1/changes")
            else body
        )
        refused = _cli(tmp_path, "sync", check=False)

    assert refused.returncode != 0
    assert "altered" in refused.stderr and "signature" in refused.stderr.lower()


def test_airgap_imports_a_bundle_and_refuses_a_tampered_one(
    federation: Federation, tmp_path: Path
) -> None:
    public, airgap, institution = federation.public, federation.airgap, federation.institution
    bundle = tmp_path / "public.tar"
    public.manage("bundle_export", str(bundle), "--filter", "namespace=zoo")
    members = _members(bundle)
    artifact = next(name for name in members if name.startswith("artifacts/"))
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(tampered, "w") as archive:
        for name, data in members.items():
            data = data + b"\0" if name == artifact else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

    refused = airgap.manage("bundle_import", str(tampered), "--key", _key_id(public), check=False)
    assert refused.returncode != 0 and "bundle_invalid" in refused.stderr
    assert _catalogue(airgap).releases == ()

    airgap.manage("bundle_import", str(bundle), "--key", _key_id(public))
    again = airgap.manage("bundle_import", str(bundle)).stdout
    assert _zoo(_catalogue(airgap)) == _zoo(_catalogue(public))
    assert "0 mirrored" in again and "0 artifacts stored" in again

    # The institution's own bundle carries what it mirrors, never its private model.
    own = tmp_path / "institution.tar"
    institution.manage("bundle_export", str(own))
    assert not any(b"radiology" in data for data in _members(own).values())


def test_public_killed_mid_sync_then_restarted_and_institution_catches_up(
    federation: Federation,
) -> None:
    public, institution = federation.public, federation.institution
    for index in range(5):
        _publish_external(public, f"zoo/burst-{index}")
    before = _catalogue(institution)

    _sync(institution, "--max-pages", "1")  # two of the changes applied, then the sync stops
    partial = _zoo(_catalogue(institution))
    public.kill("web")
    failed = _sync(institution, check=False)
    serving = _catalogue(institution)  # institution keeps serving what it has
    status = httpx.get(institution.url + "/api/v1/status").json()["upstreams"][0]

    assert failed.returncode != 0 and "unreachable" in failed.stderr
    assert _zoo(before) < partial == _zoo(serving)
    assert status["failures"] == 1 and status["lag"] > 0

    public.ensure_running()
    _sync(institution)

    assert _zoo(_catalogue(institution)) == _zoo(_catalogue(public))
    assert httpx.get(institution.url + "/api/v1/status").json()["upstreams"][0]["lag"] == 0
