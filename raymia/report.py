"""`python -m raymia.report RESULTS_DIR [--out DIR] [--trials ID ...]`

Writes a self-contained report of a results directory: `report.html` and
its figures as PNG and SVG beside it (default: RESULTS_DIR/report), opening
from the file system with nothing fetched from the network, and prints its
path. The figures draw what `raymia.analysis` computes from the tables:
  ROC curves      log-log, one panel per trial, every attack a line, the
                  attacker's choice boldest, legend with AUC and TPR@1% [95% CI]
  trade-off       per defense family, test accuracy against the attacker's
                  choice's TPR@1%FPR and AUC, with whiskers and the null band;
                  the same TPR on the canaries where the trials have them
  against DP-SGD  each defense beside the DP-SGD trial of about its test
                  accuracy (the utility-matched baseline) and which leaks less
  DP audit        configured epsilon against the empirical lower bound
  OOD             false-positive rate per evaluation set, and the target's
                  maximum prediction score by outcome (TP/FP/TN/FN)
  cost            seconds per stage, models trained and cached, nodes
and tables: every trial; the attacker's choice's AUC per slice of the audit
set (true class, correctly classified, confidence quartile: raymia.slices);
the members most exposed to it (raymia.risk.most_exposed). A part a
directory lacks is said in words.
`--trials` keeps those trials (ids or unique prefixes).
"""
from __future__ import annotations

import argparse
import html
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from raymia import analysis  # noqa: E402
from raymia.config import ConfigError  # noqa: E402
from raymia.data.canaries import CANARIES  # noqa: E402
from raymia.results import open_results, read_table  # noqa: E402
from raymia.risk import most_exposed  # noqa: E402

MAX_ROC_PANELS = 16
MAX_SLICE_TRIALS = 8  # columns of the slices table
MAX_EXPOSED_TRIALS = 4  # trials whose most exposed members are listed
N_EXPOSED = 10
OUTCOMES = ("tp", "fp", "tn", "fn")


def _ci(v, lo, hi) -> str:
    return "n/a" if pd.isna(v) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def _labeller(trials: pd.DataFrame):
    """A trial's panel title: its id's start, the fields that vary, its seed."""
    varying = analysis.varying_fields(trials)

    def label(trial: pd.Series) -> str:
        values = [analysis.setting(c, trial[c]) for c in varying if analysis.present(trial[c])]
        return f"{trial.trial_id[:8]}: {', '.join(values) or analysis.family(trial)}, " \
               f"seed {trial.seed}"
    return label


class Report:
    """Figures and sections written into `out`, in order."""

    def __init__(self, out: Path):
        self.out, self.sections = out, []

    def figure(self, fig, name: str, caption: str) -> None:
        for ext in ("png", "svg"):
            fig.savefig(self.out / f"{name}.{ext}", dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.sections.append(f'<figure><img src="{name}.svg" alt="{html.escape(caption)}">'
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def heading(self, text: str) -> None:
        self.sections.append(f"<h2>{html.escape(text)}</h2>")

    def words(self, text: str) -> None:
        self.sections.append(f"<p>{html.escape(text)}</p>")

    def table(self, frame: pd.DataFrame) -> None:
        self.sections.append(frame.to_html(index=False, na_rep="", float_format="{:.3f}".format,
                                           classes="t", border=0))

    def write(self, title: str) -> Path:
        style = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
                 "table.t{border-collapse:collapse;font-size:12px}"
                 "table.t td,table.t th{padding:2px 6px;border-bottom:1px solid #ddd}"
                 "figure{margin:1em 0}img{max-width:100%}figcaption{color:#555}")
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
                f"</title><style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
                + "\n".join(self.sections) + "</body></html>")
        path = self.out / "report.html"
        path.write_text(page)
        return path


