"""An attack's figures on slices of the audit set (as TF-Privacy's SlicingSpec).

Slices of one evaluation set's examples (`slice_kind`, `slice`):
  all         every example ("all")
  class       the example's true class ("3")
  correct     whether the target classifies it correctly ("true", "false")
  confidence  the quartile of the target's confidence, its maximum predicted
              probability ("q1" lowest ... "q4"), edges over the whole set:
              quartile k holds [slice_low, slice_high), q4 its upper edge too
For every attack variant and slice: `n_members`, `n_nonmembers`; AUC, TPR at
1% FPR and the advantage (TPR - FPR at the attack's own threshold, fitted
without evaluation labels), each with a stratified percentile bootstrap
interval (`<figure>_lo`, `<figure>_hi`, as raymia.intervals); and the
oracle advantage (the largest TPR - FPR over the slice's ROC, chosen on the
evaluation labels). A slice without a member or without a non-member has its
counts and null figures. The "all" slice's figures are the `attacks` row's
(its intervals other draws of the same bootstrap). Each slice's resamples
are drawn once, as counts by rank (`draw`), and serve every variant
(`resampled_figures`): a slice's intervals for all variants cost little
more than one variant's.

`slice_figures` takes arrays (an attack's scores on logits a user gives);
`slice_rows` takes a trial's `scores` rows and gives the `slices` table.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from raymia.intervals import percentile_ends, weighted_figures
from raymia.seeding import rng

WITH_INTERVALS = ("auc", "tpr_at_fpr_0.01", "advantage")
FIGURES = (*WITH_INTERVALS, "oracle_advantage")
_CELLS = 2_000_000  # resamples x examples drawn at once
KEY = ("sweep", "trial_id", "attack", "variant", "eval_set")
COLUMNS = ("slice_kind", "slice", "slice_low", "slice_high", "n_members", "n_nonmembers",
           *[c for f in WITH_INTERVALS for c in (f, f"{f}_lo", f"{f}_hi")], "oracle_advantage")


def quartile_edges(prediction_score: np.ndarray) -> np.ndarray:
    """The 5 edges (min, quartiles, max) of the confidences."""
    return np.quantile(np.asarray(prediction_score, np.float64), [0, 0.25, 0.5, 0.75, 1])


def slice_masks(labels, correct, prediction_score, edges=None):
    """[(slice_kind, slice, slice_low, slice_high, mask (n,))] in table order."""
    labels, correct = np.asarray(labels), np.asarray(correct, bool)
    conf = np.asarray(prediction_score, np.float64)
    edges = quartile_edges(conf) if edges is None else np.asarray(edges, np.float64)
    out = [("all", "all", None, None, np.ones(len(labels), bool))]
    out += [("class", str(c), None, None, labels == c) for c in np.unique(labels)]
    out += [("correct", name, None, None, correct == value)
            for name, value in (("true", True), ("false", False))]
    quartile = np.searchsorted(edges[1:-1], conf, side="right")  # 0..3
    out += [("confidence", f"q{k + 1}", float(edges[k]), float(edges[k + 1]), quartile == k)
            for k in range(4)]
    return out


class Resamples(NamedTuple):
    """b stratified bootstrap draws of a slice, as counts by rank: c_in (b,
    n_in), the count of the i-th lowest-scoring member, and the prefix sums
    cum_in (b, n_in + 1), cum_out (b, n_out + 1) (weight below rank i); past
    (b,): how many non-member ranks from the bottom have more than 1% FPR at
    or above them (ties aside). A draw of counts by rank is a bootstrap of any
    variant's scores (the counts are exchangeable), so one serves them all."""
    c_in: np.ndarray
    cum_in: np.ndarray
    cum_out: np.ndarray
    past: np.ndarray


