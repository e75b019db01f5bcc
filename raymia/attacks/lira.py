"""LiRA, the likelihood ratio attack (Carlini et al., S&P 2022).

The statistic is the logit-scaled confidence phi = log p_y - log(1 - p_y)
(raymia.signals.phi). For each audit example, Gaussians are fitted to phi
under the shadow models that trained on it (IN) and those that did not (OUT):
  online:  log N(phi; mu_in, s_in) - log N(phi; mu_out, s_out)
  offline: log Pr[Z <= phi], Z ~ N(mu_out, s_out)   (one-sided, OUT models only)
Each with a per-example variance or one global variance ("fixed variance"
in the paper, for few shadow models). Higher = member.
"""
from __future__ import annotations

from functools import partial

import numpy as np
from scipy.stats import norm

from raymia.attacks.base import AttackInputs, AttackOutput
from raymia.attacks.reference import fitted_threshold, masked_mean_std
from raymia.signals import phi


def lira_online(target: np.ndarray, refs: np.ndarray, keep: np.ndarray,
                per_example: bool = True) -> np.ndarray:
    """target (n,), refs (m, n) phi of reference models, keep (m, n) -> scores (n,)."""
    mu_in, s_in = masked_mean_std(refs, keep, per_example)
    mu_out, s_out = masked_mean_std(refs, ~keep, per_example)
    return norm.logpdf(target, mu_in, s_in) - norm.logpdf(target, mu_out, s_out)


def lira_offline(target: np.ndarray, refs: np.ndarray, keep: np.ndarray,
                 per_example: bool = True) -> np.ndarray:
    mu_out, s_out = masked_mean_std(refs, ~keep, per_example)
    return norm.logcdf(target, mu_out, s_out)


VARIANTS = {
    "online": partial(lira_online, per_example=True),
    "online_global_var": partial(lira_online, per_example=False),
    "offline": partial(lira_offline, per_example=True),
    "offline_global_var": partial(lira_offline, per_example=False),
}


def lira(inputs: AttackInputs, n_reference: int | None = None) -> list[AttackOutput]:
    """Every LiRA variant on the audit set, with the first `n_reference` shadow
    models (all by default); thresholds fitted leave-one-out on the shadows."""
    n = len(inputs.labels)
    models = slice(0, n_reference)
    refs = phi(inputs.shadow_logits[models, :n], inputs.labels)  # (m, n)
    keep = inputs.keep[models, :n]
    target = phi(inputs.target_logits, inputs.labels)  # (n,)
    return [AttackOutput("lira", name, fn(target, refs, keep),
                         fitted_threshold(lambda t, r, k, _, fn=fn: fn(t, r, k), refs, keep))
            for name, fn in VARIANTS.items()]