def roc_section(rep: Report, trials, attacks, scores) -> None:
    rep.heading("ROC curves (log-log)")
    if attacks is None or scores is None:
        rep.words("No attacks or scores table in this directory: no ROC curves.")
        return
    order = analysis.trial_table(trials, None).trial_id
    ok = trials.set_index("trial_id").loc[order].reset_index()
    ok = ok[ok.status == "ok"]
    if ok.empty:
        rep.words("No trial finished: no ROC curves.")
        return
    if len(ok) > MAX_ROC_PANELS:
        rep.words(f"The first {MAX_ROC_PANELS} of {len(ok)} finished trials "
                  "(choose others with --trials).")
        ok = ok.iloc[:MAX_ROC_PANELS]
    label = _labeller(trials)
    cols = min(len(ok), 3)
    rows = -(-len(ok) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 7.4 * rows), squeeze=False,
                             layout="constrained")
    for ax, (_, trial) in zip(axes.flat, ok.iterrows()):
        curves = analysis.roc_curves(scores, attacks, trial.trial_id)
        floor = 1 / max(max((c["n_nonmembers"] for c in curves), default=1), 1)
        for c in sorted(curves, key=lambda c: c["chosen"]):
            legend = (f"{c['label']}{' (choice)' if c['chosen'] else ''}: AUC "
                      f"{_ci(c['auc'], c['auc_lo'], c['auc_hi'])}, TPR@1% "
                      f"{_ci(c['tpr1'], c['tpr1_lo'], c['tpr1_hi'])}")
            ax.plot(np.maximum(c["fpr"], floor), np.maximum(c["tpr"], floor), label=legend,
                    lw=2.8 if c["chosen"] else 1.0, alpha=1.0 if c["chosen"] else 0.75,
                    color="black" if c["chosen"] else None, zorder=3 if c["chosen"] else 2)
        ax.plot([floor, 1], [floor, 1], ls="--", color="grey", lw=0.8, label="chance")
        for fpr in (0.001, 0.01):
            if fpr >= floor:
                ax.axvline(fpr, color="grey", ls=":", lw=0.8)
        ax.set(xscale="log", yscale="log", xlim=(floor, 1), ylim=(floor, 1.02),
               xlabel="false-positive rate", ylabel="true-positive rate", title=label(trial))
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    for ax in list(axes.flat)[len(ok):]:
        ax.axis("off")
    rep.figure(fig, "roc", "ROC curves on log-log axes from the scores table; dotted lines at "
               "0.1% and 1% FPR; the attacker's choice (picked on shadow models) in bold black; "
               "intervals are 95% stratified bootstrap.")


def _finished(trials, limit: int) -> tuple[pd.DataFrame, str]:
    """The finished trials in the trial table's order, at most `limit`, and a
    sentence when some are left out."""
    order = analysis.trial_table(trials, None).trial_id
    ok = trials.set_index("trial_id").loc[order].reset_index()
    ok = ok[ok.status == "ok"]
    note = (f"The first {limit} of {len(ok)} finished trials (choose others with --trials)."
            if len(ok) > limit else "")
    return ok.iloc[:limit], note


def slices_section(rep: Report, trials, slices) -> None:
    rep.heading("Slices")
    chosen = None if slices is None else slices[(slices.attack == analysis.CHOICE)
                                                & (slices.eval_set == "original")]
    if chosen is None or chosen.empty:
        rep.words("No slices table (written by trials since it was added): no slices.")
        return
    ok, note = _finished(trials[trials.trial_id.isin(chosen.trial_id)], MAX_SLICE_TRIALS)
    label = _labeller(trials)
    columns = {}
    for _, trial in ok.iterrows():
        rows = chosen[chosen.trial_id == trial.trial_id]
        cells = [f"{_ci(r.auc, r.auc_lo, r.auc_hi)} ({r.n_members}/{r.n_nonmembers})"
                 for r in rows.itertuples()]
        columns[label(trial)] = pd.Series(cells, index=pd.MultiIndex.from_frame(
            rows[["slice_kind", "slice"]]))
    table = pd.DataFrame(columns)
    table = table.loc[[k for k in dict.fromkeys(chosen[["slice_kind", "slice"]].itertuples(
        index=False, name=None)) if k in table.index]].reset_index()
    rep.words("The attacker's choice's AUC on slices of the audit set with its 95% "
              "interval and (members/non-members): by true class, by whether the target "
              "classifies the example correctly, and by quartile of the target's confidence "
              "(q1 least confident; edges over the whole audit set). A slice's interval is "
              "wide where it holds few examples. " + note)
    rep.table(table.rename(columns={"slice_kind": "slice kind"}))


