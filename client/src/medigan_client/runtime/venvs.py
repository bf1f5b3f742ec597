"""The ``venv`` runtime: one virtual environment per release and dependency set.

``<cache>/venvs/<key>/`` is created once (the key names the release, its requirements, this
Python and the caller's site-packages) with :mod:`venv`, under the cache's lock for that key.
A ``.pth`` file appends the caller's site-packages *after* the venv's own, so heavy shared
packages (numpy, torch) are not downloaded again for every model, while whatever pip installs
into the venv, the card's pins, shadows the caller's versions. pip then installs the
requirements that the venv does not yet see satisfied, with the index the client is configured
for (``pip_index_url``, ``pip_extra_index_urls``, ``pip_find_links``, ``pip_no_index``; when
none is set, pip's own configuration applies). A completion marker is written last; a venv
without it (a build that was killed) is removed and built again. pip always runs with the venv's
interpreter, so the caller's environment is never installed into. The package then runs in a
:class:`~.process.ProcessRunner` with the venv's Python.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from packaging.requirements import Requirement

from medigan_catalog.schema import Card
from medigan_client.cache import Cache, write_atomic
from medigan_client.errors import GenerationFailedError
from medigan_client.runtime.dependencies import card_requirements, is_shared_heavy, unsatisfied
from medigan_client.runtime.process import ProcessRunner, process_environment, tail_lines
from medigan_client.settings import ClientSettings

MARKER_NAME = "medigan-venv.json"
PARENT_SITE_PTH = "medigan-parent-site.pth"
PIP_LOG_NAME = "pip-install.log"
# Installing a framework can take long; another process building the same venv is waited for.
BUILD_LOCK_TIMEOUT_SECONDS = 3600.0
# Variables that would send pip's installation somewhere other than the venv.
_PIP_REDIRECTS = ("PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_USER", "PIP_EDITABLE")
_PYTHON_PATH_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE")


def parent_site_dirs() -> list[str]:
    """The site-packages directories of this interpreter, in the order it searches them."""
    candidates: list[str] = []
    if site.ENABLE_USER_SITE:
        candidates.append(site.getusersitepackages())
    candidates += site.getsitepackages()
    candidates += [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    existing = [os.path.realpath(p) for p in dict.fromkeys(candidates) if Path(p).is_dir()]
    on_path = [os.path.realpath(p) for p in sys.path if p]

    def position(path: str) -> int:
        return on_path.index(path) if path in on_path else len(on_path)

    return sorted(dict.fromkeys(existing), key=position)


def venv_key(card: Card, requirements: Sequence[Requirement]) -> str:
    """The cache key of a release's venv: release, requirements, Python, caller's site dirs."""
    identity = json.dumps(
        {
            "release": card.release_id,
            "requirements": sorted(str(r) for r in requirements),
            "python": [platform.python_implementation(), platform.python_version()],
            "parent_site": parent_site_dirs(),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
    return f"{card.namespace}_{card.name}_{card.version}-{digest}"


def venv_python(directory: Path) -> Path:
    """The interpreter of the venv in ``directory``."""
    if os.name == "nt":
        return directory / "Scripts" / "python.exe"
    return directory / "bin" / "python"


def venv_site_dir(directory: Path) -> Path:
    """The venv's own site-packages directory."""
    scheme = "venv" if "venv" in sysconfig.get_scheme_names() else None
    variables = {"base": str(directory), "platbase": str(directory)}
    if scheme is None:
        return Path(sysconfig.get_path("purelib", vars=variables))
    return Path(sysconfig.get_path("purelib", scheme=scheme, vars=variables))


def pip_index_options(settings: ClientSettings) -> list[str]:
    """pip's command-line options for the index the client is configured to use."""
    options: list[str] = []
    if settings.pip_no_index:
        options.append("--no-index")
    if settings.pip_index_url:
        options += ["--index-url", settings.pip_index_url]
    for url in settings.pip_extra_index_urls:
        options += ["--extra-index-url", url]
    for location in settings.pip_find_links:
        options += ["--find-links", location]
    return options


def venv_environment(directory: Path) -> dict[str, str]:
    """The environment of the venv's processes: the caller's, pointed at the venv.

    Variables that would put the caller's packages before the venv's pins (PYTHONPATH) or
    send pip's installation elsewhere (PIP_TARGET, PIP_USER...) are dropped.
    """
    env = process_environment()
    for name in _PYTHON_PATH_VARIABLES + _PIP_REDIRECTS:
        env.pop(name, None)
    env["VIRTUAL_ENV"] = str(directory)
    env["PATH"] = os.pathsep.join([str(venv_python(directory).parent), env.get("PATH", "")])
    return env


