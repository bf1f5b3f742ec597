"""Running model packages: in this process, in a child process, or in a per-release venv.

:mod:`.base` defines what every runtime returns (:class:`~.base.GeneratedBatch`) and promises
(:class:`~.base.Runner`); :func:`open_runner` chooses one for an isolation mode:

* ``inprocess`` (:mod:`.inprocess`): imported into this Python and called directly;
* ``process`` (:mod:`.process`): a long-lived child Python serves batches over pipes;
* ``venv`` (:mod:`.venvs`): the same child, run by a virtual environment built once per
  release with the card's pinned requirements;
* ``auto``: ``venv`` when this environment does not satisfy the card's requirements, else
  ``process`` (see :func:`choose_isolation`).

:mod:`.worker` (standard library and numpy only) imports and calls a package in every mode;
:mod:`.loader` does that in this process; :mod:`.batches` prepares requests and reads results;
:mod:`.legacy` recreates what medigan packages expect; :mod:`.dependencies` checks
requirements. :mod:`.sandbox` and :mod:`.child` run a one-shot, resource-limited generation
for the hub's validation and evaluations and for ``push``; their public names are exported
here (:func:`generate_in_sandbox`, :func:`generate_in_subprocess`, :func:`sandbox_probe` and
their types), which is how the hub imports them. torch is never imported here at package
import time.
"""

from __future__ import annotations

import os
from pathlib import Path

from medigan_catalog.schema import Card
from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.runtime.base import ISOLATION_MODES, GeneratedBatch, Isolation, Runner
from medigan_client.runtime.dependencies import card_requirements, python_problem, unsatisfied
from medigan_client.runtime.sandbox import Isolation as SandboxIsolation
from medigan_client.runtime.sandbox import (
    SandboxLimits,
    SandboxOptions,
    SandboxResult,
    SandboxStatus,
    generate_in_sandbox,
    generate_in_subprocess,
    sandbox_probe,
)
from medigan_client.settings import ClientSettings

__all__ = [
    "ISOLATION_MODES",
    "GeneratedBatch",
    "Isolation",
    "Runner",
    "SandboxIsolation",
    "SandboxLimits",
    "SandboxOptions",
    "SandboxResult",
    "SandboxStatus",
    "choose_isolation",
    "generate_in_sandbox",
    "generate_in_subprocess",
    "open_runner",
    "sandbox_probe",
]


def choose_isolation(card: Card) -> str:
    """The mode ``auto`` picks for ``card``: ``venv`` or ``process``, never ``inprocess``.

    ``venv`` when a requirement of the card (``runtime.dependencies`` and medigan's
    ``execution.dependencies``) is not satisfied by the running environment: a pinned one by an
    installed version outside its specifier or by none, a bare name by no installed version at
    all. Otherwise ``process``: a crash of the package cannot take the caller down, and the model
    generates while the caller works on the previous batch. ``inprocess`` only when asked for,
    or where child processes are not available (a system that is not POSIX).
    """
    if os.name != "posix":
        return "inprocess"
    return "venv" if unsatisfied(card_requirements(card)) else "process"


def open_runner(
    package_dir: Path,
    card: Card,
    *,
    isolation: str = "auto",
    settings: ClientSettings | None = None,
    timeout_seconds: float | None = None,
) -> Runner:
    """A runner of the package in ``package_dir`` for ``card`` in the given isolation mode.

    ``isolation`` is ``auto`` (the default; :func:`choose_isolation` decides), ``inprocess``,
    ``process`` or ``venv``. ``settings`` give the cache that holds venvs and the pip index
    (loaded from the environment when ``None``). ``timeout_seconds`` limits loading and each
    batch in the child-process modes. The runner's ``isolation`` says which mode runs; close it
    (or use it as a context manager) when done. Raises :class:`GenerationFailedError` when the
    package cannot be imported, its venv cannot be built, or it needs another Python.
    """
    if isolation not in ISOLATION_MODES:
        raise BadRequestError(
            f"isolation must be one of {', '.join(ISOLATION_MODES)}, not {isolation!r}"
        )
    problem = python_problem(card)
    if problem is not None:
        raise GenerationFailedError(problem)
    mode = choose_isolation(card) if isolation == "auto" else isolation
    if mode in ("process", "venv") and os.name != "posix":
        raise BadRequestError(
            f"isolation {mode!r} needs a POSIX system (Linux, macOS); use 'inprocess' here"
        )
    if mode == "inprocess":
        from medigan_client.runtime.inprocess import InProcessRunner

        return InProcessRunner(package_dir, card)
    if mode == "process":
        from medigan_client.runtime.process import ProcessRunner

        return ProcessRunner(package_dir, card, timeout_seconds=timeout_seconds)
    from medigan_client.runtime.venvs import open_venv_runner

    return open_venv_runner(
        package_dir,
        card,
        settings if settings is not None else ClientSettings.load(),
        timeout_seconds=timeout_seconds,
    )
