"""The fenced code blocks of README.md and docs/*.md, and how each one is checked.

A block whose language is a command language (``bash``, ``sh``, ``shell``, ``console``,
``python``, ``py``, ``pycon``, or none at all) must carry a marker: an HTML comment on the last
non-blank line before its opening fence, which Markdown renders as nothing.

* ``<!-- check: test_name -->``: the test function ``test_name`` in ``tests/docs/`` executes it;
* ``<!-- not-run: reason -->``: no test executes it, for the reason given (needs Zenodo, a GPU,
  Docker; it is a usage synopsis or a diagram ...).

Blocks in any other language (``json``, ``text``, ``toml``, ``yaml`` ...) are examples, output or
configuration, not commands, and need no marker. The rules are described for readers in
``docs/command-blocks.md``; ``test_blocks.py`` enforces them and the executing tests run the
blocks that name them.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = Path(__file__).resolve().parent

COMMAND_LANGUAGES = frozenset({"", "bash", "sh", "shell", "console", "python", "py", "pycon"})
PYTHON_LANGUAGES = frozenset({"python", "py", "pycon"})

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>check|not-run)\s*:\s*(?P<value>.*?)\s*-->\s*$")
_ANY_MARKER = re.compile(r"^\s*<!--\s*(check|not-run)\b")
# The documented substitution: the embedded default's address in a block becomes the live hub's.
DOCUMENTED_HUB = "127.0.0.1:8000"


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its text and its marker (if any)."""

    path: Path
    line: int
    """1-based line of the opening fence."""
    language: str
    text: str
    marker_kind: str | None = None
    """``check``, ``not-run`` or None."""
    marker_value: str = ""
    marker_problem: str = ""
    """Why a comment before the block that looks like a marker is not one."""

    @property
    def where(self) -> str:
        """``file:line``, relative to the repository."""
        try:
            shown = self.path.relative_to(REPO_ROOT)
        except ValueError:
            shown = self.path
        return f"{shown}:{self.line}"

    @property
    def is_command(self) -> bool:
        """Whether the block is in a command language, so it must be checked or listed."""
        return self.language in COMMAND_LANGUAGES


