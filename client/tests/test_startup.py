"""Start-up stays light: what importing the client and running a cached search load.

Timings live in ``benchmarks/startup.py``; these tests pin the cause instead, which does not
depend on the machine's load: the heavy modules a command does not need are never imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from medigan_client.cli import main

if TYPE_CHECKING:
    from conftest import FakeHub

HEAVY = ("pydantic", "httpx", "torch", "numpy", "PIL", "typer", "rich")


def _modules_after(code: str) -> set[str]:
    """The top-level modules loaded by a fresh interpreter that runs ``code``."""
    listing = "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"{code}\nimport json, sys\n{listing}"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    ["import medigan_client", "from medigan_client import Client", "import medigan_client.cli"],
)
def test_importing_the_client_loads_no_heavy_module(code: str) -> None:
    assert _modules_after(code).isdisjoint(HEAVY)


def test_a_cached_search_from_the_command_line_loads_no_heavy_module(
    tmp_path: Path,
    hub: FakeHub,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "no-config.toml"))
    base = ["--hub", hub.url, "--cache-dir", str(tmp_path / "cache")]
    assert main([*base, "sync"]) == 0
    capsys.readouterr()
    code = (
        "from medigan_client.cli import main\n"
        f"assert main({[*base, '--offline', 'search', 'zoo']!r}) == 0"
    )
    loaded = _modules_after(code)
    assert loaded.isdisjoint(HEAVY), loaded & set(HEAVY)
