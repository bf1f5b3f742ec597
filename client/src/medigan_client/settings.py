"""Where the client's settings come from: explicit arguments, environment, config file, defaults.

Precedence, highest first: arguments given to :meth:`ClientSettings.load` (or the CLI's global
options), the environment (``MEDIGAN_HUB_URL``, ``MEDIGAN_TOKEN``, ``MEDIGAN_CACHE_DIR``,
``MEDIGAN_OFFLINE``, ``MEDIGAN_TIMEOUT``), a TOML config file (``MEDIGAN_CONFIG`` or
``<user config dir>/medigan-client/config.toml`` with keys ``hub_url``, ``token``, ``cache_dir``,
``offline``, ``timeout``), then the defaults below. :attr:`ClientSettings.hub_url_source` says
which of these gave the hub URL, so that a command can say which hub it uses and why.

The config file is also where ``medigan-client sync --hub URL`` records the hub it synced from
(:func:`record_hub_url`): the ``hub_url`` key is replaced (or added) in place, every other line
of the file is kept, and the file is replaced atomically. Later commands and ``Client()`` without
a hub URL then use that hub, unless the environment names another.

``medigan-client login`` stores the token it gets the same way (:func:`record_token`, with the
hub in the same write, also as ``token_hub_url``: the token is sent to that hub only, whichever
hub a later command names), and ``logout`` removes it. A file written with a token is 0600 from the
moment it exists, and a config folder the client creates is 0700.

The index that ``venv`` isolation installs a model's pinned requirements from:
``MEDIGAN_PIP_INDEX_URL``, ``MEDIGAN_PIP_EXTRA_INDEX_URLS`` (separated by whitespace),
``MEDIGAN_PIP_FIND_LINKS`` (separated by ``os.pathsep``) and ``MEDIGAN_PIP_NO_INDEX``, or the
config keys ``pip_index_url``, ``pip_extra_index_urls``, ``pip_find_links`` (a string or a list)
and ``pip_no_index``. When none is set, pip's own configuration applies.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import platformdirs

from medigan_client.errors import BadRequestError

DEFAULT_HUB_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_SECONDS = 30.0
APP_NAME = "medigan-client"

# Where the hub URL of a ClientSettings came from, highest precedence first.
HubUrlSource = Literal["argument", "environment", "config", "default"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def default_cache_dir() -> Path:
    """The per-user cache directory (never the working directory)."""
    return Path(platformdirs.user_cache_dir(APP_NAME))


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The config file the client reads: ``MEDIGAN_CONFIG`` or the per-user config.toml."""
    env = os.environ if environ is None else environ
    explicit = env.get("MEDIGAN_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


@dataclass(frozen=True)
class ClientSettings:
    """Resolved settings of one client: which hub, which token, which cache, online or not."""

    hub_url: str = DEFAULT_HUB_URL
    token: str | None = field(default=None, repr=False)
    cache_dir: Path = field(default_factory=default_cache_dir)
    offline: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    pip_index_url: str | None = None
    pip_extra_index_urls: tuple[str, ...] = ()
    pip_find_links: tuple[str, ...] = ()
    pip_no_index: bool = False
    # Which setting named the hub: an argument (the CLI's --hub), MEDIGAN_HUB_URL, the config
    # file, or DEFAULT_HUB_URL. Settings made directly count as given by argument.
    hub_url_source: HubUrlSource = field(default="argument", compare=False)

    def __post_init__(self) -> None:
        # A trailing slash would double up when paths are joined onto the base URL.
        object.__setattr__(self, "hub_url", self.hub_url.rstrip("/"))
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())

    @classmethod
    def load(
        cls,
        *,
        hub_url: str | None = None,
        token: str | None = None,
        cache_dir: Path | str | None = None,
        offline: bool | None = None,
        timeout: float | None = None,
        pip_index_url: str | None = None,
        pip_extra_index_urls: tuple[str, ...] | None = None,
        pip_find_links: tuple[str, ...] | None = None,
        pip_no_index: bool | None = None,
        environ: Mapping[str, str] | None = None,
        config_path: Path | None = None,
    ) -> ClientSettings:
        """Resolve settings: explicit arguments > environment > config file > defaults.

        ``environ`` and ``config_path`` default to ``os.environ`` and :func:`default_config_path`.
        A missing config file is fine; an unreadable or malformed one raises ``BadRequestError``.
        """
        env = os.environ if environ is None else environ
        path = config_path if config_path is not None else default_config_path(env)
        file_values = _read_config_file(path)

        def pick(explicit: object, env_name: str, key: str) -> object:
            if explicit is not None:
                return explicit
            if env.get(env_name):
                return env[env_name]
            return file_values.get(key)

        raw_hub = pick(hub_url, "MEDIGAN_HUB_URL", "hub_url")
        raw_token = pick(token, "MEDIGAN_TOKEN", "token")
        raw_cache = pick(cache_dir, "MEDIGAN_CACHE_DIR", "cache_dir")
        raw_offline = pick(offline, "MEDIGAN_OFFLINE", "offline")
        raw_timeout = pick(timeout, "MEDIGAN_TIMEOUT", "timeout")
        raw_index = pick(pip_index_url, "MEDIGAN_PIP_INDEX_URL", "pip_index_url")
        raw_no_index = pick(pip_no_index, "MEDIGAN_PIP_NO_INDEX", "pip_no_index")
        raw_extra = pick(
            pip_extra_index_urls, "MEDIGAN_PIP_EXTRA_INDEX_URLS", "pip_extra_index_urls"
        )
        if pip_extra_index_urls is None and env.get("MEDIGAN_PIP_EXTRA_INDEX_URLS"):
            # URLs hold colons, so the environment separates them by whitespace, as pip does.
            raw_extra = env["MEDIGAN_PIP_EXTRA_INDEX_URLS"].split()
        raw_links = pick(pip_find_links, "MEDIGAN_PIP_FIND_LINKS", "pip_find_links")
        if pip_find_links is None and env.get("MEDIGAN_PIP_FIND_LINKS"):
            raw_links = env["MEDIGAN_PIP_FIND_LINKS"].split(os.pathsep)
        hub_source: HubUrlSource = "default"
        if hub_url is not None:
            hub_source = "argument"
        elif env.get("MEDIGAN_HUB_URL"):
            hub_source = "environment"
        elif file_values.get("hub_url"):
            hub_source = "config"
        resolved_hub = str(raw_hub).rstrip("/") if raw_hub else DEFAULT_HUB_URL
        token_hub = file_values.get("token_hub_url")
        if (
            token is None
            and not env.get("MEDIGAN_TOKEN")
            and token_hub
            and str(token_hub).rstrip("/") != resolved_hub
        ):
            # The config file's token was issued by another hub (``login``, ``record_token``):
            # it is never sent to this one.
            raw_token = None
        return cls(
            hub_url=str(raw_hub) if raw_hub else DEFAULT_HUB_URL,
            hub_url_source=hub_source if raw_hub else "default",
            token=str(raw_token) if raw_token else None,
            cache_dir=Path(str(raw_cache)) if raw_cache else default_cache_dir(),
            offline=_as_bool(raw_offline, "offline") if raw_offline is not None else False,
            timeout=_as_float(raw_timeout) if raw_timeout is not None else DEFAULT_TIMEOUT_SECONDS,
            pip_index_url=str(raw_index) if raw_index else None,
            pip_extra_index_urls=_as_strings(raw_extra, "pip_extra_index_urls"),
            pip_find_links=_as_strings(raw_links, "pip_find_links"),
            pip_no_index=(
                _as_bool(raw_no_index, "pip_no_index") if raw_no_index is not None else False
            ),
        )


