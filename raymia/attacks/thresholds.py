"""Thresholds chosen to maximize balanced accuracy on labelled (shadow) data."""
from __future__ import annotations

import numpy as np


def best_threshold(values: np.ndarray, is_member: np.ndarray) -> float:
    """The smallest threshold t among `values` maximizing
    (mean(values[members] >= t) + mean(values[non-members] < t)) / 2.

    Predicting "member" for values >= t; needs members and non-members."""
    values, is_member = np.asarray(values, np.float64), np.asarray(is_member, bool)
    ins, outs = np.sort(values[is_member]), np.sort(values[~is_member])
    if len(ins) == 0 or len(outs) == 0:
        raise ValueError("threshold fitting needs both members and non-members")
    candidates = np.unique(values)  # sorted
    tpr = 1.0 - np.searchsorted(ins, candidates, side="left") / len(ins)  # P(in >= t)
    tnr = np.searchsorted(outs, candidates, side="left") / len(outs)  # P(out < t)
    return float(candidates[np.argmax(tpr + tnr)])  # argmax: first (smallest) maximum


def class_thresholds(values: np.ndarray, is_member: np.ndarray, labels: np.ndarray,
                     n_classes: int) -> np.ndarray:
    """One threshold per true class (Song & Mittal's class-dependent thresholds);
    a class lacking members or non-members falls back to the global threshold."""
    fallback = best_threshold(values, is_member)
    out = np.full(n_classes, fallback)
    for c in range(n_classes):
        sel = labels == c
        if is_member[sel].any() and not is_member[sel].all():
            out[c] = best_threshold(values[sel], is_member[sel])
    return out
