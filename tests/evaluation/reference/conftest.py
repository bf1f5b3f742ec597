"""Fixtures of the equality tests against pytorch-fid: one random state dict for both networks.

These tests run where pytorch-fid imports (`make test-reference` builds `.venv-reference` for
them): it needs torchvision, which does not import beside the project's own torch, so the main
test run skips them. pytorch-fid is imported inside the fixtures and the test module skips itself,
because a skip raised while pytest imports a conftest aborts a run that names this directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from evaluation.inception import fid_inception_v3
from tests.evaluation.random_inception_weights import random_inception_state_dict


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The random state dict as a `torch.save` file, as the real weights would come."""
    path = tmp_path_factory.mktemp("weights") / "pt_inception-random.pth"
    torch.save(random_inception_state_dict(fid_inception_v3(), seed=2015), path)
    return path


@pytest.fixture
def reference_loads_random_weights(
    random_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """pytorch-fid's `fid_inception_v3()` loads the random weights instead of downloading.

    It then loads them with `load_state_dict(strict=True)`, so our key names are checked too.
    """
    from pytorch_fid import inception as reference_inception

    def load_state_dict_from_url(url: str, progress: bool = True) -> dict[str, torch.Tensor]:
        assert url == reference_inception.FID_WEIGHTS_URL
        state: dict[str, torch.Tensor] = torch.load(random_weights, weights_only=True)
        return state

    monkeypatch.setattr(reference_inception, "load_state_dict_from_url", load_state_dict_from_url)
    yield
