"""Preprocessing options as a plain value: what `evaluation.preprocessing` does, spelled out.

Kept apart from the preprocessing code, and free of torch, because the hub records and validates
these options on every evaluation request and snapshot without loading a network: importing them
must not cost a Django process the few hundred megabytes that torch takes (a mirror's sync
process, for one, stays well under its memory budget that way). The meaning of each option is
documented in `evaluation.preprocessing`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from evaluation.features import FeatureExtractor

__all__ = ["RESIZE_FILTERS", "PreprocessOptions", "ResizeFilter"]

ResizeFilter = Literal["bilinear", "bicubic", "lanczos", "nearest"]
RESIZE_FILTERS: tuple[str, ...] = get_args(ResizeFilter)


@dataclass(frozen=True)
class PreprocessOptions:
    """How images are brought to an extractor; recorded with every statistic and FID.

    `size=None` means the extractor's own `input_size`; `resolve` fills it in, and a cache key
    should be taken from the resolved options so that equal inputs share one key.
    """

    resize_filter: ResizeFilter = "bilinear"
    size: int | None = None
    grayscale_to_rgb: bool = True
    normalise: bool = True
    per_image_minmax: bool = False

    def __post_init__(self) -> None:
        if self.resize_filter not in RESIZE_FILTERS:
            raise ValueError(
                f"resize_filter must be one of {', '.join(RESIZE_FILTERS)}, "
                f"got {self.resize_filter!r}"
            )
        if self.size is not None and (
            isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1
        ):
            raise ValueError(f"size must be a positive integer or None, got {self.size!r}")
        for name in ("grayscale_to_rgb", "normalise", "per_image_minmax"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form, for evaluation records and the catalogue snapshot."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessOptions:
        """Inverse of `to_dict`; missing fields take their defaults, unknown ones are refused."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown preprocessing options: {', '.join(unknown)}")
        return cls(**data)

    def resolve(self, extractor: FeatureExtractor) -> PreprocessOptions:
        """The same options with `size` set to the extractor's input size when it was None."""
        return self if self.size is not None else replace(self, size=extractor.input_size)

    def key(self) -> str:
        """A stable string for cache keys: every field, in a fixed order and spelling."""
        size = "auto" if self.size is None else str(self.size)
        return (
            f"filter={self.resize_filter};size={size};gray2rgb={int(self.grayscale_to_rgb)};"
            f"normalise={int(self.normalise)};minmax={int(self.per_image_minmax)}"
        )
