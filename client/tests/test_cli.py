"""The command line: output formats, one clear ``error:`` line with exit status 1 on errors, the
hub line and the recorded default hub, help, ``versions``, ``generate``'s output folder rules and
``init-package``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
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


def _without_hub_line(err: str) -> str:
    """stderr less the line that names the hub a command uses."""
    return "".join(line for line in err.splitlines(keepends=True) if not line.startswith("hub: "))


def _run(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, cache: Path, *args: str
) -> tuple[int, str, str]:
    """Run the CLI with --hub; stderr comes back without the hub line (checked to be right)."""
    code = main(["--hub", hub.url, "--token", hub.state.token, "--cache-dir", str(cache), *args])
    captured = capsys.readouterr()
    hub_lines = [line for line in captured.err.splitlines() if line.startswith("hub: ")]
    assert hub_lines[:1] in ([], [f"hub: {hub.url} (from --hub)"]), captured.err
    return code, captured.out, _without_hub_line(captured.err)


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


def test_show_prints_the_release_notes_line_by_line(
    capsys: pytest.CaptureFixture[str],
    hub: FakeHub,
    tmp_path: Path,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: Callable[..., dict[str, Any]],
) -> None:
    publish({**make_card(), "release_notes": "Sharper samples.\nFixed the seed grid."})

    code, out, _ = _run(capsys, hub, tmp_path / "c", "show", "zoo/noise-8")

    assert code == 0
    assert "  notes:       Sharper samples.\n               Fixed the seed grid.\n" in out


def test_show_names_the_pinned_doi_and_says_when_its_pin_broke(
    capsys: pytest.CaptureFixture[str],
    hub: FakeHub,
    tmp_path: Path,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: Callable[..., dict[str, Any]],
) -> None:
    publish(make_card())
    entry = hub.state.releases[-1]
    entry["pin"] = {
        "doi": "10.5072/zenodo.12",
        "concept_doi": "10.5072/zenodo.11",
        "broken": False,
        "checked_at": "2026-01-02T03:04:00+00:00",
    }
    code, intact, _ = _run(capsys, hub, tmp_path / "c", "show", "zoo/noise-8")
    entry["pin"] = {**entry["pin"], "broken": True, "note": "w.zip changed: md5 a is now b"}
    hub.state.serial += 1
    _run(capsys, hub, tmp_path / "c", "sync")
    _, broken, _ = _run(capsys, hub, tmp_path / "c", "show", "zoo/noise-8")

    assert code == 0
    assert (
        "  pinned DOI:  10.5072/zenodo.12 (its record holds this release, all versions "
        "10.5072/zenodo.11, checked 2026-01-02 03:04)"
    ) in intact
    assert "  pinned DOI:  10.5072/zenodo.12 (PIN BROKEN, checked 2026-01-02 03:04)" in broken
    assert "  pin broken:  w.zip changed: md5 a is now b" in broken


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
    hub_line, error_line = done.stderr.splitlines()
    assert hub_line == f"hub: http://127.0.0.1:{port} (from --hub)"
    assert error_line.startswith(f"error: hub unreachable at http://127.0.0.1:{port}")
    assert not (tmp_path / "none.toml").exists(), "a failed sync records no default hub"


# -- help -------------------------------------------------------------------------------------


def _help(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main([*args, "--help"]) == 0
    return capsys.readouterr().out


def _command_paths() -> list[tuple[str, ...]]:
    from medigan_client.cli import app

    paths: list[tuple[str, ...]] = []
    for name, command in app.commands.items():
        paths.append((name,))
        if isinstance(command, click.Group):
            paths.extend((name, sub) for sub in command.commands)
    return paths


def test_every_command_help_ends_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    paths = _command_paths()
    assert {("versions",), ("init-package",), ("cache", "prune")} <= set(paths)
    for path in paths:
        text = _help(capsys, *path)
        example = text.rsplit("Example:\n", 1)
        assert len(example) == 2, f"{' '.join(path)} has no example"
        assert "medigan-client " in example[1].strip().splitlines()[0], path
    assert "Examples:\n    medigan-client sync --hub" in _help(capsys)


def test_help_renders_brackets_and_plain_flag_labels(capsys: pytest.CaptureFixture[str]) -> None:
    generate_help = _help(capsys, "generate")
    assert "generate [OPTIONS] ns/name[@version]" in generate_help
    assert "medigan-client[formats]" in generate_help
    assert "--resume  " in generate_help and "--overwrite  " in generate_help
    assert "--offline / --online" in _help(capsys)
    for path in _command_paths():
        assert "<bool>" not in _help(capsys, *path), path


def test_version_option_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    from medigan_client.version import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"medigan-client, version {__version__}\n"


# -- the default hub --------------------------------------------------------------------------


def test_sync_hub_is_recorded_and_later_commands_use_it(
    capsys: pytest.CaptureFixture[str],
    hub: FakeHub,
    tmp_path: Path,
    published: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("# my settings\ntimeout = 12.5\n", encoding="utf-8")
    monkeypatch.setenv("MEDIGAN_CONFIG", str(config))
    cache = ["--cache-dir", str(tmp_path / "c")]

    assert main([*cache, "sync", "--hub", hub.url + "/"]) == 0
    synced = capsys.readouterr()
    assert synced.out.startswith(f"catalogue of {hub.url}: serial 2, 1 releases")
    assert synced.err.splitlines() == [
        f"hub: {hub.url} (from --hub)",
        f"hub: {hub.url} is now the default hub (recorded in {config})",
    ]
    assert config.read_text(encoding="utf-8") == (
        f'# my settings\ntimeout = 12.5\nhub_url = "{hub.url}"\n'
    )

    assert main([*cache, "search", "noise"]) == 0
    searched = capsys.readouterr()
    assert searched.out.split("\t")[0] == "zoo/noise-8"
    assert searched.err == f"hub: {hub.url} (from config)\n"

    # Synced again from the same hub: nothing to record, nothing said about it.
    assert main([*cache, "--hub", hub.url, "sync"]) == 0
    assert capsys.readouterr().err == f"hub: {hub.url} (from --hub)\n"


def test_global_hub_before_sync_is_recorded_too(
    capsys: pytest.CaptureFixture[str],
    hub: FakeHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "config.toml"
    monkeypatch.setenv("MEDIGAN_CONFIG", str(config))
    assert main(["--hub", hub.url, "--cache-dir", str(tmp_path / "c"), "sync"]) == 0
    assert f'hub_url = "{hub.url}"' in config.read_text(encoding="utf-8")
    capsys.readouterr()
    # Other commands given --hub use it for themselves and record nothing.
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "other.toml"))
    assert main(["--hub", hub.url, "--cache-dir", str(tmp_path / "c"), "search", "x"]) == 0
    assert not (tmp_path / "other.toml").exists()


def test_the_hub_line_says_where_the_hub_came_from(
    capsys: pytest.CaptureFixture[str],
    hub: FakeHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = ["--cache-dir", str(tmp_path / "c"), "--offline"]
    assert main([*cache, "search", "x"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "hub: http://127.0.0.1:8000 (built-in default)"
    assert err[1].startswith("error: no catalogue of http://127.0.0.1:8000 in the cache")

    monkeypatch.setenv("MEDIGAN_HUB_URL", hub.url)
    assert main([*cache, "search", "x"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == f"hub: {hub.url} (from MEDIGAN_HUB_URL)"

    # The cache commands and init-package talk to no hub: no hub line.
    assert main([*cache, "cache", "ls"]) == 0
    assert "hub: " not in capsys.readouterr().err


# -- versions ---------------------------------------------------------------------------------


def test_versions_lists_releases_newest_first_and_marks_the_newest(
    capsys: pytest.CaptureFixture[str],
    hub: FakeHub,
    tmp_path: Path,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: Callable[..., dict[str, Any]],
) -> None:
    cards = [publish(make_card(version=version)) for version in ("1.0.0", "1.10.0", "1.2.0")]
    code, out, err = _run(capsys, hub, tmp_path / "c", "versions", "zoo/noise-8")
    assert code == 0, err
    digests = {card["version"]: card["artifacts"][0]["sha256"][:12] for card in cards}
    assert out.splitlines() == [
        f"1.10.0\tpublished\t2025-01-01\t{digests['1.10.0']}\tnewest",
        f"1.2.0\tpublished\t2025-01-01\t{digests['1.2.0']}",
        f"1.0.0\tpublished\t2025-01-01\t{digests['1.0.0']}",
    ]


def test_versions_of_an_unknown_model_exits_1_with_close_matches(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, tmp_path: Path, published: dict[str, Any]
) -> None:
    code, out, err = _run(capsys, hub, tmp_path / "c", "versions", "zoo/noise")
    assert (code, out) == (1, "")
    assert err.startswith("error: no model zoo/noise in the catalogue of ")
    assert err.rstrip().endswith("did you mean zoo/noise-8?")
    code, _, err = _run(capsys, hub, tmp_path / "c", "versions", "zoo/noise-8@1.0.0")
    assert code == 1
    assert err == "error: 'zoo/noise-8@1.0.0' names a version; write zoo/noise-8\n"


# -- generate: the output folder --------------------------------------------------------------


def test_generate_refuses_a_folder_with_output_unless_resume_or_overwrite(
    capsys: pytest.CaptureFixture[str], hub: FakeHub, tmp_path: Path, published: dict[str, Any]
) -> None:
    out_dir = tmp_path / "out"
    args = ("generate", "zoo/noise-8", "-n", "3", "--device", "cpu", "-o", str(out_dir))
    assert _run(capsys, hub, tmp_path / "c", *args)[0] == 0
    first = {path.name: path.stat().st_mtime_ns for path in out_dir.iterdir()}

    code, out, err = _run(capsys, hub, tmp_path / "c", *args)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: the output folder {out_dir} is not empty: choose an empty")
    assert "(--resume), or replace that run (--overwrite)" in err
    assert {path.name: path.stat().st_mtime_ns for path in out_dir.iterdir()} == first

    code, _, err = _run(capsys, hub, tmp_path / "c", *args, "--resume", "--overwrite")
    assert code == 2
    assert "--resume and --overwrite exclude each other" in err

    code, out, err = _run(capsys, hub, tmp_path / "c", *args[:3], "2", *args[4:], "--overwrite")
    assert code == 0, err
    assert "4 files of the previous run removed" in out
    assert sorted(path.name for path in out_dir.iterdir()) == [
        "000000.png",
        "000001.png",
        "manifest.jsonl",
    ]


# -- init-package -----------------------------------------------------------------------------


def test_init_package_writes_a_skeleton_and_refuses_a_non_empty_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "my_model"
    options = ["--model-id", "lab/cxr", "--modality", "CT", "--image-size", "32"]
    assert main(["init-package", str(target), *options]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        str(target / name)
        for name in ("__init__.py", "weights.safetensors", "card.json", "README.md")
    ]
    assert "hub: " not in captured.err
    card = json.loads((target / "card.json").read_text(encoding="utf-8"))
    assert (card["model_id"], card["output"]["height"], card["selection"]["modality"]) == (
        "lab/cxr",
        32,
        ["CT"],
    )

    (target / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["init-package", str(target)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {target} is not empty")
    assert main(["init-package", str(target), "--force", "--model-id", "lab/other"]) == 0
    assert json.loads((target / "card.json").read_text(encoding="utf-8"))["model_id"] == "lab/other"
    assert (target / "notes.txt").read_text(encoding="utf-8") == "mine"


# --- signing in, tokens, organisations, namespaces, visibility -----------------------------


def _config_in_new_folders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "home" / "medigan-client" / "config.toml"
    monkeypatch.setenv("MEDIGAN_CONFIG", str(path))
    return path


def _invoke(hub: FakeHub, tmp_path: Path, *args: str, stdin: str = "") -> Any:
    """Run the CLI through click's runner (for prompts and stdin) against the fake hub."""
    from click.testing import CliRunner

    from medigan_client.cli import app

    base = ["--hub", hub.url, "--cache-dir", str(tmp_path / "cache")]
    return CliRunner().invoke(app, [*base, *args], input=stdin)


