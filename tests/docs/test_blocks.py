"""The rule over README.md and docs/*.md, and the block parser it stands on.

Every command block is executed by a test of ``tests/docs/`` or listed, next to the block, with
the reason it cannot be (``tests/docs/blocks.py``; readers' version: ``docs/command-blocks.md``).
These are unit tests: they read the files and run nothing.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.docs.blocks import (
    all_blocks,
    docs_test_names,
    parse_blocks,
    rule_violations,
    runnable_source,
    with_hub,
)


def _markdown(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_every_command_block_is_executed_by_a_test_or_listed_with_a_reason() -> None:
    problems = rule_violations(all_blocks(), docs_test_names())

    assert not problems, "\n".join(problems)


def test_the_documentation_has_blocks_of_each_kind() -> None:
    # Guards the rule above against passing because the parser found nothing.
    blocks = all_blocks()

    assert {"README.md", "api.md", "evaluation.md"} <= {block.path.name for block in blocks}
    assert {"check", "not-run"} <= {block.marker_kind for block in blocks}
    assert any(not block.is_command for block in blocks)


def test_blocks_are_found_with_their_line_language_and_text(tmp_path: Path) -> None:
    path = _markdown(
        tmp_path,
        """\
        # Title

        ```bash
        echo one
        ```

        - a list item:

          ~~~python
          print("two")
          ~~~

        ````markdown
        ```bash
        not a block of its own
        ```
        ````

        ```
        untyped
        ```
        """,
    )

    blocks = parse_blocks(path)

    assert [(b.line, b.language, b.text) for b in blocks] == [
        (3, "bash", "echo one\n"),
        (9, "python", 'print("two")\n'),
        (13, "markdown", "```bash\nnot a block of its own\n```\n"),
        (19, "", "untyped\n"),
    ]
    assert [b.is_command for b in blocks] == [True, True, False, True]
    assert blocks[0].where.endswith("page.md:3")


def test_a_marker_is_the_comment_right_before_the_block(tmp_path: Path) -> None:
    path = _markdown(
        tmp_path,
        """\
        <!-- check: test_something -->
        ```bash
        echo checked
        ```

        <!-- not-run: needs Zenodo -->

        ```python
        print("listed")
        ```

        <!-- not-run: far away -->
        Some text between the comment and the block.

        ```sh
        echo unmarked
        ```
        """,
    )

    blocks = parse_blocks(path)

    assert [(b.marker_kind, b.marker_value) for b in blocks] == [
        ("check", "test_something"),
        ("not-run", "needs Zenodo"),
        (None, ""),
    ]


def test_unmarked_command_blocks_are_named_by_file_and_line(tmp_path: Path) -> None:
    path = _markdown(
        tmp_path,
        """\
        ```json
        {"not": "a command"}
        ```

        ```text
        output sample
        ```

        ```console
        $ medigan-client sync
        ```

        ```
        untyped
        ```
        """,
    )

    problems = rule_violations(parse_blocks(path), set())

    assert [problem.split(": ", 1)[0] for problem in problems] == [
        f"{path}:9",
        f"{path}:13",
    ]
    assert "console block is neither executed" in problems[0]
    assert "untyped block" in problems[1]


def test_a_check_naming_no_test_and_a_reasonless_listing_are_refused(tmp_path: Path) -> None:
    path = _markdown(
        tmp_path,
        """\
        <!-- check: test_that_does_not_exist -->
        ```bash
        echo one
        ```

        <!-- not-run: -->
        ```bash
        echo two
        ```

        <!-- check test_missing_colon -->
        ```bash
        echo three
        ```

        <!-- check: test_known -->
        ```bash
        echo four
        ```
        """,
    )

    problems = rule_violations(parse_blocks(path), {"test_known"})

    assert len(problems) == 3
    assert "'test_that_does_not_exist', which is no test function in tests/docs/" in problems[0]
    assert problems[0].startswith(f"{path}:2: ")
    assert "must give its reason" in problems[1]
    assert "malformed marker" in problems[2]


def test_the_test_names_are_read_from_the_docs_test_modules() -> None:
    names = docs_test_names()

    assert "test_the_test_names_are_read_from_the_docs_test_modules" in names
    assert {"test_offline_blocks", "test_hub_blocks"} <= names


def test_console_and_pycon_blocks_run_without_prompts_or_output(tmp_path: Path) -> None:
    path = _markdown(
        tmp_path,
        """\
        ```console
        $ medigan-client show zoo/x \\
            --json
        {"model_id": "zoo/x"}
        $ echo done
        done
        ```

        ```pycon
        >>> total = sum(
        ...     [1, 2]
        ... )
        >>> total
        3
        ```
        """,
    )

    console, pycon = parse_blocks(path)

    assert runnable_source(console) == "medigan-client show zoo/x \\\n    --json\necho done\n"
    assert runnable_source(pycon) == "total = sum(\n    [1, 2]\n)\ntotal\n"


def test_only_the_documented_host_and_port_point_at_the_live_hub() -> None:
    text = 'HUB=http://127.0.0.1:8000\nClient(hub_url="http://127.0.0.1:8000/")  # :8000\n'

    assert with_hub(text, "http://127.0.0.1:41234") == (
        'HUB=http://127.0.0.1:41234\nClient(hub_url="http://127.0.0.1:41234/")  # :8000\n'
    )
