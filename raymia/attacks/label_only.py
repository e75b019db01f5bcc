"""Label-only attacks: pure numpy scores from whether queries were classified
correctly (Choquette-Choo et al. 2021; Li & Zhang 2021). Higher = member.

  augmentation  fraction of augmented copies (raymia.augment) still correct
  noise         binary tabular data: fraction of copies with k random features
                flipped still correct; k chosen on shadow models by AUC
  boundary      L2 distance to the decision boundary (raymia.attacks.boundary),
                0 for a misclassified example

Shadow arrays carry any trailing shape S (e.g. (m, n_universe), matching a keep
matrix); thresholds are fitted on them with `best_threshold`, never on the
target's membership labels. Each `*_attack` returns the target's scores (n,)
and the threshold (predict member where score >= threshold), the pieces of an
`AttackOutput`.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from raymia.attacks.base import AttackOutput, MissingSignal
from raymia.attacks.spec import register_attack
from raymia.augment import check_binary
from raymia.errors import ConfigError, check
from raymia.attacks.thresholds import best_threshold

#: the score of an example whose boundary was not reached (distance inf): finite,
#: above every reachable distance, so that thresholds and ROC curves still work
UNREACHED = float(np.finfo(np.float32).max)


def fraction_correct(correct: np.ndarray) -> np.ndarray:
    """(q, ...) bool, query-major -> (...) float64, the mean over the q queries."""
    correct = np.asarray(correct, bool)
    if correct.ndim < 1 or correct.shape[0] == 0:
        raise ValueError(f"needs at least one query on axis 0, got shape {correct.shape}")
    return correct.mean(0, dtype=np.float64)


def augmentation_scores(correct_aug: np.ndarray) -> np.ndarray:
    """(n_aug, n) bool: augmented copy a of example i classified correctly ->
    (n,) the fraction correct."""
    if np.ndim(correct_aug) != 2:
        raise ValueError(f"correct_aug must be (n_aug, n), got shape {np.shape(correct_aug)}")
    return fraction_correct(correct_aug)


noise_scores = augmentation_scores  # (n_noise, n) -> (n,): noisy copies still correct


def fit_threshold(shadow_scores: np.ndarray, shadow_in: np.ndarray) -> float:
    """`best_threshold` on shadow scores (S) and membership (S), flattened."""
    shadow_scores, shadow_in = np.asarray(shadow_scores), np.asarray(shadow_in, bool)
    if shadow_scores.shape != shadow_in.shape:
        raise ValueError(f"shadow scores {shadow_scores.shape} and membership "
                         f"{shadow_in.shape} differ")
    return best_threshold(shadow_scores.ravel(), shadow_in.ravel())


def augmentation_attack(target_correct: np.ndarray, shadow_correct: np.ndarray,
                        shadow_in: np.ndarray) -> tuple[np.ndarray, float]:
    """target_correct (n_aug, n), shadow_correct (n_aug, *S), shadow_in (S) ->
    scores (n,), threshold."""
    return augmentation_scores(target_correct), fit_threshold(fraction_correct(shadow_correct),
                                                              shadow_in)


def choose_flips(shadow_correct_by_k: np.ndarray, shadow_in: np.ndarray) -> int:
    """The index into the grid of flip counts whose fraction-correct score has
    the highest shadow AUC (the first on ties): shadow_correct_by_k (K, n_noise,
    *S) bool, shadow_in (S) bool, both members and non-members present."""
    correct, shadow_in = np.asarray(shadow_correct_by_k, bool), np.asarray(shadow_in, bool)
    if correct.ndim < 3 or correct.shape[2:] != shadow_in.shape:
        raise ValueError(f"shadow_correct_by_k {correct.shape} must be (K, n_noise, "
                         f"*{shadow_in.shape})")
    if shadow_in.all() or not shadow_in.any():
        raise ValueError("choosing flips needs both shadow members and non-members")
    aucs = [roc_auc_score(shadow_in.ravel(), fraction_correct(c).ravel()) for c in correct]
    aucs = np.asarray(aucs)
    return int(np.flatnonzero(aucs >= aucs.max() - 1e-12)[0])  # ties (to rounding): the first


def noise_attack(target_correct_by_k: np.ndarray, shadow_correct_by_k: np.ndarray,
                 shadow_in: np.ndarray) -> tuple[np.ndarray, float, int]:
    """target_correct_by_k (K, n_noise, n), shadow_correct_by_k (K, n_noise, *S),
    shadow_in (S) -> scores (n,), threshold, and the chosen grid index."""
    shadow = np.asarray(shadow_correct_by_k, bool)
    k = choose_flips(shadow, shadow_in)
    scores = noise_scores(np.asarray(target_correct_by_k, bool)[k])
    return scores, fit_threshold(fraction_correct(shadow[k]), shadow_in), k


def boundary_scores(distances: np.ndarray, correct: np.ndarray | None = None) -> np.ndarray:
    """Distances (...) >= 0 (inf: boundary not reached) -> float64 scores (...):
    0 where `correct` (same shape) is False, inf replaced by UNREACHED."""
    d = np.asarray(distances, np.float64)
    if np.isnan(d).any() or (d < 0).any():
        raise ValueError("distances must be >= 0 and not NaN")
    d = np.minimum(d, UNREACHED)
    return d if correct is None else np.where(np.asarray(correct, bool), d, 0.0)


def boundary_attack(target_distances: np.ndarray, shadow_distances: np.ndarray,
                    shadow_in: np.ndarray) -> tuple[np.ndarray, float]:
    """target_distances (n,), shadow_distances (S), shadow_in (S) -> scores (n,),
    threshold. Distances as `boundary_distance` returns them (0 when misclassified)."""
    return boundary_scores(target_distances), fit_threshold(boundary_scores(shadow_distances),
                                                            shadow_in)


# --- entry points on AttackInputs (the attack registry's) -----------------------------

def _correct(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(..., n, C), (n,) -> (..., n) bool: the released label is the true one."""
    return logits.argmax(-1) == labels


