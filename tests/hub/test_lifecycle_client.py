"""Deprecate, yank and withdraw as a user of the client sees them, against the hub on a live
server: driven from the CLI, then visible in ``sync``, ``show``, ``versions`` and as warnings of
``generate`` and ``download`` (docs/lifecycle.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hub import snapshot
from hub.accounts.services import user_get_or_create
from hub.registry import services
from hub.registry.models import Release
from medigan_client import Client
from medigan_client.cli import app, main
from medigan_client.errors import NotFoundError, ReleaseLifecycleWarning, ReleaseWithdrawnError
from medigan_client.settings import ClientSettings
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "zoo/noise-16"


def _publish(tmp_path: Path, operator: Any, version: str) -> Release:
    package = factories.package_dir(tmp_path / version, model_id=MODEL, version=version)
    release = services.package_publish_as_operator(
        package_dir=package, operator=operator, note="test"
    )
    assert release.state == "published", release.state
    return release


@pytest.fixture
def hub(live_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A hub with two published releases of zoo/noise-16, and the CLI's environment for it."""
    snapshot.snapshot_cache_clear()
    operator = user_get_or_create(
        username="operator", is_staff=True, is_superuser=True, reviewer=True
    )
    _publish(tmp_path, operator, "1.0.0")
    _publish(tmp_path, operator, "1.1.0")
    factories.release_row(submitter=operator, model_id="zoo/noise-32")
    cache = tmp_path / "client-cache"
    token = factories.token(operator)
    monkeypatch.setenv("MEDIGAN_HUB_URL", live_server.url)
    monkeypatch.setenv("MEDIGAN_CACHE_DIR", str(cache))
    monkeypatch.setenv("MEDIGAN_TOKEN", token)
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "config.toml"))
    settings = ClientSettings(hub_url=live_server.url, cache_dir=cache, token=token)
    return {"settings": settings, "cli": CliRunner()}


def _cli(hub: dict[str, Any], *args: str) -> Any:
    return hub["cli"].invoke(app, list(args), catch_exceptions=False)


def test_a_deprecation_from_the_cli_reaches_sync_show_versions_and_generate(
    hub: dict[str, Any], tmp_path: Path
) -> None:
    first_sync = _cli(hub, "sync")

    deprecated = _cli(
        hub,
        "deprecate",
        f"{MODEL}@1.1.0",
        "--reason",
        "mode collapse",
        "--replacement",
        "zoo/noise-32",
    )
    synced = _cli(hub, "sync")
    shown = _cli(hub, "show", f"{MODEL}@1.1.0")
    versions = _cli(hub, "versions", MODEL)
    with pytest.warns(ReleaseLifecycleWarning, match="deprecated: mode collapse") as caught:
        result = Client(settings=hub["settings"], progress=False).generate(
            f"{MODEL}@1.1.0", 2, tmp_path / "out", isolation="inprocess", device="cpu"
        )

    assert first_sync.exit_code == 0
    assert deprecated.exit_code == 0, deprecated.output
    assert deprecated.stdout.strip() == f"{MODEL}@1.1.0: deprecated"
    assert (
        f"warning: {MODEL}@1.1.0 is deprecated: mode collapse; use zoo/noise-32 instead"
        in synced.stderr
    )
    assert "  state:       deprecated" in shown.stdout
    assert "  reason:      mode collapse" in shown.stdout
    assert "  replacement: zoo/noise-32" in shown.stdout
    lines = versions.stdout.splitlines()
    assert lines[0].startswith("1.1.0\tdeprecated")
    assert lines[1] == "  deprecated: mode collapse; use zoo/noise-32 instead"
    # The newest published release is what the bare id means now.
    assert lines[2].startswith("1.0.0\tpublished") and lines[2].endswith("newest")
    assert "use zoo/noise-32 instead" in str(caught[0].message)
    assert result.generated == 2


def test_a_yanked_release_is_used_by_exact_version_only_and_with_a_warning(
    hub: dict[str, Any],
) -> None:
    _cli(hub, "sync")
    yanked = _cli(hub, "yank", f"{MODEL}@1.1.0", "--reason", "wrong output range")
    _cli(hub, "sync")
    client = Client(settings=hub["settings"], progress=False)

    bare = client.locate(MODEL)
    downloaded = _cli(hub, "download", f"{MODEL}@1.1.0")

    assert yanked.exit_code == 0, yanked.output
    assert bare.card.version == "1.0.0"
    assert downloaded.exit_code == 0
    assert f"warning: {MODEL}@1.1.0 is yanked: wrong output range" in downloaded.stderr
    assert Path(downloaded.stdout.strip()).is_file()


def test_a_model_whose_every_release_is_yanked_names_the_versions_to_choose_from(
    hub: dict[str, Any],
) -> None:
    for version in ("1.0.0", "1.1.0"):
        _cli(hub, "yank", f"{MODEL}@{version}", "--reason", "retracted")
    _cli(hub, "sync")
    client = Client(settings=hub["settings"], progress=False)

    with pytest.raises(NotFoundError) as refused:
        client.locate(MODEL)
    listed = client.versions(MODEL)

    assert "every release of zoo/noise-16 is yanked" in refused.value.message
    assert "1.0.0, 1.1.0" in refused.value.message
    assert [(v.version, v.state, v.newest) for v in listed] == [
        ("1.1.0", "yanked", False),
        ("1.0.0", "yanked", False),
    ]


def test_a_withdrawn_release_is_refused_with_the_hubs_reason(
    hub: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    _cli(hub, "sync")
    withdrawn = _cli(hub, "withdraw", f"{MODEL}@1.1.0", "--reason", "licence problem")
    _cli(hub, "sync")
    client = Client(settings=hub["settings"], progress=False)

    with pytest.raises(ReleaseWithdrawnError) as refused:
        client.download(f"{MODEL}@1.1.0")
    capsys.readouterr()
    status = main(["generate", f"{MODEL}@1.1.0", "-n", "1", "-o", "x"])
    printed = capsys.readouterr().err

    assert withdrawn.exit_code == 0, withdrawn.output
    assert refused.value.detail == {"release": f"{MODEL}@1.1.0", "reason": "licence problem"}
    assert status == 1
    assert printed.splitlines()[-1].startswith(
        f"error: {MODEL}@1.1.0 was withdrawn by the hub: licence problem"
    )
    assert client.locate(MODEL).card.version == "1.0.0"
