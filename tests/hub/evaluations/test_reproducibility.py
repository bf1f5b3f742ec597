"""The samples behind a leaderboard number are those ``client.generate(model, n, seed=s)`` writes.

The hub's evaluation generates through the client's core (medigan_client.batching) in its
sandbox and records the seed, the batch size and a sha256 of the samples in the provenance; a
client of the live hub generates the same release with that seed and hashes the files it wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hub.evaluations.models import Evaluation
from hub.evaluations.selectors import evaluation_summary
from hub.registry.services import package_publish_as_operator
from medigan_catalog.lifecycle import ReleaseState
from medigan_client import Client
from medigan_client.batching import DEFAULT_BATCH_SIZE, SEED_SCHEME, SampleDigest
from tests import factories

ZOO_PACKAGE = Path(__file__).resolve().parents[3] / "zoo/chestxray_dcgan_64/package"


@pytest.mark.django_db(transaction=True)
@pytest.mark.shared_data
def test_client_generate_reproduces_the_samples_behind_a_leaderboard_number(
    reference_sets: None,
    settings: Any,
    live_server: Any,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # 60 samples in the metric library's chunks of 25: chunk edges fall inside the client's
    # batches of 16, so the hub has to continue one sample sequence across its sandbox calls.
    settings.MEDIGAN_EVALUATION_SAMPLES = 60
    settings.MEDIGAN_EVALUATION_BATCH_SIZE = 25
    settings.MEDIGAN_EVALUATION_DEVICE = "cpu"
    operator = factories.user("operator", reviewer=True)
    # Publication queues the evaluation once it commits: run those callbacks (eagerly) here.
    with django_capture_on_commit_callbacks(execute=True):
        release = package_publish_as_operator(
            package_dir=ZOO_PACKAGE, operator=operator, note="test"
        )
    assert release.state == ReleaseState.PUBLISHED
    evaluation = Evaluation.objects.get(release=release)
    assert evaluation.status == "succeeded", evaluation.error
    generation = evaluation.provenance["generation"]
    assert generation["seed"] == evaluation.seed == evaluation.provenance["seed"]
    assert generation["num_samples"] == evaluation.num_samples == 60
    assert (generation["batch_size"], generation["seed_scheme"]) == (
        DEFAULT_BATCH_SIZE,
        SEED_SCHEME,
    )
    # The first sandbox run is one chunk (25); the pace known, the other 35 come in one more,
    # which starts inside a batch of 16 too.
    assert generation["sandbox_runs"] == 2

    with Client(hub_url=live_server.url, cache_dir=tmp_path / "cache", progress=False) as client:
        result = client.generate(
            release.release_id,
            evaluation.num_samples,
            tmp_path / "samples",
            seed=evaluation.seed,
            device="cpu",
        )
        # Another seed gives other samples: the digest says which samples, not that some ran.
        other = client.generate(
            release.release_id, 60, tmp_path / "other", seed=evaluation.seed + 1, device="cpu"
        )

    assert _digest(result.iter_files()).count == 60
    assert _digest(result.iter_files()).hexdigest() == generation["samples_sha256"]
    # ...and the hash clients see in the snapshot is that one.
    assert evaluation_summary(evaluation).samples_sha256 == generation["samples_sha256"]
    assert _digest(other.iter_files()).hexdigest() != generation["samples_sha256"]


def _digest(files: Iterator[Path]) -> SampleDigest:
    """The digest of the written PNGs' pixels, in index order."""
    digest = SampleDigest()
    for path in files:
        with Image.open(path) as image:
            digest.update(np.asarray(image)[np.newaxis])
    return digest
