"""The bubblewrap command line that isolates contributed code: its mounts, namespaces and uid.

The sandbox sees a tree built from nothing: the system's ``/usr`` (and its ``/lib``, ``/bin``
links) read-only, the Python runtime and the site-packages it needs read-only, the package
read-only at ``/sandbox/package``, one size-capped tmpfs at ``/sandbox/scratch`` (its home, its
``/tmp``, its working directory), a minimal ``/dev`` and a ``/proc`` of its own pid namespace.
Nothing else of the host exists inside: no hub data, settings, logs or database.

With a package environment (:mod:`.environments`, what the hub always uses) the runtime is that
environment, mounted at ``/sandbox/environments/envs/<key>``, and the shared base's links, each
resolved and mounted on its own under ``/sandbox/environments/base-<digest>/site/``: exactly the
files of the shared distributions, nothing else of the running environment (its other
distributions, the hub's own code) and no library source folder on ``PYTHONPATH``.

Two shapes of the same tree:

* **Root worker.** An outer bubblewrap, run as root, builds the tree in new pid, network, ipc,
  uts and cgroup namespaces; ``setpriv`` then drops to a per-run unprivileged uid with no
  capabilities, an empty bounding set and no new privileges; an inner bubblewrap, unprivileged,
  adds a new user namespace (and forbids further ones) before Python starts. The code runs as a
  uid that owns nothing on the host and holds no capability anywhere that matters.
* **Unprivileged worker.** One bubblewrap builds the same tree in new user, pid, network, ipc,
  uts and cgroup namespaces. The code's uid on the host is then the worker's own (nothing else
  can be had without privilege), but none of the worker's files are mounted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from medigan_client.errors import SandboxUnavailableError

if TYPE_CHECKING:
    from medigan_client.runtime.environments import PackageEnvironment

INSIDE = PurePosixPath("/sandbox")
INSIDE_PACKAGE = INSIDE / "package"
INSIDE_SCRATCH = INSIDE / "scratch"
INSIDE_HOME = INSIDE_SCRATCH / "home"
INSIDE_TMP = INSIDE_SCRATCH / "tmp"
INSIDE_WORK = INSIDE_SCRATCH / "work"
INSIDE_VENV = INSIDE / "venv"
INSIDE_ENVIRONMENTS = INSIDE / "environments"
# The sandbox's own /tmp, inside its tree; never the host's.
SANDBOX_TMP = "/tmp"  # noqa: S108
INSIDE_LIB = INSIDE / "lib"

# Top-level system directories the runtime's shared libraries and binaries come from.
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The few files of /etc that the dynamic loader and the C library read.
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")


class LayoutError(SandboxUnavailableError):
    """The sandbox's tree cannot be built without exposing something it must not."""


@dataclass(frozen=True)
class SandboxLayout:
    """What the sandbox's tree is made of, as host paths; see the module docstring."""

    package_dir: Path
    python_base: Path
    python_executable: str
    venv: Path | None
    source_dirs: tuple[Path, ...]
    scratch_bytes: int
    devices: tuple[Path, ...] = ()
    expose_sys: bool = False
    venv_inside: str = str(INSIDE_VENV)
    # Further read-only mounts (host path, path inside): a package environment's shared base.
    extra_binds: tuple[tuple[Path, str], ...] = ()

    @property
    def python_inside(self) -> str:
        """The interpreter's path inside the sandbox."""
        executable = Path(self.python_executable)
        if self.venv is not None and executable.is_relative_to(self.venv):
            return str(PurePosixPath(self.venv_inside) / executable.relative_to(self.venv))
        return str(executable)

    @property
    def python_path_inside(self) -> str:
        """``PYTHONPATH`` inside: the library sources that live outside site-packages."""
        return os.pathsep.join(str(INSIDE_LIB / str(i)) for i in range(len(self.source_dirs)))

    def host_binds(self) -> list[tuple[Path, str]]:
        """Every host path mounted read-only, with its path inside the sandbox."""
        binds: list[tuple[Path, str]] = [(self.package_dir, str(INSIDE_PACKAGE))]
        if not any(self.python_base.is_relative_to(d) for d in map(Path, _SYSTEM_DIRS)):
            binds.append((self.python_base, str(self.python_base)))
        if self.venv is not None:
            binds.append((self.venv, self.venv_inside))
        binds.extend(
            (source, str(INSIDE_LIB / str(index))) for index, source in enumerate(self.source_dirs)
        )
        binds.extend(self.extra_binds)
        return binds


