"""The extractor registry, the weights checks, and the two Inception networks with random weights.

Equality with pytorch-fid itself is tested in `tests/evaluation/reference/` (`make
test-reference`); these tests need only the project's own environment.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from evaluation.features import EXTRACTOR_IDS, WeightsError, load_extractor
from evaluation.inception import (
    BasicConv2d,
    FidInceptionExtractor,
    RadImageNetInceptionExtractor,
    fid_inception_v3,
    radimagenet_inception_v3,
)
from evaluation.inference import FusedConvReLU
from tests.evaluation.random_inception_weights import random_inception_state_dict

# The networks are fully convolutional up to the global pool; small inputs keep the tests fast.
SIDE = 96


@pytest.fixture(autouse=True)
def _no_configured_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MEDIGAN_INCEPTION_WEIGHTS",
        "MEDIGAN_RADIMAGENET_WEIGHTS",
        "MEDIGAN_RADIMAGENET_SHA256",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fid") / "random-fid-inception.pth"
    torch.save(random_inception_state_dict(fid_inception_v3(), seed=0), path)
    return path


@pytest.fixture(scope="module")
def fid_extractor(fid_weights: Path) -> FidInceptionExtractor:
    return FidInceptionExtractor(fid_weights, expected_sha256_prefix=None)


@pytest.fixture(scope="module")
def radimagenet_state() -> dict[str, torch.Tensor]:
    # As a converter from Keras would write it: no batch norm step counters.
    state = random_inception_state_dict(radimagenet_inception_v3(), seed=1)
    return {key: value for key, value in state.items() if not key.endswith("num_batches_tracked")}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_registry_lists_the_three_extractors() -> None:
    assert EXTRACTOR_IDS == ("inception-v3-fid", "radimagenet-inception", "medical-cnn")


def test_unknown_extractor_is_refused_with_the_known_ids() -> None:
    with pytest.raises(ValueError, match=r"'inception'.*inception-v3-fid, radimagenet-inception"):
        load_extractor("inception")


def test_unconfigured_fid_weights_say_where_to_put_them() -> None:
    with pytest.raises(WeightsError, match="MEDIGAN_INCEPTION_WEIGHTS"):
        load_extractor("inception-v3-fid")


def test_missing_weights_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    with pytest.raises(WeightsError, match=r"not found at .*pt_inception-2015-12-05-6726825d\.pth"):
        load_extractor("inception-v3-fid", weights_path=missing)


def test_wrong_fid_weights_file_is_refused_naming_the_expected_sha256(
    fid_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Configured through the environment, as a hub worker would be.
    monkeypatch.setenv("MEDIGAN_INCEPTION_WEIGHTS", str(fid_weights))
    with pytest.raises(WeightsError) as refused:
        load_extractor("inception-v3-fid")
    message = str(refused.value)
    assert "starting with 6726825d" in message
    assert str(fid_weights) in message
    assert _sha256(fid_weights) in message


def test_random_weights_in_our_names_round_trip(
    fid_weights: Path, fid_extractor: FidInceptionExtractor
) -> None:
    saved = torch.load(fid_weights, weights_only=True)
    loaded = fid_extractor.network.state_dict()
    assert list(loaded) == list(saved)
    assert all(torch.equal(loaded[key], saved[key]) for key in saved)
    assert fid_extractor.weights_sha256 == _sha256(fid_weights)
    # The torchvision layout of pytorch-fid's file: a 1008-way fc, no auxiliary classifier.
    assert saved["fc.weight"].shape == (1008, 2048)
    assert not any(key.startswith("AuxLogits") for key in saved)


def test_weights_with_a_missing_key_are_refused(tmp_path: Path) -> None:
    state = fid_inception_v3().state_dict()
    del state["Mixed_7c.branch_pool.conv.weight"]
    path = tmp_path / "incomplete.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"1 missing keys \['Mixed_7c\.branch_pool\.conv"):
        FidInceptionExtractor(path, expected_sha256_prefix=None)


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], path)
    with pytest.raises(WeightsError, match="does not hold a state dict"):
        FidInceptionExtractor(path, expected_sha256_prefix=None)


def test_fid_features_are_2048_wide(fid_extractor: FidInceptionExtractor) -> None:
    batch = torch.rand(3, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(2))
    features = fid_extractor.extract(batch)
    assert features.shape == (3, fid_extractor.feature_dim) == (3, 2048)
    assert features.dtype == torch.float32
    assert torch.isfinite(features).all()
    assert (fid_extractor.id, fid_extractor.input_size) == ("inception-v3-fid", 299)
    assert fid_extractor.comparable_with_published


def test_normalise_decides_what_the_network_sees(fid_extractor: FidInceptionExtractor) -> None:
    batch = torch.rand(2, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        on_scaled_input = fid_extractor.network(2 * batch - 1)
        on_raw_input = fid_extractor.network(batch)
    normalised = fid_extractor.extract(batch, normalise=True)
    raw = fid_extractor.extract(batch, normalise=False)
    # The fused network (scaling folded into its first convolution) rounds differently only.
    torch.testing.assert_close(normalised, on_scaled_input, rtol=0, atol=1e-5)
    torch.testing.assert_close(raw, on_raw_input, rtol=0, atol=1e-5)
    assert not torch.allclose(normalised, raw)


@pytest.mark.parametrize("extractor_kind", ["fid", "radimagenet"])
def test_extraction_runs_the_fused_network_and_equals_the_named_one(
    extractor_kind: str,
    fid_extractor: FidInceptionExtractor,
    radimagenet_state: dict[str, torch.Tensor],
    tmp_path: Path,
) -> None:
    extractor: FidInceptionExtractor | RadImageNetInceptionExtractor = fid_extractor
    if extractor_kind == "radimagenet":
        path = tmp_path / "radimagenet.pth"
        torch.save(radimagenet_state, path)
        extractor = RadImageNetInceptionExtractor(path, expected_sha256=_sha256(path))
    layers = list(extractor.inference_network.modules())
    batch = torch.rand(3, 3, 160, 160, generator=torch.Generator().manual_seed(4))

    features = extractor.extract(batch)
    with torch.no_grad():
        expected = extractor.network(2 * batch - 1)

    # Every Conv-BN-ReLU is one fused layer (94, and the normalising copy of the first one).
    assert sum(isinstance(layer, FusedConvReLU) for layer in layers) == 95
    assert not any(isinstance(layer, BasicConv2d) for layer in layers)
    assert features.abs().max() > 0.1  # features, not near-zeros
    torch.testing.assert_close(features, expected, rtol=0, atol=1e-5)
    # The memory layout of the input changes nothing, not even the rounding.
    channels_last = batch.contiguous(memory_format=torch.channels_last)
    assert torch.equal(extractor.extract(channels_last), features)
    # Nor do a row's batch neighbours.
    torch.testing.assert_close(extractor.extract(batch[1:2]), features[1:2], rtol=0, atol=1e-6)


def test_one_channel_batches_are_refused(fid_extractor: FidInceptionExtractor) -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, S, S\).*grayscale_to_rgb=True"):
        fid_extractor.extract(torch.rand(1, 1, SIDE, SIDE))


def test_radimagenet_weights_must_be_pinned(
    tmp_path: Path, radimagenet_state: dict[str, torch.Tensor]
) -> None:
    path = tmp_path / "radimagenet.pth"
    torch.save(radimagenet_state, path)
    with pytest.raises(WeightsError, match="MEDIGAN_RADIMAGENET_SHA256"):
        load_extractor("radimagenet-inception", weights_path=path)


def test_radimagenet_pinned_to_another_file_is_refused(
    tmp_path: Path, radimagenet_state: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "radimagenet.pth"
    torch.save(radimagenet_state, path)
    monkeypatch.setenv("MEDIGAN_RADIMAGENET_WEIGHTS", str(path))
    monkeypatch.setenv("MEDIGAN_RADIMAGENET_SHA256", "0" * 64)
    with pytest.raises(WeightsError, match="expected a sha256 starting with 0000"):
        load_extractor("radimagenet-inception")


def test_radimagenet_converted_safetensors_load_when_pinned(
    tmp_path: Path, radimagenet_state: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "radimagenet-inception-v3.safetensors"
    save_file({key: value.contiguous() for key, value in radimagenet_state.items()}, str(path))
    digest = _sha256(path)
    monkeypatch.setenv("MEDIGAN_RADIMAGENET_WEIGHTS", str(path))
    monkeypatch.setenv("MEDIGAN_RADIMAGENET_SHA256", digest[:12].upper())

    extractor = load_extractor("radimagenet-inception")

    assert isinstance(extractor, RadImageNetInceptionExtractor)
    assert extractor.weights_sha256 == digest
    assert extractor.input_size == 224
    loaded = extractor.network.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in radimagenet_state.items())
    features = extractor.extract(torch.rand(2, 3, SIDE, SIDE))
    assert features.shape == (2, 2048)


def test_radimagenet_refuses_the_fid_weights_layout(fid_weights: Path) -> None:
    # The FID file carries a 1008-way classifier that the notop RadImageNet network has not.
    with pytest.raises(WeightsError, match=r"2 unexpected keys \['fc\.bias', 'fc\.weight'\]"):
        RadImageNetInceptionExtractor(fid_weights, expected_sha256=_sha256(fid_weights))


def test_fid_and_radimagenet_graphs_differ_in_the_last_pooled_branch(
    radimagenet_state: dict[str, torch.Tensor],
) -> None:
    # Same weights, different graphs: the FID graph max-pools in Mixed_7c, Keras averages.
    fid_network = fid_inception_v3().eval()
    radimagenet_network = radimagenet_inception_v3().eval()
    radimagenet_network.load_state_dict(radimagenet_state, strict=False)
    fid_network.load_state_dict(radimagenet_state, strict=False)
    # At 160 pixels Mixed_7c sees a 3x3 map (at SIDE, 1x1, where max and average agree).
    batch = torch.rand(1, 3, 160, 160)
    with torch.no_grad():
        assert not torch.allclose(fid_network(batch), radimagenet_network(batch))
        fid_network.Mixed_7c.max_pool = False
        assert torch.equal(fid_network(batch), radimagenet_network(batch))
