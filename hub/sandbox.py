"""How the hub runs contributed code: always in the sandbox, configured from settings.

Every run of a contributor's package on the hub (validation's smoke generation, the generation
behind an evaluation) goes through :func:`sandbox_generate`. By default that is bubblewrap with
whole-run limits, and it fails closed: where the sandbox cannot be set up, the code is not run.
Only ``MEDIGAN_SANDBOX=none``, an operator's explicit choice for a trusted single-user hub, runs
packages without isolation, and the admin and ``/api/v1/status`` then say so.
"""

from __future__ import annotations

import os
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

UNISOLATED = "none"
UNISOLATED_WARNING = (
    "contributed code runs WITHOUT isolation (MEDIGAN_SANDBOX=none): only for a trusted, "
    "single-user hub"
)
_REDACTED = "[hub]"
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
    """
    limits = sandbox_limits(wall_seconds=wall_seconds)
    if sandbox_isolated():
        return generate_in_sandbox(
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
    )
    return SandboxResult(samples=samples, isolation=UNISOLATED_WARNING)


def sandbox_status() -> SandboxStatus:
    """What the admin and ``/api/v1/status`` tell about isolation, checked by a real run."""
    if not sandbox_isolated():
        return SandboxStatus(SandboxIsolation.PROCESS, True, UNISOLATED_WARNING)
    return sandbox_probe(sandbox_options())


def redact(text: str) -> str:
    """``text`` without the hub's paths and secret values, for messages contributors read."""
    secrets = [str(getattr(settings, name, "") or "") for name in _SECRET_SETTINGS]
    secrets += [os.environ.get(name, "") for name in _SECRET_VARIABLES]
    database = settings.DATABASES["default"]
    secrets += [str(database.get("PASSWORD") or "")]
    for secret in sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True):
        text = text.replace(secret, "[secret]")
    paths = {str(path) for path in (*_hidden_paths(), Path(settings.MEDIGAN_WORK_DIR))}
    paths.add(str(Path(settings.BASE_DIR)))
    for path in sorted(paths, key=len, reverse=True):
        if len(path) > 1:
            text = text.replace(path, _REDACTED)
    return text
