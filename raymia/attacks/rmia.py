"""RMIA, the relative membership inference attack (Zarifzadeh et al., ICML 2024).

With Pr(x|m) the probability model m gives x's true class:
  LR(x) = Pr(x|target) / Pr(x),   Pr(x) = mean of Pr(x|m) over reference models
  score(x) = fraction of population samples z with LR(x) / LR(z) >= gamma
Online, Pr(x) averages every reference model. Offline, only models that did
not train on x (OUT), corrected as Pr(x) = ((1 + a) * Pr_OUT(x) + (1 - a)) / 2,
(an example no reference model left out takes the mean OUT answer over all
examples, never an IN model's: `n_no_out_reference` counts them),
with `a` chosen on the reference models themselves (leave-one-out AUC), never
on the evaluation labels. The population is the attacker's shadow pool:
examples outside the audit set. Higher = member.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from raymia.attacks.base import AttackInputs, AttackOutput, MissingSignal
from raymia.attacks.spec import register_attack
from raymia.errors import check
from raymia.attacks.reference import fitted_threshold, leave_one_out, no_out_reference
from raymia.signals import true_log_prob

A_GRID = tuple(np.round(np.linspace(0, 1, 11), 2))


def marginal(refs: np.ndarray, keep: np.ndarray, a: float | None) -> np.ndarray:
    """Pr(x) per column from reference probabilities refs (m, n): all models
    (a is None, online) or the OUT models with the offline correction."""
    if a is None:
        return refs.mean(0)
    out = ~keep
    n_out = out.sum(0)
    total = np.where(out, refs, 0).sum(0)
    p_out = total / np.maximum(n_out, 1)
    pooled = total.sum() / max(n_out.sum(), 1)  # never an IN model's answer
    p_out = np.where(n_out > 0, p_out, pooled)  # no OUT model: the mean over all OUT answers
    return 0.5 * ((1 + a) * p_out + (1 - a))


def rmia_scores(target: np.ndarray, refs: np.ndarray, keep: np.ndarray, population: np.ndarray,
                gamma: float, a: float | None) -> np.ndarray:
    """target (n,) and refs (m, n): Pr(true class) on n columns, of which the
    boolean `population` (n,) marks the z samples. Returns (n,) scores in [0, 1]."""
    ratio = target / np.maximum(marginal(refs, keep, a), 1e-30)  # (n,)  LR(.)
    z = np.sort(ratio[population])
    # count z with ratio[x] / ratio[z] >= gamma  <=>  ratio[z] <= ratio[x] / gamma
    counts = np.searchsorted(z, ratio / gamma, side="right")
    # a population sample is not compared with itself (it would count when gamma <= 1)
    counts = counts - (population & (gamma <= 1))
    return counts / np.maximum(len(z) - population, 1)


def shadow_score(population: np.ndarray, gamma: float, a: float | None):
    """RMIA with a reference model as the target (leave-one-out): its population
    is the pool examples it did not train on, as the real target's is the pool."""
    def score(target, refs, keep, target_keep):
        return rmia_scores(target, refs, keep, population & ~target_keep, gamma, a)
    return score


def fit_a(refs, keep, population, gamma) -> float:
    """The offline `a` maximizing leave-one-out AUC over the reference models
    (1, no correction, with a single reference model)."""
    if len(refs) < 2:
        return 1.0

    def auc(a):
        scores, labels = leave_one_out(shadow_score(population, gamma, a), refs, keep)
        return roc_auc_score(labels, scores) if 0 < labels.mean() < 1 else 0.5
    return max(A_GRID, key=auc)


def _needs_population(exp) -> None:
    check(exp.split.n_shadow_pool > 0, "attacks",
          "rmia needs population samples: set split.n_shadow_pool > 0")


@register_attack("rmia", requires=_needs_population, replayable=True,
                 fields=("reference.n_models", "reference.rmia_gamma"))
def rmia_attack(inputs: AttackInputs, cfg) -> list[AttackOutput]:
    return rmia(inputs, cfg.n_models, cfg.rmia_gamma)


def rmia(inputs: AttackInputs, n_reference: int | None = None,
         gamma: float = 1.0) -> list[AttackOutput]:
    """Offline (OUT reference models, fitted `a`) and online RMIA on the audit set."""
    if inputs.target_population_logits is None or len(inputs.target_population_logits) == 0:
        raise MissingSignal("rmia needs population samples: set split.n_shadow_pool > 0")
    n, models = len(inputs.labels), slice(0, n_reference)
    labels = inputs.universe_labels
    target_logits = np.concatenate([inputs.target_logits, inputs.target_population_logits])
    target = np.exp(true_log_prob(target_logits, labels))  # (n_universe,)
    refs = np.exp(true_log_prob(inputs.shadow_logits[models], labels))  # (m, n_universe)
    keep = inputs.keep[models]
    population = inputs.population
    fit = inputs.fit
    a = fit_a(refs[:, fit], keep[:, fit], population[fit], gamma)
    outputs = []
    for variant, a_value in (("offline", a), ("online", None)):
        scores = rmia_scores(target, refs, keep, population, gamma, a_value)[:n]
        threshold = fitted_threshold(shadow_score(population[fit], gamma, a_value),
                                     refs[:, fit], keep[:, fit])
        no_out = no_out_reference(keep[:, :n]) if a_value is not None else None
        outputs.append(AttackOutput("rmia", variant, scores, threshold,
                                    n_no_out_reference=no_out))
    return outputs
