"""scikit-learn's bundled handwritten digits: the embedded default (1797 8x8 images)."""
from __future__ import annotations

import numpy as np

from raymia.data.dataset import Dataset, checked


def load(cfg) -> Dataset:
    """Imports scikit-learn here, not at import: training workers import the
    dataset registry but are handed the loaded data."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    return checked("digits", x, bunch.target, 10, "image", "sklearn.datasets.load_digits")