def _import_root(module_file: str | None, package_depth: int) -> Path | None:
    if not module_file:
        return None
    return Path(module_file).resolve().parents[package_depth]


def layout_for(
    package_dir: Path,
    *,
    scratch_bytes: int,
    gpu: bool = False,
    forbidden: Sequence[Path] = (),
    environment: PackageEnvironment | None = None,
) -> SandboxLayout:
    """The layout that runs ``package_dir`` with this interpreter and its libraries.

    With ``environment``, the package environment's interpreter and only its files (see the
    module docstring) instead of this interpreter's environment.

    Raises :class:`LayoutError` when a path to mount would contain one of ``forbidden`` (the
    hub's data, settings or database): the sandbox would rather not run than expose them.
    """
    devices: tuple[Path, ...] = ()
    if gpu:
        devices = tuple(sorted(Path("/dev").glob("nvidia*")))
    if environment is not None:
        layout = _environment_layout(package_dir, environment, scratch_bytes, devices, gpu)
        _refuse_exposure(layout, forbidden)
        return layout
    import medigan_catalog
    import medigan_client

    base = Path(sys.base_prefix).resolve()
    # normpath, not resolve: normalise ``..`` but keep the venv's own interpreter link.
    prefix = Path(os.path.normpath(Path(sys.prefix).absolute()))
    venv = prefix if prefix.resolve() != base else None
    library_roots = {base, *(() if venv is None else (venv.resolve(),))}
    sources: list[Path] = []
    for module in (medigan_client, medigan_catalog):
        root = _import_root(module.__file__, 1)
        if root is None or any(root.is_relative_to(lib) for lib in library_roots):
            continue
        if root not in sources:
            sources.append(root)
    layout = SandboxLayout(
        package_dir=Path(package_dir).resolve(),
        python_base=base,
        python_executable=os.path.normpath(Path(sys.executable).absolute()),
        venv=venv,
        source_dirs=tuple(sources),
        scratch_bytes=scratch_bytes,
        devices=devices,
        expose_sys=gpu,
    )
    _refuse_exposure(layout, forbidden)
    return layout


def _environment_layout(
    package_dir: Path,
    environment: PackageEnvironment,
    scratch_bytes: int,
    devices: tuple[Path, ...],
    gpu: bool,
) -> SandboxLayout:
    # The tree below the environments' root keeps its shape inside, so the relative line of the
    # environment's .pth file finds the base there as it does on the host.
    def inside(path: Path) -> PurePosixPath:
        return INSIDE_ENVIRONMENTS / path.relative_to(environment.root).as_posix()

    site = inside(environment.base.site)
    return SandboxLayout(
        package_dir=Path(package_dir).resolve(),
        python_base=Path(sys.base_prefix).resolve(),
        python_executable=str(environment.python),
        venv=environment.directory,
        source_dirs=(),
        scratch_bytes=scratch_bytes,
        devices=devices,
        expose_sys=gpu,
        venv_inside=str(inside(environment.directory)),
        extra_binds=tuple(
            (target.resolve(), str(site / name)) for name, target in environment.base.links
        ),
    )


def _refuse_exposure(layout: SandboxLayout, forbidden: Sequence[Path]) -> None:
    hidden = [Path(path).resolve() for path in forbidden]
    for source, inside in layout.host_binds():
        resolved = source.resolve()
        for path in hidden:
            if path == resolved or path.is_relative_to(resolved):
                raise LayoutError(
                    f"mounting {resolved} at {inside} would expose {path}, which the sandbox "
                    "must never see; install the hub's Python environment outside its data "
                    "and settings directories"
                )


