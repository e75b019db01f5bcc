"""Canaries: the most vulnerable samples, inserted on purpose (`split.canaries`).

A `mislabeled` canary is an example of the dataset whose label is changed to
a random other class: a model can only get it right by memorising it, so its
membership is what a defense must hide first. Which examples are canaries,
and which of them the target trains on, is decided with the other splits
(raymia.data.splits); the new labels are drawn here from the seed, and every
model's training data (`TrainJob.relabel`) and the attacks' labels use them.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

from raymia.seeding import rng

CANARIES = "canaries"  # the attacks' evaluation set of the canaries


@dataclass(frozen=True, eq=False)
class Relabel:
    """Labels `labels` (k,) for sample ids `ids` (k,), replacing the dataset's."""

    ids: np.ndarray
    labels: np.ndarray

    @property
    def digest(self) -> str:
        h = hashlib.sha256(np.ascontiguousarray(self.ids, np.int64).data)
        h.update(np.ascontiguousarray(self.labels, np.int64).data)
        return h.hexdigest()


def relabel(canaries: np.ndarray, y: np.ndarray, n_classes: int, kind: str,
            seed: int) -> Relabel | None:
    """The canaries' labels (None without canaries): for `mislabeled`, each a
    class drawn uniformly among the n_classes - 1 others."""
    if len(canaries) == 0:
        return None
    if kind != "mislabeled":
        raise ValueError(f"unknown canary kind {kind!r}")
    shift = rng(seed, "canaries/labels").integers(1, n_classes, size=len(canaries))
    return Relabel(np.asarray(canaries, np.int64), (y[canaries] + shift) % n_classes)


def relabeled(data, change: Relabel | None):
    """The dataset with the canaries' labels (the same object without canaries)."""
    if change is None:
        return data
    y = data.y.copy()
    y[change.ids] = change.labels
    return dataclasses.replace(data, y=y)
