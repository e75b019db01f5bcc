"""`python -m raymia.summarize RESULTS_DIR [--sweep NAME] [--attacks A ...] [--eval-sets]`

Trials averaged over their seeds, one row per configuration:
  (default)     utility and privacy side by side: test accuracy, gap, ECE,
                epsilon, the loss attack's AUC and balanced accuracy, and the
                best attack's AUC, balanced accuracy and TPR at 1% FPR (on the
                original evaluation set; `--attacks` limits "best" to those)
  --by-attack   one row per configuration and attack variant: AUC, TPR at
                0.1% and 1% FPR, balanced accuracy
  --eval-sets   one row per configuration, attack variant and evaluation set:
                precision, recall, FPR and MMPS at the fitted threshold
"""
from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from raymia.results import read_results


def _trials(results_dir, sweep: str | None):
    tables = read_results(results_dir)
    trials, attacks = tables["trials"], tables["attacks"]
    trials = trials[trials.status == "ok"]
    if sweep:
        trials = trials[trials.sweep == sweep]
    config = trials.config_json.map(json.loads)
    trials = trials.assign(configuration=config.map(
        lambda c: json.dumps({k: v for k, v in c.items() if k != "seed"}, sort_keys=True)))
    leaves = [c for c in trials.columns if "." in c and c != "config_json"]
    varying = [c for c in leaves if trials[c].map(repr).nunique() > 1]
    return trials, attacks, varying


def _average(rows: pd.DataFrame, keys: list[str], varying: list[str], metrics: list[str]):
    grouped = rows.groupby(["configuration", *keys], sort=False, dropna=False)
    out = grouped[varying].first().join(grouped[metrics].mean()).join(
        grouped.size().rename("seeds"))
    out = out.reset_index(level=keys).sort_values([*varying, *keys], na_position="first")
    out = out.reset_index(drop=True).dropna(axis=1, how="all")
    return out[[c for c in [*varying, *keys, *metrics, "seeds"] if c in out.columns]]


def summarize(results_dir, sweep: str | None = None, attacks: list[str] | None = None,
              view: str = "configurations") -> pd.DataFrame:
    trials, table, varying = _trials(results_dir, sweep)
    if attacks:
        table = table[table.attack.isin(attacks)]
    if view == "eval_sets":
        rows = trials[["trial_id", "configuration", *varying]].merge(table, on="trial_id")
        return _average(rows, ["attack", "variant", "eval_set"], varying,
                        ["auc", "acc", "precision", "recall", "fpr", "mmps_tp", "mmps_fp"])
    table = table[table.eval_set == "original"]
    if view == "attacks":
        rows = trials[["trial_id", "configuration", *varying]].merge(table, on="trial_id")
        return _average(rows, ["attack", "variant"], varying,
                        ["auc", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01", "acc"])
    per_trial = table.groupby("trial_id").agg(best_auc=("auc", "max"), best_acc=("acc", "max"),
                                              best_tpr_at_1pct_fpr=("tpr_at_fpr_0.01", "max"))
    loss = table.query("attack == 'loss' and variant == 'global'").set_index("trial_id")
    per_trial["loss_auc"], per_trial["loss_acc"] = loss["auc"], loss["acc"]
    rows = trials.join(per_trial, on="trial_id")
    return _average(rows, [], varying, ["test_acc", "gap", "ece", "epsilon", "loss_auc",
                                        "loss_acc", "best_auc", "best_acc",
                                        "best_tpr_at_1pct_fpr"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m raymia.summarize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results_dir")
    p.add_argument("--sweep", help="only this sweep's trials")
    p.add_argument("--attacks", nargs="+", help="only these attacks")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--by-attack", action="store_const", dest="view", const="attacks")
    group.add_argument("--eval-sets", action="store_const", dest="view", const="eval_sets")
    args = p.parse_args(argv)
    table = summarize(args.results_dir, args.sweep, args.attacks, args.view or "configurations")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