def parse_blocks(path: Path) -> list[Block]:
    """Every fenced code block of the Markdown file ``path``, in order.

    Fences of backticks or tildes, three or more, indented or not (list items); a block ends at a
    fence of the same character at least as long, or at the end of the file.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening["fence"]
        indent = len(opening["indent"])
        language = opening["info"].strip().split(" ", 1)[0].strip("{}.").lower()
        body: list[str] = []
        end = index + 1
        while end < len(lines):
            closing = _FENCE.match(lines[end])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end])
            end += 1
        kind, value, problem = _marker_before(lines, index)
        blocks.append(
            Block(
                path=path,
                line=index + 1,
                language=language,
                text=textwrap.dedent("\n".join(body)) + "\n",
                marker_kind=kind,
                marker_value=value,
                marker_problem=problem,
            )
        )
        index = end + 1
    return blocks


def _marker_before(lines: list[str], fence_index: int) -> tuple[str | None, str, str]:
    previous = fence_index - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    if previous < 0:
        return None, "", ""
    marker = _MARKER.match(lines[previous])
    if marker is not None:
        return marker["kind"], marker["value"], ""
    if _ANY_MARKER.match(lines[previous]):
        return None, "", f"malformed marker {lines[previous].strip()!r}"
    return None, "", ""


def documentation_files(root: Path = REPO_ROOT) -> list[Path]:
    """README.md and every docs/*.md of the repository at ``root``."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def all_blocks(root: Path = REPO_ROOT) -> list[Block]:
    """Every fenced block of the documentation files."""
    return [block for path in documentation_files(root) for block in parse_blocks(path)]


# Besides tests/docs/: the newcomer's walk runs the README's commands from `make run` on.
OTHER_BLOCK_TESTS = (TESTS_DIR.parent / "test_newcomer.py",)


def docs_test_names(tests_dir: Path = TESTS_DIR) -> set[str]:
    """Names of the test functions of ``tests/docs/test_*.py`` and ``OTHER_BLOCK_TESTS``.

    The modules are read, not imported.
    """
    names: set[str] = set()
    others = [path for path in OTHER_BLOCK_TESTS if path.is_file()]
    for module in [*tests_dir.glob("test_*.py"), *others]:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        names |= {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")
        }
    return names


def rule_violations(blocks: list[Block], test_names: set[str]) -> list[str]:
    """``file:line: problem`` for each block that breaks the rules of this module's docstring."""
    problems: list[str] = []
    for block in blocks:
        if block.marker_problem:
            problems.append(f"{block.where}: {block.marker_problem}")
        elif block.marker_kind == "check":
            if block.marker_value not in test_names:
                problems.append(
                    f"{block.where}: marker names {block.marker_value!r}, which is no test "
                    "function in tests/docs/"
                )
        elif block.marker_kind == "not-run":
            if not block.marker_value:
                problems.append(f"{block.where}: a not-run marker must give its reason")
        elif block.is_command:
            language = block.language or "untyped"
            problems.append(
                f"{block.where}: {language} block is neither executed by a test nor listed with "
                "a reason: put <!-- check: test_name --> or <!-- not-run: reason --> before it, "
                "or give it a non-command language such as ```text"
            )
    return problems


def blocks_checked_by(test_name: str, root: Path = REPO_ROOT) -> list[Block]:
    """The blocks whose marker names ``test_name``, in file order."""
    return [
        block
        for block in all_blocks(root)
        if block.marker_kind == "check" and block.marker_value == test_name
    ]


def with_hub(text: str, hub_url: str) -> str:
    """``text`` with the embedded default's ``127.0.0.1:8000`` pointing at ``hub_url`` instead.

    Only the host and port change; scheme, paths and everything else stay as the reader sees.
    """
    return text.replace(DOCUMENTED_HUB, hub_url.removeprefix("http://").removeprefix("https://"))


def runnable_source(block: Block) -> str:
    """The program a block stands for: a console's commands without prompts or output.

    ``console`` keeps the lines after ``$ `` (and their ``\\`` continuations); ``pycon`` the
    lines after ``>>> `` and ``... ``. Other languages are run as written.
    """
    if block.language == "console":
        return _prompted(block.text, ("$ ",), ())
    if block.language == "pycon":
        return _prompted(block.text, (">>> ",), ("... ", "..."))
    return block.text


def _prompted(text: str, prompts: tuple[str, ...], continuations: tuple[str, ...]) -> str:
    kept: list[str] = []
    continuing = False  # the previous command line ended in a backslash
    for line in text.splitlines():
        prompt = next((p for p in prompts if line.startswith(p)), None)
        continuation = next((c for c in continuations if line.startswith(c)), None)
        if prompt is not None:
            kept.append(line[len(prompt) :])
        elif continuation is not None:
            kept.append(line[len(continuation) :])
        elif continuing:
            kept.append(line)
        else:
            continue  # output
        continuing = kept[-1].endswith("\\")
    return "\n".join(kept) + "\n"


def block_environment(work_dir: Path, **extra: str) -> dict[str, str]:
    """The environment a block runs in: the project's venv first on PATH, a private home.

    A fresh ``HOME`` and ``MEDIGAN_CACHE_DIR`` under ``work_dir`` keep the user's own client
    config and cache out; ``extra`` adds what the test provides (a hub URL, tokens).
    """
    environment = {
        "PATH": f"{REPO_ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(work_dir / "home"),
        "MEDIGAN_CACHE_DIR": str(work_dir / "cache"),
        "MPLBACKEND": "Agg",
        "PYTHONPATH": str(REPO_ROOT),
        "LANG": "C.UTF-8",
        **extra,
    }
    for name in ("TMPDIR", "OPENBLAS_NUM_THREADS", "MEDIGAN_TORCH_THREADS"):
        if name in os.environ:
            environment.setdefault(name, os.environ[name])
    return environment


def run_block(
    block: Block,
    *,
    cwd: Path,
    env: dict[str, str],
    hub_url: str | None = None,
    timeout: float = 600.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``block`` in a fresh process in ``cwd``: Python blocks with the project's Python,
    shell and console blocks with ``bash -eu -o pipefail``; with ``hub_url``, after
    :func:`with_hub`.

    ``cwd`` gets a ``.venv`` link to the project's virtual environment, so a block's
    ``.venv/bin/medigan-client`` works there while its output files stay in ``cwd``.
    """
    source = runnable_source(block)
    if hub_url is not None:
        source = with_hub(source, hub_url)
    link = cwd / ".venv"
    if not link.exists():
        link.symlink_to(REPO_ROOT / ".venv")
    if block.language in PYTHON_LANGUAGES:
        argv = [str(REPO_ROOT / ".venv" / "bin" / "python"), "-c", source]
    else:
        argv = ["bash", "-eu", "-o", "pipefail", "-c", source]
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def failure_report(block: Block, completed: subprocess.CompletedProcess[str]) -> str:
    """What a failed block printed, headed by where it is."""
    return (
        f"{block.where} ({block.language or 'untyped'}) exited with {completed.returncode}\n"
        f"--- stdout (end) ---\n{completed.stdout[-2000:]}\n"
        f"--- stderr (end) ---\n{completed.stderr[-3000:]}"
    )
