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

Several hubs (docs/client-federation.md): the config file may list ``[[hubs]]`` tables in
priority order, each with ``name``, ``url`` and optionally ``token`` (sent to that hub only),
``key`` (a key id or a list of them: the hub's signing keys to trust) and ``verify`` (``false``
for a hub that signs nothing), and a ``[pins]`` table mapping ``ns/name`` to the hub a model is
taken from. The single-hub settings (``hub_url``, ``token``, ``MEDIGAN_HUB_URL``, ``--hub``) are
the one-hub case: such a hub is named after its ``host:port`` (:func:`hub_name_for`), and the
top-level keys ``key`` and ``verify`` apply to it. A hub named by an argument or the environment
(a URL, or the name of a configured hub) replaces the list for that command.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import platformdirs

from medigan_client.errors import BadRequestError

DEFAULT_HUB_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_SECONDS = 30.0
APP_NAME = "medigan-client"

# Where the hub URL of a ClientSettings came from, highest precedence first.
HubUrlSource = Literal["argument", "environment", "config", "default"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


_KEY_ID = re.compile(r"^ed25519:[0-9a-f]{32}$")
# What a hub's name may hold: it prefixes model references as ``name:ns/name``, so no ``/``.
_HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


def hub_name_for(hub_url: str) -> str:
    """The name of a hub given by URL only: its ``host:port`` (``default`` when it has none)."""
    parts = urlsplit(hub_url)
    if not parts.hostname:
        return "default"
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.hostname.lower()}:{port}" if port else parts.hostname.lower()


