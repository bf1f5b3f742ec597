"""The Client facade: settings wiring, search/rank/show on the synced catalogue, hub calls."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_client import Client
from medigan_client.errors import BadRequestError, NotFoundError, TransitionNotAllowedError

if TYPE_CHECKING:
    from conftest import FakeHub


@pytest.fixture
def client(hub: FakeHub, tmp_path: Path) -> Iterator[Client]:
    with Client(
        hub_url=hub.url, token=hub.state.token, cache_dir=tmp_path / "c", progress=False
    ) as opened:
        yield opened


@pytest.fixture
def catalogue(
    publish: Callable[[dict[str, Any]], dict[str, Any]], make_card: Callable[..., dict[str, Any]]
) -> None:
    publish(make_card(model_id="zoo/chest-a", title="Chest X-ray DCGAN", fid=30.0))
    publish(make_card(model_id="zoo/chest-a", version="1.1.0", title="Chest X-ray DCGAN", fid=20.0))
    publish(
        make_card(
            model_id="zoo/brain-b",
            title="Brain MRI WGAN-GP",
            model_type="WGANGP",
            modality=["MRI", "T1"],
            fid=50.0,
        )
    )
    publish(make_card(model_id="zoo/skin-c", title="Dermoscopy lesions", modality=["dermoscopy"]))


def test_first_search_syncs_once_then_works_offline(
    client: Client, hub: FakeHub, catalogue: None
) -> None:
    hits = client.search('"chest x-ray"')
    assert [h.card.release_id for h in hits] == ["zoo/chest-a@1.1.0"]
    catalog_requests = len(hub.state.requests_to("/api/v1/catalog"))
    assert catalog_requests == 1
    client.search("mri")
    client.rank("FID")
    client.show("zoo/brain-b")
    assert len(hub.state.requests_to("/api/v1/catalog")) == catalog_requests


def test_search_filters_operators_and_medigan_semantics(client: Client, catalogue: None) -> None:
    assert [h.card.model_id for h in client.search("modality=mri")] == ["zoo/brain-b"]
    assert [h.card.model_id for h in client.search(["wgan-gp"])] == ["zoo/brain-b"]
    either = client.search("brain dermoscopy", operator="OR")
    assert sorted(h.card.model_id for h in either) == ["zoo/brain-b", "zoo/skin-c"]
    medigan = client.search("MRI T1", medigan_semantics=True)
    assert [h.card.model_id for h in medigan] == ["zoo/brain-b"]
    assert medigan[0].matched_terms == ("mri", "t1")
    with pytest.raises(BadRequestError, match="operator must be one of"):
        client.search("x", operator="NAND")


def test_rank_and_show(client: Client, catalogue: None) -> None:
    ranked = [c.model_id for c in client.rank("FID")]
    assert ranked == ["zoo/chest-a", "zoo/brain-b", "zoo/skin-c"]
    assert [c.model_id for c in client.rank("FID", descending=True)][:2] == [
        "zoo/brain-b",
        "zoo/chest-a",
    ]
    assert client.show("zoo/chest-a").version == "1.1.0"
    assert client.show("zoo/chest-a@1.0.0").version == "1.0.0"
    with pytest.raises(NotFoundError):
        client.show("zoo/none")


def test_release_status_and_review(client: Client, hub: FakeHub) -> None:
    hub.state.states["zoo/x@1.0.0"] = "in_review"
    assert client.release_status("zoo/x@1.0.0")["state"] == "in_review"
    assert client.review("zoo/x@1.0.0", "approve", "looks right")["state"] == "approved"
    with pytest.raises(TransitionNotAllowedError):
        client.review("zoo/x@1.0.0", "reject", "too late")
    with pytest.raises(BadRequestError, match="names no version"):
        client.release_status("zoo/x")
    with pytest.raises(NotFoundError):
        client.release_status("zoo/x@9.9.9")


def test_download_and_generate_through_the_client(
    client: Client, published: dict[str, Any], tmp_path: Path
) -> None:
    archive = client.download("zoo/noise-8")
    assert archive.name == published["artifacts"][0]["filename"]
    result = client.generate("zoo/noise-8", 3, tmp_path / "imgs", device="cpu")
    assert len(result.files) == 3


def test_importing_the_package_does_not_import_torch_or_django() -> None:
    code = (
        "import sys, medigan_client, medigan_client.cli\n"
        "from medigan_client import Client\n"
        "bad = [m for m in ('torch', 'django', 'rest_framework', 'celery', 'hub')"
        " if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