def exposed_section(rep: Report, trials, risk) -> None:
    rep.heading("Most exposed examples")
    top = None if risk is None else most_exposed(risk, N_EXPOSED)
    if top is None or top.empty:
        rep.words("No risk table (written by trials since it was added): no per-example risk.")
        return
    ok, note = _finished(trials[trials.trial_id.isin(top.trial_id)], MAX_EXPOSED_TRIALS)
    rep.words(f"Per trial, the {N_EXPOSED} members the attacker's choice flags at the lowest "
              "false-positive rate: fpr_at_score is the fraction of non-members scoring at "
              "least as high (0: flagged with no false positive), tpr_at_score the fraction "
              "of members. Join sample_id to the data (the risk table ranks every audit "
              "example, also by LiRA). " + note)
    label = _labeller(trials)
    for _, trial in ok.iterrows():
        rows = top[top.trial_id == trial.trial_id]
        rep.words(f"{label(trial)} ({rows.variant.iloc[0]})")
        rep.table(rows[["sample_id", "label", "score", "fpr_at_score", "tpr_at_score",
                        "rank"]])


def _whiskers(rows: pd.DataFrame, y: str) -> np.ndarray:
    """Distances to the interval's ends (a percentile interval of a TPR at low
    FPR may not hold its point estimate: the whisker is then 0)."""
    return np.clip([rows[y] - rows[f"{y}_lo"], rows[f"{y}_hi"] - rows[y]], 0, None)


def tradeoff_section(rep: Report, trials, attacks) -> None:
    rep.heading("Privacy-utility trade-off")
    rows = analysis.tradeoff(trials, attacks) if attacks is not None else pd.DataFrame()
    if rows.empty:
        rep.words("No finished trial with an attacker's choice: no trade-off figure.")
        return
    panels = [("tpr1", "TPR at 1% FPR"), ("auc", "AUC")]
    if rows.canary_tpr1.notna().any():
        panels.append(("canary_tpr1", "TPR at 1% FPR on the canaries"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5))
    for ax, (y, label) in zip(axes, panels):
        band = (rows[f"null_{y}_lo"].min(), rows[f"null_{y}_hi"].max()) \
            if f"null_{y}_lo" in rows else (np.nan, np.nan)
        if not np.isnan(band).any():  # parts written before the null band have none
            ax.axhspan(*band, color="grey", alpha=0.15, label="null band (95%, no signal)")
        starred = False
        for fam, group in rows.groupby("family", sort=True):
            defended, ref = group[~group.undefended], group[group.undefended]
            if len(defended):  # the line joins each value's mean over seeds
                mean = defended.groupby("value", sort=False)[["test_acc", y]].mean()
                line = ax.plot(mean.test_acc, mean[y], marker="o", label=fam)[0]
                for value, r in mean.iterrows():
                    ax.annotate(value, (r.test_acc, r[y]), fontsize=6, xytext=(3, 3),
                                textcoords="offset points")
                ax.errorbar(defended.test_acc, defended[y], fmt=".", alpha=0.5,
                            color=line.get_color(), capsize=2, yerr=_whiskers(defended, y))
            if len(ref):
                ax.errorbar(ref.test_acc, ref[y], fmt="*", ms=13, color="black", capsize=2,
                            yerr=_whiskers(ref, y), label=None if starred else "undefended",
                            zorder=4)
                starred = True
        ax.set(xlabel="test accuracy", ylabel=f"attacker's choice: {label}")
        ax.legend(fontsize=7)
    rep.figure(fig, "tradeoff", "Each defense family's swept parameter along a line through "
               "its mean over seeds; dots are the trials with their 95% bootstrap intervals; "
               "stars are the undefended target; the shaded band is what a target with no "
               "signal prints.")
    rep.table(rows.drop(columns=["undefended"]))