@dataclass(frozen=True)
class HubEntry:
    """One configured hub: its name, URL, token, the key ids pinned in the config, and whether
    its signatures are verified (``verify = false`` only for hubs that sign nothing)."""

    name: str
    url: str
    token: str | None = field(default=None, repr=False)
    keys: tuple[str, ...] = ()
    verify: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", self.url.rstrip("/"))
        if not _HUB_NAME.fullmatch(self.name):
            raise BadRequestError(
                f"{self.name!r} is not a hub name: letters, digits, '.', '_', '-' and ':'"
            )
        for key in self.keys:
            if not _KEY_ID.fullmatch(key):
                raise BadRequestError(
                    f"the key of hub {self.name!r} must be ed25519: and 32 hex digits, not {key!r}"
                )


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
    # The hub of hub_url: its name ("" derives it from the URL), the key ids the config pins
    # for it, and whether its signatures are verified.
    hub_name: str = ""
    hub_keys: tuple[str, ...] = ()
    verify: bool = True
    # Several hubs in priority order (the config's [[hubs]]); empty for the one hub above. When
    # set, hub_url and token are the first hub's, for the commands that talk to one hub.
    hubs: tuple[HubEntry, ...] = ()
    # ns/name -> the name of the hub a model is taken from (the config's [pins]).
    pins: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A trailing slash would double up when paths are joined onto the base URL.
        object.__setattr__(self, "hub_url", self.hub_url.rstrip("/"))
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        if not self.hub_name:
            object.__setattr__(self, "hub_name", hub_name_for(self.hub_url))
        object.__setattr__(self, "pins", dict(self.pins))

    def hub_entries(self) -> tuple[HubEntry, ...]:
        """Every hub of these settings in priority order (one entry for a single hub)."""
        if self.hubs:
            return self.hubs
        entry = HubEntry(
            name=self.hub_name,
            url=self.hub_url,
            token=self.token,
            keys=self.hub_keys,
            verify=self.verify,
        )
        return (entry,)

    def with_hub(self, hub: str, source: HubUrlSource = "argument") -> ClientSettings:
        """These settings for one hub given by name (a configured hub) or URL.

        A configured hub brings its name, token, keys and verification; another URL keeps the
        token (as ``--hub URL`` always did) and this hub's keys and verification only when it
        is the same hub.
        """
        for entry in self.hub_entries():
            if hub in (entry.name, entry.url):
                return replace(self.for_hub(entry), hub_url_source=source)
        url = hub.rstrip("/")
        same = url == self.hub_url
        return replace(
            self,
            hub_url=url,
            hub_url_source=source,
            hub_name="" if not same else self.hub_name,
            hub_keys=self.hub_keys if same else (),
            verify=self.verify if same else True,
            hubs=(),
        )

    def for_hub(self, entry: HubEntry) -> ClientSettings:
        """Settings of one of the hubs: its URL, name, token, keys and verification only."""
        return replace(
            self,
            hub_url=entry.url,
            token=entry.token,
            hub_name=entry.name,
            hub_keys=entry.keys,
            verify=entry.verify,
            hubs=(),
        )

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
        entries = _hub_entries(file_values.get("hubs"), path)
        pins = _pins(file_values.get("pins"), entries, path)
        chosen: HubEntry | None = None
        several: tuple[HubEntry, ...] = ()
        explicit_token = str(token or env.get("MEDIGAN_TOKEN") or "") or None
        if hub_source in ("argument", "environment") and raw_hub:
            # --hub / MEDIGAN_HUB_URL may name a configured hub, by name or URL.
            wanted = str(raw_hub).rstrip("/")
            named = [e for e in entries if wanted in (e.name, e.url)]
            if named:
                chosen = _with_tokens(
                    (named[0],),
                    explicit=explicit_token,
                    stored=file_values.get("token"),
                    stored_hub=token_hub,
                )[0]
        elif entries:
            several = _with_tokens(
                entries,
                explicit=explicit_token,
                stored=file_values.get("token"),
                stored_hub=token_hub,
            )
            chosen = several[0]
            hub_source = "config"
        if chosen is not None:
            raw_hub, raw_token = chosen.url, chosen.token
            hub_name, hub_keys, verify = chosen.name, chosen.keys, chosen.verify
        else:
            # The top-level key and verify belong to the config file's hub_url (or the default).
            config_hub = str(file_values.get("hub_url") or DEFAULT_HUB_URL).rstrip("/")
            applies = (str(raw_hub).rstrip("/") if raw_hub else DEFAULT_HUB_URL) == config_hub
            hub_name = ""
            hub_keys = _key_ids(file_values.get("key"), "key") if applies else ()
            raw_verify = file_values.get("verify")
            verify = _as_bool(raw_verify, "verify") if applies and raw_verify is not None else True
        return cls(
            hub_url=str(raw_hub) if raw_hub else DEFAULT_HUB_URL,
            hub_url_source=hub_source if raw_hub else "default",
            hub_name=hub_name,
            hub_keys=hub_keys,
            verify=verify,
            hubs=several,
            pins=pins,
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
        "hubs",
        "pins",
        "key",
        "verify",
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


_HUB_KEYS = frozenset({"name", "url", "token", "key", "verify"})


def _hub_entries(value: object, path: Path) -> tuple[HubEntry, ...]:
    """The ``[[hubs]]`` tables of the config file, checked: names and URLs unique."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadRequestError(f"hubs in {path} must be a list of tables ([[hubs]])")
    entries: list[HubEntry] = []
    for number, table in enumerate(value, start=1):
        unknown = sorted(set(table) - _HUB_KEYS)
        if unknown:
            raise BadRequestError(
                f"unknown keys in hub {number} of {path}: {', '.join(unknown)}; "
                f"known keys are {', '.join(sorted(_HUB_KEYS))}"
            )
        name, url = table.get("name"), table.get("url")
        if not isinstance(name, str) or not isinstance(url, str) or not url.strip():
            raise BadRequestError(f"hub {number} of {path} needs a name and a url")
        token = table.get("token")
        if token is not None and not isinstance(token, str):
            raise BadRequestError(f"the token of hub {name!r} in {path} must be a string")
        raw_verify = table.get("verify")
        entries.append(
            HubEntry(
                name=name,
                url=url.strip(),
                token=token or None,
                keys=_key_ids(table.get("key"), f"key of hub {name!r}"),
                verify=_as_bool(raw_verify, "verify") if raw_verify is not None else True,
            )
        )
    for attribute in ("name", "url"):
        seen = [getattr(entry, attribute) for entry in entries]
        doubled = sorted({item for item in seen if seen.count(item) > 1})
        if doubled:
            raise BadRequestError(f"two hubs in {path} have the same {attribute}: {doubled[0]}")
    return tuple(entries)


def _with_tokens(
    entries: tuple[HubEntry, ...],
    *,
    explicit: str | None,
    stored: object,
    stored_hub: object,
) -> tuple[HubEntry, ...]:
    """The hubs with their tokens: their own; a ``--token``/``MEDIGAN_TOKEN`` for the first
    hub; the config's top-level token for the hub that issued it (``token_hub_url``) only."""
    issuer = str(stored_hub).rstrip("/") if stored_hub else None
    result = []
    for position, entry in enumerate(entries):
        token = entry.token
        if position == 0 and explicit:
            token = explicit
        elif token is None and stored and issuer == entry.url:
            token = str(stored)
        result.append(replace(entry, token=token))
    return tuple(result)


def _pins(value: object, entries: tuple[HubEntry, ...], path: Path) -> dict[str, str]:
    """The ``[pins]`` table: ``ns/name`` -> the name of a configured hub."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise BadRequestError(f'pins in {path} must be a table of "ns/name" = "hub name"')
    names = {entry.name for entry in entries}
    for model_id, hub in value.items():
        if "/" not in model_id:
            raise BadRequestError(f"the pin {model_id!r} in {path} is not ns/name")
        if names and hub not in names:
            raise BadRequestError(
                f"the pin {model_id!r} in {path} names hub {hub!r}, which is not configured; "
                f"hubs: {', '.join(sorted(names))}"
            )
    return dict(value)


def _key_ids(value: object, name: str) -> tuple[str, ...]:
    """A key id or a list of them (``ed25519:`` and 32 hex digits each)."""
    keys = _as_strings(value, name)
    for key in keys:
        if not _KEY_ID.fullmatch(key):
            raise BadRequestError(f"{name} must be ed25519: and 32 hex digits, not {key!r}")
    return keys


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