def draw(gen: np.random.Generator, n_in: int, n_out: int, b: int) -> Resamples:
    """b stratified bootstrap draws (multinomial counts) of n_in members and n_out
    non-members."""
    c_in, c_out = (np.bincount((np.arange(b)[:, None] * k + gen.integers(0, k, (b, k))).ravel(),
                               minlength=b * k).reshape(b, k).astype(np.float64)
                   for k in (n_in, n_out))
    cum_in, cum_out = (np.pad(np.cumsum(c, 1), ((0, 0), (1, 0))) for c in (c_in, c_out))
    past = ((n_out - cum_out[:, :-1]) / n_out > 0.01).sum(1)
    return Resamples(c_in, cum_in, cum_out, past)


def resampled_figures(s_in, s_out, threshold: float, r: Resamples) -> dict[str, np.ndarray]:
    """AUC, TPR at 1% FPR and advantage (WITH_INTERVALS) of the draws `r` of a
    variant whose members and non-members score s_in, s_out (sorted
    ascending): each (b,), as raymia.intervals.weighted_figures gives them."""
    n_in, n_out = len(s_in), len(s_out)
    lo, hi = np.searchsorted(s_out, s_in, "left"), np.searchsorted(s_out, s_in, "right")
    below = r.cum_out[:, lo] if (lo == hi).all() else 0.5 * (r.cum_out[:, lo]
                                                             + r.cum_out[:, hi])
    out = {"auc": (r.c_in * below).sum(1) / (n_in * n_out)}  # ties count half
    # v: the highest non-member score with more than 1% FPR at or above it (a tie
    # group counts whole); the best threshold within 1% FPR flags the members above v
    count = np.searchsorted(np.searchsorted(s_out, s_out, "left"), r.past, "left")
    v = s_out[np.maximum(count - 1, 0)]
    above = n_in - r.cum_in[np.arange(len(v)), np.searchsorted(s_in, v, "right")]
    out["tpr_at_fpr_0.01"] = np.where(count > 0, above, n_in) / n_in
    k_in, k_out = np.searchsorted(s_in, threshold), np.searchsorted(s_out, threshold)
    out["advantage"] = (n_in - r.cum_in[:, k_in]) / n_in - (n_out - r.cum_out[:, k_out]) / n_out
    return out