class VenvBuilder:
    """Creates, completes and checks the venv of one card (see the module docstring)."""

    def __init__(self, card: Card, settings: ClientSettings):
        self.card = card
        self.settings = settings
        self.requirements = card_requirements(card)
        self.key = venv_key(card, self.requirements)
        self.cache = Cache(settings.cache_dir)
        self.directory = self.cache.venv_dir(self.key)
        self.marker = self.directory / MARKER_NAME

    @property
    def python(self) -> Path:
        """The venv's interpreter."""
        return venv_python(self.directory)

    def search_path(self) -> list[str]:
        """Where the venv's Python finds distributions: its own site first, then the caller's."""
        return [str(venv_site_dir(self.directory)), *parent_site_dirs()]

    def missing(self) -> list[Requirement]:
        """The card's requirements that the venv does not satisfy (yet)."""
        return unsatisfied(self.requirements, self.search_path())

    def ensure(self) -> Path:
        """The venv's Python, after creating or completing the venv where needed."""
        with self.cache.lock(f"venv:{self.key}", timeout=BUILD_LOCK_TIMEOUT_SECONDS):
            if not self.marker.is_file() or not self.python.exists():
                self._create()
            missing = self.missing()
            if missing:
                # The marker goes until pip has finished, so a killed install is redone.
                self.marker.unlink(missing_ok=True)
                self._install(missing)
                still = self.missing()
                if still:
                    raise GenerationFailedError(
                        f"pip finished, but the virtual environment of {self.card.release_id} "
                        f"still does not satisfy {', '.join(map(str, still))}",
                        detail={"venv": str(self.directory)},
                    )
            if not self.marker.is_file():
                self._write_marker()
        return self.python

    def _create(self) -> None:
        if self.directory.exists() or self.directory.is_symlink():
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        # The caller's pip (reached through the .pth below) installs into the venv, which saves
        # ensurepip's seconds; without a pip here, the venv gets its own.
        with_pip = importlib.util.find_spec("pip") is None
        try:
            venv.EnvBuilder(with_pip=with_pip, symlinks=os.name != "nt", clear=True).create(
                str(self.directory)
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            raise GenerationFailedError(
                f"cannot create the virtual environment of {self.card.release_id} in "
                f"{self.directory}: {exc}"
            ) from exc
        site_dir = venv_site_dir(self.directory)
        site_dir.mkdir(parents=True, exist_ok=True)
        # addsitedir (unlike a bare path line) also runs the caller's own .pth files, so editable
        # installs there resolve; the directories are appended after the venv's own.
        lines = [f"import site; site.addsitedir({path!r})" for path in parent_site_dirs()]
        (site_dir / PARENT_SITE_PTH).write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _install(self, requirements: Sequence[Requirement]) -> None:
        heavy = [r for r in requirements if is_shared_heavy(r)]
        if heavy:
            names = ", ".join(r.name for r in heavy)
            raise GenerationFailedError(
                f"{self.card.release_id} needs {names}, which is not installed in this Python "
                f"environment; install it here (pip install {names} into {sys.prefix}): model "
                "environments share it instead of downloading it per model"
            )
        log = self.directory / PIP_LOG_NAME
        command = [
            str(self.python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            *pip_index_options(self.settings),
            *(str(r) for r in requirements),
        ]
        with log.open("ab") as output:
            output.write(f"$ {' '.join(command)}\n".encode())
            output.flush()
            completed = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=venv_environment(self.directory),
                check=False,
            )
        if completed.returncode != 0:
            tail = tail_lines(log)
            shown = " | ".join(tail[-8:]) if tail else "(no output)"
            raise GenerationFailedError(
                f"installing {', '.join(map(str, requirements))} into the virtual environment "
                f"of {self.card.release_id} failed (pip exited with status "
                f"{completed.returncode}); last lines of pip's output: {shown}",
                detail={"venv": str(self.directory), "log": str(log), "output": tail},
            )

    def _write_marker(self) -> None:
        record = {
            "key": self.key,
            "release": self.card.release_id,
            "requirements": [str(r) for r in self.requirements],
            "python": platform.python_version(),
            "parent_site": parent_site_dirs(),
            "completed_at": datetime.now(UTC).isoformat(),
        }
        write_atomic(self.marker, json.dumps(record, indent=2).encode("utf-8"))


def open_venv_runner(
    package_dir: Path,
    card: Card,
    settings: ClientSettings,
    *,
    timeout_seconds: float | None = None,
) -> ProcessRunner:
    """A :class:`ProcessRunner` whose child is the Python of the card's venv (built once)."""
    builder = VenvBuilder(card, settings)
    python = builder.ensure()
    return ProcessRunner(
        package_dir,
        card,
        python=python,
        environment=venv_environment(builder.directory),
        isolation="venv",
        timeout_seconds=timeout_seconds,
    )
