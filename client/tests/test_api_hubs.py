"""A client of several hubs against two real fake hubs: the config, per-hub sync, resolution in
priority order and by ``hub:`` prefix, the dependency-confusion guard and its pins, attestations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_client.api import Client
from medigan_client.cli import main
from medigan_client.errors import (
    AttestationInvalidError,
    BadRequestError,
    HubConflictError,
    NotFoundError,
)
from medigan_client.settings import ClientSettings, HubEntry

if TYPE_CHECKING:
    from conftest import FakeHub, MakeCard, WritePackage, ZipPackage


def _config(path: Path, hub: FakeHub, other: FakeHub, extra: str = "") -> Path:
    path.write_text(
        f"""
[[hubs]]
name = "institution"
url = "{hub.url}"
token = "{hub.state.token}"

[[hubs]]
name = "public"
url = "{other.url}"
{extra}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def config(
    tmp_path: Path, hub: FakeHub, other_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> Path:
    path = _config(tmp_path / "config.toml", hub, other_hub)
    monkeypatch.setenv("MEDIGAN_CONFIG", str(path))
    monkeypatch.delenv("MEDIGAN_HUB_URL", raising=False)
    monkeypatch.delenv("MEDIGAN_TOKEN", raising=False)
    monkeypatch.setenv("MEDIGAN_CACHE_DIR", str(tmp_path / "cache"))
    return path


def _publish(
    target: FakeHub,
    card: dict[str, Any],
    tmp_path: Path,
    write_package: WritePackage,
    zip_package: ZipPackage,
    *,
    flavour: str = "",
) -> dict[str, Any]:
    """Publish ``card`` on ``target``; another ``flavour`` gives the package other bytes."""
    slug = f"{target.state.name}-{card['model_id'].replace('/', '_')}-{card['version']}{flavour}"
    directory = write_package(tmp_path / "src" / slug, card)
    if flavour:
        (directory / "flavour.txt").write_text(flavour, encoding="utf-8")
    return target.publish(card, zip_package(directory, tmp_path / "dist" / slug / "package.zip"))


def test_the_config_names_hubs_in_order_and_each_token_goes_to_its_hub(
    config: Path, hub: FakeHub, other_hub: FakeHub, make_card: MakeCard
) -> None:
    hub.state.releases.append(_entry(make_card(model_id="lab/a")))
    other_hub.state.releases.append(_entry(make_card(model_id="zoo/b")))
    client = Client()
    assert [(e.name, e.url) for e in client.hubs] == [
        ("institution", hub.url),
        ("public", other_hub.url),
    ]
    reports = client.sync_hubs()
    assert [(r.hub, r.result.release_count if r.result else None) for r in reports] == [
        ("institution", 1),
        ("public", 1),
    ]
    sent = [{r.headers.get("Authorization") for r in h.state.log} for h in (hub, other_hub)]
    assert sent[0] == {f"Token {hub.state.token}"}
    assert sent[1] == {None}, "the institution's token never goes to another hub"


def _entry(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_id": card["model_id"],
        "version": card["version"],
        "published_at": "2025-01-01T00:00:00+00:00",
        "card": card,
    }


def test_a_model_resolves_on_the_first_hub_that_has_it_or_on_the_named_hub(
    config: Path,
    hub: FakeHub,
    other_hub: FakeHub,
    make_card: MakeCard,
    write_package: WritePackage,
    zip_package: ZipPackage,
    tmp_path: Path,
) -> None:
    _publish(hub, make_card(model_id="lab/only-here"), tmp_path, write_package, zip_package)
    _publish(other_hub, make_card(model_id="zoo/only-there"), tmp_path, write_package, zip_package)
    # The same release, same bytes, on both hubs: a mirror, not a conflict.
    card = make_card(model_id="zoo/mirrored")
    _publish(hub, card, tmp_path, write_package, zip_package)
    _publish(other_hub, card, tmp_path, write_package, zip_package)
    client = Client()
    client.sync()
    assert client.locate("lab/only-here").hub == "institution"
    assert client.locate("zoo/only-there").hub == "public"
    assert client.locate("zoo/mirrored").hub == "institution"
    assert client.locate("public:zoo/mirrored@1.0.0").hub == "public"
    with pytest.raises(NotFoundError):
        client.show("public:lab/only-here")
    with pytest.raises(BadRequestError, match="no hub named 'nowhere'"):
        client.show("nowhere:zoo/mirrored")
    path = client.download("public:zoo/only-there")
    assert path.is_file()
    assert other_hub.state.requests_to("/api/v1/models/zoo/only-there/releases/1.0.0/artifacts/")
    assert not hub.state.requests_to("/api/v1/models/zoo/only-there")


def test_the_same_release_with_other_content_on_two_hubs_is_refused_until_pinned(
    config: Path,
    hub: FakeHub,
    other_hub: FakeHub,
    make_card: MakeCard,
    write_package: WritePackage,
    zip_package: ZipPackage,
    tmp_path: Path,
) -> None:
    card = make_card(model_id="zoo/chest-pca")
    _publish(hub, card, tmp_path, write_package, zip_package, flavour="internal")
    _publish(other_hub, card, tmp_path, write_package, zip_package, flavour="public")
    client = Client()
    client.sync()
    with pytest.raises(HubConflictError) as raised:
        client.show("zoo/chest-pca")
    message = raised.value.message
    assert "institution" in message and "public" in message and "[pins]" in message
    assert raised.value.detail["hubs"] == ["institution", "public"]
    assert client.locate("public:zoo/chest-pca").hub == "public"

    _config(config, hub, other_hub, '[pins]\n"zoo/chest-pca" = "public"\n')
    pinned = Client()
    assert pinned.locate("zoo/chest-pca").hub == "public"
    assert pinned.versions("zoo/chest-pca")[0].hub == "public"


def test_sync_reports_each_hub_and_goes_on_when_one_is_down(
    config: Path,
    hub: FakeHub,
    other_hub: FakeHub,
    make_card: MakeCard,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other_hub.state.releases.append(_entry(make_card(model_id="zoo/b")))
    hub.server.shutdown()
    hub.server.server_close()
    assert main(["sync"]) == 0
    captured = capsys.readouterr()
    assert f"hub public ({other_hub.url}): serial 1, 1 releases (updated)" in captured.out
    assert f"hub institution ({hub.url}): failed" in captured.out
    assert "1 of 2 hubs failed to sync (institution)" in captured.err
    other_hub.server.shutdown()
    other_hub.server.server_close()
    # The public hub's copy is cached now: from cache, with a warning. Nothing cached: failed.
    assert main(["sync"]) == 0
    assert "(from cache)" in capsys.readouterr().out


def test_search_and_show_name_each_hits_hub(
    config: Path,
    hub: FakeHub,
    other_hub: FakeHub,
    make_card: MakeCard,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub.state.releases.append(_entry(make_card(model_id="lab/noise", title="Noise lab")))
    other_hub.state.releases.append(_entry(make_card(model_id="zoo/noise", title="Noise zoo")))
    assert main(["sync"]) == 0
    capsys.readouterr()
    assert main(["search", "noise"]) == 0
    lines = sorted(capsys.readouterr().out.splitlines())
    assert lines == ["lab/noise\tNoise lab\tinstitution", "zoo/noise\tNoise zoo\tpublic"]
    assert main(["show", "zoo/noise"]) == 0
    assert f"  hub:         public ({other_hub.url})" in capsys.readouterr().out


def test_a_pinned_hubs_attestation_is_verified_and_a_mismatch_makes_the_entry_unusable(
    config: Path,
    hub: FakeHub,
    other_hub: FakeHub,
    make_card: MakeCard,
    write_package: WritePackage,
    zip_package: ZipPackage,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = _publish(other_hub, make_card(model_id="zoo/good"), tmp_path, write_package, zip_package)
    bad = _publish(other_hub, make_card(model_id="zoo/bad"), tmp_path, write_package, zip_package)
    entries = {entry["model_id"]: entry for entry in other_hub.state.releases}
    other_hub.state.attest(entries["zoo/good"])
    other_hub.state.attest(entries["zoo/bad"])
    # The entry's card now names other bytes than the hub attested.
    entries["zoo/bad"]["card"] = json.loads(json.dumps(bad))
    entries["zoo/bad"]["card"]["artifacts"][0]["sha256"] = "0" * 64
    assert good["model_id"] == "zoo/good"
    assert main(["sync"]) == 0
    capsys.readouterr()
    client = Client()
    found = client.locate("zoo/good")
    assert (found.attestation_verified, found.attested_by) == (True, "other")
    assert main(["show", "zoo/good"]) == 0
    out = capsys.readouterr().out
    assert "  origin:      other" in out
    assert f"  attestation: verified, by {other_hub.state.key_id} of hub other" in out
    with pytest.raises(AttestationInvalidError) as raised:
        client.download("zoo/bad")
    assert raised.value.code.value == "signature_invalid"
    assert "sha256 of package.zip differs" in raised.value.message


def test_client_takes_hubs_and_pins_as_arguments(
    tmp_path: Path, hub: FakeHub, other_hub: FakeHub, make_card: MakeCard
) -> None:
    hub.state.releases.append(_entry(make_card(model_id="zoo/a")))
    other_hub.state.releases.append(_entry(make_card(model_id="zoo/a", version="2.0.0")))
    settings = ClientSettings(cache_dir=tmp_path / "cache", timeout=5.0)
    client = Client(
        settings=settings,
        hubs=[HubEntry("first", hub.url), HubEntry("second", other_hub.url)],
        pins={"zoo/a": "second"},
    )
    assert client.multi_hub
    client.sync()
    assert client.show("zoo/a").version == "2.0.0"
    assert [card.version for card in client.models()] == ["2.0.0"]


def test_a_single_hub_is_named_after_its_host_and_port(hub: FakeHub, tmp_path: Path) -> None:
    client = Client(hub_url=hub.url, cache_dir=tmp_path / "cache")
    assert [entry.name for entry in client.hubs] == [hub.url.removeprefix("http://")]
    assert not client.multi_hub
