"""package_support.load_network: loaded once per file, device and memory layout."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from medigan_client.package_support import load_network

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")


def _build(shape: Mapping[str, Any]) -> Any:
    return torch.nn.Sequential(
        torch.nn.ConvTranspose2d(int(shape.get("latent", 8)), 4, 4, 1, 0, bias=False),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(4, 1, 4, 2, 1, bias=False),
    )


def test_channels_last_is_a_separate_network_with_the_same_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "weights.safetensors"
    safetensors_torch.save_file(
        {name: tensor.contiguous() for name, tensor in _build({}).state_dict().items()},
        str(weights),
        metadata={"network": '{"latent": 8}'},
    )
    plain = load_network(weights, _build, device="cpu", metadata_key="network")
    fast = load_network(weights, _build, device="cpu", metadata_key="network", channels_last=True)
    assert fast is not plain
    assert fast is load_network(
        weights, _build, device="cpu", metadata_key="network", channels_last=True
    )
    assert fast[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert plain[0].weight.is_contiguous() and not fast.training
    latents = torch.randn(3, 8, 1, 1)
    with torch.inference_mode():
        assert torch.allclose(plain(latents), fast(latents), atol=1e-6)
