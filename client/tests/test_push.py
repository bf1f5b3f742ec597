"""Pushing a package to the fake hub: local checks first, then a deterministic zip upload."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_client.api import Client
from medigan_client.cli import main
from medigan_client.errors import (
    AuthenticationRequiredError,
    CardInvalidError,
    GenerationFailedError,
    HubBusyError,
    ReleaseExistsError,
    ValidationFailedError,
)
from medigan_client.push import push
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from conftest import FakeHub


def test_push_uploads_a_deterministic_zip_whose_sha256_matches(
    settings: ClientSettings,
    hub: FakeHub,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    zip_package: Callable[[Path, Path], Path],
    tmp_path: Path,
) -> None:
    package = write_package(tmp_path / "mine", make_card(model_id="zoo/mine"))
    result = push(settings, package)
    assert result.state == "submitted"
    assert result.release_url == f"{hub.url}/api/v1/models/zoo/mine/releases/1.0.0"
    [received] = hub.state.pushes
    uploaded = received["package"]
    assert hashlib.sha256(uploaded).hexdigest() == received["sha256"].decode() == result.sha256
    assert json.loads(received["card"])["model_id"] == "zoo/mine"
    with zipfile.ZipFile(io.BytesIO(uploaded)) as archive:
        assert sorted(archive.namelist()) == ["__init__.py", "card.json", "noise.py"]
    local = zip_package(package, tmp_path / "again.zip")
    assert local.read_bytes() == uploaded, "the same directory always zips to the same bytes"
    with pytest.raises(ReleaseExistsError, match="already pushed"):
        push(settings, package)


def test_invalid_card_is_refused_before_any_traffic(
    settings: ClientSettings,
    hub: FakeHub,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    card = make_card()
    card["output"]["height"] = 0
    package = write_package(tmp_path / "bad", card)
    with pytest.raises(CardInvalidError, match=r"output\.height"):
        push(settings, package)
    assert hub.state.log == []


def test_failing_smoke_generation_is_refused_before_upload(
    settings: ClientSettings,
    hub: FakeHub,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    package = write_package(
        tmp_path / "wrong",
        make_card(),
        init_source="import numpy as np\n"
        "def generate(num_samples, *, seed, device, brightness=0):\n"
        "    return np.zeros((num_samples, 8, 8), dtype=np.float32)\n",
    )
    with pytest.raises(GenerationFailedError, match="dtype float32 differs"):
        push(settings, package)
    assert hub.state.log == []


def test_push_needs_a_token(
    settings: ClientSettings,
    hub: FakeHub,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    package = write_package(tmp_path / "p", make_card())
    anonymous = ClientSettings(hub_url=hub.url, cache_dir=settings.cache_dir)
    with pytest.raises(AuthenticationRequiredError, match="needs a token"):
        push(anonymous, package)
    wrong = ClientSettings(hub_url=hub.url, token="wrong", cache_dir=settings.cache_dir)
    with pytest.raises(AuthenticationRequiredError, match="a token is required"):
        push(wrong, package)


def _move_state_later(hub: FakeHub, release: str, states: list[str]) -> threading.Thread:
    """Step ``release`` through ``states`` on the fake hub, as the hub's worker would."""

    def step() -> None:
        while release not in hub.state.states:  # not pushed yet
            time.sleep(0.05)
        for state in states:
            time.sleep(0.3)
            hub.state.states[release] = state

    mover = threading.Thread(target=step, daemon=True)
    mover.start()
    return mover


def test_wait_for_checks_returns_once_the_release_is_in_review(
    settings: ClientSettings,
    hub: FakeHub,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    package = write_package(tmp_path / "mine", make_card(model_id="zoo/mine"))
    with Client(settings=settings) as client:
        pushed = client.push(package)
        assert pushed.release_id == "zoo/mine@1.0.0"
        mover = _move_state_later(hub, pushed.release_id, ["validating", "in_review"])
        status = client.wait_for_checks(pushed.release_id, poll_seconds=0.1, timeout=30)
        mover.join()
    assert status["state"] == "in_review"


def test_wait_for_checks_raises_on_rejection_and_on_timeout(
    settings: ClientSettings,
    hub: FakeHub,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    rejected = write_package(tmp_path / "bad", make_card(model_id="zoo/bad"))
    slow = write_package(tmp_path / "slow", make_card(model_id="zoo/slow"))
    with Client(settings=settings) as client:
        release = client.push(rejected).release_id
        _move_state_later(hub, release, ["rejected"]).join()
        with pytest.raises(ValidationFailedError, match=r"zoo/bad@1\.0\.0 was rejected") as failed:
            client.wait_for_checks(release, poll_seconds=0.1, timeout=30)
        assert failed.value.code.value == "validation_failed"
        waiting = client.push(slow).release_id
        with pytest.raises(HubBusyError, match=r"still submitted after 0\.5 s") as busy:
            client.wait_for_checks(waiting, poll_seconds=0.2, timeout=0.5)
        assert busy.value.code.value == "hub_busy"


def test_the_push_command_waits_for_the_checks(
    settings: ClientSettings,
    hub: FakeHub,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package = write_package(tmp_path / "mine", make_card(model_id="zoo/mine"))
    monkeypatch.setenv("MEDIGAN_TOKEN", settings.token or "")
    monkeypatch.setenv("MEDIGAN_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "config.toml"))
    mover = _move_state_later(hub, "zoo/mine@1.0.0", ["validating", "in_review"])
    assert main(["--hub", hub.url, "push", str(package), "--wait"]) == 0
    mover.join()
    assert capsys.readouterr().out.splitlines()[-1] == "zoo/mine@1.0.0: in_review"


def test_push_asks_for_a_minted_doi_or_names_one_in_form_fields(
    settings: ClientSettings,
    hub: FakeHub,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    minted = write_package(tmp_path / "minted", make_card(model_id="zoo/minted"))
    named = write_package(tmp_path / "named", make_card(model_id="zoo/named"))

    push(settings, minted, mint_doi=True)
    push(settings, named, doi="10.5281/zenodo.7031735")

    first, second = hub.state.pushes
    assert first["mint_doi"] == b"true" and "doi" not in first
    assert second["doi"] == b"10.5281/zenodo.7031735" and "mint_doi" not in second


def test_push_refuses_both_doi_options_before_any_traffic(
    settings: ClientSettings,
    hub: FakeHub,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    from medigan_client.errors import BadRequestError

    package = write_package(tmp_path / "both", make_card(model_id="zoo/both"))

    with pytest.raises(BadRequestError, match="not both"):
        push(settings, package, mint_doi=True, doi="10.5281/zenodo.1")
    assert hub.state.pushes == []
