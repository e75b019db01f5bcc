"""The attacker's choice: which attack to trust, picked without the target's membership.

A "best attack" taken as the maximum over attacks on the evaluation labels is
an oracle: with no signal at all the best of ten variants prints AUC ~0.55.
The attacker instead rehearses on its own shadow models. In round k, shadow
model k plays the target on the audit columns (its membership: keep[k]) and
the other shadow models are its shadows; every attack runs as it would on the
target, and is judged on shadow k's known membership. The attacker picks the
(attack, variant) with the highest mean TPR at 1% FPR over the rounds, ties
broken by mean AUC, and deploys that one on the target (`attacker_choice`).

Rounds use the first `evaluation.choice_rounds` shadow models. An attack
whose signals exist for the real target only (the adaptive attacker's
Split-AI, or boundary distances beyond the shadow models that measured them)
raises MissingSignal and is scored on the rounds it can run in; one that can
run in none is not a candidate. When no attack is (an experiment of the
adaptive attack alone), the first variant of the first attack the experiment
names stands as the choice, with `rehearsal_rounds` 0.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from raymia.attacks import ATTACKS
from raymia.attacks.base import AttackInputs, MissingSignal
from raymia.intervals import weighted_figures

CRITERION = "tpr_at_fpr_0.01"  # then "auc" to break ties


def as_target(inputs: AttackInputs, k: int) -> tuple[AttackInputs, np.ndarray]:
    """Shadow k as the target on the audit columns, the other shadows as its
    shadows: (inputs, is_member (n_audit,))."""
    n = len(inputs.labels)
    others = np.arange(len(inputs.keep)) != k
    logits = inputs.shadow_logits[k]  # (n_universe, C)
    target_boundary = shadow_boundary = None
    if inputs.shadow_boundary is not None and k < len(inputs.shadow_boundary) > 1:
        target_boundary = inputs.shadow_boundary[k][:n]
        shadow_boundary = np.delete(inputs.shadow_boundary, k, axis=0)
    population = None if inputs.target_population_logits is None else logits[n:]
    round_inputs = dataclasses.replace(
        inputs, target_logits=logits[:n], shadow_logits=inputs.shadow_logits[others],
        keep=inputs.keep[others], target_population_logits=population,
        target_queries={name: q[k][:, :n] for name, q in inputs.shadow_queries.items()},
        shadow_queries={name: q[others] for name, q in inputs.shadow_queries.items()},
        target_boundary=target_boundary, shadow_boundary=shadow_boundary, extra={})
    return round_inputs, inputs.keep[k, :n].copy()


def rehearse(names, inputs: AttackInputs, cfg, rounds: int) -> dict[tuple[str, str], dict]:
    """{(attack, variant): {"auc", "tpr_at_fpr_0.01", "rounds"}}: means over the
    leave-one-out rounds each variant ran in."""
    figures: dict[tuple[str, str], list] = {}
    for k in range(min(rounds, len(inputs.keep))):
        round_inputs, is_member = as_target(inputs, k)
        for name in names:
            try:
                outputs = ATTACKS[name].run(round_inputs, cfg)
            except MissingSignal:
                continue
            for out in outputs:
                on = np.ones(len(is_member), bool) if out.evaluated is None else out.evaluated
                member, scores = is_member[on], out.scores[on].astype(np.float32)
                if member.all() or not member.any():
                    continue
                # scikit-learn's roc_curve figures, computed at once (raymia.intervals)
                got = weighted_figures(scores.astype(np.float64), member[None] * 1.0,
                                       ~member[None] * 1.0, out.threshold)
                figures.setdefault((out.attack, out.variant), []).append(
                    (float(got[CRITERION][0]), float(got["auc"][0])))
    return {key: {CRITERION: float(np.mean([f[0] for f in v])),
                  "auc": float(np.mean([f[1] for f in v])), "rounds": len(v)}
            for key, v in figures.items()}


def choose(rehearsal: dict[tuple[str, str], dict]) -> tuple[str, str] | None:
    """The (attack, variant) with the highest rehearsed TPR at 1% FPR, then AUC;
    None when no attack could be rehearsed."""
    if not rehearsal:
        return None
    return max(rehearsal, key=lambda key: (rehearsal[key][CRITERION], rehearsal[key]["auc"]))
