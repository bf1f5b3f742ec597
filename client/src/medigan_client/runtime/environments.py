"""Package environments: the Python that runs a package, built from its card's requirements alone.

The hub's validation and evaluations, and the dry run of ``medigan-client push``, run a package
with the interpreter of a *package environment*, never with the running environment: whatever
the package imports, its card must declare (``runtime.dependencies``, and medigan's
``execution.dependencies`` for imported cards), or the import fails the same way it would on a
user's machine.

An environment is a virtual environment under ``<root>/envs/<key>/``, made from the base
interpreter (no system site-packages) and completed by pip outside any sandbox:

* **The shared base** (``<root>/base-<digest>/site/``): a folder of symbolic links to exactly
  the files of a fixed set of distributions of the running environment: the frameworks of
  :data:`~.dependencies.SHARED_HEAVY_PACKAGES` that are installed, numpy, what the client's
  child process needs to load and call a package (:data:`SUPPORT_DISTRIBUTIONS`), everything
  those require, and the import folders of ``medigan_client`` and ``medigan_catalog``. It is
  reached through a ``.pth`` file *after* the environment's own site-packages, so a version pip
  installs for the card shadows the base's. Nothing else of the running environment (its other
  distributions, its ``.pth`` files, its settings) is on the path.
* **The key** covers the card's requirements that the base does not satisfy (sorted), the
  Python, the platform, the base's digest and pip's options: two releases with the same
  requirements share one environment, and a card that asks for nothing beyond the base shares
  the environment without installed requirements, built once.
* **pip** runs with ``--python`` pointed at the environment (the running environment's pip;
  the environment has none of its own), with the configured index (``pip_index_options``),
  binary wheels only (``--only-binary :all:``: no contributed ``setup.py`` runs outside the
  sandbox) and never a direct URL. Requirements that only name a range are resolved once: the
  resolved set is written to ``requirements.lock`` beside the environment and its sha256 kept
  in the completion marker; later runs use the environment as built.
* **Building** happens under a file lock per key (a second process waits), and the marker
  ``medigan-environment.json`` is written last: a folder without it (a killed build) is deleted
  and built again, never used.

A requirement pip cannot install fails with :class:`EnvironmentBuildError`, whose message is
short and names it: ``dependencies: could not install <requirement>: <pip's reason>``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from medigan_catalog.schema import Card
from medigan_client.cache import write_atomic
from medigan_client.errors import GenerationFailedError
from medigan_client.runtime.dependencies import (
    SHARED_HEAVY_PACKAGES,
    card_requirements,
    is_shared_heavy,
    unsatisfied,
)
from medigan_client.runtime.venvs import pip_index_options, venv_python, venv_site_dir
from medigan_client.settings import ClientSettings

# What the child process imports to load and call a package (medigan_catalog's schema needs
# pydantic; legacy packages that save files are read back with pillow) and what
# ``medigan_client.package_support`` loads weights with (safetensors). numpy is here too: it is
# the protocol's array type. Installed ones only; their own requirements come along.
SUPPORT_DISTRIBUTIONS = ("numpy", "pydantic", "packaging", "platformdirs", "pillow", "safetensors")
# Import packages the child runs from; linked by folder, as an editable install has no files
# in site-packages to link.
RUNTIME_MODULES = ("medigan_client", "medigan_catalog")

MARKER_NAME = "medigan-environment.json"
LOCK_NAME = "requirements.lock"
PIP_LOG_NAME = "pip-install.log"
BASE_PTH = "medigan-base.pth"
# Installing a framework can take long; another process building the same environment waits.
BUILD_LOCK_TIMEOUT_SECONDS = 3600.0
PIP_TIMEOUT_SECONDS = 1800.0
# Set to 1 to run ``push``'s dry run with the running environment, as before (offline, or
# when the card's requirements cannot be installed from this machine).
DRY_RUN_OPT_OUT_VARIABLE = "MEDIGAN_PUSH_USE_CURRENT_ENV"
# Variables that would send pip's installation elsewhere or put other packages on the path.
_DROPPED_VARIABLES = (
    "PIP_TARGET",
    "PIP_PREFIX",
    "PIP_ROOT",
    "PIP_USER",
    "PIP_EDITABLE",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "VIRTUAL_ENV",
)
_REASON_CHARACTERS = 300


class EnvironmentBuildError(GenerationFailedError):
    """A package environment could not be built: a requirement pip could not install, a URL."""


@dataclass(frozen=True)
class SharedBase:
    """The folder of links to the running environment's shared distributions."""

    directory: Path
    digest: str
    links: tuple[tuple[str, Path], ...]
    distributions: tuple[tuple[str, str], ...]

    @property
    def site(self) -> Path:
        """The folder on ``sys.path``: one link per top-level name."""
        return self.directory / "site"


