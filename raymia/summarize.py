"""`python -m raymia.summarize RESULTS_DIR [--sweep NAME]`: one row per
configuration (trials averaged over their seeds) with utility and privacy
side by side: test accuracy, gap, ECE, epsilon, the loss attack's AUC and
balanced accuracy, and the best attack's AUC and TPR at 1% FPR."""
from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from raymia.results import read_results


def summarize(results_dir, sweep: str | None = None) -> pd.DataFrame:
    tables = read_results(results_dir)
    trials, attacks = tables["trials"], tables["attacks"]
    trials = trials[trials.status == "ok"]
    if sweep:
        trials = trials[trials.sweep == sweep]
    config = trials.config_json.map(json.loads)
    trials = trials.assign(configuration=config.map(
        lambda c: json.dumps({k: v for k, v in c.items() if k != "seed"}, sort_keys=True)))
    leaves = [c for c in trials.columns if "." in c and c != "config_json"]
    varying = [c for c in leaves if trials[c].astype(str).nunique() > 1]
    per_trial = attacks.groupby("trial_id").agg(best_auc=("auc", "max"),
                                                best_tpr_at_1pct_fpr=("tpr_at_fpr_0.01", "max"))
    loss = attacks.query("attack == 'loss' and variant == 'global'").set_index("trial_id")
    per_trial["loss_auc"], per_trial["loss_acc"] = loss["auc"], loss["acc"]
    rows = trials.join(per_trial, on="trial_id")
    metrics = ["test_acc", "gap", "ece", "epsilon", "loss_auc", "loss_acc", "best_auc",
               "best_tpr_at_1pct_fpr"]
    grouped = rows.groupby("configuration", sort=False)
    out = grouped[varying].first().join(grouped[metrics].mean()).join(
        grouped.size().rename("seeds"))
    out = out.sort_values(varying, na_position="first") if varying else out
    return out.reset_index(drop=True).dropna(axis=1, how="all")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m raymia.summarize", description=__doc__)
    p.add_argument("results_dir")
    p.add_argument("--sweep", help="only this sweep's trials")
    args = p.parse_args(argv)
    table = summarize(args.results_dir, args.sweep)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
