"""Tests of the two forms of a package's failure: the short one in its terms, the full traceback.

The packages are real files imported by path, as every runtime imports them; the test module's
own frames stand for the client's runtime, which the short form must leave out.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

from medigan_client.errors import GenerationFailedError
from medigan_client.runtime.failures import (
    OUTSIDE_TOKEN,
    PYTHON_TOKEN,
    PackageFailure,
    describe_exception,
    report_line,
    reported_failure,
    rewrite_paths,
)
from medigan_client.runtime.worker import PackageSpec, import_package

# An absolute path anywhere in a text (not a relative one, not a URL).
_ABSOLUTE = re.compile(r"(?<![\w.<])/[\w.-]")


def _package(root: Path, source: str, **modules: str) -> Path:
    directory = root / "package"
    directory.mkdir()
    (directory / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
    for name, text in modules.items():
        (directory / f"{name}.py").write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


def _failure_of(directory: Path, *args: object) -> tuple[BaseException, PackageFailure]:
    """Import the package and call its generate (from here, a frame outside the package)."""
    spec = PackageSpec(
        root=str(directory), module_name=f"_failures_test_{abs(hash(directory))}", kind="v2"
    )
    try:
        module = import_package(spec)
        module.generate(*args)
    except Exception as exc:
        return exc, describe_exception(exc, (directory,))
    finally:
        for name in [n for n in sys.modules if n.startswith(spec.module_name)]:
            del sys.modules[name]
    raise AssertionError("the package did not fail")


def test_package_frames_are_kept_relative_and_the_rest_is_left_out(tmp_path: Path) -> None:
    directory = _package(
        tmp_path,
        """
        import json
        from .network import build

        def generate(num_samples):
            return build(num_samples)
        """,
        network="""
        import json

        def build(num_samples):
            return json.loads("{not json")
        """,
    )

    exc, failure = _failure_of(directory, 2)

    lines = failure.message.splitlines()
    assert lines[0].startswith("JSONDecodeError: Expecting property name enclosed in double quotes")
    assert lines[0].endswith("(package: network.py, line 5, in build)")
    assert lines[1:] == [
        "  __init__.py, line 6, in generate: return build(num_samples)",
        '  network.py, line 5, in build: return json.loads("{not json")',
    ]
    # Neither this test's frame (the runtime's stand-in) nor json's; no path, no carets.
    assert "test_failures.py" not in failure.message and "decoder.py" not in failure.message
    assert not _ABSOLUTE.search(failure.message)
    assert "^" not in failure.message and "Traceback" not in failure.message
    # The full form keeps everything.
    assert failure.traceback.startswith("Traceback (most recent call last):")
    assert "test_failures.py" in failure.traceback and str(directory) in failure.traceback
    assert "json/decoder.py" in failure.traceback
    assert isinstance(exc, ValueError)


def test_chained_exceptions_read_as_caused_by_and_while_handling(tmp_path: Path) -> None:
    directory = _package(
        tmp_path,
        """
        from pathlib import Path

        WEIGHTS = Path(__file__).parent / "weights.safetensors"

        def load():
            try:
                return WEIGHTS.read_bytes()
            except FileNotFoundError as error:
                raise RuntimeError("the weights could not be loaded") from error

        def generate(num_samples):
            try:
                return load()
            finally:
                {}["cleanup"]
        """,
    )

    _, failure = _failure_of(directory, 1)

    lines = failure.message.splitlines()
    assert lines[0] == "KeyError: 'cleanup' (package: __init__.py, line 16, in generate)"
    assert (
        "while handling RuntimeError: the weights could not be loaded "
        "(package: __init__.py, line 10, in load)" in lines
    )
    caused = [line for line in lines if line.startswith("caused by ")]
    assert caused == [
        "caused by FileNotFoundError: [Errno 2] No such file or directory: 'weights.safetensors' "
        "(package: __init__.py, line 8, in load)"
    ]
    assert str(tmp_path) not in failure.message


def test_a_runaway_recursion_shows_its_frame_once_with_a_count(tmp_path: Path) -> None:
    directory = _package(
        tmp_path,
        """
        def deeper(depth):
            return deeper(depth + 1)

        def generate(num_samples):
            return deeper(0)
        """,
    )

    exc, failure = _failure_of(directory, 1)

    assert isinstance(exc, RecursionError)
    lines = failure.message.splitlines()
    assert lines[0] == (
        "RecursionError: maximum recursion depth exceeded (package: __init__.py, line 3, in deeper)"
    )
    assert lines[1] == "  __init__.py, line 6, in generate: return deeper(0)"
    assert lines[2] == "  __init__.py, line 3, in deeper: return deeper(depth + 1)"
    assert re.fullmatch(r"  \[the frame above repeated \d{3,} more times\]", lines[3])
    assert len(lines) == 4


def test_paths_in_messages_are_made_relative_or_replaced(tmp_path: Path) -> None:
    directory = _package(
        tmp_path,
        """
        import json
        from pathlib import Path

        HERE = Path(__file__).parent

        def generate(num_samples):
            raise FileNotFoundError(
                f"{HERE / 'weights.safetensors'} not found; also looked in "
                f"/srv/hub/work/validate-12-abc/package and {json.__file__}"
            )
        """,
    )

    _, failure = _failure_of(directory, 1)

    assert failure.message.splitlines()[0] == (
        f"FileNotFoundError: weights.safetensors not found; also looked in {OUTSIDE_TOKEN} and "
        f"{PYTHON_TOKEN} (package: __init__.py, line 8, in generate)"
    )
    assert "/srv/hub" not in failure.message


def test_rewrite_paths_leaves_urls_and_relative_paths_alone(tmp_path: Path) -> None:
    text = f"see https://example.org/a/b, models/x/y.pt, 1/2 and {tmp_path}/pkg/w.pt"

    assert rewrite_paths(text, (tmp_path / "pkg",)) == (
        "see https://example.org/a/b, models/x/y.pt, 1/2 and w.pt"
    )


def test_a_syntax_error_points_at_the_broken_line(tmp_path: Path) -> None:
    directory = _package(tmp_path, "from .network import build\n", network="def build(:\n")

    _, failure = _failure_of(directory, 1)

    lines = failure.message.splitlines()
    assert lines[0] == "SyntaxError: invalid syntax (package: network.py, line 1)"
    assert lines[-1] == "  network.py, line 1: def build(:"


def test_the_clients_wrapper_is_looked_through(tmp_path: Path) -> None:
    directory = _package(
        tmp_path,
        """
        def generate(num_samples):
            raise ValueError("bad latent size")
        """,
    )
    _, inner = _failure_of(directory, 1)
    spec = PackageSpec(root=str(directory), module_name="_failures_test_wrapper", kind="v2")
    try:
        try:
            import_package(spec).generate(1)
        except ValueError as error:
            raise GenerationFailedError("x failed to generate 1 samples") from error
    except GenerationFailedError as wrapper:
        failure = describe_exception(wrapper, (directory,))
    finally:
        sys.modules.pop("_failures_test_wrapper", None)

    assert failure.message == inner.message
    assert failure.message.startswith("ValueError: bad latent size (package: __init__.py, line 3")


def test_the_childs_report_travels_on_one_stderr_line(tmp_path: Path) -> None:
    failure = PackageFailure(
        message="ValueError: bad\n  __init__.py, line 3, in generate: raise ValueError('bad')",
        traceback='Traceback (most recent call last):\n  File "/x.py", line 1\n',
    )
    lines = [
        "loading weights from /sandbox/package/weights.safetensors",
        "and from /etc/secret-place",
        report_line(failure),
    ]

    assert "\n" not in lines[-1]
    read = reported_failure(lines, ("/sandbox/package",))

    assert read is not None
    assert read.message == failure.message and read.traceback == failure.traceback
    assert read.output == (
        "loading weights from weights.safetensors",
        f"and from {OUTSIDE_TOKEN}",
    )
    assert read.with_output().endswith(
        f"the package's last output: loading weights from weights.safetensors | and from "
        f"{OUTSIDE_TOKEN}"
    )
    assert reported_failure(["just output", "no report"]) is None

    assert reported_failure(["output", "medigan-package-failure: {not json"]) is None
