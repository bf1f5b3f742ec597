"""Settings precedence: explicit arguments > environment > config file > defaults; recording
the default hub and the token in the config file."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from medigan_client.errors import BadRequestError
from medigan_client.settings import (
    DEFAULT_HUB_URL,
    ClientSettings,
    record_hub_url,
    record_token,
    recorded_hub_url,
    recorded_token,
)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_use_the_user_cache_dir_not_the_working_directory(tmp_path: Path) -> None:
    settings = ClientSettings.load(environ={}, config_path=tmp_path / "missing.toml")
    assert settings.hub_url == DEFAULT_HUB_URL
    assert settings.token is None
    assert settings.offline is False
    assert settings.cache_dir == Path(platformdirs.user_cache_dir("medigan-client"))
    assert settings.cache_dir.is_absolute()


def test_config_file_is_read(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        'hub_url = "http://file:1"\ntoken = "file-token"\ncache_dir = "/tmp/c"\noffline = true\n',
    )
    settings = ClientSettings.load(environ={}, config_path=path)
    assert settings.hub_url == "http://file:1"
    assert settings.token == "file-token"
    assert settings.cache_dir == Path("/tmp/c")
    assert settings.offline is True


def test_environment_beats_config_file_and_arguments_beat_environment(tmp_path: Path) -> None:
    path = _config(tmp_path, 'hub_url = "http://file:1"\ntoken = "file-token"\noffline = true\n')
    env = {
        "MEDIGAN_HUB_URL": "http://env:2/",
        "MEDIGAN_TOKEN": "env-token",
        "MEDIGAN_OFFLINE": "0",
        "MEDIGAN_CACHE_DIR": str(tmp_path / "env-cache"),
    }
    from_env = ClientSettings.load(environ=env, config_path=path)
    assert from_env.hub_url == "http://env:2"
    assert from_env.token == "env-token"
    assert from_env.offline is False
    assert from_env.cache_dir == tmp_path / "env-cache"

    explicit = ClientSettings.load(
        hub_url="http://arg:3", token="arg-token", offline=True, environ=env, config_path=path
    )
    assert explicit.hub_url == "http://arg:3"
    assert explicit.token == "arg-token"
    assert explicit.offline is True
    assert explicit.cache_dir == tmp_path / "env-cache"


def test_medigan_config_names_the_config_file(tmp_path: Path) -> None:
    path = _config(tmp_path, 'hub_url = "http://named:4"\n')
    settings = ClientSettings.load(environ={"MEDIGAN_CONFIG": str(path)})
    assert settings.hub_url == "http://named:4"


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes"])
def test_offline_environment_values(value: str, tmp_path: Path) -> None:
    settings = ClientSettings.load(
        environ={"MEDIGAN_OFFLINE": value}, config_path=tmp_path / "none.toml"
    )
    assert settings.offline is True


def test_malformed_values_are_reported(tmp_path: Path) -> None:
    with pytest.raises(BadRequestError, match="offline must be true or false"):
        ClientSettings.load(environ={"MEDIGAN_OFFLINE": "maybe"}, config_path=tmp_path / "x")
    bad = _config(tmp_path, "hub_url = \n")
    with pytest.raises(BadRequestError, match="cannot read the config file"):
        ClientSettings.load(environ={}, config_path=bad)
    unknown = _config(tmp_path, 'hub = "x"\n')
    with pytest.raises(BadRequestError, match="unknown keys"):
        ClientSettings.load(environ={}, config_path=unknown)


def test_token_is_not_shown_in_repr() -> None:
    assert "sekrit" not in repr(ClientSettings(token="sekrit"))


@pytest.mark.parametrize(
    ("environ", "config_text", "argument", "source", "url"),
    [
        ({}, "", None, "default", DEFAULT_HUB_URL),
        ({}, 'hub_url = "http://file:1"\n', None, "config", "http://file:1"),
        (
            {"MEDIGAN_HUB_URL": "http://env:2"},
            'hub_url = "http://file:1"\n',
            None,
            "environment",
            "http://env:2",
        ),
        ({"MEDIGAN_HUB_URL": "http://env:2"}, "", "http://arg:3", "argument", "http://arg:3"),
    ],
)
def test_the_hub_url_source_is_the_setting_that_won(
    tmp_path: Path,
    environ: dict[str, str],
    config_text: str,
    argument: str | None,
    source: str,
    url: str,
) -> None:
    settings = ClientSettings.load(
        hub_url=argument, environ=environ, config_path=_config(tmp_path, config_text)
    )
    assert (settings.hub_url, settings.hub_url_source) == (url, source)


def test_recording_the_hub_adds_the_key_and_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    text = '# my client\ntoken = "sekrit"\npip_find_links = [\n  "/wheels",\n]\n'
    path = _config(tmp_path, text)
    path.chmod(0o600)

    assert record_hub_url("http://127.0.0.1:8123/", config_path=path) == path

    assert path.read_text(encoding="utf-8") == text + 'hub_url = "http://127.0.0.1:8123"\n'
    assert path.stat().st_mode & 0o777 == 0o600
    assert recorded_hub_url(config_path=path) == "http://127.0.0.1:8123"
    loaded = ClientSettings.load(environ={}, config_path=path)
    assert (loaded.hub_url, loaded.hub_url_source, loaded.token) == (
        "http://127.0.0.1:8123",
        "config",
        "sekrit",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"], "no temporary file left"


def test_recording_the_hub_replaces_the_recorded_one_in_place(tmp_path: Path) -> None:
    path = _config(
        tmp_path, 'timeout = 5\nhub_url = "http://old:1"  # from sync\noffline = false\n'
    )
    record_hub_url("http://new:2", config_path=path)
    assert path.read_text(encoding="utf-8") == (
        'timeout = 5\nhub_url = "http://new:2"\noffline = false\n'
    )


def test_recording_the_hub_creates_a_private_config_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "config.toml"
    assert recorded_hub_url(config_path=path) is None
    record_hub_url("http://x:1", config_path=path)
    assert path.read_text(encoding="utf-8") == 'hub_url = "http://x:1"\n'
    assert path.stat().st_mode & 0o777 == 0o600


def test_recording_into_a_malformed_config_file_is_refused_and_leaves_it(tmp_path: Path) -> None:
    path = _config(tmp_path, "hub_url = \n")
    with pytest.raises(BadRequestError, match="cannot read the config file"):
        record_hub_url("http://x:1", config_path=path)
    assert path.read_text(encoding="utf-8") == "hub_url = \n"


def test_a_client_without_a_hub_url_uses_the_recorded_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medigan_client import Client

    path = tmp_path / "config.toml"
    monkeypatch.setenv("MEDIGAN_CONFIG", str(path))
    monkeypatch.delenv("MEDIGAN_HUB_URL", raising=False)
    record_hub_url("http://127.0.0.1:8123")
    with Client(cache_dir=tmp_path / "c") as recorded, Client(hub_url="http://h:9") as explicit:
        assert recorded.settings.hub_url == "http://127.0.0.1:8123"
        assert explicit.settings.hub_url == "http://h:9"


def test_recording_a_token_keeps_the_other_lines_and_makes_the_file_private(
    tmp_path: Path,
) -> None:
    path = _config(tmp_path, '# my settings\ncache_dir = "/tmp/c"\n')
    path.chmod(0o644)
    record_token("new-token", hub_url="http://hub:1/", config_path=path)
    assert path.read_text(encoding="utf-8") == (
        '# my settings\ncache_dir = "/tmp/c"\ntoken = "new-token"\n'
        'token_hub_url = "http://hub:1"\nhub_url = "http://hub:1"\n'
    )
    assert path.stat().st_mode & 0o777 == 0o600
    assert recorded_token(config_path=path) == "new-token"
    record_token("newer-token", config_path=path)
    assert path.read_text(encoding="utf-8").count("token =") == 1
    assert recorded_token(config_path=path) == "newer-token"


def test_removing_the_token_removes_its_line_only(tmp_path: Path) -> None:
    path = _config(tmp_path, 'hub_url = "http://hub:1"\ntoken = "old"\noffline = false\n')
    record_token(None, config_path=path)
    assert path.read_text(encoding="utf-8") == 'hub_url = "http://hub:1"\noffline = false\n'
    assert recorded_token(config_path=path) is None


def test_a_token_recorded_into_new_folders_is_private_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "home" / "config" / "medigan-client" / "config.toml"
    record_token("secret", config_path=path)
    assert path.stat().st_mode & 0o777 == 0o600
    for folder in (path.parent, path.parent.parent, path.parent.parent.parent):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    assert ClientSettings.load(environ={}, config_path=path).token == "secret"


def test_a_recorded_token_goes_only_to_the_hub_that_issued_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    record_token("issued-by-hub-1", hub_url="http://hub:1", config_path=path)

    same = ClientSettings.load(environ={}, config_path=path)
    other_by_argument = ClientSettings.load(hub_url="http://other:2", environ={}, config_path=path)
    other_by_env = ClientSettings.load(
        environ={"MEDIGAN_HUB_URL": "http://other:2"}, config_path=path
    )
    explicit = ClientSettings.load(
        environ={"MEDIGAN_HUB_URL": "http://other:2", "MEDIGAN_TOKEN": "given"}, config_path=path
    )
    record_hub_url("http://other:2", config_path=path)  # sync --hub elsewhere
    after_sync_elsewhere = ClientSettings.load(environ={}, config_path=path)

    assert (same.hub_url, same.token) == ("http://hub:1", "issued-by-hub-1")
    assert other_by_argument.token is None
    assert other_by_env.token is None
    assert explicit.token == "given"
    assert (after_sync_elsewhere.hub_url, after_sync_elsewhere.token) == ("http://other:2", None)
    record_token(None, config_path=path)
    assert "token" not in path.read_text(encoding="utf-8")
