"""The generation core: seeds, batch plans, options checked once, and what packages share."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from medigan_client.batching import BATCH, SAMPLE, SampleDigest, derive_seed, plan_batches
from medigan_client.errors import BadRequestError
from medigan_client.generate import GenerationOptions
from medigan_client.package_support import check_device_name, check_sample_seeds, torch_device


def test_derived_seeds_are_stable_31_bit_and_distinct_per_purpose() -> None:
    assert derive_seed(BATCH, 0, 16) == derive_seed(BATCH, 0, 16)
    assert len({derive_seed(BATCH, 0, 0), derive_seed(SAMPLE, 0, 0), derive_seed(BATCH, 1, 0)}) == 3
    assert 0 <= derive_seed(SAMPLE, 2**40, 10**6) < 2**31


def test_a_plan_makes_whole_grid_batches_unless_told_to_stop_at_the_end() -> None:
    whole = list(plan_batches(3, 4, 5, 10, per_sample_seeds=True))
    assert [(p.grid_start, p.first, p.stop, p.generate_count) for p in whole] == [
        (4, 5, 8, 4),
        (8, 8, 10, 4),
    ]
    assert whole[0].sample_seed(0) == derive_seed(SAMPLE, 3, 5)
    trimmed = list(plan_batches(3, 4, 0, 10, whole_batches=False))
    assert [p.generate_count for p in trimmed] == [4, 4, 2]
    assert trimmed[2].batch_seed == derive_seed(BATCH, 3, 8)
    assert trimmed[2].sample_seed(0) is None


def test_the_digest_does_not_depend_on_how_samples_were_chunked() -> None:
    samples = np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4)
    whole, parts = SampleDigest(), SampleDigest()
    whole.update(samples)
    parts.update(samples[:2])
    parts.update(samples[2:])
    assert whole.hexdigest() == parts.hexdigest()
    assert whole.count == parts.count == 5


def test_options_are_checked_when_made_and_frozen() -> None:
    given: dict[str, object] = {"brightness": 3}
    options = GenerationOptions(args=given, batch_size=8)
    given["brightness"] = 4
    assert options.args == {"brightness": 3}
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.seed = 1  # type: ignore[misc]
    for bad in ({"batch_size": 0}, {"format": "gif"}, {"isolation": "docker"}, {"workers": 0}):
        with pytest.raises(BadRequestError):
            GenerationOptions(**bad)  # type: ignore[arg-type]


def test_packages_accept_the_devices_the_client_accepts() -> None:
    assert check_device_name(" MPS ") == "mps"
    assert check_device_name("cuda:1") == "cuda:1"
    with pytest.raises(ValueError, match="device"):
        check_device_name("tpu")
    assert check_sample_seeds((1, 2), 2) == [1, 2]
    with pytest.raises(ValueError, match="seeds"):
        check_sample_seeds([1, -1], 2)


def test_torch_packages_get_a_torch_device_by_the_clients_rules() -> None:
    pytest.importorskip("torch")
    assert str(torch_device("cpu")) == "cpu"
    with pytest.raises(ValueError, match="device"):
        torch_device("tpu")
