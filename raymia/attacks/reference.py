"""Helpers of the reference-model attacks (LiRA, RMIA): Gaussian fits per
example, and decisions fitted on the shadow models themselves.

Leave-one-out: each shadow model in turn plays the target, the others are its
references; the pooled scores and its own IN/OUT labels fit a threshold (or
a parameter) without touching the target's membership labels.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from raymia.attacks.thresholds import best_threshold

MIN_STD = 1e-6  # floor of a fitted standard deviation (phi is O(1..10))


def masked_mean_std(values: np.ndarray, mask: np.ndarray, per_example: bool = True,
                    pool: np.ndarray | None = None):
    """Mean and std of `values` (m, n) over models where `mask` (m, n) is True.

    per_example: a mean and std per column; columns with fewer than two
    observations take the pooled value. Otherwise the std is one pooled
    ("global") value around the per-column means. Pooled values come from the
    columns where `pool` (n,) is True (all by default). Returns (n,), (n,)."""
    values, mask = np.asarray(values, np.float64), np.asarray(mask, bool)
    pool = np.ones(values.shape[1], bool) if pool is None else np.asarray(pool, bool)
    count = mask.sum(0)  # (n,)
    total = np.where(mask, values, 0.0).sum(0)
    pooled_mean = total[pool].sum() / max(count[pool].sum(), 1)
    mean = np.where(count > 0, total / np.maximum(count, 1), pooled_mean)
    residual = np.where(mask, values - mean, 0.0)[:, pool]
    counted = count[pool]
    dof = counted.sum() - (counted > 0).sum()  # one degree of freedom per fitted column mean
    if dof > 0:
        pooled_std = np.sqrt((residual ** 2).sum() / dof)
    else:  # at most one observation per column: the spread across columns instead
        spread = np.where(mask, values - pooled_mean, 0.0)[:, pool]
        pooled_std = np.sqrt((spread ** 2).sum() / max(counted.sum() - 1, 1))
    if not per_example:
        return mean, np.full(mean.shape, max(pooled_std, MIN_STD))
    own = np.where(mask, values - mean, 0.0)
    std = np.sqrt((own ** 2).sum(0) / np.maximum(count - 1, 1))
    std = np.where(count >= 2, std, pooled_std)
    return mean, np.maximum(std, MIN_STD)


def no_out_reference(keep: np.ndarray) -> int:
    """How many columns of keep (m, n) no model left out: examples an offline
    attack has no OUT reference for."""
    return int(keep.all(0).sum())


def leave_one_out(score: Callable[..., np.ndarray], stats: np.ndarray, keep: np.ndarray):
    """Pooled (scores, is_member) with each of the m models (rows of `stats`,
    (m, n)) as the target and the others as references:
    score(target_row (n,), reference_rows (m-1, n), reference_keep (m-1, n),
    target_keep (n,)); an attack may use target_keep only where a real
    attacker knows it (which of its own data the target did not train on)."""
    scores, labels = [], []
    for k in range(len(stats)):
        others = np.arange(len(stats)) != k
        scores.append(score(stats[k], stats[others], keep[others], keep[k]))
        labels.append(keep[k])
    return np.concatenate(scores), np.concatenate(labels)


def fitted_threshold(score, stats, keep) -> float:
    """The balanced-accuracy threshold of `score`, fitted leave-one-out on shadow
    models; NaN (no example predicted a member) with fewer than two models."""
    if len(stats) < 2:
        return float("nan")
    return best_threshold(*leave_one_out(score, stats, keep))
