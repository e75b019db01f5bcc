"""Utility and privacy metrics, on scikit-learn where it has them."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from raymia.signals import correct, max_prob

FPR_POINTS = (0.001, 0.01)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(correct(logits, labels).mean()) if len(labels) else float("nan")


def ece(logits: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error: sum over equal-width confidence bins (lo, hi] of
    |accuracy - mean confidence| weighted by the bin's share of examples."""
    conf, hit = max_prob(logits), correct(logits, labels)
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)  # (lo, hi] -> index
    total = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            total += sel.mean() * abs(hit[sel].mean() - conf[sel].mean())
    return float(total)


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, at: float) -> float:
    """The largest TPR among ROC points whose FPR is at most `at`."""
    ok = fpr <= at
    return float(tpr[ok].max()) if ok.any() else 0.0


def ppv_at_fpr(fpr: np.ndarray, tpr: np.ndarray, at: float, n_members: float,
               n_nonmembers: float) -> float:
    """Positive predictive value TP / (TP + FP) at the ROC point that defines
    `tpr_at_fpr`: the largest TPR among points whose FPR is at most `at`, and of
    the points with that TPR the one of smallest FPR (the highest threshold
    reaching it). NaN where that point flags nobody (TPR = FPR = 0)."""
    best = tpr_at_fpr(fpr, tpr, at)
    low = float(fpr[(fpr <= at) & (tpr >= best)].min()) if best > 0 else 0.0
    tp, fp = best * n_members, low * n_nonmembers
    return tp / (tp + fp) if tp + fp > 0 else float("nan")


def attack_metrics(scores: np.ndarray, is_member: np.ndarray, predicted: np.ndarray,
                   prediction_score: np.ndarray) -> dict[str, float]:
    """AUC and TPR at low FPR from the scores; balanced accuracy, precision,
    recall and FPR of the fitted decision `predicted`; MMPS (mean max
    prediction score of the target) for each outcome, as in the Trust paper.

    Headline figures: `advantage`, TPR - FPR of the fitted decision (recall -
    fpr: no evaluation label chose it); `oracle_advantage`, the largest TPR -
    FPR over the ROC (TF-Privacy's "attacker advantage": its threshold is
    chosen on the evaluation labels); `ppv_at_fpr_<a>`, TP / (TP + FP) at the
    ROC point of `tpr_at_fpr_<a>` (see ppv_at_fpr), on the audit set as drawn:
    it holds as many members as non-members, so PPV = TPR / (TPR + FPR) there,
    and a population with fewer members gives a lower PPV."""
    is_member, predicted = np.asarray(is_member, bool), np.asarray(predicted, bool)
    fpr, tpr, _ = roc_curve(is_member, scores, drop_intermediate=False)
    n_in, n_out = int(is_member.sum()), int((~is_member).sum())
    out = {"auc": float(roc_auc_score(is_member, scores))}
    for at in FPR_POINTS:
        out[f"tpr_at_fpr_{at:g}"] = tpr_at_fpr(fpr, tpr, at)
    # the counts behind scikit-learn's balanced_accuracy_score, precision_score and
    # recall_score (zero_division=0), without their input checks per call
    tp, fp = int((is_member & predicted).sum()), int((~is_member & predicted).sum())
    out["recall"], out["fpr"] = tp / n_in, fp / n_out
    out["acc"] = 0.5 * (out["recall"] + 1 - out["fpr"])
    out["precision"] = tp / (tp + fp) if tp + fp else 0.0
    out["advantage"] = out["recall"] - out["fpr"]
    out["oracle_advantage"] = float(max((tpr - fpr).max(), 0.0))
    for at in FPR_POINTS:
        out[f"ppv_at_fpr_{at:g}"] = ppv_at_fpr(fpr, tpr, at, n_in, n_out)
    outcomes = {"tp": is_member & predicted, "fp": ~is_member & predicted,
                "tn": ~is_member & ~predicted, "fn": is_member & ~predicted}
    for key, sel in outcomes.items():
        out[f"mmps_{key}"] = float(prediction_score[sel].mean()) if sel.any() else float("nan")
    return out
