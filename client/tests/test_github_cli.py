"""``medigan-client github`` and ``push --from-github`` as far as they go without a hub."""

from __future__ import annotations

import pytest

from medigan_catalog.github import DEFAULT_ASSET_NAME
from medigan_client import github_cli
from medigan_client.cli import main


def test_the_default_asset_name_is_the_catalogs() -> None:
    assert github_cli.DEFAULT_ASSET_NAME == DEFAULT_ASSET_NAME


def test_push_takes_a_package_or_a_github_release_not_both(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--hub", "http://127.0.0.1:9", "push"]) == 2
    assert main(["--hub", "http://127.0.0.1:9", "push", "dir", "--from-github", "o/r@v1.0.0"]) == 2
    assert "either PACKAGE_DIR or --from-github" in capsys.readouterr().err


def test_a_release_ref_that_is_not_semver_is_refused_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Port 9 (discard) on 127.0.0.1: nothing answers there, so a request would fail otherwise.
    assert main(["--hub", "http://127.0.0.1:9", "push", "--from-github", "octo/repo@main"]) == 1
    err = capsys.readouterr().err
    assert "error: the tag 'main' is not a semantic version" in err