def against_dp_section(rep: Report, trials, attacks) -> None:
    rep.heading("Against utility-matched DP-SGD")
    rows = analysis.against_dp(trials, attacks) if attacks is not None else pd.DataFrame()
    if rows.empty:
        rep.words("No defended trial with a DP-SGD trial (finite epsilon) of the same seed "
                  "and threat model beside it: add DP-SGD settings to the sweep (see "
                  "sweeps/defense_vs_dp.py) to place each defense against it.")
        return
    rep.words("Each defense beside the DP-SGD trial whose test accuracy is closest (same seed, "
              "same threat model): a defense earns its place only if it leaks less than "
              "DP-SGD at the same utility. Leakage: the attacker's choice's TPR at 1% FPR "
              "with its 95% interval, on the canaries where the trials have them; the "
              "verdict compares the intervals.")
    rep.table(rows)


def dp_section(rep: Report, trials) -> None:
    rep.heading("DP audit: configured epsilon against its empirical lower bound")
    ok = trials[trials.status == "ok"]
    dp = ok[np.isfinite(ok["epsilon"].astype(float))] if "epsilon" in ok else ok.iloc[:0]
    if dp.empty or "epsilon_lower_bound" not in dp or dp.epsilon_lower_bound.isna().all():
        rep.words("No finished DP-SGD trial with a finite epsilon and a stored lower bound.")
        return
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(dp.epsilon, dp.epsilon_lower_bound, label="attacker's choice, 95% bound")
    top = float(max(dp.epsilon.max(), dp.epsilon_lower_bound.max()))
    ax.plot([dp.epsilon.min(), top], [dp.epsilon.min(), top], ls="--", color="grey",
            label="lower bound = epsilon")
    ceiling = min(analysis.epsilon_bound_ceiling(int(r.n_members), int(r.n_nonmembers), r.delta)
                  for _, r in dp.iterrows())
    ax.axhline(ceiling, ls=":", color="tab:red",
               label=f"the most {int(dp.n_members.min())} + {int(dp.n_nonmembers.min())} "
                     f"audit examples can show ({ceiling:.2f})")
    ax.set(xscale="log", xlabel="configured epsilon (accountant)",
           ylabel="empirical lower bound on epsilon")
    ax.legend(fontsize=8)
    rep.figure(fig, "dp_audit", "epsilon >= log((TPR_lo - delta) / FPR_hi) with Clopper-Pearson "
               "bounds at 95%, the threshold picked on one half of the audit examples and the "
               "bound computed on the other. Each example counts as one trial of the membership "
               "game in one training run: a heuristic audit, not a proof.")
    rep.table(dp[["trial_id", "seed", "epsilon", "delta", "epsilon_lower_bound", "test_acc"]])


def ood_section(rep: Report, attacks, scores) -> None:
    rep.heading("Out-of-distribution non-members")
    if attacks is None:
        rep.words("No attacks table.")
        return
    attacks = attacks[attacks.eval_set != CANARIES]  # the canaries are no OOD set
    scores = None if scores is None else scores[scores.eval_set != CANARIES]
    rates = analysis.ood_rates(attacks)
    if rates.shape[1] < 2:
        rep.words("This sweep evaluated on the original non-members only (queries.eval_sets "
                  "is empty): no false-positive comparison.")
    else:
        mean = rates.groupby(level="name", sort=False).mean()
        fig, ax = plt.subplots(figsize=(8, 1.5 + 0.11 * mean.size))
        mean.iloc[::-1].plot.barh(ax=ax, width=0.8)
        ax.set(xlabel="false-positive rate at the fitted threshold", ylabel="attack", xlim=(0, 1))
        ax.legend(title="evaluation set", fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        rep.figure(fig, "ood_fpr", "Non-members (or out-of-distribution examples in their "
                   f"place) called members, mean over {rates.index.get_level_values(0).nunique()}"
                   " trial(s).")
    if scores is None or "prediction_score" not in scores or scores.prediction_score.isna().all():
        rep.words("The scores table has no prediction_score (written before it was stored): "
                  "no histograms of the maximum prediction score.")
        return
    chosen = analysis.outcomes(scores[scores.attack == analysis.CHOICE], attacks)
    sets = list(dict.fromkeys(chosen.eval_set))
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 4), squeeze=False)
    bins = np.linspace(0, 1, 26)
    for ax, name in zip(axes.flat, sets):
        part = chosen[chosen.eval_set == name]
        for outcome in OUTCOMES:
            values = part.prediction_score[part.outcome == outcome]
            ax.hist(values, bins=bins, histtype="step", lw=1.5, label=f"{outcome} ({len(values)})")
        ax.set(title=name, xlabel="target's maximum prediction score", ylabel="examples")
        ax.legend(fontsize=7)
    rep.figure(fig, "mmps", "The target's maximum prediction score of each audit example by "
               "the attacker's choice's outcome at its fitted threshold, per evaluation set, "
               f"pooled over {chosen.trial_id.nunique()} trial(s).")


