"""Private models end to end, driven from the CLI against a live demo hub (docs/access.md).

A contributor creates an organisation, adds a colleague as its reviewer and pushes a private
model; the colleague reviews it, syncs and generates. Another user's token and an anonymous
sync never see it, and the colleague's cache keeps its package readable only by them.
Runs on the embedded default (its own data directory, gunicorn and Celery worker).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_hub import REPO_ROOT, LiveHub, live_hub

pytestmark = pytest.mark.integration

CLI = Path(os.environ.get("VIRTUAL_ENV", REPO_ROOT / ".venv")) / "bin" / "medigan-client"
MODEL = "acme/private-noise"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    with live_hub(
        env={"MEDIGAN_SMOKE_TIMEOUT_SECONDS": "120"},
        data_dir=tmp_path_factory.mktemp("hub-private"),
        seed=["--skip-zoo"],
    ) as hub:
        yield hub


def _credentials(hub: LiveHub) -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = json.loads(
        (hub.data_dir / "demo-credentials.json").read_text(encoding="utf-8")
    )
    return loaded


def _cli(
    hub: LiveHub, home: Path, token: str | None, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MEDIGAN_HUB_URL": hub.url,
        "MEDIGAN_CACHE_DIR": str(home / "cache"),
        "MEDIGAN_CONFIG": str(home / "config.toml"),
    }
    env.pop("MEDIGAN_TOKEN", None)
    if token is not None:
        env["MEDIGAN_TOKEN"] = token
    done = subprocess.run(
        [str(CLI), *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"medigan-client {' '.join(args)}: {done.stdout}\n{done.stderr}")
    return done


def test_a_private_model_is_pushed_reviewed_and_generated_by_members_only(
    demo: LiveHub, tmp_path: Path
) -> None:
    tokens = {name: entry["token"] for name, entry in _credentials(demo).items()}
    homes = {name: tmp_path / name for name in ("contributor", "colleague", "visitor", "nobody")}
    for home in homes.values():
        home.mkdir()
    contributor, colleague = homes["contributor"], homes["colleague"]

    _cli(demo, contributor, tokens["contributor"], "org", "create", "acme", "--title", "Acme")
    _cli(
        demo,
        contributor,
        tokens["contributor"],
        "org",
        "member",
        "add",
        "acme",
        "colleague",
        "--role",
        "reviewer",
    )
    _cli(demo, contributor, tokens["contributor"], "init-package", "pkg", "--model-id", MODEL)
    pushed = _cli(
        demo,
        contributor,
        tokens["contributor"],
        "push",
        "pkg",
        "--visibility",
        "private",
        "--wait",
    )
    review = _cli(
        demo,
        colleague,
        tokens["colleague"],
        "review",
        f"{MODEL}@0.1.0",
        "--decision",
        "approve",
        "--note",
        "checked by a member",
    )
    _cli(demo, colleague, tokens["colleague"], "sync")
    generated = _cli(
        demo, colleague, tokens["colleague"], "generate", MODEL, "-n", "4", "-o", "out"
    )

    assert "in_review" in pushed.stdout + pushed.stderr
    assert "published" in review.stdout + review.stderr
    assert len(list((colleague / "out").glob("*.png"))) == 4, generated.stdout
    packages = [path for path in (colleague / "cache").rglob("*.zip")]
    assert packages
    for package in packages:
        assert stat.S_IMODE(package.stat().st_mode) == 0o600
        assert stat.S_IMODE(package.parent.stat().st_mode) == 0o700

    # Another user's token and an anonymous client: no trace of the model anywhere.
    visitor, nobody = homes["visitor"], homes["nobody"]
    _cli(demo, visitor, tokens["visitor"], "sync")
    _cli(demo, nobody, None, "sync")
    for home, token in ((visitor, tokens["visitor"]), (nobody, None)):
        found = _cli(demo, home, token, "search", "private-noise")
        shown = _cli(demo, home, token, "show", MODEL, check=False)
        assert "private-noise" not in found.stdout
        assert shown.returncode != 0
        assert "not_found" in shown.stderr or "no model" in shown.stderr.lower()
        cached = "\n".join(
            path.read_text(encoding="utf-8", errors="replace")
            for path in (home / "cache").rglob("*.json")
        )
        assert "private-noise" not in cached
