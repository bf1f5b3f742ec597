"""The GitHub part of the wire format: tags as versions, repositories, asset names, paths."""

from __future__ import annotations

import pytest

from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.github import (
    GithubTagNotSemverError,
    asset_name_for,
    check_asset_name,
    github_link_path,
    github_submission_path,
    github_webhook_path,
    parse_github_release_ref,
    parse_repository,
    version_from_tag,
)


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("v1.2.3", "1.2.3"),
        ("1.2.3", "1.2.3"),
        ("V0.1.0-rc.1", "0.1.0-rc.1"),
        ("v2.0.0+b5", "2.0.0+b5"),
    ],
)
def test_a_semver_tag_is_its_version(tag: str, version: str) -> None:
    assert version_from_tag(tag) == version


@pytest.mark.parametrize("tag", ["latest", "v1.2", "1", "vv1.0.0", "v01.0.0", "release-1.0.0", ""])
def test_any_other_tag_is_refused_with_its_code(tag: str) -> None:
    with pytest.raises(GithubTagNotSemverError) as refused:
        version_from_tag(tag)

    assert refused.value.code is ErrorCode.GITHUB_TAG_NOT_SEMVER
    assert refused.value.to_body()["detail"] == {"tag": tag}


@pytest.mark.parametrize("text", ["octo-org/my.model_repo", "a/b", "Octo/Repo-1"])
def test_github_repository_names_are_accepted(text: str) -> None:
    assert parse_repository(text) == text


@pytest.mark.parametrize("text", ["octo", "octo/", "/repo", "-octo/repo", "octo/re po", "o/r.git"])
def test_other_repository_names_are_refused(text: str) -> None:
    with pytest.raises(CatalogError) as refused:
        parse_repository(text)

    assert refused.value.code is ErrorCode.BAD_REQUEST


def test_a_release_ref_is_repository_at_tag() -> None:
    assert parse_github_release_ref("octo/repo@v1.0.0") == ("octo/repo", "v1.0.0")
    with pytest.raises(CatalogError):
        parse_github_release_ref("octo/repo")
    with pytest.raises(GithubTagNotSemverError):
        parse_github_release_ref("octo/repo@main")


def test_asset_names_take_the_model_name_version_and_tag() -> None:
    template = check_asset_name("{name}-{version}-{tag}.zip")

    assert asset_name_for(template, name="m", version="1.0.0", tag="v1.0.0") == "m-1.0.0-v1.0.0.zip"
    for bad in ("", "a/b.zip", "{model}.zip", "{name.zip"):
        with pytest.raises(CatalogError):
            check_asset_name(bad)


def test_paths() -> None:
    assert github_link_path("alice/noise-16") == "/api/v1/models/alice/noise-16/github"
    assert github_webhook_path(7) == "/api/v1/github/links/7/webhook"
    assert github_submission_path(3) == "/api/v1/github/submissions/3"
