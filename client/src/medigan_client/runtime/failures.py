"""How a failure of contributed code reads: a short form in the package's terms, and the rest.

When a model package fails (its import, its generate function, the output it returns), two
readers want two things. The contributor and the user want to know what failed in the
package's own terms; the operator debugging the runtime wants everything. Every runtime
(``inprocess``, ``process``, ``venv``, the sandboxed child, medigan-legacy packages) builds both
here, from the same record (:func:`medigan_client.runtime.worker.failure_record`, made where the
exception happened):

* :attr:`PackageFailure.message`, the **short form**: the exception's type and message, then
  the frames inside the package, each as ``path, line N, in function: source line`` with the path
  relative to the package's root. Frames outside the package (the client's runtime, the Python
  library, site-packages) are left out, as are caret lines; a frame repeated by a runaway
  recursion is shown once with its count, and a long chain of frames keeps its ends. Chained
  exceptions follow as ``caused by ...`` (``raise ... from``) or ``while handling ...``. In
  messages, paths inside the package are made relative to its root and other absolute paths
  become :data:`PYTHON_TOKEN` (the interpreter and its libraries) or :data:`OUTSIDE_TOKEN`, so
  that ``FileNotFoundError: No such file or directory: weights.safetensors (package:
  __init__.py, line 42, in load_model)`` stays readable wherever the package ran.
* :attr:`PackageFailure.traceback`, the **full traceback** as Python prints it, for logs and
  staff only.

The sandboxed child (:mod:`.child`) reports its failure to its parent as one line on stderr
(:func:`report_line`), which the parent reads back with :func:`reported_failure`.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import sysconfig
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medigan_client.errors import ClientError
from medigan_client.runtime.worker import failure_record

PYTHON_TOKEN = "<python>"  # noqa: S105 (a placeholder for paths, not a secret)
OUTSIDE_TOKEN = "<outside the package>"  # noqa: S105
# The child's last line on stderr when it fails: this marker, then the failure as JSON.
REPORT_MARKER = "medigan-package-failure: "
# Frames of one exception shown in the short form: the first where the package was entered,
# the last ones where it failed.
SHOWN_FRAMES = 6
# Exceptions of a chain shown in the short form, and the package's own output lines quoted.
SHOWN_EXCEPTIONS = 3
SHOWN_OUTPUT_LINES = 5
MAX_SHOWN_MESSAGE_CHARS = 500
# An absolute POSIX path in free text: a slash that does not continue a word, a URL or a path.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/\\-])/[^\s'\"`,;:()\[\]{}<>|]+")
_RELATIONS = {"cause": "caused by", "context": "while handling"}


@dataclass(frozen=True)
class PackageFailure:
    """A failure of a package: the short form for people, the full traceback for logs."""

    message: str
    traceback: str = ""
    # The package's last lines of output before it failed (only the sandboxed child has them).
    output: tuple[str, ...] = field(default_factory=tuple)

    def with_output(self) -> str:
        """The short form followed by the package's last output lines, when there are any."""
        if not self.output:
            return self.message
        shown = " | ".join(self.output[-SHOWN_OUTPUT_LINES:])
        return f"{self.message}\nthe package's last output: {shown}"


def describe_exception(exc: BaseException, package_dirs: Iterable[str | Path]) -> PackageFailure:
    """Both forms of ``exc``, raised by (or while running) the package in ``package_dirs``.

    The client's own wrappers (a :class:`~medigan_client.errors.ClientError` raised ``from`` the
    package's exception) are looked through: the package's exception is what failed. A wrapper
    with no such cause is the client's own finding and reads as its message.
    """
    while isinstance(exc, ClientError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, ClientError):
        return PackageFailure(
            message=rewrite_paths(exc.message, package_dirs),
            traceback=exc.traceback or failure_record(exc)["traceback"],  # type: ignore[arg-type]
        )
    return describe_record(failure_record(exc), package_dirs)


def describe_record(
    record: Mapping[str, object], package_dirs: Iterable[str | Path]
) -> PackageFailure:
    """Both forms of a failure recorded by :func:`~medigan_client.runtime.worker.failure_record`."""
    roots = _roots(package_dirs)
    raw_chain = record.get("chain")
    chain = (
        [entry for entry in raw_chain if isinstance(entry, Mapping)]
        if isinstance(raw_chain, list)
        else []
    )
    lines: list[str] = []
    for position, entry in enumerate(chain[:SHOWN_EXCEPTIONS]):
        relation = _RELATIONS.get(str(entry.get("relation")), "") if position else ""
        lines.extend(_exception_lines(entry, roots, relation))
    if len(chain) > SHOWN_EXCEPTIONS:
        lines.append(f"[{len(chain) - SHOWN_EXCEPTIONS} more chained exceptions left out]")
    message = "\n".join(lines) if lines else "the package failed"
    traceback = record.get("traceback")
    return PackageFailure(message=message, traceback=str(traceback) if traceback else "")


def rewrite_paths(text: str, package_dirs: Iterable[str | Path]) -> str:
    """``text`` with paths inside the package relative to its root and others replaced.

    A path outside the package becomes :data:`PYTHON_TOKEN` when it lies in the running
    Python's installation (its standard library, site-packages), else :data:`OUTSIDE_TOKEN`.
    """
    roots = _roots(package_dirs)

    def replace(match: re.Match[str]) -> str:
        path = match.group(0)
        relative = _relative(path, roots)
        if relative is not None:
            return relative or "."
        return PYTHON_TOKEN if _is_python_path(path) else OUTSIDE_TOKEN

    return _ABSOLUTE_PATH.sub(replace, text)