def test_login_asks_for_the_password_and_stores_the_token_in_a_private_config_file(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config_in_new_folders(monkeypatch, tmp_path)
    result = _invoke(
        hub, tmp_path, "login", "--token-name", "laptop", "--days", "30",
        stdin="tester\ntester-password\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Password: " in result.stderr and "tester-password" not in result.output
    assert result.stdout.startswith(f"signed in to {hub.url} as tester (token 'laptop': ")
    created = next(t for t in hub.state.tokens.values() if t.name == "laptop")
    from medigan_client.settings import recorded_hub_url, recorded_token

    assert recorded_token(config_path=config) == created.key
    assert recorded_hub_url(config_path=config) == hub.url
    assert config.stat().st_mode & 0o777 == 0o600
    assert config.parent.stat().st_mode & 0o777 == 0o700
    # The next command needs neither --hub nor --token.
    assert main(["--cache-dir", str(tmp_path / "cache"), "whoami"]) == 0


def test_login_with_a_wrong_password_stores_nothing(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config_in_new_folders(monkeypatch, tmp_path)
    result = _invoke(hub, tmp_path, "login", "--username", "tester", stdin="nope\n")
    assert result.exit_code != 0
    assert not config.exists()


def test_login_with_token_checks_the_token_and_stores_it(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config_in_new_folders(monkeypatch, tmp_path)
    key = hub.state.add_token("tester", scopes=("read",), name="ci").key
    result = _invoke(hub, tmp_path, "login", "--with-token", stdin=f"{key}\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"signed in to {hub.url} as tester (scopes read; ")
    assert f'token = "{key}"' in config.read_text(encoding="utf-8")
    assert config.stat().st_mode & 0o777 == 0o600
    refused = _invoke(hub, tmp_path, "login", "--with-token", stdin="not-a-token\n")
    assert refused.exit_code != 0
    assert f'token = "{key}"' in config.read_text(encoding="utf-8")


def test_logout_revokes_the_stored_token_and_removes_it(
    hub: FakeHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = _config_in_new_folders(monkeypatch, tmp_path)
    token = hub.state.add_token("tester", name="laptop")
    config.parent.mkdir(parents=True)
    config.write_text(f'hub_url = "{hub.url}"\ntoken = "{token.key}"\n', encoding="utf-8")
    assert main(["logout", "--revoke"]) == 0
    assert capsys.readouterr().out == f"signed out: the token was removed from {config}\n"
    assert token.revoked_at is not None
    assert config.read_text(encoding="utf-8") == f'hub_url = "{hub.url}"\n'


def test_whoami_prints_user_hub_namespaces_organisations_and_the_token(
    hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.state.add_organisation("my-lab", {"tester": "maintainer"})
    key = hub.state.add_token("tester", scopes=("read", "push"), namespace="my-lab").key
    code = main(["--hub", hub.url, "--token", key, "whoami"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[:5] == [
        "user:          tester",
        f"hub:           {hub.url}",
        "namespace:     tester (where pushes go by default)",
        "namespaces:    tester, my-lab (where you may push)",
        "organisations: my-lab (maintainer)",
    ]
    assert out.splitlines()[5].startswith("token:         scopes read, push; namespace my-lab; ")


def test_token_create_prints_the_key_alone_on_stdout(
    hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        capsys, hub, tmp_path / "cache", "token", "create", "ci", "--scope", "read", "--days", "7"
    )
    assert code == 0, err
    created = next(t for t in hub.state.tokens.values() if t.name == "ci")
    assert out == f"{created.key}\n"
    assert created.scopes == ("read",)
    assert "its key is shown this once" in err
    code, out, _ = _run(capsys, hub, tmp_path / "cache", "token", "list")
    assert f"{created.id}\tci\t{created.key[:8]}...\tread\t-\t" in out
    assert _run(capsys, hub, tmp_path / "cache", "token", "revoke", str(created.id))[0] == 0
    assert created.revoked_at is not None


def test_a_push_refused_for_a_missing_scope_prints_the_code_and_a_hint(
    hub: FakeHub,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
) -> None:
    package = write_package(tmp_path / "pkg", make_card(model_id="tester/noise"))
    key = hub.state.add_token("tester", scopes=("read",)).key
    code = main(
        ["--hub", hub.url, "--token", key, "--cache-dir", str(tmp_path / "c"), "push", str(package)]
    )
    err = _without_hub_line(capsys.readouterr().err)
    assert code == 1
    assert err.startswith("error: pushing needs a token with the push scope (scope_missing); ")
    assert "medigan-client token create NAME --scope SCOPE" in err
    assert hub.state.pushes == []


def test_push_sends_the_visibility_chosen(
    hub: FakeHub,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
) -> None:
    package = write_package(tmp_path / "pkg", make_card(model_id="tester/noise"))
    code, _, err = _run(
        capsys, hub, tmp_path / "c", "push", str(package), "--visibility", "private"
    )
    assert code == 0, err
    assert hub.state.pushes[0]["visibility"] == b"private"
    assert hub.state.visibilities["tester/noise"]["visibility"] == "private"


def test_org_and_namespace_commands(
    hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.state.users["bob"] = "bob-password"
    cache = tmp_path / "cache"
    assert _run(capsys, hub, cache, "org", "create", "my-lab", "--title", "My lab")[0] == 0
    code, out, _ = _run(
        capsys, hub, cache, "org", "member", "add", "my-lab", "bob", "--role", "maintainer"
    )
    assert code == 0
    assert "  member:    bob\tmaintainer" in out.splitlines()
    assert _run(capsys, hub, cache, "org", "list")[1] == "my-lab\towner\tMy lab\n"
    code, out, _ = _run(capsys, hub, cache, "org", "member", "remove", "my-lab", "bob")
    assert "bob" not in out
    code, _, err = _run(capsys, hub, cache, "org", "create", "my-lab")
    assert (code, err) == (1, "error: my-lab is taken (namespace_taken)\n")
    assert _run(capsys, hub, cache, "namespace", "create", "scratch")[0] == 0
    code, out, _ = _run(capsys, hub, cache, "namespace", "list")
    assert out.splitlines() == [
        "tester\tuser tester",
        "scratch\tuser tester",
        "my-lab\torganisation my-lab",
    ]


def test_visibility_shows_sets_and_says_when_a_change_waits_for_a_reviewer(
    hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    hub.state.add_organisation("my-lab", {"tester": "owner"})
    assert _run(capsys, hub, cache, "visibility", "my-lab/model")[1] == "my-lab/model: public\n"
    code, out, _ = _run(capsys, hub, cache, "visibility", "my-lab/model", "private")
    assert (code, out) == (0, "my-lab/model: private\n")
    code, out, err = _run(
        capsys, hub, cache, "visibility", "my-lab/model", "public", "--note", "published"
    )
    assert code == 0
    assert "waits for a hub reviewer; until then it stays private" in err
    assert out.splitlines()[0] == "my-lab/model: private"
    assert out.splitlines()[1].startswith("  requested: public by tester; waits for a hub reviewer")


def test_the_access_choices_are_the_wire_values() -> None:
    from medigan_catalog.access import OrgRole, TokenScope, Visibility
    from medigan_client.cli import ROLE_NAMES, SCOPE_NAMES, VISIBILITY_NAMES

    assert tuple(TokenScope) == SCOPE_NAMES
    assert tuple(OrgRole) == ROLE_NAMES
    assert tuple(Visibility) == VISIBILITY_NAMES
