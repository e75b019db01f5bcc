"""LiRA, the likelihood ratio attack (Carlini et al., S&P 2022).

The statistic is the logit-scaled confidence phi = log p_y - log(1 - p_y)
(raymia.signals.phi). For each audit example, Gaussians are fitted to phi
under the shadow models that trained on it (IN) and those that did not (OUT):
  online:  log N(phi; mu_in, s_in) - log N(phi; mu_out, s_out)
  offline: log Pr[Z <= phi], Z ~ N(mu_out, s_out)   (one-sided, OUT models only;
           an example no reference model left out takes the mean and spread
           pooled over the other examples' OUT models, never an IN model's:
           `n_no_out_reference` counts them)
Each with a per-example variance or one global variance ("fixed variance"
in the paper, for few shadow models). Higher = member.
"""
from __future__ import annotations

from functools import partial

import numpy as np
from scipy.stats import norm

from raymia.attacks.base import AttackInputs, AttackOutput
from raymia.attacks.reference import fitted_threshold, masked_mean_std, no_out_reference
from raymia.attacks.spec import register_attack
from raymia.errors import check
from raymia.signals import phi


def lira_online(target: np.ndarray, refs: np.ndarray, keep: np.ndarray,
                per_example: bool = True, pool: np.ndarray | None = None) -> np.ndarray:
    """target (n,), refs (m, n) phi of reference models, keep (m, n) -> scores (n,);
    pooled statistics (global variance, fallbacks) from the `pool` (n,) columns."""
    mu_in, s_in = masked_mean_std(refs, keep, per_example, pool)
    mu_out, s_out = masked_mean_std(refs, ~keep, per_example, pool)
    return norm.logpdf(target, mu_in, s_in) - norm.logpdf(target, mu_out, s_out)


def lira_offline(target: np.ndarray, refs: np.ndarray, keep: np.ndarray,
                 per_example: bool = True, pool: np.ndarray | None = None) -> np.ndarray:
    mu_out, s_out = masked_mean_std(refs, ~keep, per_example, pool)
    return norm.logcdf(target, mu_out, s_out)


VARIANTS = {
    "online": partial(lira_online, per_example=True),
    "online_global_var": partial(lira_online, per_example=False),
    "offline": partial(lira_offline, per_example=True),
    "offline_global_var": partial(lira_offline, per_example=False),
}


def _columns(inputs: AttackInputs):
    """(columns, pool): the audit columns, then the in-distribution audit columns
    that are not among them; pool marks the latter set (where thresholds and
    pooled variances are fitted: the same as the audit set unless it holds
    out-of-distribution examples)."""
    n, refs = len(inputs.labels), inputs.references
    columns = np.r_[np.arange(n), np.setdiff1d(refs, np.arange(n))]
    return columns, np.isin(columns, refs)


def _augmented_queries(exp, data_kind: str) -> tuple[str, ...]:
    """LiRA asks for augmented queries of images (its `_aug` variants)."""
    return ("aug",) if data_kind == "image" and exp.queries.augmentations else ()


#: fewest reference models LiRA runs with: 2 IN and 2 OUT per example for its Gaussians
MIN_REFERENCES = 4


def _enough_references(exp) -> None:
    n = exp.reference.n_models or exp.shadows.n_models
    check(n >= MIN_REFERENCES, "attacks",
          f"lira needs >= {MIN_REFERENCES} reference models (2 IN and 2 OUT per example for "
          f"its Gaussians), got {n}: raise shadows.n_models (Carlini et al. use 64 or more) "
          "or use rmia, made for few")


@register_attack("lira", queries=_augmented_queries, replayable=True, requires=_enough_references,
                 fields=("reference.n_models", "queries.augmentations", "queries.shift"))
def lira_attack(inputs: AttackInputs, cfg) -> list[AttackOutput]:
    return lira(inputs, cfg.n_models)


def lira(inputs: AttackInputs, n_reference: int | None = None) -> list[AttackOutput]:
    """Every LiRA variant on the audit set, with the first `n_reference` shadow
    models (all by default); thresholds fitted leave-one-out on the shadows."""
    n, models = len(inputs.labels), slice(0, n_reference)
    columns, pool = _columns(inputs)
    labels = inputs.universe_labels[columns]
    labels[:n] = inputs.labels
    refs = phi(inputs.shadow_logits[models][:, columns], labels)  # (m, n + extra)
    keep = inputs.keep[models][:, columns]
    target = np.r_[phi(inputs.target_logits, inputs.labels), np.zeros(len(columns) - n)]
    no_out = no_out_reference(keep[:, :n])
    outputs = [AttackOutput("lira", name, fn(target, refs, keep, pool=pool)[:n],
                            fitted_threshold(lambda t, r, k, _, fn=fn: fn(t, r, k),
                                             refs[:, pool], keep[:, pool]),
                            n_no_out_reference=no_out if name.startswith("offline") else None)
               for name, fn in VARIANTS.items()]
    if "aug" in inputs.target_queries:
        outputs += lira_augmented(inputs, n_reference)
    return outputs


def _averaged(fn, n_queries: int, pool: np.ndarray | None = None):
    """A LiRA score over q augmented queries: the per-query log-likelihood ratio
    averaged (Carlini et al.'s augmented LiRA). Statistics come flattened as
    (..., n * q), example-major, so the leave-one-out fit can slice rows."""
    def score(target, refs, keep):
        n = keep.shape[-1]
        t = target.reshape(n, n_queries).T  # (q, n)
        r = refs.reshape(len(refs), n, n_queries).transpose(2, 0, 1)  # (q, m, n)
        return np.mean([fn(t[i], r[i], keep, pool=pool) for i in range(n_queries)], axis=0)
    return score


def lira_augmented(inputs: AttackInputs, n_reference: int | None = None) -> list[AttackOutput]:
    """Online and offline LiRA (per-example variance) on the "aug" queries."""
    n, models = len(inputs.labels), slice(0, n_reference)
    target_q, shadow_q = inputs.query("aug", "lira")
    q = target_q.shape[0]
    columns, pool = _columns(inputs)
    labels = inputs.universe_labels[columns]
    labels[:n] = inputs.labels
    extra = len(columns) - n
    target = np.concatenate([phi(target_q, inputs.labels).T, np.zeros((extra, q))]).ravel()
    refs = phi(shadow_q[models][:, :, columns], labels)  # (m, q, n + extra)
    refs = refs.transpose(0, 2, 1).reshape(len(refs), len(columns) * q)  # example-major
    keep = inputs.keep[models][:, columns]
    fit_q = np.repeat(pool, q)
    outputs = []
    for name in ("online", "offline"):
        threshold = fitted_threshold(
            lambda t, r, k, _, name=name: _averaged(VARIANTS[name], q)(t, r, k),
            refs[:, fit_q], keep[:, pool])
        scores = _averaged(VARIANTS[name], q, pool)(target, refs, keep)[:n]
        outputs.append(AttackOutput("lira", f"{name}_aug{q}", scores, threshold,
                                    n_no_out_reference=no_out_reference(keep[:, :n])
                                    if name == "offline" else None))
    return outputs
