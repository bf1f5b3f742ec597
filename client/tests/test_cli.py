"""The command line: output formats, and one clear ``error:`` line with exit status 1 on errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_catalog.medigan_compat import load_global_json
from medigan_client.cli import main

if TYPE_CHECKING:
    from conftest import FakeHub

GLOBAL_JSON = Path(__file__).resolve().parents[3] / "shared" / "anchors" / "medigan" / "global.json"


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "no-config.toml"))
    for name in ("MEDIGAN_HUB_URL", "MEDIGAN_TOKEN", "MEDIGAN_CACHE_DIR", "MEDIGAN_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def _run(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, cache: Path, *args: str
) -> tuple[int, str, str]:
    code = main(["--hub", hub.url, "--token", hub.state.token, "--cache-dir", str(cache), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _serve_medigan_catalogue(hub: FakeHub) -> None:
    if not GLOBAL_JSON.is_file():
        pytest.skip(f"{GLOBAL_JSON} is not available")
    for card in load_global_json(GLOBAL_JSON).cards:
        hub.state.releases.append(
            {
                "model_id": card.model_id,
                "version": card.version,
                "published_at": "2022-01-01T00:00:00+00:00",
                "card": card.to_json(),
            }
        )


def test_sync_then_search_with_medigan_semantics(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, tmp_path: Path
) -> None:
    _serve_medigan_catalogue(hub)
    code, out, _ = _run(capsys, hub, tmp_path / "c", "sync")
    assert code == 0
    assert "serial 1, 23 releases (updated)" in out
    code, out, _ = _run(
        capsys,
        hub,
        tmp_path / "c",
        "search",
        "mammography",
        "dcgan",
        "--operator",
        "AND",
        "--medigan-semantics",
    )
    assert code == 0
    assert [line.split("\t")[0] for line in out.splitlines()] == [
        "medigan/00001_DCGAN_MMG_CALC_ROI",
        "medigan/00002_DCGAN_MMG_MASS_ROI",
        "medigan/00005_DCGAN_MMG_MASS_ROI",
    ]
    code, out, _ = _run(capsys, hub, tmp_path / "c", "search", "mammo", "dcgan")
    ids = [line.split("\t")[0] for line in out.splitlines()]
    assert ids[:3] == [
        "medigan/00001_DCGAN_MMG_CALC_ROI",
        "medigan/00002_DCGAN_MMG_MASS_ROI",
        "medigan/00005_DCGAN_MMG_MASS_ROI",
    ]
    code, out, _ = _run(capsys, hub, tmp_path / "c", "rank", "--metric", "FID")
    assert code == 0
    first_id, first_value, _title = out.splitlines()[0].split("\t")
    assert first_id.startswith("medigan/") and float(first_value) > 0


def test_show_prints_summary_and_provenance(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, tmp_path: Path, published: dict[str, Any]
) -> None:
    code, out, _ = _run(capsys, hub, tmp_path / "c", "show", "zoo/noise-8")
    assert code == 0
    assert out.splitlines()[0] == "zoo/noise-8@1.0.0"
    assert "licence:     MIT" in out
    assert "authors:     Test Author" in out
    assert "argument:    brightness (int, default 128)" in out


def test_generate_writes_images_and_manifest_also_with_the_hub_down(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, tmp_path: Path, published: dict[str, Any]
) -> None:
    args = ("generate", "zoo/noise-8", "-n", "5", "--batch-size", "2", "--device", "cpu")
    code, out, err = _run(
        capsys, hub, tmp_path / "c", *args, "-o", str(tmp_path / "one"), "--arg", "brightness=90"
    )
    assert code == 0, err
    assert "wrote 5 images of zoo/noise-8@1.0.0" in out
    assert len(list((tmp_path / "one").glob("*.png"))) == 5
    lines = (tmp_path / "one" / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == [0, 1, 2, 3, 4]

    hub.server.shutdown()
    hub.server.server_close()
    code, _, err = _run(capsys, hub, tmp_path / "c", *args, "-o", str(tmp_path / "two"))
    assert code == 0, err
    assert len(list((tmp_path / "two").glob("*.png"))) == 5


def test_errors_are_one_line_with_status_1(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, tmp_path: Path, published: dict[str, Any]
) -> None:
    code, out, err = _run(capsys, hub, tmp_path / "c", "show", "zoo/nothing")
    assert code == 1
    assert out == ""
    assert err.startswith("error: no model zoo/nothing in the catalogue")
    assert err.count("\n") == 1
    assert "Traceback" not in err

    code, _, err = _run(
        capsys,
        hub,
        tmp_path / "c",
        "generate",
        "zoo/noise-8",
        "-n",
        "1",
        "-o",
        str(tmp_path / "o"),
        "--arg",
        "contrast=2",
    )
    assert code == 1
    assert (
        err
        == "error: zoo/noise-8 has no generation argument 'contrast'; its arguments: brightness\n"
    )


def test_offline_generation_of_an_uncached_medigan_model_is_one_error_line(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, tmp_path: Path
) -> None:
    _serve_medigan_catalogue(hub)
    assert _run(capsys, hub, tmp_path / "c", "sync")[0] == 0
    code, out, err = _run(
        capsys,
        hub,
        tmp_path / "c",
        "--offline",
        "generate",
        "medigan/00001_DCGAN_MMG_CALC_ROI",
        "-n",
        "2",
        "-o",
        str(tmp_path / "o"),
    )
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(
        "error: offline mode: the package of medigan/00001_DCGAN_MMG_CALC_ROI@0.0.1 is not in "
        "the cache"
    )


def test_unreachable_external_package_names_the_url(
    capsys: pytest.CaptureFixture[str],
    hub: FakeHub,
    tmp_path: Path,
    make_card: Callable[..., dict[str, Any]],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://localhost:{port}/record/1/files/x.zip?download=1"
    card = make_card(model_id="medigan/00042_X", version="0.0.1")
    card["artifacts"] = [{"role": "package", "filename": "x.zip", "urls": [url]}]
    hub.state.releases.append(
        {"model_id": card["model_id"], "version": "0.0.1", "published_at": None, "card": card}
    )
    code, _, err = _run(capsys, hub, tmp_path / "c", "download", "medigan/00042_X")
    assert code == 1
    assert err.startswith(f"error: cannot reach the artifact of medigan/00042_X@0.0.1 at {url}: ")
    assert err.rstrip().endswith("this release's package is hosted outside the hub")


def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, tmp_path: Path
) -> None:
    code, _, err = _run(capsys, hub, tmp_path / "c", "generate", "zoo/x")
    assert code == 2
    assert "Missing option" in err
    code, _, err = _run(capsys, hub, tmp_path / "c", "search", "x", "--operator", "NAND")
    assert code == 2


def test_console_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "MEDIGAN_CONFIG": str(tmp_path / "none.toml")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "medigan_client.cli",
            "--hub",
            f"http://127.0.0.1:{port}",
            "--cache-dir",
            str(tmp_path / "c"),
            "sync",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: hub unreachable at http://127.0.0.1:{port}")
    assert done.stderr.count("\n") == 1
