"""The push's DOI fields: ``mint_doi`` and ``doi`` are recorded, or refused before anything is
stored when this hub cannot honour them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.test import Client as HttpClient

from hub.registry.models import Release
from tests import factories
from tests.zenodo_server import ZenodoServer

pytestmark = pytest.mark.django_db


def _push(tmp_path: Path, **fields: str) -> Any:
    archive, sha256, card = factories.package_zip(tmp_path)
    key = factories.token(factories.user("alice"))
    with archive.open("rb") as package:
        return HttpClient().post(
            "/api/v1/releases",
            {"card": json.dumps(card), "package": package, "sha256": sha256, **fields},
            HTTP_AUTHORIZATION=f"Token {key}",
        )


def test_a_push_asking_for_a_minted_doi_is_recorded_for_the_approval(
    zenodo: ZenodoServer, tmp_path: Path
) -> None:
    response = _push(tmp_path, mint_doi="true")

    assert response.status_code == 202
    release = Release.objects.get()
    assert release.doi_mint_requested and release.doi == ""


def test_a_push_naming_a_zenodo_doi_is_recorded_unpinned(
    zenodo: ZenodoServer, tmp_path: Path
) -> None:
    response = _push(tmp_path, doi="10.5281/zenodo.7031735")

    assert response.status_code == 202
    assert response.json()["doi"] == "10.5281/zenodo.7031735"
    assert response.json()["pinned"] is False


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"doi": "10.1117/12.2543506"}, "doi_unresolvable", "not a Zenodo DOI"),
        ({"doi": "zenodo 7031735"}, "bad_request", "not a bare DOI"),
        ({"doi": "10.5281/zenodo.1", "mint_doi": "true"}, "bad_request", "not both"),
        ({"mint_doi": "perhaps"}, "bad_request", "true or false"),
    ],
)
def test_a_push_whose_doi_fields_cannot_be_honoured_is_refused_and_stores_nothing(
    zenodo: ZenodoServer, tmp_path: Path, fields: dict[str, str], code: str, words: str
) -> None:
    response = _push(tmp_path, **fields)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert words in response.json()["message"]
    assert not Release.objects.exists()
    assert not default_storage.exists("releases/alice")


@pytest.mark.parametrize(
    ("mint", "token", "words"),
    [("never", "t", "MEDIGAN_ZENODO_MINT=never"), ("on_request", "", "no Zenodo token")],
)
def test_a_mint_request_to_a_hub_that_deposits_nothing_is_refused(
    tmp_path: Path, settings: Any, mint: str, token: str, words: str
) -> None:
    settings.MEDIGAN_ZENODO_MINT = mint
    settings.MEDIGAN_ZENODO_TOKEN = token

    response = _push(tmp_path, mint_doi="true")

    assert response.status_code == 400
    assert response.json()["code"] == "doi_mint_unavailable"
    assert words in response.json()["message"]
    assert not Release.objects.exists()