def report_line(failure: PackageFailure) -> str:
    """The line the sandboxed child writes last on stderr to report ``failure`` (one line)."""
    payload = {"message": failure.message, "traceback": failure.traceback}
    return REPORT_MARKER + json.dumps(payload, ensure_ascii=True)


def reported_failure(
    stderr_lines: Sequence[str], package_dirs: Iterable[str | Path] = ()
) -> PackageFailure | None:
    """The failure the child reported in ``stderr_lines`` (its last report), or ``None``.

    The lines before the report are the package's own output, quoted with paths rewritten.
    """
    for index in range(len(stderr_lines) - 1, -1, -1):
        line = stderr_lines[index]
        if not line.startswith(REPORT_MARKER):
            continue
        try:
            payload = json.loads(line[len(REPORT_MARKER) :])
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("message"), str):
            return None
        output = tuple(
            rewrite_paths(text, package_dirs)
            for text in stderr_lines[:index]
            if not text.startswith(REPORT_MARKER)
        )
        return PackageFailure(
            message=str(payload["message"]),
            traceback=str(payload.get("traceback") or ""),
            output=output,
        )
    return None


# ---- the short form ------------------------------------------------------------------------


def _exception_lines(entry: Mapping[str, object], roots: Sequence[str], relation: str) -> list[str]:
    frames = _package_frames(entry.get("frames"), roots)
    text = rewrite_paths(str(entry.get("message") or ""), roots)
    if len(text) > MAX_SHOWN_MESSAGE_CHARS:
        text = text[: MAX_SHOWN_MESSAGE_CHARS - 3] + "..."
    kind = str(entry.get("type") or "Exception")
    if entry.get("output_error"):
        headline = f"the package {text}"
    elif "exit_code" in entry:
        headline = f"the package called sys.exit({entry['exit_code']})"
    else:
        headline = f"{kind}: {text}" if text else kind
    location = entry.get("location")
    syntax = _syntax_frame(location, roots)
    if syntax is not None:
        frames = [*frames, syntax]
    if frames:
        headline += f" (package: {frames[-1].where()})"
    lines = [f"{relation} {headline}" if relation else headline]
    lines.extend(f"  {line}" for line in _frame_lines(frames))
    return lines


@dataclass(frozen=True)
class _Frame:
    path: str
    line: int
    function: str
    source: str
    repeated: int = 0

    def where(self) -> str:
        return f"{self.path}, line {self.line}" + (f", in {self.function}" if self.function else "")

    def shown(self) -> str:
        return self.where() + (f": {self.source}" if self.source else "")


def _package_frames(raw: object, roots: Sequence[str]) -> list[_Frame]:
    frames: list[_Frame] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, list) or len(item) < 4:
            continue
        relative = _relative(str(item[0]), roots)
        if not relative:
            continue
        repeated = int(str(item[4])) if len(item) > 4 and str(item[4]).isdigit() else 0
        frame = _Frame(
            relative, int(str(item[1]) or 0), str(item[2]), str(item[3]).strip(), repeated
        )
        if frames and frames[-1].where() == frame.where() and frames[-1].source == frame.source:
            # Identical frames with client frames between them (a recursion through a callback).
            last = frames[-1]
            frames[-1] = _Frame(
                last.path, last.line, last.function, last.source, last.repeated + 1 + repeated
            )
            continue
        frames.append(frame)
    return frames


def _syntax_frame(location: object, roots: Sequence[str]) -> _Frame | None:
    if not isinstance(location, list) or len(location) < 3:
        return None
    relative = _relative(str(location[0]), roots)
    if not relative:
        return None
    return _Frame(relative, int(str(location[1]) or 0), "", str(location[2]).strip())


def _frame_lines(frames: Sequence[_Frame]) -> list[str]:
    shown = list(frames)
    left_out = 0
    if len(shown) > SHOWN_FRAMES:
        left_out = len(shown) - SHOWN_FRAMES
        shown = shown[:1] + shown[-(SHOWN_FRAMES - 1) :]
    lines: list[str] = []
    for index, frame in enumerate(shown):
        if left_out and index == 1:
            lines.append(f"[{left_out} more frames of the package left out]")
        lines.append(frame.shown())
        if frame.repeated:
            lines.append(f"[the frame above repeated {frame.repeated} more times]")
    return lines


# ---- paths ---------------------------------------------------------------------------------


def _roots(package_dirs: Iterable[str | Path]) -> list[str]:
    """The package's directories as given and resolved, longest first, without a trailing /."""
    roots: set[str] = set()
    for directory in package_dirs:
        text = str(directory).rstrip("/")
        if not text:
            continue
        roots.add(text)
        with contextlib.suppress(OSError, RuntimeError):
            roots.add(str(Path(text).resolve()))
    return sorted(roots, key=len, reverse=True)


def _relative(path: str, roots: Sequence[str]) -> str | None:
    """``path`` relative to the first root that holds it ("" for the root), else ``None``."""
    for root in roots:
        if path == root:
            return ""
        if path.startswith(root + "/"):
            return path[len(root) + 1 :]
    return None


def _python_prefixes() -> list[str]:
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        location = sysconfig.get_paths().get(name)
        if location:
            prefixes.add(location)
    return sorted({p.rstrip("/") for p in prefixes if p and p != "/"}, key=len, reverse=True)


def _is_python_path(path: str) -> bool:
    return "site-packages" in path or _relative(path, _python_prefixes()) is not None
