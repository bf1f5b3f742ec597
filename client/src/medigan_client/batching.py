"""The generation core's batching: which calls make which samples, with which seeds, checked once.

Everything that generates samples of a release goes through this module: ``generate`` (files),
the torch data sets, the visualiser, medigan's ``Generators`` and the hub's evaluations. So the
same ``(seed, batch_size, args)`` gives the same samples whichever of them asks, and
``client.generate(model, n, seed=s)`` reproduces the samples behind a leaderboard number.

The sample sequence: the samples of ``(seed, batch_size)`` form one infinite sequence. Batches
sit on a fixed grid of ``batch_size`` from index 0 (:func:`plan_batches`); the batch starting at
index ``start`` is one call of the package with the seed ``derive_seed(BATCH, seed, start)``
and, for packages that take one seed per sample, the seeds ``derive_seed(SAMPLE, seed, i)`` of
its samples ``i``. A run of ``[first, stop)`` makes every grid batch it touches whole and keeps
the samples it asked for, so sample ``i`` is the same bit for bit whether a run covers
``[0, 2N)`` or is split into ``[0, N)`` and ``[N, 2N)``. With per-sample seeds a sample also
does not depend on the batch size, up to the float rounding of a network run over another batch.

:func:`check_batch` is the one check of a package's output against its card;
:func:`generate_batches` is the one loop: plan, call, check, keep. :class:`SampleDigest` hashes
samples in index order, which is how a hub's evaluation records what it generated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from medigan_catalog.schema import Card, RuntimeKind
from medigan_catalog.validation import check_generation_output
from medigan_client.errors import BadRequestError, GenerationFailedError
from medigan_client.runtime.base import GeneratedBatch, Runner

__all__ = [
    "BATCH",
    "DEFAULT_BATCH_SIZE",
    "EPOCH",
    "LEGACY_DEFAULT_BATCH_SIZE",
    "SAMPLE",
    "SEED_MODULUS",
    "SEED_SCHEME",
    "STREAM",
    "BatchPlan",
    "SampleDigest",
    "check_batch",
    "check_samples",
    "default_batch_size",
    "derive_seed",
    "generate_batches",
    "plan_batches",
]

DEFAULT_BATCH_SIZE = 16
# medigan-legacy packages build their network and read their weights in every call, which
# medigan made once per run; twice the samples per call halves that cost (1.0x -> 1.3x medigan's
# throughput on its DCGAN template at 2 threads, benchmarks/generate.py). 32 is also the batch of
# medigan's own ModelExecutor, and medigan called a package with all its samples at once.
LEGACY_DEFAULT_BATCH_SIZE = 32
# Seeds stay below 2**31 so that every package can hand them to any generator (numpy's legacy
# global seed takes 32 bits, some C code takes a signed int).
SEED_MODULUS = 2**31
# The purposes of derived seeds: a batch's seed, a sample's seed, and the seeds a stream of
# fresh samples (a torch IterableDataset) starts each epoch and iteration from.
BATCH = "batch"
SAMPLE = "sample"
EPOCH = "epoch"
STREAM = "stream"
# Recorded with generated samples (manifests, evaluations) so a reader knows how seeds were made.
SEED_SCHEME = "medigan-client/2"


def derive_seed(purpose: str, seed: int, index: int) -> int:
    """The seed for ``purpose`` at ``index`` of a run seeded ``seed``: stable, 31-bit.

    A hash, so neighbouring indices and seeds give unrelated seeds, and the same three values
    give the same seed on every machine and Python.
    """
    digest = hashlib.sha256(f"medigan-client:{purpose}:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % SEED_MODULUS


@dataclass(frozen=True)
class BatchPlan:
    """One call of the package: which samples it generates and which of them a run keeps.

    The call generates ``generate_count`` samples starting at ``grid_start`` with
    ``batch_seed`` (and ``sample_seeds``, one per generated sample, where the package takes
    them); the run keeps samples ``[first, stop)``, at ``keep_offset`` in the call's output.
    """

    grid_start: int
    first: int
    stop: int
    generate_count: int
    keep_offset: int
    batch_seed: int
    sample_seeds: tuple[int, ...] | None = None

    @property
    def count(self) -> int:
        """How many samples the run keeps from this call."""
        return self.stop - self.first

    def sample_seed(self, position: int) -> int | None:
        """The seed of kept sample ``position`` (0 = ``first``), where samples have seeds."""
        if self.sample_seeds is None:
            return None
        return self.sample_seeds[self.keep_offset + position]


def _positive(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise BadRequestError(f"{name} must be an integer of at least {minimum}, not {value!r}")
    return int(value)


def default_batch_size(card: Card) -> int:
    """The batch size a release is generated with when the caller names none.

    ``DEFAULT_BATCH_SIZE`` for v2 packages, ``LEGACY_DEFAULT_BATCH_SIZE`` for medigan-legacy
    ones. The batch size picks the sample sequence of a seed, so the default is part of what
    ``generate(model, n, seed=s)`` means and is recorded in every manifest.
    """
    if card.runtime.kind == RuntimeKind.MEDIGAN_LEGACY:
        return LEGACY_DEFAULT_BATCH_SIZE
    return DEFAULT_BATCH_SIZE


def plan_batches(
    seed: int,
    batch_size: int,
    first: int,
    stop: int,
    *,
    per_sample_seeds: bool = False,
    whole_batches: bool = True,
) -> Iterator[BatchPlan]:
    """The calls that make samples ``[first, stop)`` of the sequence of ``(seed, batch_size)``.

    Every call generates a whole grid batch and keeps the samples asked for, so a resumed or
    split run hands the package exactly the batches the full run did: a package that draws a
    batch from one seed needs that, and one that takes per-sample seeds then computes every
    image in the same batch composition too (a network's floating-point sums may depend on the
    batch it runs in). ``whole_batches=False`` (medigan's ``Generators``, whose legacy packages
    save every sample they make) generates only up to ``stop`` in the last batch instead.
    """
    batch_size = _positive(batch_size, "batch_size", 1)
    first = _positive(first, "the first index", 0)
    grid_start = (first // batch_size) * batch_size
    while grid_start < stop:
        low = max(first, grid_start)
        high = min(stop, grid_start + batch_size)
        count = batch_size if whole_batches else high - grid_start
        seeds = (
            tuple(
                derive_seed(SAMPLE, seed, index) for index in range(grid_start, grid_start + count)
            )
            if per_sample_seeds
            else None
        )
        yield BatchPlan(
            grid_start=grid_start,
            first=low,
            stop=high,
            generate_count=count,
            keep_offset=low - grid_start,
            batch_seed=derive_seed(BATCH, seed, grid_start),
            sample_seeds=seeds,
        )
        grid_start += batch_size


def check_samples(card: Card, samples: np.ndarray, num_samples: int) -> None:
    """Raise :class:`GenerationFailedError` when samples break the card's ``output`` promise."""
    if samples.size == 0:
        problems = [f"the package returned no values (shape {samples.shape})"]
    else:
        problems = check_generation_output(
            card,
            shape=tuple(int(n) for n in samples.shape),
            dtype=str(samples.dtype),
            minimum=float(np.min(samples)),
            maximum=float(np.max(samples)),
            num_samples=num_samples,
        )
    if problems:
        raise GenerationFailedError(
            f"{card.release_id} produced output that does not match its card: "
            + "; ".join(problems),
            detail={"problems": problems},
        )


