"""A failed dry run before a push: the short form by default, the full traceback on request.

The broken package is a zoo model whose weights were deleted, the commonest real mistake: its
failure must name ``weights.safetensors`` in the package's terms, with no path of this machine.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from medigan_client.cli import main
from medigan_client.errors import GenerationFailedError
from medigan_client.push import push
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from conftest import FakeHub

ZOO_PACKAGE = Path(__file__).resolve().parents[2] / "zoo" / "chestxray_pca_64" / "package"
# An absolute path anywhere in a text.
_ABSOLUTE = re.compile(r"(?<![\w.<])/[\w.-]")
HEADLINE = (
    "FileNotFoundError: No such file or directory: weights.safetensors (package: __init__.py, line "
)


@pytest.fixture(autouse=True)
def _current_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The zoo package's requirements are installed here: the dry run needs no environment.
    monkeypatch.setenv("MEDIGAN_PUSH_USE_CURRENT_ENV", "1")
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "no-config.toml"))
    for name in ("MEDIGAN_HUB_URL", "MEDIGAN_TOKEN", "MEDIGAN_CACHE_DIR", "MEDIGAN_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def _without_weights(tmp_path: Path) -> Path:
    package = tmp_path / "chestxray-pca-64"
    shutil.copytree(ZOO_PACKAGE, package)
    (package / "weights.safetensors").unlink()
    return package


def test_the_dry_run_error_has_both_forms(
    settings: ClientSettings, hub: FakeHub, tmp_path: Path
) -> None:
    package = _without_weights(tmp_path)

    with pytest.raises(GenerationFailedError) as info:
        push(settings, package)

    message = info.value.message
    assert message.startswith("the dry run failed, so nothing was uploaded: generation of ")
    assert HEADLINE in message
    assert "__init__.py, line" in message and "load_file(str(WEIGHTS_PATH))" in message
    assert not _ABSOLUTE.search(message), message
    assert "^" not in message and "Traceback" not in message
    traceback = info.value.traceback
    assert traceback is not None and traceback.startswith("Traceback (most recent call last):")
    assert f"{package}/weights.safetensors" in traceback and "safetensors/numpy.py" in traceback
    assert hub.state.pushes == []


def test_push_prints_the_short_form_and_the_traceback_only_with_verbose(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, tmp_path: Path
) -> None:
    package = _without_weights(tmp_path)
    common = ["--hub", hub.url, "--token", hub.state.token, "--cache-dir", str(tmp_path / "c")]

    code = main([*common, "push", str(package)])
    short = capsys.readouterr().err
    verbose_code = main([*common, "push", "--verbose", str(package)])
    verbose = capsys.readouterr().err

    assert code == verbose_code == 1
    error = short[short.index("error: ") :]
    assert error.startswith("error: the dry run failed, so nothing was uploaded: ")
    assert HEADLINE in error
    assert "\n  __init__.py, line" in error, "the package's frames, one per line"
    assert not _ABSOLUTE.search(error), error
    assert "Traceback" not in short and "^" not in short
    assert error in verbose
    full = verbose[verbose.index("full traceback:") :]
    assert "Traceback (most recent call last):" in full
    assert f"{package}/weights.safetensors" in full
    assert hub.state.pushes == []
