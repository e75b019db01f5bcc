"""Post-hoc output defenses: what a deployed model releases instead of its logits.

Every defense is a pure function of a model's logits (n, C) that returns the
RELEASED score vectors (n, C) float64, read by the attacker as (possibly
unnormalised) class distributions. `as_logits` maps released vectors back to
"logits" for the signal pipeline (raymia.signals), which only ever uses
log-softmax, phi = z_y - logsumexp_{j != y} z_j and the argmax: all three are
invariant to the scale of a released vector, so unnormalised vectors (rounding)
need no renormalisation.

The predicted label survives every defense: `argmax(released) ==
argmax(logits)` for every row (np.argmax, first index among ties), and
`argmax(as_logits(p)) == argmax(p)`. Where a defense ties the original top
class with another class that np.argmax would pick first (rounding; or a
degenerate float collapse, e.g. huge T), the top class gets the smallest
raise that puts it first: one rounding unit 10**-decimals for `rounding`, one
float ulp elsewhere. This models an API that returns the label with its
scores: the label is no secret, the scores are what the defense blurs.
"""
from __future__ import annotations

import numbers

import numpy as np

from raymia.config import check

#: `as_logits` floor: released zeros become log(1e-30) ~ -69.1, all tied, finite
#: (and exact) in float32; C * 1e-30 is the probability mass this adds back.
FLOOR = 1e-30
#: the largest `decimals` for `rounding`: float64 carries ~16 significant digits
MAX_DECIMALS = 15
#: `fit_temperature` searches T in [1/100, 100] (over log T)
T_BOUNDS = (1e-2, 1e2)