def check_batch(card: Card, batch: GeneratedBatch, num_samples: int) -> None:
    """:func:`check_samples` on the images, and exactly one mask, label and extra per image."""
    check_samples(card, batch.images, num_samples)
    companions: dict[str, np.ndarray | None] = {"masks": batch.masks, "labels": batch.labels}
    companions.update({f"extra {name!r}": array for name, array in batch.extras.items()})
    for name, array in companions.items():
        if array is not None and (array.ndim == 0 or int(array.shape[0]) != num_samples):
            raise GenerationFailedError(
                f"{card.release_id} returned {name} of shape {tuple(array.shape)} for "
                f"{num_samples} images"
            )


BatchArguments = Mapping[str, object] | Callable[[BatchPlan], Mapping[str, object]]
"""The package's arguments: the same for every call, or made for each call from its plan."""


def generate_batches(
    runner: Runner,
    card: Card,
    *,
    seed: int,
    batch_size: int,
    first: int,
    stop: int,
    device: str,
    args: BatchArguments,
    whole_batches: bool = True,
    check: bool = True,
) -> Iterator[tuple[BatchPlan, GeneratedBatch]]:
    """Generate samples ``[first, stop)`` batch by batch: each plan with its kept samples.

    Each call is planned by :func:`plan_batches` (per-sample seeds go along when the runner
    takes them), checked against the card by :func:`check_batch` unless ``check`` is off (a
    legacy package that only saves files), and cut to the samples the run keeps.
    """
    for plan in plan_batches(
        seed,
        batch_size,
        first,
        stop,
        per_sample_seeds=bool(runner.supports_sample_seeds),
        whole_batches=whole_batches,
    ):
        batch = runner.generate_batch(
            plan.generate_count,
            seed=plan.batch_seed,
            device=device,
            args=args(plan) if callable(args) else args,
            sample_seeds=plan.sample_seeds,
        )
        if check:
            check_batch(card, batch, plan.generate_count)
        if plan.count == plan.generate_count:
            yield plan, batch
        else:
            yield plan, batch.select(plan.keep_offset, plan.keep_offset + plan.count)


class SampleDigest:
    """A sha256 of samples in index order: the C-order bytes of each sample, one after another.

    Batching does not change it (the bytes of consecutive samples simply follow each other), so
    a hub that generated in chunks and a client that wrote one file per sample get the same
    digest for the same samples.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0

    def update(self, samples: np.ndarray) -> None:
        """Add samples (first axis = samples), after those added before."""
        array = np.ascontiguousarray(samples)
        self._hash.update(array.tobytes())
        self.count += int(array.shape[0]) if array.ndim else 1

    def hexdigest(self) -> str:
        """The digest of every sample added so far."""
        return self._hash.hexdigest()
