"""Seeded Purchase-like data of any size: binary features, many classes.

Each class has a random binary prototype; an example is its class prototype
with each feature flipped with probability `FLIP`, so classes overlap the way
shopping profiles do and models can overfit. Same config, same data."""
from __future__ import annotations

import numpy as np

from raymia.data.dataset import Dataset, checked
from raymia.seeding import rng

FLIP = 0.2


def load(cfg) -> Dataset:
    gen = rng(0, f"synthetic/{cfg.size}/{cfg.n_features}/{cfg.n_classes}")
    prototypes = gen.random((cfg.n_classes, cfg.n_features)) < 0.5  # (C, d)
    y = gen.integers(0, cfg.n_classes, size=cfg.size)  # (n,)
    flips = gen.random((cfg.size, cfg.n_features)) < FLIP  # (n, d)
    x = (prototypes[y] ^ flips).astype(np.float32)
    return checked("synthetic", x, y, cfg.n_classes, "tabular", "synthetic generator")