@dataclass(frozen=True)
class PackageEnvironment:
    """A built package environment: where it is, what pip installed, its lock's digest."""

    root: Path
    directory: Path
    base: SharedBase
    installed: tuple[str, ...]
    lock_digest: str

    @property
    def key(self) -> str:
        """The environment's folder name under ``<root>/envs``."""
        return self.directory.name

    @property
    def python(self) -> Path:
        """The environment's interpreter (a link to the base interpreter)."""
        return venv_python(self.directory)

    @property
    def lock_file(self) -> Path:
        """``requirements.lock``: every distribution the environment sees, ``name==version``."""
        return self.directory / LOCK_NAME

    def search_path(self) -> list[str]:
        """Where the environment finds distributions: its own site-packages, then the base."""
        return [str(venv_site_dir(self.directory)), str(self.base.site)]

    def describe(self) -> str:
        """One line for check messages and logs."""
        what = (
            f"installed {', '.join(self.installed)}"
            if self.installed
            else "the shared base alone (numpy, frameworks)"
        )
        return f"package environment {self.key}: {what}; lock sha256 {self.lock_digest}"


def _distribution_index() -> dict[str, importlib.metadata.Distribution]:
    found: dict[str, importlib.metadata.Distribution] = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), distribution)
    return found


def _requirements_of(distribution: importlib.metadata.Distribution) -> Iterable[str]:
    for text in distribution.requires or []:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        yield canonicalize_name(requirement.name)


def shared_distributions() -> dict[str, importlib.metadata.Distribution]:
    """The running environment's distributions that the base exposes (see the module doc)."""
    index = _distribution_index()
    wanted = [*sorted(SHARED_HEAVY_PACKAGES), *SUPPORT_DISTRIBUTIONS]
    chosen: dict[str, importlib.metadata.Distribution] = {}
    pending: list[str] = [canonicalize_name(name) for name in wanted]
    while pending:
        name = pending.pop()
        if name in chosen or name not in index:
            continue
        chosen[name] = index[name]
        pending.extend(_requirements_of(index[name]))
    return dict(sorted(chosen.items()))


def _top_level_entries(distribution: importlib.metadata.Distribution) -> dict[str, Path]:
    location = Path(str(distribution.locate_file("")))
    entries: dict[str, Path] = {}
    for file in distribution.files or []:
        parts = Path(str(file)).parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(".pth"):
            continue
        target = location / parts[0]
        if target.exists():
            entries.setdefault(parts[0], target)
    return entries


@functools.lru_cache(maxsize=4)
def _base_contents(
    search_path: tuple[str, ...],
) -> tuple[tuple[tuple[str, Path], ...], tuple[tuple[str, str], ...]]:
    del search_path  # the cache key: the running environment as this process sees it
    links: dict[str, Path] = {}
    distributions: list[tuple[str, str]] = []
    for name, distribution in shared_distributions().items():
        distributions.append((name, distribution.version))
        for entry, target in _top_level_entries(distribution).items():
            links.setdefault(entry, target.resolve())
    for module in RUNTIME_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise EnvironmentBuildError(f"dependencies: {module} is not importable here")
        links[module] = Path(spec.origin).resolve().parent
    return tuple(sorted(links.items())), tuple(distributions)


def _python_identity() -> dict[str, object]:
    return {
        "python": [platform.python_implementation(), platform.python_version()],
        "platform": [sys.platform, platform.machine()],
    }


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _build_lock(root: Path, name: str) -> FileLock:
    locks = root / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    return FileLock(str(locks / f"{name}.lock"), timeout=BUILD_LOCK_TIMEOUT_SECONDS)


def _acquired(lock: FileLock, what: str) -> FileLock:
    try:
        lock.acquire()
    except Timeout as exc:
        raise EnvironmentBuildError(
            f"dependencies: another process has been building {what} for more than "
            f"{BUILD_LOCK_TIMEOUT_SECONDS:g} s"
        ) from exc
    return lock