def _aug(exp, data_kind: str) -> tuple[str, ...]:
    return ("aug",)


def _noise(exp, data_kind: str) -> tuple[str, ...]:
    return ("noise",)


def _binary_tabular(exp, data) -> None:
    """The noise attack flips binary features: tabular data of 0s and 1s."""
    if len(data.input_shape) != 1:
        raise ConfigError("attacks", f"noise needs binary tabular data, {data.name} is "
                                     f"{data.kind} of shape {data.input_shape}")
    check_binary(data.x, "attacks")


def _boundary_models(exp) -> None:
    q = exp.queries
    check(q.boundary_models <= exp.shadows.n_models, "queries.boundary_models",
          f"asks for {q.boundary_models} shadow models but shadows.n_models trains "
          f"{exp.shadows.n_models}")


@register_attack("augmentation", labels_only=True, queries=_aug,
                 fields=("queries.augmentations", "queries.shift"))
def augmentation(inputs, cfg=None) -> list:
    """The augmentation attack on the "aug" queries (identity + augmentations)."""
    target_q, shadow_q = inputs.query("aug", "augmentation")
    fit = inputs.fit
    shadow = _correct(shadow_q, inputs.universe_labels).transpose(1, 0, 2)  # (q, m, u)
    scores, threshold = augmentation_attack(_correct(target_q, inputs.labels),
                                            shadow[:, :, fit], inputs.keep[:, fit])
    return [AttackOutput("augmentation", f"{len(target_q)}_queries", scores, threshold)]


@register_attack("noise", labels_only=True, queries=_noise, requires_data=_binary_tabular,
                 fields=("queries.flips", "queries.n_noise"))
def noise(inputs, cfg=None) -> list:
    """The random-flip noise attack on the "noise/<k>" queries, k chosen on shadows."""
    names = sorted((name for name in inputs.target_queries if name.startswith("noise/")),
                   key=lambda name: int(name.split("/")[1]))
    if not names:
        raise MissingSignal("noise needs the noisy queries ('noise/<k>'), which this trial lacks")
    fit = inputs.fit
    target = np.stack([_correct(inputs.query(k, "noise")[0], inputs.labels) for k in names])
    shadow = np.stack([_correct(inputs.query(k, "noise")[1], inputs.universe_labels)
                       .transpose(1, 0, 2)[:, :, fit] for k in names])  # (K, n_noise, m, u)
    scores, threshold, _ = noise_attack(target, shadow, inputs.keep[:, fit])
    return [AttackOutput("noise", "global", scores, threshold)]


@register_attack("boundary", labels_only=True, stages=("boundary",), requires=_boundary_models,
                 fields=("queries.boundary_queries", "queries.boundary_models",
                         "queries.boundary_chunk"))
def boundary(inputs, cfg=None) -> list:
    """The decision-boundary distance attack; threshold on the first shadow models."""
    if inputs.target_boundary is None or inputs.shadow_boundary is None:
        raise MissingSignal("boundary needs boundary distances, which this trial lacks")
    fit, b = inputs.fit, len(inputs.shadow_boundary)
    scores, threshold = boundary_attack(inputs.target_boundary, inputs.shadow_boundary[:, fit],
                                        inputs.keep[:b, fit])
    return [AttackOutput("boundary", "hsj", scores, threshold)]
