"""Metric attacks (Yeom et al. 2018; Song & Mittal 2021): one number per example
from the model's output, thresholded with a global or a per-class threshold
fitted on shadow models' members and non-members.

Each metric is oriented so that higher = member:
  correctness       1[argmax = y]
  confidence        p_y
  entropy           -H(p) = sum_i p_i log p_i
  modified_entropy  -Mentr(p, y), Mentr = -(1-p_y) log p_y - sum_{i!=y} p_i log(1-p_i)
  loss              log p_y, the negated cross-entropy (Yeom's loss attack)
Logs are clipped at log(1e-30), as in Song & Mittal's code.

That orientation is the usual one, not a promise: a defense can make members
score lower (MemGuard's noise can invert the loss attack). The attacker sees
its shadow models, so each metric's direction is chosen there: where the
shadow members' AUC is below 1/2 the statistic is negated (`direction` -1),
and scores stay higher = member.
"""
from __future__ import annotations

from functools import partial

import numpy as np
from scipy.stats import rankdata

from raymia.attacks.base import AttackInputs, AttackOutput
from raymia.attacks.spec import register_attack
from raymia.attacks.thresholds import best_threshold, class_thresholds
from raymia.signals import correct, log_probs, true_log_prob

LOG_FLOOR = np.log(1e-30)


def _log(p_log: np.ndarray) -> np.ndarray:
    return np.maximum(p_log, LOG_FLOOR)


def _log1m(p_log: np.ndarray) -> np.ndarray:
    """log(1 - p) from log p, clipped like _log."""
    return np.log(np.clip(-np.expm1(p_log), 1e-30, None))


def _onehot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.arange(n_classes) == labels[:, None]  # (n, C)


def correctness(logits, labels):
    return correct(logits, labels).astype(np.float64)


def confidence(logits, labels):
    return np.exp(true_log_prob(logits, labels))


def entropy(logits, labels):
    lp = log_probs(logits)
    return (np.exp(lp) * _log(lp)).sum(-1)


def modified_entropy(logits, labels):
    lp = log_probs(logits)
    p = np.exp(lp)
    y = _onehot(labels, logits.shape[-1])
    per_class = np.where(y, -(1 - p) * _log(lp), -p * _log1m(lp))
    return -per_class.sum(-1)


def loss(logits, labels):
    return _log(true_log_prob(logits, labels))


METRICS = {
    "correctness": correctness,
    "confidence": confidence,
    "entropy": entropy,
    "modified_entropy": modified_entropy,
    "loss": loss,
}


def metric_attack(name: str, inputs: AttackInputs) -> list[AttackOutput]:
    """Variants `global` (one threshold) and `class` (per true class; score is the
    margin over the example's class threshold), both fitted on shadow data."""
    metric = METRICS[name]
    target = metric(inputs.target_logits, inputs.labels)  # (n_audit,)
    fit = inputs.fit
    labels, keep = inputs.universe_labels[fit], inputs.keep[:, fit]
    shadow = metric(inputs.shadow_logits[:, fit], labels).ravel()  # (m * u,)
    shadow_in = keep.ravel()
    direction = orientation(shadow, shadow_in)
    target, shadow = direction * target, direction * shadow
    shadow_labels = np.broadcast_to(labels, keep.shape).ravel()
    global_t = best_threshold(shadow, shadow_in)
    per_class = class_thresholds(shadow, shadow_in, shadow_labels, inputs.n_classes)
    return [
        AttackOutput(name, "global", target, global_t, direction=direction),
        AttackOutput(name, "class", target - per_class[inputs.labels], 0.0, direction=direction),
    ]


for _name in METRICS:
    register_attack(_name, default=True, labels_only=_name == "correctness")(
        partial(lambda inputs, cfg, name: metric_attack(name, inputs), name=_name))


def orientation(shadow: np.ndarray, shadow_in: np.ndarray) -> int:
    """+1 when shadow members score higher than non-members (AUC >= 1/2), else -1.
    The AUC by ranks (Mann-Whitney U, ties counted half)."""
    n_in = int(shadow_in.sum())
    if n_in in (0, len(shadow_in)):
        return 1
    ranks = rankdata(shadow)  # average ranks of ties
    u = ranks[shadow_in].sum() - n_in * (n_in + 1) / 2
    return 1 if u >= 0.5 * n_in * (len(shadow_in) - n_in) else -1
