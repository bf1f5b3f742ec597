"""Pushing a package to the fake hub: local checks first, then a deterministic zip upload."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_client.errors import (
    AuthenticationRequiredError,
    CardInvalidError,
    GenerationFailedError,
    ReleaseExistsError,
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