def cost_section(rep: Report, trials) -> None:
    rep.heading("Cost")
    frame = analysis.cost(trials)
    timed = frame.dropna(subset=["train_s"]) if "train_s" in frame else frame.iloc[:0]
    if len(timed):
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(timed) + 1.5))
        left = np.zeros(len(timed))
        for col in ("train_s", "shadow_s", "attack_s"):
            ax.barh(timed.trial_id.str[:12], timed[col], left=left, label=col[:-2])
            left += timed[col].to_numpy()
        for y, (_, r) in enumerate(timed.iterrows()):
            if pd.notna(r.get("models_trained")):
                ax.text(left[y], y, f" {r.models_trained:.0f} trained, {r.models_cached:.0f} "
                        "cached", va="center", fontsize=7)
        ax.set(xlabel="seconds (target training, shadow models' span, attacks)")
        ax.legend(fontsize=7)
        rep.figure(fig, "cost", "Seconds per stage of each finished trial; the table says how "
                   "many models each trained or took from the cache, and where.")
    rep.table(frame)


def write_report(results_dir, out=None, trials_wanted=None) -> Path:
    """Write the report of `results_dir` into `out` (default RESULTS_DIR/report)."""
    tables = open_results(results_dir, need=())
    root = Path(results_dir)
    trials = tables["trials"]
    if trials_wanted:
        keep = []
        for want in trials_wanted:
            hit = trials.trial_id[trials.trial_id.str.startswith(want)]
            if len(set(hit)) != 1:
                raise ConfigError("--trials", f"{want!r} matches {len(set(hit))} trials in "
                                              f"{results_dir}; give an id or a unique prefix")
            keep.append(hit.iloc[0])
        trials = trials[trials.trial_id.isin(keep)]
    ids = set(trials.trial_id)
    attacks, scores, slices, risk = (_read(root, name, ids)
                                     for name in ("attacks", "scores", "slices", "risk"))
    out = Path(out) if out else root / "report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError("--out", f"cannot write there: {e.strerror}") from None
    rep = Report(out)
    sweeps = ", ".join(sorted(set(trials.sweep)))
    failed = trials[trials.status != "ok"]
    rep.words(f"{results_dir}: sweep {sweeps}; {len(trials) - len(failed)} trial(s) ok, "
              f"{len(failed)} failed. Threat model: the attacker's choice is the attack picked "
              "on the shadow models alone (never with the evaluation labels); every figure "
              "carries a 95% stratified bootstrap interval; the null band is what the same "
              "sizes print with membership labels permuted.")
    rep.heading("Trials")
    rep.table(analysis.trial_table(trials, attacks))
    roc_section(rep, trials, attacks, scores)
    slices_section(rep, trials, slices)
    exposed_section(rep, trials, risk)
    tradeoff_section(rep, trials, attacks)
    against_dp_section(rep, trials, attacks)
    dp_section(rep, trials)
    ood_section(rep, attacks, scores)
    cost_section(rep, trials)
    return rep.write(f"raymia report: {sweeps}")


def _read(root: Path, name: str, ids: set) -> pd.DataFrame | None:
    if not any((root / name).glob("*.parquet")):
        return None
    frame = read_table(root / name)
    frame = frame[frame.trial_id.isin(ids)]
    return None if frame.empty else frame


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m raymia.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results_dir")
    p.add_argument("--out", help="where to write (default RESULTS_DIR/report)")
    p.add_argument("--trials", nargs="+", help="only these trials (ids or unique prefixes)")
    args = p.parse_args(argv)
    t0 = time.time()
    try:
        path = write_report(args.results_dir, args.out, args.trials)
    except ConfigError as e:
        print(f"raymia: error: {e}", file=sys.stderr)
        return 2
    print(f"report: {path} ({time.time() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
