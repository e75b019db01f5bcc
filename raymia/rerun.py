"""Rerun the reference-model attacks from stored signals, without retraining:

    python -m raymia.rerun RESULTS_DIR [--n-reference 1 2 16] [--gamma 1.0]

For each trial with a `signals` table it rebuilds the attack inputs from the
target's and the shadow models' stored p_y, phi and in_train, and prints the
replayable attacks' (AttackSpec.replayable: LiRA's and RMIA's) AUC and TPR
at 1% FPR, each with its 95% bootstrap interval (`_lo`, `_hi`), with the
first N shadow models as references (`n_no_out_reference`: for the offline
variants, the audit examples none of those models left out, scored from
pooled OUT statistics), on the population (`eval_set` original) and on the
canaries where the trial has them. LiRA and RMIA see the logits only through p_y (phi
is a function of it), so the two-class logits (phi, 0) with true class 0, whose p_0 is
sigmoid(phi) = p_y, reproduce them from the stored signals. The signals
hold the plain queries only: LiRA's augmented variants are not rerun.
"""
from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np
import pandas as pd

from raymia.attacks import AttackInputs, MissingSignal
from raymia.attacks.lira import MIN_REFERENCES
from raymia.audit import ORIGINAL
from raymia.data.canaries import CANARIES
from raymia.config import ConfigError, ReferenceConfig
from raymia.intervals import bootstrap_intervals
from raymia.metrics import attack_metrics
from raymia.registry import ATTACKS
from raymia.seeding import rng
from raymia.results import open_results


def _logits(phi: np.ndarray) -> np.ndarray:
    return np.stack([phi, np.zeros_like(phi)], axis=-1).astype(np.float64)  # (..., 2)


def inputs_from_signals(signals: pd.DataFrame, audit_ids: np.ndarray):
    """(AttackInputs, is_member) of one trial from its signals rows; `audit_ids`
    are its audit sample ids (the `scores` table's), the rest of the universe
    is the shadow pool."""
    target = signals[signals.role == "target"].set_index("sample_id")
    pool_ids = target.index[~target.index.isin(audit_ids)].to_numpy(np.int64)
    universe = np.concatenate([audit_ids, pool_ids])
    shadows = signals[signals.role == "shadow"].pivot(index="model_index", columns="sample_id")
    phi_shadow = shadows["phi"][universe].to_numpy(np.float64)  # (m, n_universe)
    keep = shadows["in_train"][universe].to_numpy(bool)
    phi_target = target.loc[universe, "phi"].to_numpy(np.float64)
    n = len(audit_ids)
    zeros = np.zeros(len(universe), np.int64)
    inputs = AttackInputs(_logits(phi_target[:n]), zeros[:n], _logits(phi_shadow), zeros, keep,
                          _logits(phi_target[n:]))
    return inputs, target.loc[audit_ids, "in_train"].to_numpy(bool)


def rerun(results_dir, n_reference=(None,), gamma: float = 1.0,
          n_resamples: int = 1000) -> pd.DataFrame:
    """ConfigError for a directory without signals, a gamma <= 0, or a number of
    reference models a trial does not have (1 to its shadow models)."""
    if not gamma > 0:
        raise ConfigError("--gamma", f"must be > 0, got {gamma}")
    tables = open_results(results_dir, need=("trials", "scores", "signals"))
    signals, scores = tables["signals"], tables["scores"]
    n_models = signals[signals.role == "shadow"].groupby("trial_id").model_index.nunique()
    for n in n_reference:
        if n is not None and not 1 <= n <= n_models.min():
            raise ConfigError("--n-reference", f"must be between 1 and the {n_models.min()} "
                                               f"shadow models the trials trained, got {n}")
    rows = []
    for trial_id, trial_signals in signals.groupby("trial_id"):
        trial_scores = scores[scores.trial_id == trial_id]
        first = trial_scores[["attack", "variant"]].iloc[0]
        rows_of = trial_scores[(trial_scores.attack == first.attack)
                               & (trial_scores.variant == first.variant)]
        sets = {name: rows_of[rows_of.eval_set == name].sample_id.to_numpy()
                for name in (ORIGINAL, CANARIES)}  # the audit set: population, canaries
        audit = np.concatenate(list(sets.values()))
        inputs, is_member = inputs_from_signals(trial_signals, audit)
        split = len(sets[ORIGINAL])
        subsets = [(ORIGINAL, slice(0, split))] + ([(CANARIES, slice(split, None))]
                                                   if len(sets[CANARIES]) else [])
        for n in n_reference:
            cfg = ReferenceConfig(n_models=n, rmia_gamma=gamma)
            outputs = []
            for spec in ATTACKS.values():
                if spec.replayable:
                    try:
                        outputs += spec.run(inputs, cfg)
                    except MissingSignal:  # rmia without a shadow pool
                        pass
            for out, (eval_set, part) in itertools.product(outputs, subsets):
                stored = out.scores[part].astype(np.float32)  # as the scores table holds them
                member = is_member[part]
                m = attack_metrics(stored, member, out.predicted[part], np.zeros(len(member)))
                role = f"rerun/{trial_id}/{n}/{out.attack}/{out.variant}"
                role += "" if eval_set == ORIGINAL else f"/{eval_set}"
                ci = bootstrap_intervals(stored, member, out.threshold, n_resamples, 0.95,
                                         rng(0, role))
                rows.append({"trial_id": trial_id, "eval_set": eval_set,
                             "n_reference": n or len(inputs.keep),
                             "attack": out.attack, "variant": out.variant, "auc": m["auc"],
                             "auc_lo": ci["auc_lo"], "auc_hi": ci["auc_hi"],
                             "tpr_at_fpr_0.01": m["tpr_at_fpr_0.01"],
                             "tpr_at_fpr_0.01_lo": ci["tpr_at_fpr_0.01_lo"],
                             "tpr_at_fpr_0.01_hi": ci["tpr_at_fpr_0.01_hi"], "acc": m["acc"],
                             "n_no_out_reference": out.n_no_out_reference})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m raymia.rerun", description=__doc__.split("\n\n")[0])
    p.add_argument("results_dir")
    p.add_argument("--n-reference", type=int, nargs="+", help="reference models to use (default: all)")
    p.add_argument("--gamma", type=float, default=1.0, help="RMIA's gamma")
    args = p.parse_args(argv)
    try:
        table = rerun(args.results_dir, tuple(args.n_reference or (None,)), args.gamma)
    except ConfigError as e:
        print(f"raymia: error: {e}", file=sys.stderr)
        return 2
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if (table.attack == "lira").any() and (table.n_reference < MIN_REFERENCES).any():
        print(f"note: LiRA with fewer than {MIN_REFERENCES} reference models leaves examples "
              "with fewer than 2 IN or 2 OUT models, scored with pooled Gaussians (a sweep "
              "refuses it); read those rows as a study of few references")
    return 0


if __name__ == "__main__":
    sys.exit(main())