def slice_figures(scores, thresholds, is_member, labels, correct, prediction_score,
                  n_resamples: int = 1000, confidence: float = 0.95,
                  gen: np.random.Generator | None = None, edges=None) -> pd.DataFrame:
    """scores (v, n) or (n,): v attack variants on the same n examples (higher =
    member); thresholds (v,) or a float (NaN: none fitted, a null advantage);
    is_member, labels, correct (the target's prediction is right),
    prediction_score (the target's maximum predicted probability): (n,).
    `edges`: the confidence quartiles' edges (default: over these n). One row
    per (variant `row`, slice) with the figures of the module docstring."""
    scores = np.atleast_2d(np.asarray(scores, np.float64))
    thresholds = np.broadcast_to(np.asarray(thresholds, np.float64), (len(scores),))
    is_member = np.asarray(is_member, bool)
    gen = np.random.default_rng(0) if gen is None else gen
    rows = []
    for kind, name, low, high, mask in slice_masks(labels, correct, prediction_score, edges):
        member = is_member[mask]
        n_in, n_out = int(member.sum()), int((~member).sum())
        head = {"slice_kind": kind, "slice": name, "slice_low": low, "slice_high": high,
                "n_members": n_in, "n_nonmembers": n_out}
        if n_in == 0 or n_out == 0:
            rows += [{"row": v, **head} for v in range(len(scores))]
            continue
        part = scores[:, mask]
        s_in, s_out = np.sort(part[:, member], 1), np.sort(part[:, ~member], 1)
        draws = [{f: [] for f in WITH_INTERVALS} for _ in range(len(scores))]
        chunk = max(1, _CELLS // len(member))
        for start in range(0, n_resamples, chunk):
            r = draw(gen, n_in, n_out, min(chunk, n_resamples - start))
            for v in range(len(scores)):
                for f, values in resampled_figures(s_in[v], s_out[v], thresholds[v],
                                                   r).items():
                    draws[v][f].append(values)
        unit = (member[None] * 1.0, ~member[None] * 1.0)
        for v in range(len(scores)):
            point = weighted_figures(part[v], *unit, thresholds[v], FIGURES)
            ends = percentile_ends({f: np.concatenate(d) for f, d in draws[v].items()},
                                   confidence)
            if np.isnan(thresholds[v]):  # no fitted threshold: no advantage
                point["advantage"] = [np.nan]
                ends.update(advantage_lo=np.nan, advantage_hi=np.nan)
            rows.append({"row": v, **head, **{f: float(point[f][0]) for f in FIGURES}, **ends})
    return pd.DataFrame(rows).reindex(columns=["row", *COLUMNS]).sort_values("row",
                                                                             kind="stable")


def by_sample_id(values, name: str) -> pd.Series:
    """A per-example property as a Series indexed by sample_id: a Series or a
    dict as given; an array is indexed by position (sample_id 0..n-1)."""
    return values if isinstance(values, pd.Series) else pd.Series(values, name=name)


def _thresholds(thresholds, eval_set: str) -> dict:
    if thresholds is None:
        return {}
    if isinstance(thresholds, pd.DataFrame):  # attacks rows
        rows = thresholds[thresholds.eval_set == eval_set]
        return dict(zip(zip(rows.attack, rows.variant), rows.threshold))
    return dict(thresholds)


def slice_rows(scores: pd.DataFrame, labels, correct, n_resamples: int = 1000,
               confidence: float = 0.95, seed: int = 0, thresholds=None,
               eval_set: str = "original") -> pd.DataFrame:
    """The `slices` table of one trial's `scores` rows on `eval_set`.

    scores: rows of the scores table (attack, variant, eval_set, sample_id,
    is_member, score, prediction_score; sweep and trial_id when present);
    labels, correct: each example's true class and whether the target
    classifies it correctly, by sample_id (see by_sample_id); thresholds:
    each variant's threshold fitted without evaluation labels, as the attacks
    rows (attack, variant, eval_set, threshold) or a dict (attack, variant)
    -> threshold; a variant without one (or NaN) has a null advantage.
    Resamples derive from raymia.seeding.rng(seed, "slices/<eval_set>")."""
    frame = scores[scores.eval_set == eval_set]
    if frame.empty:
        return pd.DataFrame(columns=[*KEY, *COLUMNS])
    label_of, correct_of = by_sample_id(labels, "label"), by_sample_id(correct, "correct")
    thresholds = _thresholds(thresholds, eval_set)
    edges = quartile_edges(frame.drop_duplicates("sample_id").prediction_score)
    gen = rng(seed, f"slices/{eval_set}")
    by_coverage: dict[bytes, list] = {}  # variants scored on the same examples share draws
    for order, ((attack, variant), g) in enumerate(frame.groupby(["attack", "variant"],
                                                                 sort=False)):
        g = g.sort_values("sample_id")
        by_coverage.setdefault(g.sample_id.to_numpy().tobytes(), []).append(
            {"order": order, "sweep": g.sweep.iloc[0] if "sweep" in g else "",
             "trial_id": g.trial_id.iloc[0] if "trial_id" in g else "", "attack": attack,
             "variant": variant, "eval_set": eval_set, "rows": g})
    parts = []
    for variants in by_coverage.values():
        first = variants[0]["rows"]
        ids = first.sample_id.to_numpy()
        table = slice_figures(np.stack([v["rows"].score.to_numpy() for v in variants]),
                              [thresholds.get((v["attack"], v["variant"]), np.nan)
                               for v in variants],
                              first.is_member.to_numpy(), label_of.loc[ids].to_numpy(),
                              correct_of.loc[ids].to_numpy(bool),
                              first.prediction_score.to_numpy(),
                              n_resamples, confidence, gen, edges)
        key = pd.DataFrame([{k: x for k, x in v.items() if k != "rows"} for v in variants])
        parts.append(key.iloc[table.pop("row").to_numpy()].reset_index(drop=True).join(
            table.reset_index(drop=True)))
    out = pd.concat(parts, ignore_index=True).sort_values("order", kind="stable")
    return out.drop(columns="order").reset_index(drop=True)
