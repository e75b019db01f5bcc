"""`python -m raymia.summarize RESULTS_DIR [--sweep NAME] [--attacks A ...] [--by-attack | --eval-sets]`

Trials averaged over their seeds, one row per configuration:
  (default)     utility and the attacker's choice side by side: test
                accuracy, gap, ECE, epsilon; the attack the attacker picked on
                its shadow models (`choice`, per seed), its AUC and TPR at 1%
                FPR as the mean over seeds, their spread over seeds (`_sd`),
                the mean of the per-seed 95% intervals (`_lo`, `_hi`), the
                upper end of the null band of TPR at 1% FPR (no signal, same
                sizes), its advantage (TPR - FPR at its fitted threshold) and
                PPV at 1% FPR with their intervals, `chance`: the seeds whose
                AUC interval holds 1/2, and with canaries the choice's TPR at
                1% FPR on them (`canary_`)
  --by-attack   one row per configuration and attack variant: AUC and TPR at
                0.1% and 1% FPR with their intervals, balanced accuracy,
                advantage and PPV at 1% FPR with their intervals
  --eval-sets   one row per configuration, attack variant and evaluation set:
                precision, recall, FPR and MMPS at the fitted threshold
Nothing here is a maximum over attacks taken with the evaluation labels.
Printed, a figure and its interval share a column: `auc [lo, hi]`.
`--attacks` keeps those attacks' rows (the attacker's choice was made among
every attack the trial ran).
"""
from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from raymia.config import ConfigError
from raymia.data.canaries import CANARIES
from raymia.results import open_results


CANARY_FIGURES = ("tpr_at_fpr_0.01", "tpr_at_fpr_0.01_lo", "tpr_at_fpr_0.01_hi")
HEADLINE = ("advantage", "advantage_lo", "advantage_hi", "ppv_at_fpr_0.01",
            "ppv_at_fpr_0.01_lo", "ppv_at_fpr_0.01_hi")


def _trials(results_dir, sweep: str | None):
    tables = open_results(results_dir)
    trials, attacks = tables["trials"], tables["attacks"]
    if sweep:
        if sweep not in set(trials.sweep):
            raise ConfigError("--sweep", f"no trials of sweep {sweep!r} in {results_dir}; "
                                         f"sweeps there: {', '.join(sorted(set(trials.sweep)))}")
        trials = trials[trials.sweep == sweep]
    trials = trials[trials.status == "ok"]
    if trials.empty:
        raise ConfigError(str(results_dir), "no trial finished ok")
    config = trials.config_json.map(json.loads)
    trials = trials.assign(configuration=config.map(
        lambda c: json.dumps({k: v for k, v in c.items() if k != "seed"}, sort_keys=True)))
    leaves = [c for c in trials.columns if ("." in c or c == "attacks") and c != "config_json"]
    for c in leaves:  # list-valued fields (model.widths) as tuples: hashable and sortable
        trials[c] = trials[c].map(lambda v: tuple(v) if hasattr(v, "__len__")
                                  and not isinstance(v, str) else v)
    varying = [c for c in leaves if trials[c].map(repr).nunique() > 1]
    return trials, attacks, varying


def failed_note(results_dir, sweep: str | None = None) -> str | None:
    """A line saying how many trials failed (they are left out of the tables)."""
    trials = open_results(results_dir, need=("trials",))["trials"]
    if sweep:
        trials = trials[trials.sweep == sweep]
    failed = trials[trials.status != "ok"]
    if failed.empty:
        return None
    return (f"{len(failed)} failed trial(s) left out: " + "; ".join(
        f"{tid} ({err})" for tid, err in zip(failed.trial_id[:3], failed.error[:3]))
        + (" ..." if len(failed) > 3 else ""))


def _average(rows: pd.DataFrame, keys: list[str], varying: list[str], metrics: list[str]):
    grouped = rows.groupby(["configuration", *keys], sort=False, dropna=False)
    out = grouped[varying].first().join(grouped[metrics].mean()).join(
        grouped.size().rename("seeds"))
    out = out.reset_index().sort_values([*varying, *keys], na_position="first")
    out = out.reset_index(drop=True).dropna(axis=1, how="all")
    return out[[c for c in [*varying, *keys, *metrics, "seeds", "configuration"]
                if c in out.columns]]


