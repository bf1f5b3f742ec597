"""What every runtime returns and promises, whatever process or environment the package runs in.

A :class:`Runner` holds one model package ready to generate (imported in this process, or
loaded in a child Python that stays up between batches) and turns each call into a
:class:`GeneratedBatch`: the images plus, for packages that return them, masks, labels and other
arrays. :func:`open_runner` picks the runner for an isolation mode; see :data:`ISOLATION_MODES`.

Shapes (first axis = samples):

* ``images``: ``(N, H, W)`` for one channel, ``(N, H, W, C)`` for several, ``(N, D, H, W[, C])``
  for volumes; dtype and value range as the card's ``output`` says.
* ``masks``: ``(N, H, W)`` or ``(N, H, W, C)``, or ``None`` when the package returns none.
* ``labels``: ``(N,)`` (or ``(N, K)``) numbers or strings, or ``None``.
* ``extras``: further arrays by name (medigan's "other imaging output"), each ``(N, ...)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Protocol, runtime_checkable

import numpy as np

Isolation = Literal["auto", "inprocess", "process", "venv"]
ISOLATION_MODES: tuple[str, ...] = ("auto", "inprocess", "process", "venv")


@dataclass(frozen=True)
class GeneratedBatch:
    """One batch of samples and whatever else the package returned with them."""

    images: np.ndarray
    masks: np.ndarray | None = None
    labels: np.ndarray | None = None
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def select(self, start: int, stop: int | None = None) -> GeneratedBatch:
        """The samples ``start:stop`` of this batch, every array sliced alike."""
        window = slice(start, stop)
        return GeneratedBatch(
            images=self.images[window],
            masks=None if self.masks is None else self.masks[window],
            labels=None if self.labels is None else self.labels[window],
            extras={name: array[window] for name, array in self.extras.items()},
        )


@runtime_checkable
class Runner(Protocol):
    """A package ready to generate; close it (or use it as a context manager) when done."""

    isolation: str

    def generate_batch(
        self,
        num_samples: int,
        *,
        seed: int,
        device: str,
        args: Mapping[str, object],
        sample_seeds: Sequence[int] | None = None,
    ) -> GeneratedBatch:
        """Generate ``num_samples`` samples with ``seed`` (and per-sample seeds where supported).

        ``args`` are the card's generation arguments, already typed and defaulted. Failures of
        the package, of its process or of its environment raise
        :class:`medigan_client.errors.GenerationFailedError`.
        """
        ...

    @property
    def supports_sample_seeds(self) -> bool:
        """Whether the package takes one seed per sample (its output then ignores batching)."""
        ...

    def close(self) -> None:
        """Release the package (stop its child process, if any)."""
        ...

    def __enter__(self) -> Runner: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def as_generated_batch(images: np.ndarray) -> GeneratedBatch:
    """A batch of images only."""
    return GeneratedBatch(images=images)