def shared_base_ensure(root: Path) -> SharedBase:
    """The shared base under ``root`` for the running environment, linked once."""
    links, distributions = _base_contents(tuple(sys.path))
    digest = _digest(
        {
            **_python_identity(),
            "links": [[name, str(target)] for name, target in links],
            "distributions": distributions,
        }
    )[:16]
    base = SharedBase(root / f"base-{digest}", digest, links, distributions)
    marker = base.directory / MARKER_NAME
    if marker.is_file():
        return base
    lock = _acquired(_build_lock(root, f"base-{digest}"), "the shared base")
    try:
        if not marker.is_file():
            shutil.rmtree(base.directory, ignore_errors=True)
            base.site.mkdir(parents=True)
            for name, target in links:
                (base.site / name).symlink_to(target, target_is_directory=target.is_dir())
            record = {"distributions": distributions, "links": len(links)}
            write_atomic(marker, json.dumps(record, indent=2).encode("utf-8"))
    finally:
        lock.release()
    return base


def _pip_environment() -> dict[str, str]:
    env = dict(os.environ)
    for name in _DROPPED_VARIABLES:
        env.pop(name, None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _pip_reason(lines: Sequence[str]) -> str:
    """pip's reason in one line: its first ``ERROR:`` line, else its last line."""
    for line in lines:
        stripped = line.strip()
        if stripped.lower().startswith("error:"):
            reason = stripped.split(":", 1)[1].strip()
            return reason[:_REASON_CHARACTERS]
    meaningful = [line.strip() for line in lines if line.strip()]
    return meaningful[-1][:_REASON_CHARACTERS] if meaningful else "pip gave no reason"


def _named(requirements: Sequence[Requirement], reason: str) -> str:
    """The requirements that pip's reason names (all of them when it names none)."""
    spoken = re.sub(r"[-_.]+", "-", reason.lower())
    named = [r for r in requirements if canonicalize_name(r.name) in spoken]
    return ", ".join(str(r) for r in (named or requirements))


def _lock_text(search_path: Sequence[str]) -> str:
    """``name==version`` of every distribution the environment would import first, sorted."""
    seen: dict[str, str] = {}
    for entry in search_path:
        for distribution in importlib.metadata.distributions(path=[entry]):
            name = distribution.metadata["Name"]
            if name:
                seen.setdefault(canonicalize_name(name), distribution.version)
    return "".join(f"{name}=={version}\n" for name, version in sorted(seen.items()))


def _environment_from_marker(
    root: Path, directory: Path, base: SharedBase
) -> PackageEnvironment | None:
    marker = directory / MARKER_NAME
    if not marker.is_file() or not venv_python(directory).exists():
        return None
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
        installed = tuple(str(r) for r in record["installed"])
        lock_digest = str(record["lock_sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return PackageEnvironment(root, directory, base, installed, lock_digest)


def environment_ensure(card: Card, *, root: Path, settings: ClientSettings) -> PackageEnvironment:
    """The package environment of ``card`` under ``root``, built once per requirement set.

    ``settings`` gives pip's index (``pip_index_url``, ``pip_extra_index_urls``,
    ``pip_find_links``, ``pip_no_index``). Raises :class:`EnvironmentBuildError` when a
    requirement cannot be installed (the message names it and gives pip's one-line reason), is
    a direct URL, or is a shared framework that the running environment lacks.
    """
    root = Path(root).absolute()
    requirements = card_requirements(card)
    urls = [str(r) for r in requirements if r.url]
    if urls:
        raise EnvironmentBuildError(
            f"dependencies: direct URL requirements are not installed: {', '.join(urls)}; "
            "publish the distribution on a package index and name its version"
        )
    base = shared_base_ensure(root)
    needed = unsatisfied(requirements, [str(base.site)])
    heavy = [r.name for r in needed if is_shared_heavy(r)]
    if heavy:
        raise EnvironmentBuildError(
            f"dependencies: could not install {', '.join(heavy)}: package environments share "
            "it from the running environment instead of downloading it per package, and it is "
            "not installed there (or pin a version)"
        )
    index_options = pip_index_options(settings)
    key = _digest(
        {
            **_python_identity(),
            "requirements": sorted(str(r) for r in needed),
            "base": base.digest,
            "pip": ["--only-binary=:all:"],
        }
    )[:16]
    directory = root / "envs" / key
    built = _environment_from_marker(root, directory, base)
    if built is not None:
        return built
    lock = _acquired(_build_lock(root, key), f"the package environment {key}")
    try:
        built = _environment_from_marker(root, directory, base)
        if built is None:
            built = _build(root, directory, base, requirements, needed, index_options)
    finally:
        lock.release()
    return built


def _build(
    root: Path,
    directory: Path,
    base: SharedBase,
    requirements: Sequence[Requirement],
    needed: Sequence[Requirement],
    index_options: Sequence[str],
) -> PackageEnvironment:
    shutil.rmtree(directory, ignore_errors=True)
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt", clear=True).create(str(directory))
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EnvironmentBuildError(
            f"dependencies: cannot create a package environment: {exc}"
        ) from exc
    site_dir = venv_site_dir(directory)
    site_dir.mkdir(parents=True, exist_ok=True)
    # Relative, so the same file works where the sandbox mounts the tree under another root.
    (site_dir / BASE_PTH).write_text(os.path.relpath(base.site, site_dir) + "\n", "utf-8")
    environment = PackageEnvironment(root, directory, base, tuple(map(str, needed)), "")
    if needed:
        _pip_install(environment, needed, index_options)
        still = unsatisfied(requirements, environment.search_path())
        if still:
            raise EnvironmentBuildError(
                f"dependencies: could not install {', '.join(map(str, still))}: pip finished, "
                "but the environment still does not satisfy it"
            )
    lock_text = _lock_text(environment.search_path())
    write_atomic(environment.lock_file, lock_text.encode("utf-8"))
    lock_digest = hashlib.sha256(lock_text.encode("utf-8")).hexdigest()
    record = {
        "installed": list(environment.installed),
        "requirements": [str(r) for r in requirements],
        "base": base.digest,
        "lock_sha256": lock_digest,
        **_python_identity(),
        "completed_at": datetime.now(UTC).isoformat(),
    }
    # Last: a folder without it is a build that did not finish.
    write_atomic(directory / MARKER_NAME, json.dumps(record, indent=2).encode("utf-8"))
    return PackageEnvironment(root, directory, base, environment.installed, lock_digest)


def _pip_install(
    environment: PackageEnvironment,
    requirements: Sequence[Requirement],
    index_options: Sequence[str],
) -> None:
    # Beside, not inside, the environment: the sandbox mounts the environment, and pip's
    # command line can name a private index with its credentials.
    log = environment.root / "logs" / f"{environment.key}-{PIP_LOG_NAME}"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(environment.python),
        "install",
        "--no-input",
        "--progress-bar",
        "off",
        "--only-binary",
        ":all:",
        *index_options,
        *(str(r) for r in requirements),
    ]
    with log.open("ab") as output:
        output.write(f"$ {' '.join(command)}\n".encode())
        output.flush()
        try:
            completed = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=environment.root,
                env=_pip_environment(),
                timeout=PIP_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise EnvironmentBuildError(
                f"dependencies: could not install {', '.join(map(str, requirements))}: pip did "
                f"not finish within {PIP_TIMEOUT_SECONDS:g} s",
                detail={"log": str(log)},
            ) from exc
    if completed.returncode != 0:
        lines = log.read_text("utf-8", errors="replace").splitlines()
        start = max(i for i, line in enumerate(lines) if line.startswith("$ "))
        reason = _pip_reason(lines[start + 1 :])
        raise EnvironmentBuildError(
            f"dependencies: could not install {_named(requirements, reason)}: {reason}",
            detail={"log": str(log), "returncode": completed.returncode},
        )


def dry_run_environment(card: Card, settings: ClientSettings) -> PackageEnvironment | None:
    """The environment ``push`` runs its dry run in, or ``None`` when the user opted out.

    Environments live in ``<cache_dir>/environments``. Setting ``MEDIGAN_PUSH_USE_CURRENT_ENV=1``
    runs the dry run with the running environment instead (offline machines).
    """
    if os.environ.get(DRY_RUN_OPT_OUT_VARIABLE, "").strip().lower() in ("1", "true", "yes"):
        return None
    return environment_ensure(
        card, root=Path(settings.cache_dir) / "environments", settings=settings
    )
