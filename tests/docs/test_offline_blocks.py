"""The documentation's blocks that need no hub, executed as a reader would run them.

Each block marked ``<!-- check: test_offline_blocks -->`` (the catalogue, card schema, offline
search on a snapshot file, evaluation metrics) runs in a fresh process and folder with the
project's Python, a private home and client cache, and ``MEDIGAN_OFFLINE=1``: a block that
reaches for a hub fails here instead of passing by luck (``tests/docs/blocks.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.blocks import block_environment, blocks_checked_by, failure_report, run_block

pytestmark = pytest.mark.integration


def test_offline_blocks(tmp_path: Path) -> None:
    blocks = blocks_checked_by("test_offline_blocks")
    assert blocks, "no documentation block is marked <!-- check: test_offline_blocks -->"
    environment = block_environment(tmp_path, MEDIGAN_OFFLINE="1")

    failures: list[str] = []
    for number, block in enumerate(blocks):
        folder = tmp_path / f"block-{number}"
        folder.mkdir()
        completed = run_block(block, cwd=folder, env=environment)
        if completed.returncode != 0 or "Traceback (most recent call last)" in completed.stderr:
            failures.append(failure_report(block, completed))

    assert not failures, "\n\n".join(failures)
