"""The venv runtime: conflicting pins side by side, reuse, rebuild, and pip's index settings.

Each test here creates a virtual environment (and a few run pip against a local wheel
directory only), so they are kept few.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from medigan_client.errors import GenerationFailedError
from medigan_client.runtime import choose_isolation, open_runner
from medigan_client.runtime.dependencies import installed_version
from medigan_client.runtime.venvs import (
    MARKER_NAME,
    PIP_LOG_NAME,
    VenvBuilder,
    open_venv_runner,
    parent_site_dirs,
    pip_index_options,
    venv_site_dir,
)
from medigan_client.settings import ClientSettings

from .conftest import MakePackage, build_wheel

V2_PINNED = """
import numpy as np

import medigan_test_pin


def generate(num_samples, *, seed, device, brightness=0):
    major = int(medigan_test_pin.VERSION.split(".")[0])
    return np.full((num_samples, 8, 8), major, dtype=np.uint8)
"""

LEGACY_PINNED = """
import sys

import numpy as np

import medigan_test_pin


def generate(model_file, num_samples, output_path, save_images=False, brightness=0):
    major = int(medigan_test_pin.VERSION.split(".")[0])
    image = np.full((8, 8), major, dtype=np.uint8)
    # (image, mask, other, label): the label tells which Python ran the package.
    return [(image, None, None, sys.prefix) for _ in range(num_samples)]
