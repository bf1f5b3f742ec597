"""An evaluation's samples come from as few sandbox runs as their limits allow, unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hub.evaluations import services


class IndexedRuns:
    """Stands in for the sandbox: sample i is an 8 x 8 image filled with i % 256."""

    def __init__(self, seconds_per_sample: float = 0.0, clock: list[float] | None = None) -> None:
        self.spans: list[tuple[int, int]] = []
        self.seconds_per_sample = seconds_per_sample
        self.clock = clock

    def __call__(self, count: int, start: int) -> np.ndarray[Any, Any]:
        self.spans.append((start, count))
        if self.clock is not None:
            self.clock[0] += count * self.seconds_per_sample
        indices = np.arange(start, start + count) % 256
        return np.broadcast_to(indices[:, None, None], (count, 8, 8)).astype(np.uint8)


def _take_all(spans: services._SampleSpans, total: int, batch: int) -> np.ndarray[Any, Any]:
    return np.concatenate([spans.take(min(batch, total - done)) for done in range(0, total, batch)])


def test_after_the_first_run_the_rest_comes_in_one_and_the_samples_are_the_same() -> None:
    runs = IndexedRuns()
    spans = services._SampleSpans(runs, total=1000, wall_seconds=600.0)

    samples = _take_all(spans, 1000, 250)

    assert runs.spans == [(0, 250), (250, 750)]
    assert spans.runs == 2
    np.testing.assert_array_equal(samples, IndexedRuns()(1000, 0))


def test_runs_stay_within_the_pixel_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "_SPAN_MAX_BYTES", 300 * 64)  # 300 samples of 8 x 8 bytes
    runs = IndexedRuns()
    spans = services._SampleSpans(runs, total=1000, wall_seconds=600.0)

    samples = _take_all(spans, 1000, 100)

    assert runs.spans == [(0, 100), (100, 300), (400, 300), (700, 300)]
    np.testing.assert_array_equal(samples, IndexedRuns()(1000, 0))


def test_a_slow_model_gets_runs_that_fit_a_quarter_of_the_time_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    monkeypatch.setattr(services.time, "perf_counter", lambda: clock[0])
    # One second a sample, 600 s a run: 150 samples fit a quarter of the limit.
    runs = IndexedRuns(seconds_per_sample=1.0, clock=clock)
    spans = services._SampleSpans(runs, total=500, wall_seconds=600.0)

    _take_all(spans, 500, 100)

    assert runs.spans == [(0, 100), (100, 150), (250, 150), (400, 100)]


def test_a_run_is_never_smaller_than_the_batch_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(services.time, "perf_counter", lambda: clock[0])
    runs = IndexedRuns(seconds_per_sample=10.0, clock=clock)  # 15 samples a quarter-limit
    spans = services._SampleSpans(runs, total=150, wall_seconds=600.0)

    _take_all(spans, 150, 50)

    assert runs.spans == [(0, 50), (50, 50), (100, 50)]