def recorded_hub_url(*, config_path: Path | None = None) -> str | None:
    """The hub URL the config file names (``None`` when it names none or does not exist)."""
    path = config_path if config_path is not None else default_config_path()
    value = _read_config_file(path).get("hub_url")
    return str(value).rstrip("/") if value else None


def recorded_token(*, config_path: Path | None = None) -> str | None:
    """The token the config file holds (``None`` when it holds none or does not exist)."""
    path = config_path if config_path is not None else default_config_path()
    value = _read_config_file(path).get("token")
    return str(value) if value else None


def _key_line(key: str) -> re.Pattern[str]:
    """The line that sets ``key`` at the top level of a TOML file (a plain ``key = ...``)."""
    return re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=.*$", re.MULTILINE)


def record_hub_url(hub_url: str, *, config_path: Path | None = None) -> Path:
    """Make ``hub_url`` the default hub in the config file; return the file's path.

    The ``hub_url`` line is replaced, or added when there is none; every other line (keys and
    comments) is kept as it was. The new text is checked to read back with the same other keys,
    written to a temporary file beside the config file and renamed over it, so a reader sees the
    old file or the new one, never half of one. ``config_path`` defaults to
    :func:`default_config_path`. A config file that cannot be read or written raises
    ``BadRequestError``.
    """
    url = hub_url.strip().rstrip("/")
    if not url:
        raise BadRequestError("cannot record an empty hub URL")
    path = config_path if config_path is not None else default_config_path()
    _update_config_file(path, {"hub_url": url}, private=False)
    return path


