"""Uncertainty of an attack's figures, from its scores and membership alone.

For one attack on one evaluation set (scores, higher = member; is_member; the
decision threshold fitted without evaluation labels):
  interval   a percentile bootstrap over examples, stratified by membership
             (members resampled among members, non-members among
             non-members), `n` resamples, seeded: `<figure>_lo`, `<figure>_hi`
  null band  the same figures with the membership labels permuted over the
             scores, `n` permutations: what an attack with no signal at all
             prints on this many examples: `null_<figure>_lo`, `null_<figure>_hi`
Figures: AUC, TPR at FPR <= 0.1% and 1% (the largest TPR among ROC points at
or below that FPR, as raymia.metrics), balanced accuracy and advantage (TPR -
FPR) at the threshold, the oracle advantage (the largest TPR - FPR over the
ROC) and PPV at 0.1% and 1% FPR (raymia.metrics.ppv_at_fpr). A resample where
that PPV is undefined (the point flags nobody) is left out of its interval;
where every resample is, the ends are NaN.

Every resample is a weighting of the examples (bootstrap counts, or 0/1 for a
permutation), so one vectorised weighted ROC computes them all: scores are
grouped by value (ties stay ties) and cumulative weights give each
threshold's TPR and FPR.
"""
from __future__ import annotations

import numpy as np

from raymia.metrics import FPR_POINTS

FIGURES = ("auc", *(f"tpr_at_fpr_{a:g}" for a in FPR_POINTS), "acc", "advantage",
           "oracle_advantage", *(f"ppv_at_fpr_{a:g}" for a in FPR_POINTS))
_CELLS = 2_000_000  # resamples x examples computed at once


def weighted_figures(scores: np.ndarray, w_member: np.ndarray, w_nonmember: np.ndarray,
                     threshold: float, figures=FIGURES) -> dict[str, np.ndarray]:
    """scores (n,); weights (b, n) of each example as a member and as a
    non-member in each of b resamples -> {figure: (b,)} for each of `figures`."""
    values, inverse = np.unique(scores, return_inverse=True)  # ascending groups of ties
    order = np.argsort(inverse, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(inverse))[:-1]]
    pos = np.add.reduceat(w_member[:, order], starts, axis=1)  # (b, g) weight per score value
    neg = np.add.reduceat(w_nonmember[:, order], starts, axis=1)
    pos_total, neg_total = pos.sum(1), neg.sum(1)  # (b,)
    neg_below = np.cumsum(neg, 1) - neg
    out = {"auc": (pos * (neg_below + 0.5 * neg)).sum(1) / (pos_total * neg_total)}
    pos_at_or_above = pos_total[:, None] - np.cumsum(pos, 1) + pos  # (b, g)
    neg_at_or_above = neg_total[:, None] - neg_below
    tpr = pos_at_or_above / pos_total[:, None]
    fpr = neg_at_or_above / neg_total[:, None]
    for at in FPR_POINTS:  # the (0, 0) point (threshold above every score) is always there
        ok = fpr <= at
        best = np.where(ok, tpr, 0.0).max(1)
        out[f"tpr_at_fpr_{at:g}"] = best
        if f"ppv_at_fpr_{at:g}" in figures:  # of the points with that TPR, the least FPR
            low = np.where(best > 0, np.where(ok & (tpr >= best[:, None]), fpr, 1.0).min(1), 0)
            tp, fp = best * pos_total, low * neg_total
            with np.errstate(invalid="ignore"):
                out[f"ppv_at_fpr_{at:g}"] = tp / (tp + fp)  # 0 / 0: flags nobody, NaN
    out["oracle_advantage"] = np.maximum((tpr - fpr).max(1), 0.0)
    predicted = (scores >= threshold).astype(np.float64)  # NaN threshold: nobody
    tpr_t, fpr_t = w_member @ predicted / pos_total, w_nonmember @ predicted / neg_total
    out["acc"], out["advantage"] = 0.5 * (tpr_t + 1 - fpr_t), tpr_t - fpr_t
    return {f: out[f] for f in figures}


def _resampled(scores, threshold, weights, n: int, confidence: float, prefix: str):
    """Percentile interval of each figure over the n weightings `weights(b)` draws."""
    chunk = max(1, _CELLS // max(len(scores), 1))
    draws: dict[str, list] = {f: [] for f in FIGURES}
    for start in range(0, n, chunk):
        w_member, w_nonmember = weights(min(chunk, n - start))
        for f, v in weighted_figures(scores, w_member, w_nonmember, threshold).items():
            draws[f].append(v)
    return {f"{prefix}{k}": v for k, v in percentile_ends(
        {f: np.concatenate(parts) for f, parts in draws.items()}, confidence).items()}


def percentile_ends(draws: dict[str, np.ndarray], confidence: float) -> dict[str, float]:
    """{<figure>_lo, <figure>_hi}: the percentile interval of each figure's
    resampled values, NaN values (an undefined PPV) left out."""
    tail, out = (1 - confidence) / 2, {}
    names = list(draws)
    values = np.stack([np.asarray(draws[f], np.float64) for f in names])  # (figures, b)
    ends = np.full((2, len(names)), np.nan)
    whole = ~np.isnan(values).any(1)  # one quantile call for the rows without NaN
    if whole.any():
        ends[:, whole] = np.quantile(values[whole], [tail, 1 - tail], axis=1)
    for i in np.flatnonzero(~whole):
        kept = values[i][~np.isnan(values[i])]
        if len(kept):
            ends[:, i] = np.quantile(kept, [tail, 1 - tail])
    for i, f in enumerate(names):
        out[f"{f}_lo"], out[f"{f}_hi"] = float(ends[0, i]), float(ends[1, i])
    return out


def bootstrap_intervals(scores: np.ndarray, is_member: np.ndarray, threshold: float,
                        n: int, confidence: float, gen: np.random.Generator) -> dict:
    """{<figure>_lo, <figure>_hi}: stratified percentile bootstrap intervals."""
    scores, is_member = np.asarray(scores, np.float64), np.asarray(is_member, bool)
    members, nonmembers = np.flatnonzero(is_member), np.flatnonzero(~is_member)

    def weights(b):
        w_member = np.zeros((b, len(scores)))
        w_nonmember = np.zeros((b, len(scores)))
        w_member[:, members] = gen.multinomial(len(members), np.full(len(members),
                                                                       1 / len(members)), b)
        w_nonmember[:, nonmembers] = gen.multinomial(
            len(nonmembers), np.full(len(nonmembers), 1 / len(nonmembers)), b)
        return w_member, w_nonmember
    return _resampled(scores, threshold, weights, n, confidence, "")


def null_band(scores: np.ndarray, is_member: np.ndarray, threshold: float, n: int,
              confidence: float, gen: np.random.Generator) -> dict:
    """{null_<figure>_lo, null_<figure>_hi}: the figures' spread with the
    membership labels permuted (as many members, no signal)."""
    scores, is_member = np.asarray(scores, np.float64), np.asarray(is_member, bool)

    def weights(b):
        member = gen.permuted(np.broadcast_to(is_member, (b, len(scores))), axis=1)
        return member.astype(np.float64), (~member).astype(np.float64)
    return _resampled(scores, threshold, weights, n, confidence, "null_")


def interval_columns() -> list[str]:
    """The attacks table's interval and null-band columns, in order."""
    return ([f"{f}_{end}" for f in FIGURES for end in ("lo", "hi")]
            + [f"null_{f}_{end}" for f in FIGURES for end in ("lo", "hi")])
