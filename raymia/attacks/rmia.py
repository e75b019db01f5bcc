"""RMIA, the relative membership inference attack (Zarifzadeh et al., ICML 2024).

With Pr(x|m) the probability model m gives x's true class:
  LR(x) = Pr(x|target) / Pr(x),   Pr(x) = mean of Pr(x|m) over reference models
  score(x) = fraction of population samples z with LR(x) / LR(z) >= gamma
Online, Pr(x) averages every reference model. Offline, only models that did
not train on x (OUT), corrected as Pr(x) = ((1 + a) * Pr_OUT(x) + (1 - a)) / 2,
with `a` chosen on the reference models themselves (leave-one-out AUC), never
on the evaluation labels. The population is the attacker's shadow pool:
examples outside the audit set. Higher = member.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from raymia.attacks.base import AttackInputs, AttackOutput
from raymia.attacks.reference import fitted_threshold, leave_one_out
from raymia.signals import true_log_prob

A_GRID = tuple(np.round(np.linspace(0, 1, 11), 2))


def marginal(refs: np.ndarray, keep: np.ndarray, a: float | None) -> np.ndarray:
    """Pr(x) per column from reference probabilities refs (m, n): all models
    (a is None, online) or the OUT models with the offline correction."""
    if a is None:
        return refs.mean(0)
    out = ~keep
    p_out = np.where(out, refs, 0).sum(0) / np.maximum(out.sum(0), 1)
    return 0.5 * ((1 + a) * p_out + (1 - a))


def rmia_scores(target: np.ndarray, refs: np.ndarray, keep: np.ndarray, population: np.ndarray,
                gamma: float, a: float | None) -> np.ndarray:
    """target (n,) and refs (m, n): Pr(true class) on n columns, of which the
    boolean `population` (n,) marks the z samples. Returns (n,) scores in [0, 1]."""
    ratio = target / np.maximum(marginal(refs, keep, a), 1e-30)  # (n,)  LR(.)
    z = np.sort(ratio[population])
    # count z with ratio[x] / ratio[z] >= gamma  <=>  ratio[z] <= ratio[x] / gamma
    return np.searchsorted(z, ratio / gamma, side="right") / max(len(z), 1)


def fit_a(refs, keep, population, gamma) -> float:
    """The offline `a` maximizing leave-one-out AUC over the reference models."""
    def auc(a):
        scores, labels = leave_one_out(
            lambda t, r, k: rmia_scores(t, r, k, population, gamma, a), refs, keep)
        return roc_auc_score(labels, scores) if 0 < labels.mean() < 1 else 0.5
    return max(A_GRID, key=auc)


def rmia(inputs: AttackInputs, n_reference: int | None = None,
         gamma: float = 2.0) -> list[AttackOutput]:
    """Offline (OUT reference models, fitted `a`) and online RMIA on the audit set."""
    if inputs.target_population_logits is None or len(inputs.target_population_logits) == 0:
        raise ValueError("rmia needs population samples: set split.n_shadow_pool > 0")
    n, models = len(inputs.labels), slice(0, n_reference)
    labels = inputs.universe_labels
    target_logits = np.concatenate([inputs.target_logits, inputs.target_population_logits])
    target = np.exp(true_log_prob(target_logits, labels))  # (n_universe,)
    refs = np.exp(true_log_prob(inputs.shadow_logits[models], labels))  # (m, n_universe)
    keep = inputs.keep[models]
    population = np.arange(len(labels)) >= n
    a = fit_a(refs, keep, population, gamma)
    outputs = []
    for variant, a_value in (("offline", a), ("online", None)):
        def score(t, r, k, a_value=a_value):
            return rmia_scores(t, r, k, population, gamma, a_value)
        threshold = fitted_threshold(score, refs, keep)
        outputs.append(AttackOutput("rmia", variant, score(target, refs, keep)[:n], threshold))
    return outputs
