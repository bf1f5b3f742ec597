"""medigan's ``SyntheticDataset`` and its torch ``DataLoader``, built from the runtime's batches.

medigan generated a list, then split it back into samples, masks, other outputs and labels by
type and position, which dropped what it did not expect (torch tensors, numeric labels). Here
the runtime already returns those as separate arrays (:class:`GeneratedBatch`), so every
sample keeps its mask, other outputs and label, whatever their type. Items are dicts as in
medigan: ``{"sample": ..., "mask": ..., "other_imaging_output": ..., "label": ...}`` with only the
keys a model produces.

torch is imported only by :func:`torch_dataset` and :func:`torch_dataloader`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from medigan_client.compat.executor import plain_label
from medigan_client.errors import BadRequestError
from medigan_client.runtime import GeneratedBatch

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

SAMPLE = "sample"
MASK = "mask"
OTHER = "other_imaging_output"
LABEL = "label"


class SyntheticDataset:
    """A map-style dataset of generated samples, with masks, other outputs and labels if any.

    ``transform`` is called once per item: ``transform(x)``, ``transform(x, mask)``,
    ``transform(x, other)`` or ``transform(x, mask, other)``, and must return as many values
    as it was given (medigan applied it twice to image and mask when other outputs existed).
    """

    def __init__(
        self,
        samples: Sequence[Any],
        masks: Sequence[Any] | None = None,
        other_imaging_output: Sequence[Any] | None = None,
        labels: Sequence[Any] | None = None,
        transform: Callable[..., Any] | None = None,
    ):
        for name, values in (
            ("masks", masks),
            ("other_imaging_output", other_imaging_output),
            ("labels", labels),
        ):
            if values is not None and len(values) != len(samples):
                raise BadRequestError(
                    f"{name} has {len(values)} entries for {len(samples)} samples; "
                    "each sample needs exactly one"
                )
        self.samples = samples
        self.masks = masks
        self.other_imaging_output = other_imaging_output
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        x = self.samples[index]
        mask = None if self.masks is None else self.masks[index]
        other = None if self.other_imaging_output is None else self.other_imaging_output[index]
        if self.transform is not None:
            if mask is not None and other is not None:
                x, mask, other = self.transform(x, mask, other)
            elif mask is not None:
                x, mask = self.transform(x, mask)
            elif other is not None:
                x, other = self.transform(x, other)
            else:
                x = self.transform(x)
        item: dict[str, Any] = {SAMPLE: x}
        if self.labels is not None:
            item[LABEL] = self.labels[index]
        if mask is not None:
            item[MASK] = mask
        if other is not None:
            item[OTHER] = other
        return item


def dataset_parts(
    batches: Sequence[GeneratedBatch],
) -> tuple[list[Any], list[Any] | None, list[Any] | None, list[Any] | None]:
    """Samples, masks, other outputs and labels of the batches, one entry per sample each.

    Several other outputs of one sample are given as a tuple (medigan kept one).
    """
    samples: list[Any] = []
    masks: list[Any] = []
    others: list[Any] = []
    labels: list[Any] = []
    has_masks = any(batch.masks is not None for batch in batches)
    has_others = any(batch.extras for batch in batches)
    has_labels = any(batch.labels is not None for batch in batches)
    for batch in batches:
        for index in range(len(batch)):
            samples.append(batch.images[index])
            if has_masks:
                masks.append(None if batch.masks is None else batch.masks[index])
            if has_others:
                parts = [array[index] for array in batch.extras.values()]
                others.append(parts[0] if len(parts) == 1 else tuple(parts) or None)
            if has_labels:
                labels.append(None if batch.labels is None else plain_label(batch.labels[index]))
    return (
        samples,
        masks if has_masks else None,
        others if has_others else None,
        labels if has_labels else None,
    )


@functools.cache
def _torch_dataset_class() -> type[SyntheticDataset]:
    # Built on first use so that importing the client never imports torch, while the dataset
    # still is a torch Dataset (isinstance checks of training code keep working).
    from torch.utils.data import Dataset

    return type("SyntheticDataset", (SyntheticDataset, Dataset), {"__module__": __name__})


def _require_torch() -> None:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise BadRequestError(
            "torch datasets need torch; install it with: pip install 'medigan-client[torch]'"
        )


def torch_dataset(
    batches: Sequence[GeneratedBatch], transform: Callable[..., Any] | None = None
) -> SyntheticDataset:
    """A ``torch.utils.data.Dataset`` (and :class:`SyntheticDataset`) of the batches' samples."""
    _require_torch()
    samples, masks, others, labels = dataset_parts(batches)
    return _torch_dataset_class()(
        samples=samples,
        masks=masks,
        other_imaging_output=others,
        labels=labels,
        transform=transform,
    )


def torch_dataloader(dataset: Any, **options: Any) -> DataLoader[Any]:
    """A ``DataLoader`` over ``dataset`` with torch's options, minus those torch 2 refuses.

    ``prefetch_factor`` and ``persistent_workers`` only mean something with worker processes;
    torch 2 raises when they are set while ``num_workers`` is 0 (medigan always passed
    ``prefetch_factor=2``), so they are passed only when ``num_workers > 0``.
    """
    _require_torch()
    from torch.utils.data import DataLoader

    if not options.get("num_workers"):
        options.pop("prefetch_factor", None)
        options.pop("persistent_workers", None)
    return DataLoader(dataset, **options)