def _parent_dirs(binds: Sequence[str]) -> list[str]:
    """Directories above the mount points, created world-readable: bubblewrap would otherwise
    copy a host parent's mode (``/root`` is 0700) and hide the mounted runtime from the uid."""
    mount_points = set(binds)
    parents: set[str] = set()
    for target in binds:
        for parent in PurePosixPath(target).parents:
            text = str(parent)
            if text == "/" or any(text == m or text.startswith(m + "/") for m in mount_points):
                continue
            parents.add(text)
    return sorted(parents, key=lambda path: (path.count("/"), path))


def _tree_arguments(layout: SandboxLayout) -> list[str]:
    """The mounts shared by both shapes, from an empty root."""
    args: list[str] = []
    for name in _SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    for name in _ETC_FILES:
        args += ["--ro-bind-try", name, name]
    binds = layout.host_binds()
    for parent in _parent_dirs([inside for _, inside in binds]):
        args += ["--perms", "0755", "--dir", parent]
    for source, inside in binds:
        args += ["--ro-bind", str(source), inside]
    args += ["--proc", "/proc", "--dev", "/dev"]
    for device in layout.devices:
        args += ["--dev-bind-try", str(device), str(device)]
    if layout.expose_sys:
        # The GPU driver's user-space libraries look up the device through /sys.
        args += ["--ro-bind-try", "/sys", "/sys"]
    args += ["--size", str(layout.scratch_bytes), "--perms", "1777", "--tmpfs", str(INSIDE_SCRATCH)]
    for directory in (INSIDE_HOME, INSIDE_TMP, INSIDE_WORK):
        args += ["--perms", "1777", "--dir", str(directory)]
    return args


def _environment_arguments(environment: Mapping[str, str]) -> list[str]:
    args = ["--clearenv"]
    for name, value in sorted(environment.items()):
        args += ["--setenv", name, value]
    return args


def bubblewrap_command(
    layout: SandboxLayout,
    *,
    bwrap: str,
    environment: Mapping[str, str],
    argv: Sequence[str],
    setpriv: str | None = None,
    sandbox_uid: int | None = None,
) -> list[str]:
    """The full command: with ``sandbox_uid`` (root workers) the two-stage shape, else one stage.

    ``argv`` is what runs inside (its first item the interpreter inside the sandbox);
    ``environment`` is its whole environment.
    """
    namespaces = [
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
    ]
    if sandbox_uid is None:
        return [
            bwrap,
            "--unshare-user",
            "--disable-userns",
            *namespaces,
            *_tree_arguments(layout),
            "--symlink",
            str(INSIDE_TMP),
            SANDBOX_TMP,
            *_environment_arguments(environment),
            "--chdir",
            str(INSIDE_WORK),
            "--",
            *argv,
        ]
    if setpriv is None:
        raise LayoutError("dropping to the sandbox's own uid needs setpriv (util-linux)")
    drop_privileges = [
        setpriv,
        f"--reuid={sandbox_uid}",
        f"--regid={sandbox_uid}",
        "--clear-groups",
        "--bounding-set=-all",
        "--inh-caps=-all",
        "--no-new-privs",
        "--",
    ]
    inner = [
        bwrap,
        "--unshare-user",
        "--disable-userns",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        # A fresh procfs cannot be mounted under a user namespace beneath the outer one; the
        # outer's, of the sandbox's own pid namespace, is bound instead.
        "--ro-bind",
        "/proc",
        "/proc",
        "--dev-bind",
        "/dev",
        "/dev",
        "--bind",
        str(INSIDE_SCRATCH),
        str(INSIDE_SCRATCH),
        "--bind",
        str(INSIDE_TMP),
        SANDBOX_TMP,
        "--chdir",
        str(INSIDE_WORK),
        "--",
        *argv,
    ]
    return [
        bwrap,
        *namespaces,
        *_tree_arguments(layout),
        # The inner bubblewrap sets itself up on a /tmp of its own before it pivots.
        "--dir",
        SANDBOX_TMP,
        *_environment_arguments(environment),
        "--",
        *drop_privileges,
        *inner,
    ]
