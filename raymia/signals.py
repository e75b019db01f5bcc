"""The torch -> numpy boundary: per-example signals from a model's logits.

All functions take logits (..., n, C) float and labels (n,) int and return
float64 arrays of shape (..., n), computed in log space from the logits so
that confident models (p_y -> 1) stay finite ("numerically stable everything").
"""
from __future__ import annotations

import numpy as np


def _check(logits: np.ndarray, labels: np.ndarray) -> None:
    if logits.ndim < 2 or logits.shape[-2] != len(labels):
        raise ValueError(f"logits {logits.shape} do not match {len(labels)} labels")


def log_probs(logits: np.ndarray) -> np.ndarray:
    """(..., n, C) log-softmax in float64."""
    from scipy.special import log_softmax  # here: a training worker (SELENA) imports no SciPy

    return log_softmax(np.asarray(logits, dtype=np.float64), axis=-1)


def true_log_prob(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """log p_y: (..., n). Its negation is the cross-entropy loss."""
    _check(logits, labels)
    lp = log_probs(logits)
    index = np.broadcast_to(labels[:, None], lp.shape[:-1] + (1,))
    return np.take_along_axis(lp, index, axis=-1)[..., 0]


def phi(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """LiRA's logit-scaled confidence log p_y - log(1 - p_y) = z_y - logsumexp_{j != y} z_j."""
    from scipy.special import logsumexp  # here: a training worker imports no SciPy

    _check(logits, labels)
    z = np.asarray(logits, dtype=np.float64)
    onehot = np.arange(z.shape[-1]) == labels[:, None]  # (n, C)
    z_y = np.where(onehot, z, 0.0).sum(-1)
    return z_y - logsumexp(np.where(onehot, -np.inf, z), axis=-1)


def correct(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(..., n) bool: the top class is the true class."""
    _check(logits, labels)
    return np.asarray(logits).argmax(-1) == labels


def max_prob(logits: np.ndarray) -> np.ndarray:
    """(..., n) the largest softmax probability (the 'prediction score')."""
    return np.exp(log_probs(logits).max(-1))