def _logits(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 1:
        raise ValueError(f"logits must have shape (n, C) with C >= 1, got {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits must be finite")
    return z


def _softmax(z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(z / T) rowwise, without overflow for any finite z and T > 0."""
    with np.errstate(over="ignore"):
        shifted = (z - z.max(axis=1, keepdims=True)) / temperature  # <= 0, max entry exactly 0
    p = np.exp(shifted)
    return p / p.sum(axis=1, keepdims=True)


def _keep_label(released: np.ndarray, label: np.ndarray, raise_to) -> np.ndarray:
    """Rows where np.argmax(released) != label: released[label] = raise_to(row max)."""
    rows = np.flatnonzero(released.argmax(axis=1) != label)
    if len(rows):
        released[rows, label[rows]] = raise_to(released[rows].max(axis=1))
    return released


def _next_up(x: np.ndarray) -> np.ndarray:
    return np.nextafter(x, np.inf)


def top_k(logits, k: int) -> np.ndarray:
    """(n, C) -> (n, C): the k largest softmax probabilities, renormalised to sum
    to 1 (a released vector reads as a distribution), the other C - k exactly 0.
    Ties at the k-th place keep the lower class index."""
    z = _logits(logits)
    check(isinstance(k, numbers.Integral) and not isinstance(k, bool), "k",
          f"must be an integer, got {k!r}")
    check(1 <= k <= z.shape[1], "k", f"must be in [1, {z.shape[1]}] (the number of classes), "
          f"got {k}")
    order = np.argsort(-z, axis=1, kind="stable")[:, :k]  # by logit: same order as softmax
    p = _softmax(z)
    out = np.zeros_like(p)
    kept = np.take_along_axis(p, order, axis=1)
    np.put_along_axis(out, order, kept / kept.sum(axis=1, keepdims=True), axis=1)
    return _keep_label(out, z.argmax(axis=1), _next_up)


def rounding(logits, decimals: int) -> np.ndarray:
    """(n, C) -> (n, C): softmax probabilities rounded to `decimals` decimals
    (np.round, half to even), NOT renormalised (the attacker sees the exact
    rounded numbers; downstream log-softmax and phi ignore the scale). Rounding
    can tie the top class with others, or zero them all (decimals=0): then the
    top class is raised by one unit 10**-decimals (so every value stays a
    multiple of it) and the released argmax is the original label."""
    z = _logits(logits)
    check(isinstance(decimals, numbers.Integral) and not isinstance(decimals, bool), "decimals",
          f"must be an integer, got {decimals!r}")
    check(0 <= decimals <= MAX_DECIMALS, "decimals",
          f"must be in [0, {MAX_DECIMALS}] (float64 precision), got {decimals}")
    out = np.round(_softmax(z), decimals)
    return _keep_label(out, z.argmax(axis=1), lambda top: np.round(top + 10.0**-decimals, decimals))


def label_only(logits) -> np.ndarray:
    """(n, C) -> (n, C): the one-hot vector of the predicted label."""
    z = _logits(logits)
    out = np.zeros_like(z)
    out[np.arange(len(z)), z.argmax(axis=1)] = 1.0
    return out


def temperature(logits, T: float) -> np.ndarray:
    """(n, C) -> (n, C): softmax(logits / T). T > 1 softens, T < 1 sharpens; the
    order of the classes is kept, and so the label."""
    z = _logits(logits)
    check(isinstance(T, numbers.Real) and np.isfinite(T) and T > 0, "T",
          f"must be a finite number > 0, got {T!r}")
    return _keep_label(_softmax(z, float(T)), z.argmax(axis=1), _next_up)


def _mean_nll(z: np.ndarray, labels: np.ndarray, T: float) -> float:
    from scipy.special import log_softmax  # SciPy here: every training job imports this module

    with np.errstate(over="ignore"):
        lp = log_softmax((z - z.max(axis=1, keepdims=True)) / T, axis=1)
    return float(-lp[np.arange(len(z)), labels].mean())


def fit_temperature(val_logits, val_labels) -> float:
    """The temperature T minimising the mean NLL of softmax(val_logits / T) on
    held-out data (Guo et al. 2017): a bounded scalar search over log T in
    T_BOUNDS. The NLL is convex in 1/T, so unimodal in log T and the search
    finds its minimum; it returns a bound when the minimum lies beyond it
    (e.g. every validation example classified right by a wide margin).
    val_logits (n, C), val_labels (n,) ints in [0, C)."""
    z = _logits(val_logits)
    labels = np.asarray(val_labels)
    if labels.shape != (len(z),) or len(z) == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"need n >= 1 integer labels for logits {z.shape}, got {labels.shape}")
    if labels.min() < 0 or labels.max() >= z.shape[1]:
        raise ValueError(f"labels must be in [0, {z.shape[1]})")
    from scipy.optimize import minimize_scalar  # SciPy only for the temperature defense

    lo, hi = np.log(T_BOUNDS)
    res = minimize_scalar(lambda log_t: _mean_nll(z, labels, float(np.exp(log_t))),
                          bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(res.x))


def as_logits(probs, floor: float = FLOOR) -> np.ndarray:
    """(n, C) released vectors -> (n, C) float64 "logits" log(max(p, floor)).

    softmax(as_logits(p)) == p / sum(p) up to the floor mass (at most C * floor),
    every zero maps to the same value log(floor), and argmax is kept (a raise of
    one ulp where the log ties the top class with a class before it). Keep the
    result float64: a cast to float32 can tie values one float64 ulp apart."""
    p = np.asarray(probs, dtype=np.float64)
    check(0 < floor < 1, "floor", f"must be in (0, 1), got {floor!r}")
    if p.ndim != 2 or p.shape[1] < 1 or not np.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"probs must be finite and >= 0 with shape (n, C), got {p.shape}")
    z = np.log(np.maximum(p, floor))
    return _keep_label(z, p.argmax(axis=1), _next_up)


__all__ = ["FLOOR", "MAX_DECIMALS", "T_BOUNDS", "as_logits", "fit_temperature", "label_only",
           "rounding", "temperature", "top_k"]
