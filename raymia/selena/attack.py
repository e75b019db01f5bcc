"""The adaptive attack against SELENA (Tang et al. 2022, Section 6.3).

The attacker knows half of the target's members and trains its own Split-AI
on them (raymia.selena.attacker plans those jobs, the trial's "adaptive"
stage; it attacks any target, a SELENA one with the defense's K and L). For
each example it compares SELENA's output q with its shadow Split-AI's output s
(raymia.selena.mechanism.adaptive_features) and learns, from the known members
(label 1) against as many of its own non-members (label 0):
  ce, l2    one threshold on the cross-entropy / squared distance between s
            and q, its direction chosen on the training data
  nn_diff   a classifier on [s - q, onehot(y)]
  nn_both   a classifier on [q, s, onehot(y)]
(classifier: `reference.attack_model`). It is judged on the members it does
not know and on the audit non-members (`AttackOutput.evaluated`).
"""
from __future__ import annotations

import numpy as np

from raymia.attacks.base import AttackInputs, AttackOutput, MissingSignal
from raymia.attacks.learned import _fit_predict
from raymia.attacks.spec import register_attack
from raymia.attacks.thresholds import best_threshold
from raymia.errors import ConfigError, check
from raymia.selena.mechanism import adaptive_features, orient
from raymia.signals import log_probs

#: the adaptive attacker's Split-AI against a target without SELENA (the paper's)
DEFAULT_K, DEFAULT_L = 25, 10


def split_sizes(exp) -> tuple[int, int]:
    """(K, L) of the attacker's Split-AI: a SELENA target's own, else the defaults."""
    if exp.defense.name == "selena":
        return exp.defense.K, exp.defense.L
    return DEFAULT_K, DEFAULT_L


def _needs_own_nonmembers(exp) -> None:
    check(exp.split.n_validation > 0, "attacks",
          "selena_adaptive needs the attacker's own non-members: set split.n_validation > 0")
    (k, l_out), known = split_sizes(exp), exp.split.n_members // 2
    if known * (k - l_out) < k:
        raise ConfigError("attacks", f"selena_adaptive's Split-AI ({k} submodels, each "
                                     f"leaving out {l_out}) gets too few of the {known} "
                                     "members the attacker knows")


@register_attack("selena_adaptive", stages=("adaptive",), requires=_needs_own_nonmembers,
                 fields=("reference.attack_model",))
def selena_adaptive_attack(inputs: AttackInputs, cfg) -> list[AttackOutput]:
    return selena_adaptive(inputs, cfg.attack_model)


def selena_adaptive(inputs: AttackInputs, model: str = "mlp") -> list[AttackOutput]:
    extra = inputs.extra.get("selena_adaptive")
    if extra is None:
        raise MissingSignal("selena_adaptive needs the attacker's Split-AI (raymia.selena.attacker)")
    known = extra["known"]  # (n_audit,) bool
    audit = adaptive_features(np.exp(log_probs(inputs.target_logits)), extra["shadow_probs"],
                              inputs.labels)
    reference = adaptive_features(extra["reference_target_probs"],
                                  extra["reference_shadow_probs"], extra["reference_labels"])
    # as many of the attacker's non-members as it knows members (seeded choice)
    n = min(int(known.sum()), len(extra["reference_labels"]))
    gen = np.random.default_rng(extra["seed"])
    members = gen.permutation(np.flatnonzero(known))[:n]
    others = gen.permutation(len(extra["reference_labels"]))[:n]
    is_member = np.r_[np.ones(n, bool), np.zeros(n, bool)]

    def train(name):
        return np.concatenate([audit[name][members], reference[name][others]])

    outputs = []
    for name in ("ce", "l2"):
        sign = orient(train(name), is_member)
        outputs.append(AttackOutput("selena_adaptive", name, sign * audit[name],
                                    best_threshold(sign * train(name), is_member), ~known))
    for name in ("nn_diff", "nn_both"):
        scores = _fit_predict(model, train(name), is_member.astype(int), audit[name])
        outputs.append(AttackOutput("selena_adaptive", name, scores, 0.5, ~known))
    return outputs
