"""The in-memory dataset every job indexes into."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raymia.config import ConfigError


class DataError(ConfigError):
    """A dataset file is missing or malformed; `where` names the file."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features `x` (float32, (n, *shape): (n, d) for tabular, (n, C, H, W) for
    images) and labels `y` (int64, (n,), in [0, n_classes)). A sample_id is an
    index into these arrays."""

    name: str
    x: np.ndarray
    y: np.ndarray
    n_classes: int
    kind: str  # "tabular" or "image"

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


def checked(name: str, x, y, n_classes: int | None, kind: str, source: str) -> Dataset:
    """Validate what a loader read; errors name `source` (the file). With
    `n_classes` None, the labels say it: class ids from 0, max label + 1."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim < 2:
        raise DataError(source, f"features must be 2-D or more, got shape {x.shape}")
    if y.ndim != 1:
        raise DataError(source, f"labels must be 1-D, got shape {y.shape}")
    if len(x) != len(y):
        raise DataError(source, f"{len(x)} feature rows but {len(y)} labels")
    if len(y) == 0:
        raise DataError(source, "holds no examples")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(source, f"features must be numeric, got {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise DataError(source, "features hold NaN or infinite values")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.mod(y, 1) == 0):
            raise DataError(source, f"labels must be whole numbers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if n_classes is None:
        if y.min() < 0:
            raise DataError(source, f"labels must be class ids from 0, got {y.min()}")
        n_classes = int(y.max()) + 1
    if y.min() < 0 or y.max() >= n_classes:
        raise DataError(source, f"labels must be in [0, {n_classes}), got [{y.min()}, {y.max()}]")
    return Dataset(name, np.ascontiguousarray(x), y, n_classes, kind)
