"""The ``inprocess`` runtime: the package is imported into this Python and called directly.

Fastest, and the only mode that shares objects with the caller, but a package that crashes the
interpreter takes the caller with it, and a legacy package runs in the caller's working
directory (its ``models/<id>/`` arguments are still rewritten to the cache); see
:mod:`medigan_client.runtime` for the other modes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from medigan_catalog.schema import Card
from medigan_client.runtime.base import GeneratedBatch
from medigan_client.runtime.loader import LoadedPackage, load_package


class InProcessRunner:
    """A package imported in this process (see :class:`medigan_client.runtime.base.Runner`)."""

    isolation = "inprocess"

    def __init__(self, package_dir: Path, card: Card):
        self.card = card
        self.package: LoadedPackage = load_package(package_dir, card)

    @property
    def supports_sample_seeds(self) -> bool:
        """Whether the package's entry point takes one seed per sample (a keyword ``seeds``)."""
        return self.package.supports_sample_seeds

    def generate_batch(
        self,
        num_samples: int,
        *,
        seed: int,
        device: str,
        args: Mapping[str, object],
        sample_seeds: Sequence[int] | None = None,
    ) -> GeneratedBatch:
        """Generate one batch in this process (see :meth:`LoadedPackage.generate`)."""
        return self.package.generate(
            num_samples, seed=seed, device=device, args=args, sample_seeds=sample_seeds
        )

    def close(self) -> None:
        """Nothing to release: the imported module stays cached in ``sys.modules``."""

    def __enter__(self) -> InProcessRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