def summarize(results_dir, sweep: str | None = None, attacks: list[str] | None = None,
              view: str = "configurations") -> pd.DataFrame:
    trials, table, varying = _trials(results_dir, sweep)
    if attacks:
        unknown = sorted(set(attacks) - set(table.attack))
        if unknown:
            raise ConfigError("--attacks", f"no rows of {', '.join(unknown)} in {results_dir}; "
                                           f"attacks there: {', '.join(sorted(set(table.attack)))}")
        table = table[table.attack.isin(attacks)]
    if view == "eval_sets":
        rows = trials[["trial_id", "configuration", *varying]].merge(table, on="trial_id")
        return _average(rows, ["attack", "variant", "eval_set"], varying,
                        ["auc", "acc", "precision", "recall", "fpr", "mmps_tp", "mmps_fp"]
                        ).drop(columns="configuration")
    canaries = table[(table.eval_set == CANARIES) & (table.attack == "attacker_choice")]
    table = table[table.eval_set == "original"]
    if view == "attacks":
        rows = trials[["trial_id", "configuration", *varying]].merge(table, on="trial_id")
        return _average(rows, ["attack", "variant"], varying,
                        ["auc", "auc_lo", "auc_hi", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01",
                         "tpr_at_fpr_0.01_lo", "tpr_at_fpr_0.01_hi", "acc", "null_auc_hi",
                         *[c for c in HEADLINE if c in rows]]
                        ).drop(columns="configuration")
    chosen = table[table.attack == "attacker_choice"].set_index("trial_id")
    figures = ["auc", "auc_lo", "auc_hi", "tpr_at_fpr_0.01", "tpr_at_fpr_0.01_lo",
               "tpr_at_fpr_0.01_hi", "null_tpr_at_fpr_0.01_hi",
               *[c for c in HEADLINE if c in chosen]]  # parts before them lack the columns
    rows = trials.join(chosen[["variant", *figures]].rename(columns={"variant": "choice"}),
                       on="trial_id")
    canary = [f"canary_{f}" for f in CANARY_FIGURES]
    if len(canaries):
        rows = rows.join(canaries.set_index("trial_id")[list(CANARY_FIGURES)].rename(
            columns=dict(zip(CANARY_FIGURES, canary))), on="trial_id")
    rows["chance"] = (rows.auc_lo <= 0.5) & (0.5 <= rows.auc_hi)
    grouped = rows.groupby("configuration", sort=False)
    out = _average(rows, [], varying, ["test_acc", "gap", "ece", "epsilon", *figures,
                                       *[c for c in canary if c in rows]])
    extra = pd.DataFrame({
        "choice": grouped.choice.agg(lambda c: ",".join(sorted(set(c.dropna())))),
        "auc_sd": grouped.auc.std(), "tpr_at_fpr_0.01_sd": grouped["tpr_at_fpr_0.01"].std(),
        "chance": grouped.chance.agg(lambda c: f"{int(c.sum())}/{len(c)}")})
    out = out.join(extra, on="configuration")
    columns = [*varying, "test_acc", "gap", "ece", "epsilon", "choice", "auc", "auc_sd",
               "auc_lo", "auc_hi", "tpr_at_fpr_0.01", "tpr_at_fpr_0.01_sd",
               "tpr_at_fpr_0.01_lo", "tpr_at_fpr_0.01_hi", "null_tpr_at_fpr_0.01_hi",
               *HEADLINE, "chance", *canary, "seeds"]
    return out[[c for c in columns if c in out.columns]]


def compact(table: pd.DataFrame) -> pd.DataFrame:
    """For printing: each figure with `_lo` and `_hi` beside it in one text
    column `<figure> [lo, hi]` ("0.678 [0.615, 0.735]"), other floats to 3 places."""
    out = table.copy()

    def text(v) -> str:
        return "n/a" if pd.isna(v) else f"{v:.3f}"
    for col in [c for c in table.columns if {f"{c}_lo", f"{c}_hi"} <= set(table.columns)]:
        cells = [text(v) if pd.isna(lo) or pd.isna(hi) else f"{text(v)} [{lo:.3f}, {hi:.3f}]"
                 for v, lo, hi in zip(table[col], table[f"{col}_lo"], table[f"{col}_hi"])]
        out.insert(out.columns.get_loc(col), f"{col} [lo, hi]", cells)
        out = out.drop(columns=[col, f"{col}_lo", f"{col}_hi"])
    return out


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
    try:
        table = summarize(args.results_dir, args.sweep, args.attacks,
                          args.view or "configurations")
        note = failed_note(args.results_dir, args.sweep)
    except ConfigError as e:
        print(f"raymia: error: {e}", file=sys.stderr)
        return 2
    print(compact(table).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if note:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