def record_token(
    token: str | None, *, hub_url: str | None = None, config_path: Path | None = None
) -> Path:
    """Store ``token`` in the config file (``None`` removes it); return the file's path.

    The ``token`` line is replaced, added or removed the way :func:`record_hub_url` edits the
    ``hub_url`` line, keeping every other line. With ``hub_url`` the hub is recorded in the same
    write, so no reader ever sees the new token beside another hub, and as ``token_hub_url``: a
    later ``sync --hub`` to another hub, or ``--hub``/``MEDIGAN_HUB_URL`` naming one, never sends
    this token there. Whatever the file's mode was,
    the new file is readable by its owner only (0600; it is created so, never widened for a
    moment), and a folder the client creates for it is 0700. A config file that cannot be read or
    written raises ``BadRequestError``.
    """
    path = config_path if config_path is not None else default_config_path()
    changes: dict[str, str | None] = {
        "token": token.strip() if token else None,
        "token_hub_url": None,
    }
    if changes["token"] == "" and token is not None:
        raise BadRequestError("cannot record an empty token")
    if hub_url is not None:
        url = hub_url.strip().rstrip("/")
        if not url:
            raise BadRequestError("cannot record an empty hub URL")
        changes["hub_url"] = url
        if token is not None:
            # The hub that issued the token: it goes to no other (ClientSettings.load).
            changes["token_hub_url"] = url
    _update_config_file(path, changes, private=True)
    return path


def _replacement(line: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: line


def _update_config_file(path: Path, changes: Mapping[str, str | None], *, private: bool) -> None:
    """Set (or, for ``None``, remove) top-level string keys, editing lines in place.

    Each key's line is replaced, removed or appended; every other line is kept. The result must
    read back as the old values with the changes applied; when a line edit cannot achieve that
    (a multi-line value, an inline table), the file is written again from its values instead.
    ``private`` makes the new file 0600 whatever the old one's mode was.
    """
    before = _read_config_file(path)
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"cannot read the config file {path}: {exc}") from exc
    expected: dict[str, object] = dict(before)
    updated = text
    for key, value in changes.items():
        pattern = _key_line(key)
        if value is None:
            expected.pop(key, None)
            # The line goes with its line break, so no blank line is left behind.
            updated = re.sub(rf"{pattern.pattern}\n?", "", updated, flags=re.MULTILINE)
            continue
        expected[key] = value
        # A JSON string is a valid TOML basic string (the same escapes, never "\/" from
        # json.dumps).
        line = f"{key} = {json.dumps(value)}"
        if pattern.search(updated):
            # A replacement function: the line is inserted as it is, backslashes included.
            updated = pattern.sub(_replacement(line), updated, count=1)
        else:
            separator = "" if not updated or updated.endswith("\n") else "\n"
            updated = updated + separator + line + "\n"
    try:
        after = tomllib.loads(updated)
    except tomllib.TOMLDecodeError:
        after = {}
    if after != expected:
        # The key sat somewhere a line edit cannot reach (a multi-line value, an inline table):
        # the file is written again from its values instead, which keeps every key.
        updated = _render_toml(expected)
    _write_text_atomically(path, updated, private=private)


def _render_toml(values: Mapping[str, object]) -> str:
    lines = []
    for key, value in values.items():
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, int | float):
            rendered = repr(value)
        elif isinstance(value, list | tuple):
            rendered = "[" + ", ".join(json.dumps(str(item)) for item in value) + "]"
        else:
            rendered = json.dumps(str(value))
        lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n"


def _write_text_atomically(path: Path, text: str, *, private: bool = False) -> None:
    """Write ``text`` to a temporary sibling and rename it over ``path``.

    The temporary file is created 0600 (mkstemp), which suits a file that may hold a token; a
    replaced file keeps its mode unless ``private``. Folders the client creates are 0700.
    """
    try:
        _make_private_folders(path.parent)
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        temporary = Path(name)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            if path.exists() and not private:
                # Keep the mode of the file being replaced (it holds no token of ours).
                temporary.chmod(path.stat().st_mode & 0o777)
            temporary.replace(path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise BadRequestError(f"cannot write the config file {path}: {exc}") from exc


def _make_private_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each 0700 (a config folder holds tokens).

    Folders that exist keep their mode: the user may have chosen it.
    """
    missing: list[Path] = []
    current = folder
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        # mkdir's mode is masked by the umask, which can only remove bits: never wider than 0700.
        directory.mkdir(mode=0o700, exist_ok=True)


def _read_config_file(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadRequestError(f"cannot read the config file {path}: {exc}") from exc
    known = {"hub_url", "token", "token_hub_url", "cache_dir", "offline", "timeout"} | {
        "pip_index_url",
        "pip_extra_index_urls",
        "pip_find_links",
        "pip_no_index",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise BadRequestError(
            f"unknown keys in the config file {path}: {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(known))}"
        )
    return dict(data)


def _as_bool(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadRequestError(f"{name} must be true or false (1/0), not {value!r}")


def _as_strings(value: object, name: str) -> tuple[str, ...]:
    # A config file may give one string or a list; the environment is split by the caller.
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return tuple(item for item in value if item.strip())
    raise BadRequestError(f"{name} must be a string or a list of strings, not {value!r}")


def _as_float(value: object) -> float:
    try:
        result = float(str(value))
    except ValueError as exc:
        raise BadRequestError(f"timeout must be a number of seconds, not {value!r}") from exc
    if result <= 0:
        raise BadRequestError(f"timeout must be positive, not {value!r}")
    return result
