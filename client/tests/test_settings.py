"""Settings precedence: explicit arguments > environment > config file > defaults."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from medigan_client.errors import BadRequestError
from medigan_client.settings import DEFAULT_HUB_URL, ClientSettings


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
