"""Utility and privacy metrics, on scikit-learn where it has them."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import (balanced_accuracy_score, precision_score, recall_score,
                             roc_auc_score, roc_curve)

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


def attack_metrics(scores: np.ndarray, is_member: np.ndarray, predicted: np.ndarray,
                   prediction_score: np.ndarray) -> dict[str, float]:
    """AUC and TPR at low FPR from the scores; balanced accuracy, precision,
    recall and FPR of the fitted decision `predicted`; MMPS (mean max
    prediction score of the target) for each outcome, as in the Trust paper."""
    is_member, predicted = np.asarray(is_member, bool), np.asarray(predicted, bool)
    fpr, tpr, _ = roc_curve(is_member, scores, drop_intermediate=False)
    out = {"auc": float(roc_auc_score(is_member, scores))}
    for at in FPR_POINTS:
        out[f"tpr_at_fpr_{at:g}"] = tpr_at_fpr(fpr, tpr, at)
    out["acc"] = float(balanced_accuracy_score(is_member, predicted))
    out["precision"] = float(precision_score(is_member, predicted, zero_division=0))
    out["recall"] = float(recall_score(is_member, predicted, zero_division=0))
    out["fpr"] = float(predicted[~is_member].mean())
    outcomes = {"tp": is_member & predicted, "fp": ~is_member & predicted,
                "tn": ~is_member & ~predicted, "fn": is_member & ~predicted}
    for key, sel in outcomes.items():
        out[f"mmps_{key}"] = float(prediction_score[sel].mean()) if sel.any() else float("nan")
    return out
