"""medigan's torch ``Dataset`` and ``DataLoader`` of a model, on torch 2, without silent drops."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from medigan_client.compat import SyntheticDataset
from medigan_client.compat.dataset import dataset_parts, torch_dataloader
from medigan_client.runtime import GeneratedBatch

if TYPE_CHECKING:
    from conftest import MakeGenerators, PublishLegacy

torch = pytest.importorskip("torch", reason="the torch data set tests need torch")

TENSORS_MODEL = "00903_TEST_TENSORS_W_LABELS"

# A medigan package returning (torch tensor image, None, None, integer label) per sample: medigan's
# splitter kept only numpy images and string labels, so its data set of this model was empty.
TENSORS_INIT = '''
"""A medigan-style test model returning torch tensors with integer labels."""
import torch


def generate(model_file, num_samples, output_path, save_images: bool):
    return [
        (torch.full((SIZE, SIZE, 1), float(index)), None, None, index % 2)
        for index in range(num_samples)
    ]
'''


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_readme_dataloader_with_default_arguments_iterates_on_torch_2(
    images_model: str, make_generators: MakeGenerators, elsewhere: Path
) -> None:
    # medigan passed prefetch_factor=2 with num_workers=0, which torch 2 refuses.
    dataloader = make_generators().get_as_torch_dataloader(model_id=901)
    batches = list(dataloader)
    assert len(batches) == 1000
    assert set(batches[0]) == {"sample"}
    assert tuple(batches[0]["sample"].shape) == (1, 16, 16, 1)


def test_readme_dataloader_of_a_model_with_masks(
    masks_model: str, make_generators: MakeGenerators, elsewhere: Path
) -> None:
    # README: dataloader = generators.get_as_torch_dataloader(model_id=4, num_samples=3)
    dataloader = make_generators().get_as_torch_dataloader(model_id=902, num_samples=3)
    assert len(dataloader) == 3
    for data_dict in dataloader:
        sample = np.squeeze(data_dict.get("sample").numpy())
        mask = np.squeeze(data_dict.get("mask").numpy())
        assert sample.shape == mask.shape == (16, 16)
        assert set(np.unique(mask).tolist()) == {0, 255}


def test_the_dataset_is_a_torch_dataset_of_dict_items(
    images_model: str, make_generators: MakeGenerators, elsewhere: Path
) -> None:
    dataset = make_generators().get_as_torch_dataset(model_id=901, num_samples=5, batch_size=2)
    assert isinstance(dataset, torch.utils.data.Dataset)
    assert isinstance(dataset, SyntheticDataset)
    assert len(dataset) == 5
    assert dataset[4]["sample"].shape == (16, 16, 1)


def test_tensors_and_numeric_labels_are_kept(
    publish_legacy: PublishLegacy, make_generators: MakeGenerators, elsewhere: Path
) -> None:
    publish_legacy(TENSORS_MODEL, TENSORS_INIT, custom={})
    dataset = make_generators().get_as_torch_dataset(TENSORS_MODEL, num_samples=4)
    assert len(dataset) == 4
    assert [dataset[index]["label"] for index in range(4)] == [0, 1, 0, 1]
    assert float(dataset[3]["sample"].max()) == 3.0
    batch = next(iter(torch_dataloader(dataset, batch_size=4)))
    assert batch["label"].tolist() == [0, 1, 0, 1]


def test_worker_options_reach_torch_only_with_workers() -> None:
    dataset = SyntheticDataset(samples=[np.zeros((2, 2))] * 3)
    without_workers = torch_dataloader(
        dataset, num_workers=0, prefetch_factor=2, persistent_workers=True
    )
    assert without_workers.prefetch_factor is None
    assert without_workers.persistent_workers is False
    with_workers = torch_dataloader(dataset, num_workers=2, prefetch_factor=4)
    assert with_workers.prefetch_factor == 4


def test_a_dataloader_over_a_given_dataset_needs_no_model() -> None:
    from medigan_client.compat import Generators

    dataset = SyntheticDataset(samples=[np.full((2, 2), i) for i in range(4)])
    # No hub is contacted: the dataset is given.
    generators = Generators(hub_url="http://127.0.0.1:9", offline=True, progress=False)
    loader = generators.get_as_torch_dataloader(dataset=dataset, batch_size=2)
    assert [batch["sample"].shape[0] for batch in loader] == [2, 2]


def test_transform_runs_once_per_item_on_every_part() -> None:
    calls: list[int] = []

    def transform(*parts: Any) -> Any:
        calls.append(len(parts))
        doubled = tuple(part * 2 for part in parts)
        return doubled[0] if len(doubled) == 1 else doubled

    dataset = SyntheticDataset(
        samples=[np.ones(2)],
        masks=[np.ones(2)],
        other_imaging_output=[np.ones(2)],
        transform=transform,
    )
    item = dataset[0]
    # medigan transformed image and mask twice when other outputs existed.
    assert calls == [3]
    assert item["sample"].tolist() == item["mask"].tolist() == [2.0, 2.0]
    assert item["other_imaging_output"].tolist() == [2.0, 2.0]


def test_parts_stay_aligned_per_sample() -> None:
    batches = [
        GeneratedBatch(images=np.zeros((2, 3)), labels=np.array(["a", "b"])),
        GeneratedBatch(
            images=np.ones((1, 3)),
            masks=np.ones((1, 3)),
            labels=np.array(["c"]),
            extras={"other": np.full((1, 3), 5)},
        ),
    ]
    samples, masks, others, labels = dataset_parts(batches)
    assert len(samples) == 3
    assert labels == ["a", "b", "c"]
    assert masks is not None and masks[0] is None and masks[2] is not None
    assert others is not None and others[:2] == [None, None] and others[2].tolist() == [5, 5, 5]
    with pytest.raises(Exception, match="each sample needs exactly one"):
        SyntheticDataset(samples=[1, 2], labels=["only one"])
