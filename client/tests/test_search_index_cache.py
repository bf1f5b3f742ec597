"""The search index kept beside the cached snapshot: built at sync, trusted only for its bytes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from medigan_catalog.search_index import INDEX_FORMAT, SearchIndex
from medigan_catalog.snapshot import SnapshotRelease
from medigan_client import Client
from medigan_client.cache import Cache
from medigan_client.settings import ClientSettings
from medigan_client.sync import (
    latest_cards,
    load_indexed_catalog,
    load_snapshot,
    search_index_path,
    snapshot_key,
    sync,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import FakeHub

    MakeCard = Callable[..., dict[str, Any]]


def _list(hub: FakeHub, card: dict[str, Any]) -> None:
    hub.state.releases.append(
        {
            "model_id": card["model_id"],
            "version": card["version"],
            "published_at": "2025-01-02T00:00:00+00:00",
            "card": card,
        }
    )
    hub.state.serial += 1


@pytest.fixture
def listed(hub: FakeHub, make_card: MakeCard) -> None:
    _list(hub, make_card(model_id="zoo/chest-a", title="Chest X-ray DCGAN"))
    _list(hub, make_card(model_id="zoo/chest-a", version="1.1.0", title="Chest X-ray DCGAN"))
    _list(
        hub,
        make_card(
            model_id="zoo/brain-b",
            title="Brain MRI WGAN-GP",
            model_type="WGANGP",
            modality=["MRI", "T1"],
        ),
    )


@pytest.fixture
def client(settings: ClientSettings) -> Iterator[Client]:
    with Client(settings=settings, progress=False) as opened:
        yield opened


def _stored_header(settings: ClientSettings) -> dict[str, Any]:
    head = search_index_path(settings).read_bytes().partition(b"\n")[0]
    header: dict[str, Any] = json.loads(head)
    return header


def _snapshot_bytes(settings: ClientSettings) -> bytes:
    return Cache(settings.cache_dir).snapshot_path(settings.hub_url).read_bytes()


def test_sync_stores_the_index_beside_the_snapshot_keyed_by_its_bytes(
    settings: ClientSettings, listed: None
) -> None:
    sync(settings)

    path = search_index_path(settings)
    assert path.parent == Cache(settings.cache_dir).snapshot_path(settings.hub_url).parent
    assert _stored_header(settings)["key"] == snapshot_key(_snapshot_bytes(settings))
    index = SearchIndex.loads(path.read_bytes(), snapshot_key(_snapshot_bytes(settings)))
    newest = latest_cards(load_snapshot(settings))
    assert [entry.release_id for entry in index.entries] == [c.release_id for c in newest]
    assert index.to_json() == SearchIndex.build(newest).to_json()


def test_a_new_snapshot_brings_a_new_index(
    settings: ClientSettings, hub: FakeHub, listed: None, make_card: MakeCard
) -> None:
    sync(settings)
    _list(hub, make_card(model_id="zoo/brain-b", version="2.0.0", title="Brain MRI diffusion"))
    sync(settings)

    catalog = load_indexed_catalog(settings)
    assert [entry.release_id for entry in catalog.index.entries] == [
        "zoo/chest-a@1.1.0",
        "zoo/brain-b@2.0.0",
    ]
    assert _stored_header(settings)["key"] == snapshot_key(_snapshot_bytes(settings))


def test_a_stale_index_is_rebuilt_never_trusted(
    settings: ClientSettings, hub: FakeHub, listed: None, make_card: MakeCard
) -> None:
    sync(settings)
    stale = search_index_path(settings).read_bytes()
    _list(hub, make_card(model_id="zoo/skin-c", title="Dermoscopy lesions"))
    sync(settings)
    # An index of the previous snapshot put back (a copy restored, a writer that lost a race).
    search_index_path(settings).write_bytes(stale)

    catalog = load_indexed_catalog(settings)

    assert [hit.entry.model_id for hit in catalog.index.search("dermoscopy")] == ["zoo/skin-c"]
    assert _stored_header(settings)["key"] == snapshot_key(_snapshot_bytes(settings))


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:-3] + b"!!!", id="changed bytes"),
        pytest.param(
            lambda data: data.replace(INDEX_FORMAT.encode(), b"medigan-search-index/0", 1),
            id="another format",
        ),
        pytest.param(None, id="missing"),
    ],
)
def test_a_damaged_or_missing_index_is_rebuilt_silently(
    settings: ClientSettings, listed: None, damage: Callable[[bytes], bytes] | None
) -> None:
    sync(settings)
    path = search_index_path(settings)
    if damage is None:
        path.unlink()
    else:
        path.write_bytes(damage(path.read_bytes()))

    catalog = load_indexed_catalog(settings)

    assert [hit.entry.model_id for hit in catalog.index.search("brain")] == ["zoo/brain-b"]
    key = snapshot_key(_snapshot_bytes(settings))
    assert SearchIndex.loads(path.read_bytes(), key).to_json() == catalog.index.to_json()


def test_an_index_that_cannot_be_written_still_searches(
    settings: ClientSettings, listed: None
) -> None:
    sync(settings)
    path = search_index_path(settings)
    path.unlink()
    path.mkdir()  # neither readable as a file nor replaceable by one

    catalog = load_indexed_catalog(settings)

    assert [hit.entry.model_id for hit in catalog.index.search("dcgan")] == ["zoo/chest-a"]
    assert path.is_dir()


def test_search_parses_only_the_cards_of_its_hits(
    client: Client, listed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.sync()
    parsed: list[str] = []
    original = SnapshotRelease.model_validate

    def counting(data: Any, *args: Any, **kwargs: Any) -> SnapshotRelease:
        parsed.append(f"{data['model_id']}@{data['version']}")
        return original(data, *args, **kwargs)

    monkeypatch.setattr(SnapshotRelease, "model_validate", counting)

    entries = client.search_entries("dcgan")
    assert [(hit.entry.model_id, hit.entry.title) for hit in entries] == [
        ("zoo/chest-a", "Chest X-ray DCGAN")
    ]
    assert parsed == []

    hits = client.search("mri", medigan_semantics=True)
    assert [hit.card.release_id for hit in hits] == ["zoo/brain-b@1.0.0"]
    assert parsed == ["zoo/brain-b@1.0.0"]

    client.search("mri")
    assert parsed == ["zoo/brain-b@1.0.0"]  # a card parsed once serves later searches


def test_the_client_reads_the_index_again_only_when_the_snapshot_changed(
    client: Client, hub: FakeHub, listed: None, make_card: MakeCard
) -> None:
    client.sync()
    first = client.indexed_catalog()
    assert client.indexed_catalog() is first

    _list(hub, make_card(model_id="zoo/skin-c", title="Dermoscopy lesions"))
    client.sync()

    assert client.indexed_catalog() is not first
    assert [hit.card.model_id for hit in client.search("dermoscopy")] == ["zoo/skin-c"]


def test_the_snapshot_the_index_was_built_from_is_not_hashed_again(
    settings: ClientSettings, listed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(settings)
    stored = search_index_path(settings).read_bytes()

    def no_hashing(data: bytes) -> str:
        raise AssertionError("the snapshot was hashed")

    monkeypatch.setattr("medigan_client.sync.snapshot_key", no_hashing)
    catalog = load_indexed_catalog(settings)
    assert [hit.entry.model_id for hit in catalog.index.search("brain")] == ["zoo/brain-b"]
    assert catalog.card(catalog.index.entry(0)).release_id == "zoo/chest-a@1.1.0"
    monkeypatch.undo()

    # The same bytes in a new file (another inode and time) are hashed, and the index still fits.
    path = Cache(settings.cache_dir).snapshot_path(settings.hub_url)
    copy = path.with_name("copy.json")
    copy.write_bytes(path.read_bytes())
    copy.replace(path)
    again = load_indexed_catalog(settings)
    assert again.index.to_json() == catalog.index.to_json()
    assert search_index_path(settings).read_bytes() == stored
