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
    ins_at_or_above = len(ins) - np.searchsorted(ins, candidates, side="left")
    outs_below = np.searchsorted(outs, candidates, side="left")
    # balanced accuracy times 2 * n_in * n_out, in exact integers so ties stay ties
    score = ins_at_or_above * len(outs) + outs_below * len(ins)
    return float(candidates[np.argmax(score)])  # argmax: the first (smallest) maximum


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
