"""How the hub runs contributed code: always in the sandbox, configured from settings.

Every run of a contributor's package on the hub (validation's smoke generation, the generation
behind an evaluation) goes through :func:`sandbox_generate`. By default that is bubblewrap with
whole-run limits, and it fails closed: where the sandbox cannot be set up, the code is not run.
Only ``MEDIGAN_SANDBOX=none``, an operator's explicit choice for a trusted single-user hub, runs
packages without isolation, and the admin and ``/api/v1/status`` then say so.

Either way the package runs with a package environment built from its card's requirements
(:func:`package_environment`, :mod:`medigan_client.runtime.environments`), never with the hub's
own environment: outside the sandbox, pip installs what the card declares from the index the
``MEDIGAN_PIP_*`` settings name, once per requirement set.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings

from medigan_catalog.schema import Card
from medigan_client.runtime import (
    SandboxIsolation,
    SandboxLimits,
    SandboxOptions,
    SandboxResult,
    SandboxStatus,
    generate_in_sandbox,
    generate_in_subprocess,
    sandbox_probe,
)
from medigan_client.runtime.environments import PackageEnvironment, environment_ensure
from medigan_client.settings import ClientSettings

UNISOLATED = "none"
UNISOLATED_WARNING = (
    "contributed code runs WITHOUT isolation (MEDIGAN_SANDBOX=none): only for a trusted, "
    "single-user hub"
)
_REDACTED = "[hub]"
# The rest of a path after one of the hub's folders: up to a space, a quote or punctuation.
_PATH_REST = r"(?![\w.-])(?:/[^\s'\"`,;:()\[\]{}<>|]*)*"
# Values of these settings and variables never appear in a message the hub writes.
_SECRET_SETTINGS = ("SECRET_KEY", "CELERY_BROKER_URL")
_SECRET_VARIABLES = (
    "DJANGO_SECRET_KEY",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "AWS_SECRET_ACCESS_KEY",
)


def sandbox_isolated() -> bool:
    """Whether contributed code runs isolated (anything but the explicit trusted mode)."""
    return str(settings.MEDIGAN_SANDBOX) != UNISOLATED


def _hidden_paths() -> tuple[Path, ...]:
    """What no mount of the sandbox may contain: the hub's data, media, code and settings."""
    database = settings.DATABASES["default"]
    paths = [
        Path(settings.DATA_DIR),
        Path(settings.MEDIA_ROOT),
        Path(settings.BASE_DIR) / "hub",
        Path(settings.BASE_DIR) / "deploy",
    ]
    if str(database.get("ENGINE", "")).endswith("sqlite3"):
        paths.append(Path(str(database["NAME"])))
    return tuple(paths)


def sandbox_options() -> SandboxOptions:
    """The sandbox's operator settings."""
    return SandboxOptions(
        forbidden=_hidden_paths(),
        cgroup_parent=settings.MEDIGAN_SANDBOX_CGROUP or None,
        uid_base=int(settings.MEDIGAN_SANDBOX_UID_BASE),
        bwrap=settings.MEDIGAN_SANDBOX_BWRAP or None,
    )


def sandbox_limits(*, wall_seconds: float) -> SandboxLimits:
    """The bounds of one run, whole process tree: memory, processes, scratch, CPU, wall clock."""
    return SandboxLimits(
        memory_bytes=int(settings.MEDIGAN_SANDBOX_MEMORY_BYTES),
        max_processes=int(settings.MEDIGAN_SANDBOX_MAX_PROCESSES),
        scratch_bytes=int(settings.MEDIGAN_SANDBOX_SCRATCH_BYTES),
        cpu_seconds=int(settings.MEDIGAN_SANDBOX_CPU_SECONDS),
        wall_seconds=wall_seconds,
    )


