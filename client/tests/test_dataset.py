"""torch data sets of generated samples: item layout, the on-disk cache, DataLoader workers."""

from __future__ import annotations

import itertools
import pickle
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from medigan_catalog.schema import Card
from medigan_client.api import Client
from medigan_client.cache import Cache
from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.runtime import GeneratedBatch, open_runner
from medigan_client.settings import ClientSettings

torch = pytest.importorskip("torch", reason="the data sets need torch (medigan-client[torch])")

from torch.utils.data import DataLoader  # noqa: E402

from medigan_client import dataset as dataset_module  # noqa: E402
from medigan_client.dataset import (  # noqa: E402
    DatasetSpec,
    GeneratedDataset,
    StreamingDataset,
    build_dataset,
)

if TYPE_CHECKING:
    from conftest import FakeHub, MakeCard, WritePackage, ZipPackage

Publish = Callable[[dict[str, Any]], dict[str, Any]]

FLOAT_VOLUME_INIT = """
import numpy as np


def generate(num_samples, *, seed, device, brightness=128):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(num_samples, 4, 8, 8)).astype(np.float32)
"""

RGB_INIT = """
import numpy as np


def generate(num_samples, *, seed, device, brightness=128):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(num_samples, 8, 8, 3)).astype(np.uint8)
"""

# medigan's dataset convention: one (image, mask, other, label) tuple per sample.
IMAGE_MASK_LABEL_INIT = """
import numpy as np


def generate(model_file, num_samples, output_path, save_images, brightness=128):
    samples = []
    for index in range(num_samples):
        image = np.full((8, 8, 1), brightness, dtype=np.uint8)
        mask = np.zeros((8, 8), dtype=np.uint8)
        mask[: index % 8 + 1] = 255
        samples.append((image, mask, None, index % 2))
    return samples
"""


_opened: list[Client] = []


def _client(settings: ClientSettings) -> Client:
    client = Client(settings=settings, progress=False)
    _opened.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    # A client keeps a keep-alive connection to the fake hub; each test closes what it opened.
    yield
    while _opened:
        _opened.pop().close()


def _publish_package(
    hub: FakeHub,
    tmp_path: Path,
    write_package: WritePackage,
    zip_package: ZipPackage,
    card: dict[str, Any],
    init_source: str,
) -> dict[str, Any]:
    slug = f"{card['model_id'].replace('/', '_')}-{card['version']}"
    package = write_package(tmp_path / "src" / slug, card, init_source=init_source)
    return hub.publish(card, zip_package(package, tmp_path / "dist" / f"{slug}.zip"))


class FakeRunner:
    """A runner returning images, masks and labels, counting its batches."""

    isolation = "inprocess"

    def __init__(
        self,
        *,
        labels: str = "int",
        fail_at_batch: int | None = None,
        calls: list[int] | None = None,
    ):
        self.labels = labels
        self.fail_at_batch = fail_at_batch
        self.calls = calls if calls is not None else []
        self.closed = False

    @property
    def supports_sample_seeds(self) -> bool:
        return False

    def generate_batch(
        self,
        num_samples: int,
        *,
        seed: int,
        device: str,
        args: Mapping[str, object],
        sample_seeds: Sequence[int] | None = None,
    ) -> GeneratedBatch:
        self.calls.append(seed)
        if self.fail_at_batch is not None and len(self.calls) > self.fail_at_batch:
            raise GenerationFailedError("the fake model broke")
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, size=(num_samples, 8, 8), dtype=np.uint8)
        masks = (images > 127).astype(np.uint8) * 255
        numbers = rng.integers(0, 3, size=num_samples)
        labels = numbers if self.labels == "int" else np.array([f"class-{n}" for n in numbers])
        return GeneratedBatch(images=images, masks=masks, labels=labels)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _use_fake_runner(monkeypatch: pytest.MonkeyPatch, **options: Any) -> list[int]:
    calls: list[int] = []

    def fake_open_runner(
        package_dir: Path, card: Card, *, isolation: str = "auto", settings: Any = None
    ) -> FakeRunner:
        return FakeRunner(calls=calls, **options)

    monkeypatch.setattr(dataset_module, "open_runner", fake_open_runner)
    return calls


def _dataset_dirs(settings: ClientSettings) -> list[Path]:
    root = settings.cache_dir / "datasets"
    return sorted(p for p in root.iterdir()) if root.is_dir() else []


# -- the map-style data set ---------------------------------------------------------------------


