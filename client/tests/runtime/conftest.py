"""Fixtures of the runtime tests: packages on disk with their cards, and wheels built by hand.

``make_package`` writes a package (v2 or medigan-legacy, optionally wrapped in a folder as
medigan's zips are) and returns its directory with the parsed card. ``build_wheel`` writes a
pure-Python wheel (METADATA, WHEEL, RECORD) straight into a zip, so venv tests need neither a
build backend nor the network.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from medigan_catalog.schema import Card, card_from_json
from medigan_client.settings import ClientSettings


@dataclass
class PackageOnDisk:
    """A written package: the directory to run it from, its card, and the card's JSON."""

    directory: Path
    card: Card
    card_data: dict[str, Any]


MakePackage = Callable[..., PackageOnDisk]


@pytest.fixture
def make_package(
    tmp_path: Path,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
) -> MakePackage:
    """``make_package(slug, init_source=None, *, kind, dependencies, execution, wrap, **card)``.

    ``wrap`` puts the package one folder down (medigan's ``<package_name>/`` layout) and
    returns the outer folder, as the cache extracts it.
    """

    def make(
        slug: str = "pkg",
        init_source: str | None = None,
        *,
        kind: str = "v2",
        dependencies: Sequence[str] | None = None,
        execution: Mapping[str, Any] | None = None,
        python_requires: str | None = None,
        wrap: str | None = None,
        **card_fields: Any,
    ) -> PackageOnDisk:
        card_data = make_card(kind=kind, **card_fields)
        if dependencies is not None:
            card_data["runtime"]["dependencies"] = list(dependencies)
        if python_requires is not None:
            card_data["runtime"]["python_requires"] = python_requires
        if execution is not None:
            card_data["execution"] = dict(execution)
        outer = tmp_path / slug
        target = outer / wrap if wrap else outer
        write_package(target, card_data, init_source=init_source)
        return PackageOnDisk(directory=outer, card=card_from_json(card_data), card_data=card_data)

    return make


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def build_wheel(directory: Path, name: str, version: str, files: Mapping[str, str]) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` holding ``files`` (path -> text)."""
    distribution = name.replace("-", "_")
    dist_info = f"{distribution}-{version}.dist-info"
    members = {path: text.encode("utf-8") for path, text in files.items()}
    members[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    ).encode()
    members[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: medigan-client-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in members.items()]
    record.append(f"{dist_info}/RECORD,,")
    members[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{distribution}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    return wheel


@pytest.fixture
def wheel_dir(tmp_path: Path) -> Path:
    """An empty local wheel directory (the only index the venv tests let pip use)."""
    path = tmp_path / "wheels"
    path.mkdir()
    return path


@pytest.fixture
def runtime_settings(tmp_path: Path, wheel_dir: Path) -> ClientSettings:
    """Settings with a cache in tmp_path and pip restricted to ``wheel_dir`` (no index)."""
    return ClientSettings(
        hub_url="http://127.0.0.1:9",
        cache_dir=tmp_path / "cache",
        pip_no_index=True,
        pip_find_links=(str(wheel_dir),),
    )