def sandbox_generate(
    package_dir: Path,
    card: Card,
    num_samples: int,
    *,
    seed: int,
    device: str,
    args: Mapping[str, object] | None,
    wall_seconds: float,
    start_index: int = 0,
    batch_size: int | None = None,
) -> SandboxResult:
    """Generate samples of a contributed package the way the hub is configured to run it.

    With ``batch_size``, the samples are ``[start_index, start_index + num_samples)`` of the
    client's sample sequence of ``(seed, batch_size)``, the same ``Client.generate`` writes.
    Raises :class:`~medigan_client.runtime.environments.EnvironmentBuildError` (the package does
    not run) when the card's requirements cannot be installed.
    """
    limits = sandbox_limits(wall_seconds=wall_seconds)
    environment = package_environment(card)
    if sandbox_isolated():
        result = generate_in_sandbox(
            package_dir,
            card,
            num_samples,
            seed=seed,
            device=device,
            args=args,
            limits=limits,
            options=sandbox_options(),
            start_index=start_index,
            batch_size=batch_size,
            environment=environment,
        )
        return SandboxResult(
            samples=result.samples,
            isolation=f"{result.isolation}; {environment.describe()}",
            stderr=result.stderr,
        )
    samples = generate_in_subprocess(
        package_dir,
        card,
        num_samples,
        seed=seed,
        device=device,
        args=args,
        timeout_seconds=wall_seconds,
        memory_limit_bytes=limits.memory_bytes,
        cpu_seconds=limits.cpu_seconds,
        start_index=start_index,
        batch_size=batch_size,
        environment=environment,
    )
    return SandboxResult(
        samples=samples, isolation=f"{UNISOLATED_WARNING}; {environment.describe()}"
    )


def package_pip_settings() -> ClientSettings:
    """The hub's ``MEDIGAN_PIP_*`` settings as the client runtime's pip settings."""
    return ClientSettings(
        hub_url="http://127.0.0.1",
        cache_dir=Path(settings.MEDIGAN_PIP_ENVIRONMENTS_DIR),
        offline=True,
        pip_index_url=str(settings.MEDIGAN_PIP_INDEX_URL or "") or None,
        pip_extra_index_urls=tuple(settings.MEDIGAN_PIP_EXTRA_INDEX_URLS),
        pip_find_links=tuple(str(p) for p in settings.MEDIGAN_PIP_FIND_LINKS),
        pip_no_index=bool(settings.MEDIGAN_PIP_NO_INDEX),
    )


def package_environment(card: Card) -> PackageEnvironment:
    """The environment the card's package runs with: its requirements, built once, shared."""
    return environment_ensure(
        card, root=Path(settings.MEDIGAN_PIP_ENVIRONMENTS_DIR), settings=package_pip_settings()
    )


def sandbox_status() -> SandboxStatus:
    """What the admin and ``/api/v1/status`` tell about isolation, checked by a real run."""
    if not sandbox_isolated():
        return SandboxStatus(SandboxIsolation.PROCESS, True, UNISOLATED_WARNING)
    return sandbox_probe(sandbox_options())


def redact(text: str) -> str:
    """``text`` without the hub's paths and secret values, for messages contributors read.

    A path inside one of the hub's folders (its work dir, data, media, code, the sandbox's
    scratch in the system temp dir) is replaced as a whole, below-folder names included, by
    ``[hub]``; each folder is matched as configured and as resolved (through symbolic links).
    """
    secrets = [str(getattr(settings, name, "") or "") for name in _SECRET_SETTINGS]
    secrets += [os.environ.get(name, "") for name in _SECRET_VARIABLES]
    database = settings.DATABASES["default"]
    secrets += [str(database.get("PASSWORD") or "")]
    for secret in sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True):
        text = text.replace(secret, "[secret]")
    folders = [*_hidden_paths(), Path(settings.MEDIGAN_WORK_DIR), Path(settings.BASE_DIR)]
    paths: set[str] = set()
    for folder in folders:
        paths.add(str(folder).rstrip("/"))
        with contextlib.suppress(OSError, RuntimeError):
            paths.add(str(folder.resolve()).rstrip("/"))
    patterns = [re.escape(path) + _PATH_REST for path in paths if len(path) > 1]
    # The sandboxed child's own scratch folders (medigan-sandbox-*, medigan-runner-*).
    for temp in {tempfile.gettempdir(), os.path.realpath(tempfile.gettempdir())}:
        patterns.append(re.escape(temp.rstrip("/")) + r"/medigan-[\w.-]+" + _PATH_REST)
    for pattern in sorted(patterns, key=len, reverse=True):
        text = re.sub(pattern, _REDACTED, text)
    return text