def test_items_are_float_images_in_unit_range_with_their_index(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    data = _client(settings).dataset("zoo/noise-8", 10, batch_size=4, device="cpu", seed=2)
    assert len(data) == 10
    item = data[3]
    assert set(item) == {"image", "index"}
    assert item["index"] == 3
    image = item["image"]
    assert image.dtype == torch.float32
    assert tuple(image.shape) == (1, 8, 8)
    raw = np.load(data.directory / "images.npy")[3]
    assert torch.equal(image[0], torch.from_numpy(raw.astype(np.float32) / 255.0))
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert data[-1]["index"] == 9
    with pytest.raises(IndexError):
        data[10]


def test_the_same_arguments_read_the_cache_instead_of_generating(
    settings: ClientSettings, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(settings)
    first = client.dataset("zoo/noise-8", 6, batch_size=4, seed=1, args={"brightness": 90})

    def no_generation(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a cached data set was generated again")

    monkeypatch.setattr(dataset_module, "open_runner", no_generation)
    again = client.dataset("zoo/noise-8", 6, batch_size=4, seed=1, args={"brightness": 90})
    assert again.directory == first.directory
    assert torch.equal(again[5]["image"], first[5]["image"])
    assert _dataset_dirs(settings) == [first.directory]


def test_seed_count_and_arguments_each_name_another_data_set(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    client = _client(settings)
    base = client.dataset("zoo/noise-8", 4, seed=1)
    other_seed = client.dataset("zoo/noise-8", 4, seed=2)
    other_args = client.dataset("zoo/noise-8", 4, seed=1, args={"brightness": 30})
    other_count = client.dataset("zoo/noise-8", 5, seed=1)
    directories = {d.directory for d in (base, other_seed, other_args, other_count)}
    assert len(directories) == 4
    spelled_out = client.dataset("zoo/noise-8", 4, seed=1, args={"brightness": 128})
    assert spelled_out.directory == base.directory  # 128 is the card's default
    assert not torch.equal(base[0]["image"], other_seed[0]["image"])
    assert float(other_args[0]["image"].mean()) < float(base[0]["image"].mean())
    assert torch.equal(base[3]["image"], other_count[3]["image"])


def test_a_failed_build_leaves_neither_a_data_set_nor_scratch_files(
    settings: ClientSettings, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(settings)
    _use_fake_runner(monkeypatch, fail_at_batch=1)
    with pytest.raises(GenerationFailedError, match="broke"):
        client.dataset("zoo/noise-8", 8, batch_size=4)
    assert _dataset_dirs(settings) == []
    assert list(Cache(settings.cache_dir).tmp_dir.iterdir()) == []

    monkeypatch.undo()
    data = client.dataset("zoo/noise-8", 8, batch_size=4)
    assert len(data) == 8


def test_concurrent_builders_of_one_data_set_generate_it_once(
    settings: ClientSettings, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(settings)
    card = client.show("zoo/noise-8")
    client.package("zoo/noise-8")
    spec = DatasetSpec(card=card, num_samples=12, seed=0, batch_size=4, arguments={})
    calls = _use_fake_runner(monkeypatch)
    results: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(build_dataset(settings, spec, device="cpu", progress=False))
        except BaseException as exc:  # reported below, a thread cannot raise into the test
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1
    assert len(calls) == 3  # 12 samples in batches of 4, generated by one builder only


def test_masks_and_labels_become_tensors_and_collate(
    settings: ClientSettings, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_fake_runner(monkeypatch)
    data = _client(settings).dataset("zoo/noise-8", 6, batch_size=4)
    assert data.has_masks and data.has_labels
    item = data[0]
    assert set(item) == {"image", "mask", "label", "index"}
    assert tuple(item["mask"].shape) == (1, 8, 8)
    assert item["mask"].dtype == torch.uint8
    assert set(torch.unique(item["mask"]).tolist()) <= {0, 255}
    assert item["label"].dtype == torch.int64 and item["label"].ndim == 0
    batch = next(iter(DataLoader(data, batch_size=4)))
    assert tuple(batch["image"].shape) == (4, 1, 8, 8)
    assert tuple(batch["mask"].shape) == (4, 1, 8, 8)
    assert tuple(batch["label"].shape) == (4,)
    assert batch["index"].tolist() == [0, 1, 2, 3]


def test_text_labels_stay_strings(
    settings: ClientSettings, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_fake_runner(monkeypatch, labels="text")
    data = _client(settings).dataset("zoo/noise-8", 4, batch_size=4)
    assert isinstance(data[0]["label"], str) and data[0]["label"].startswith("class-")
    batch = next(iter(DataLoader(data, batch_size=2)))
    assert all(label.startswith("class-") for label in batch["label"])


def test_a_package_returning_image_mask_and_label_tuples(
    settings: ClientSettings,
    hub: FakeHub,
    tmp_path: Path,
    make_card: MakeCard,
    write_package: WritePackage,
    zip_package: ZipPackage,
) -> None:
    card = make_card("zoo/masked-8", kind="medigan-legacy")
    _publish_package(hub, tmp_path, write_package, zip_package, card, IMAGE_MASK_LABEL_INIT)
    client = _client(settings)
    release = client.show("zoo/masked-8")
    try:
        with open_runner(client.package("zoo/masked-8"), release, isolation="inprocess") as runner:
            probe = runner.generate_batch(2, seed=0, device="cpu", args={"brightness": 1})
    except GenerationFailedError as exc:
        pytest.skip(f"the runtime does not map (image, mask, other, label) tuples yet: {exc}")
    if probe.masks is None:
        pytest.skip("the runtime does not return the masks of legacy packages yet")

    data = client.dataset("zoo/masked-8", 5, batch_size=2, args={"brightness": 51})
    item = data[2]
    assert torch.allclose(item["image"], torch.full((1, 8, 8), 0.2))
    assert tuple(item["mask"].shape) == (1, 8, 8)
    assert int(item["label"]) in (0, 1)
    batch = next(iter(DataLoader(data, batch_size=5, num_workers=2)))
    assert tuple(batch["mask"].shape) == (5, 1, 8, 8)


def test_float_volumes_are_scaled_from_the_value_range(
    settings: ClientSettings,
    hub: FakeHub,
    tmp_path: Path,
    make_card: MakeCard,
    write_package: WritePackage,
    zip_package: ZipPackage,
) -> None:
    card = make_card("zoo/volume-8")
    card["output"].update({"depth": 4, "dtype": "float32", "value_range": [-1.0, 1.0]})
    _publish_package(hub, tmp_path, write_package, zip_package, card, FLOAT_VOLUME_INIT)
    data = _client(settings).dataset("zoo/volume-8", 3, batch_size=2)
    image = data[1]["image"]
    assert tuple(image.shape) == (1, 4, 8, 8)
    raw = np.load(data.directory / "images.npy")[1]
    assert np.allclose(image[0].numpy(), (raw + 1.0) / 2.0)


def test_colour_images_are_channels_first(
    settings: ClientSettings,
    hub: FakeHub,
    tmp_path: Path,
    make_card: MakeCard,
    write_package: WritePackage,
    zip_package: ZipPackage,
) -> None:
    card = make_card("zoo/rgb-8", channels=3)
    _publish_package(hub, tmp_path, write_package, zip_package, card, RGB_INIT)
    data = _client(settings).dataset("zoo/rgb-8", 2)
    raw = np.load(data.directory / "images.npy")[0]
    image = data[0]["image"]
    assert tuple(image.shape) == (3, 8, 8)
    assert np.allclose(image[2].numpy(), raw[..., 2] / 255.0)


def test_transforms_apply_to_image_and_label(
    settings: ClientSettings, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_fake_runner(monkeypatch)
    data = _client(settings).dataset(
        "zoo/noise-8",
        4,
        transform=lambda image: image * 2.0,
        target_transform=lambda label: label + 10,
    )
    plain = GeneratedDataset(data.directory)
    assert torch.equal(data[0]["image"], plain[0]["image"] * 2.0)
    assert int(data[0]["label"]) == int(plain[0]["label"]) + 10


def test_pickles_without_its_arrays_and_loads_in_two_workers(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    data = _client(settings).dataset("zoo/noise-8", 40, batch_size=8)
    expected = torch.stack([data[i]["image"] for i in range(len(data))])  # maps the arrays
    pickled = pickle.dumps(data)
    assert len(pickled) < (data.directory / "images.npy").stat().st_size
    copy = pickle.loads(pickled)  # noqa: S301 - bytes pickled just above
    assert torch.equal(copy[7]["image"], expected[7])

    loader = DataLoader(data, batch_size=8, num_workers=2, shuffle=True)
    seen: dict[int, Any] = {}
    for batch in loader:
        for index, image in zip(batch["index"].tolist(), batch["image"], strict=True):
            seen[index] = image
    assert sorted(seen) == list(range(40))
    assert all(torch.equal(seen[i], expected[i]) for i in range(40))


def test_bad_sizes_are_refused(settings: ClientSettings, published: dict[str, Any]) -> None:
    client = _client(settings)
    with pytest.raises(BadRequestError, match="num_samples"):
        client.dataset("zoo/noise-8", 0)
    with pytest.raises(BadRequestError, match="batch_size"):
        client.dataset("zoo/noise-8", 4, batch_size=0)
    with pytest.raises(BadRequestError, match="brightness"):
        client.dataset("zoo/noise-8", 4, args={"brightness": 999})


def test_a_directory_that_is_no_data_set_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadRequestError, match="not a generated data set"):
        GeneratedDataset(tmp_path)


def test_without_torch_the_error_names_the_extra(
    settings: ClientSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medigan_client

    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "medigan_client.dataset")
    monkeypatch.delattr(medigan_client, "dataset")
    with pytest.raises(BadRequestError, match=r"medigan-client\[torch\]"):
        _client(settings).dataset("zoo/noise-8", 4)


# -- the stream of fresh samples ------------------------------------------------------------------


def _stream(settings: ClientSettings, **options: Any) -> StreamingDataset:
    return _client(settings).iterable_dataset("zoo/noise-8", **options)


def _by_index(items: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> dict[int, Any]:
    return {int(item["index"]): item["image"] for item in items}


def test_a_finite_stream_yields_each_index_once_and_is_deterministic(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    stream = _stream(settings, num_samples=10, batch_size=4, seed=5)
    assert len(stream) == 10
    first = list(stream)
    assert [item["index"] for item in first] == list(range(10))
    assert tuple(first[0]["image"].shape) == (1, 8, 8)
    assert first[0]["image"].dtype == torch.float32

    replay = _by_index(iter(_stream(settings, num_samples=10, batch_size=4, seed=5)))
    assert all(torch.equal(replay[i], first[i]["image"]) for i in range(10))


def test_each_iteration_draws_fresh_samples_and_set_epoch_replays(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    stream = _stream(settings, num_samples=4, batch_size=4)
    first = _by_index(iter(stream))
    second = _by_index(iter(stream))
    assert not torch.equal(first[0], second[0])
    stream.set_epoch(1)
    epoch_one = _by_index(iter(stream))
    stream.set_epoch(1)
    assert torch.equal(_by_index(iter(stream))[0], epoch_one[0])
    stream.set_epoch(0)
    assert torch.equal(_by_index(iter(stream))[0], first[0])


def test_an_endless_stream_keeps_going(settings: ClientSettings, published: dict[str, Any]) -> None:
    stream = _stream(settings, batch_size=3)
    with pytest.raises(TypeError):
        len(stream)
    items = list(itertools.islice(iter(stream), 20))
    assert [item["index"] for item in items] == list(range(20))


def test_two_workers_draw_disjoint_batches_that_match_one_process(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    stream = _stream(settings, num_samples=14, batch_size=3, seed=9)
    single = _by_index(iter(_stream(settings, num_samples=14, batch_size=3, seed=9)))
    loader = DataLoader(stream, batch_size=3, num_workers=2)
    indices: list[int] = []
    images: dict[int, Any] = {}
    for batch in loader:
        for index, image in zip(batch["index"].tolist(), batch["image"], strict=True):
            indices.append(index)
            images[index] = image
    assert sorted(indices) == list(range(14))
    assert all(torch.equal(images[i], single[i]) for i in range(14))


def test_an_endless_stream_in_workers_never_repeats_an_index(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    loader = DataLoader(_stream(settings, batch_size=2), batch_size=2, num_workers=2)
    indices = [i for batch in itertools.islice(iter(loader), 8) for i in batch["index"].tolist()]
    assert len(indices) == 16
    assert len(set(indices)) == 16


def test_a_stream_pickles_without_a_runner_and_runs_in_spawned_workers(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    stream = _stream(settings, num_samples=6, batch_size=2, seed=4)
    expected = _by_index(iter(_stream(settings, num_samples=6, batch_size=2, seed=4)))
    copy = pickle.loads(pickle.dumps(stream))  # noqa: S301 - our own bytes
    assert copy.card == stream.card and copy.package_dir == stream.package_dir
    loader = DataLoader(stream, batch_size=2, num_workers=2, multiprocessing_context="spawn")
    images = {
        index: image
        for batch in loader
        for index, image in zip(batch["index"].tolist(), batch["image"], strict=True)
    }
    assert sorted(images) == list(range(6))
    assert all(torch.equal(images[i], expected[i]) for i in range(6))


def test_a_stream_refuses_a_bad_batch_size(
    settings: ClientSettings, published: dict[str, Any]
) -> None:
    with pytest.raises(BadRequestError, match="batch_size"):
        _stream(settings, batch_size=0)