"""


def test_two_packages_with_conflicting_pins_run_one_after_the_other(
    make_package: MakePackage, wheel_dir: Path, runtime_settings: ClientSettings
) -> None:
    for version in ("1.0", "2.0"):
        build_wheel(
            wheel_dir,
            "medigan-test-pin",
            version,
            {"medigan_test_pin/__init__.py": f'VERSION = "{version}"\n'},
        )
    assert installed_version("medigan-test-pin") is None
    old = make_package(
        "old", V2_PINNED, model_id="zoo/pin-old", dependencies=["medigan-test-pin==1.0", "numpy"]
    )
    new = make_package(
        "new",
        LEGACY_PINNED,
        model_id="medigan/00098_PIN_NEW",
        kind="medigan-legacy",
        dependencies=["medigan-test-pin==2.0"],
        execution={"dependencies": ["numpy"]},
    )
    assert choose_isolation(old.card) == "venv"

    with open_runner(old.directory, old.card, settings=runtime_settings) as first:
        assert first.isolation == "venv"
        old_batch = first.generate_batch(2, seed=0, device="cpu", args={})
    with open_runner(
        new.directory, new.card, isolation="venv", settings=runtime_settings
    ) as second:
        new_batch = second.generate_batch(2, seed=0, device="cpu", args={})

    assert old_batch.images.shape == (2, 8, 8) and int(old_batch.images.max()) == 1
    assert int(new_batch.images.max()) == 2
    venvs = sorted((runtime_settings.cache_dir / "venvs").iterdir())
    assert len(venvs) == 2
    assert new_batch.labels is not None
    assert Path(str(new_batch.labels[0])).resolve() in [v.resolve() for v in venvs]
    # The caller's environment is never installed into, and numpy is shared, not reinstalled.
    assert installed_version("medigan-test-pin") is None
    for venv in venvs:
        site_dir = venv_site_dir(venv)
        assert (site_dir / "medigan_test_pin").is_dir()
        assert not (site_dir / "numpy").exists()
        assert (venv / MARKER_NAME).is_file()

    # Opening a release again reuses its venv: pip ran once per venv.
    with open_runner(old.directory, old.card, settings=runtime_settings) as again:
        assert int(again.generate_batch(1, seed=0, device="cpu", args={}).images.max()) == 1
    for venv in venvs:
        assert (venv / PIP_LOG_NAME).read_text().count("$ ") == 1


def test_a_venv_without_its_completion_marker_is_rebuilt(
    make_package: MakePackage, runtime_settings: ClientSettings
) -> None:
    package = make_package("plain")  # needs only numpy, which the caller's environment has
    builder = VenvBuilder(package.card, runtime_settings)
    python = builder.ensure()
    marker = json.loads(builder.marker.read_text())
    assert marker["requirements"] == ["numpy"]
    sentinel = builder.directory / "sentinel"
    sentinel.write_text("left by the first build")
    assert builder.ensure() == python
    assert sentinel.exists(), "a complete venv is reused"

    builder.marker.unlink()  # as if the first build had been killed before its end
    builder.ensure()
    assert not sentinel.exists()
    assert builder.marker.is_file()

    # The venv's own site-packages come first, the caller's after them.
    printed = subprocess.run(
        [str(python), "-c", "import json, sys; print(json.dumps(sys.path))"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "")},
    )
    search = [os.path.realpath(p) for p in json.loads(printed.stdout)]
    own = os.path.realpath(venv_site_dir(builder.directory))
    parent = parent_site_dirs()[0]
    assert search.index(own) < search.index(parent)

    with open_venv_runner(package.directory, package.card, runtime_settings) as runner:
        assert runner.isolation == "venv"
        batch = runner.generate_batch(2, seed=3, device="cpu", args={"brightness": 90})
    assert batch.images.shape == (2, 8, 8)


def test_failures_to_build_name_the_requirement_and_leave_no_marker(
    make_package: MakePackage, runtime_settings: ClientSettings
) -> None:
    missing = make_package(
        "missing", model_id="zoo/missing", dependencies=["medigan-test-missing==1.0"]
    )
    with pytest.raises(GenerationFailedError) as info:
        open_runner(missing.directory, missing.card, settings=runtime_settings)
    assert "medigan-test-missing==1.0" in info.value.message
    assert "pip exited with status" in info.value.message
    assert not VenvBuilder(missing.card, runtime_settings).marker.exists()

    heavy = make_package("heavy", model_id="zoo/heavy", dependencies=["torchaudio"])
    if installed_version("torchaudio") is not None:
        pytest.skip("torchaudio is installed here, so nothing would be missing")
    with pytest.raises(GenerationFailedError, match=r"needs torchaudio.*install it here"):
        open_runner(heavy.directory, heavy.card, isolation="venv", settings=runtime_settings)


def test_pip_index_options_follow_the_settings(tmp_path: Path) -> None:
    assert pip_index_options(ClientSettings(cache_dir=tmp_path)) == []
    settings = ClientSettings.load(
        environ={
            "MEDIGAN_PIP_INDEX_URL": "http://127.0.0.1:1/simple",
            "MEDIGAN_PIP_EXTRA_INDEX_URLS": "http://127.0.0.1:2/simple http://127.0.0.1:3/simple",
            "MEDIGAN_PIP_FIND_LINKS": os.pathsep.join(["/wheels/a", "/wheels/b"]),
            "MEDIGAN_PIP_NO_INDEX": "1",
        },
        config_path=tmp_path / "none.toml",
    )
    assert pip_index_options(settings) == [
        "--no-index",
        "--index-url",
        "http://127.0.0.1:1/simple",
        "--extra-index-url",
        "http://127.0.0.1:2/simple",
        "--extra-index-url",
        "http://127.0.0.1:3/simple",
        "--find-links",
        "/wheels/a",
        "--find-links",
        "/wheels/b",
    ]
    config = tmp_path / "config.toml"
    config.write_text(
        'pip_index_url = "http://127.0.0.1:4/simple"\n'
        'pip_find_links = "/wheels/c"\n'
        'pip_extra_index_urls = ["http://127.0.0.1:5/simple"]\n'
        "pip_no_index = false\n"
    )
    from_file = ClientSettings.load(environ={}, config_path=config)
    assert from_file.pip_index_url == "http://127.0.0.1:4/simple"
    assert from_file.pip_find_links == ("/wheels/c",)
    assert from_file.pip_extra_index_urls == ("http://127.0.0.1:5/simple",)
    assert from_file.pip_no_index is False
    overridden = ClientSettings.load(
        environ={"MEDIGAN_PIP_FIND_LINKS": "/wheels/env"}, config_path=config
    )
    assert overridden.pip_find_links == ("/wheels/env",)
