"""What the report draws, as functions of the tables a notebook can call too
(`tables = raymia.results.read_results(DIR)`; each takes the frames it needs).

  roc_points           one attack's ROC curve from its `scores` (scikit-learn's roc_curve)
  roc_curves           every attack variant of one trial on one evaluation set, with
                       the legend's figures and which one the attacker chose
  tradeoff             one row per trial: its defense family and swept value, test
                       accuracy, the attacker's choice with intervals and null band,
                       on the population and on the canaries
  against_dp           each defense beside the DP-SGD trial of the closest test
                       accuracy (the utility-matched baseline), and which leaks less
  epsilon_lower_bound  the epsilon a DP claim must exceed for these scores to be
                       possible (threshold picked on one half, bound on the other)
  epsilon_bound_ceiling  the largest bound that many audit examples can show
  trial_epsilon        the same for one trial from its stored scores (the `trials`
                       table's `epsilon_lower_bound` column)
  ood_rates            the false-positive rate at the fitted threshold, per
                       evaluation set and attack
  outcomes             each audit example's TP/FP/TN/FN at the attack's threshold,
                       with the target's maximum prediction score
  cost                 seconds and models per trial, and where they ran
  trial_table          every trial, the varying parameters first, ordered by them
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import beta
from sklearn.metrics import roc_curve

from raymia.audit import ORIGINAL
from raymia.config import to_dict
from raymia.data.canaries import CANARIES
from raymia.registry import DEFENSES, OUTPUTS
from raymia.seeding import rng

CHOICE = "attacker_choice"
TPR1 = "tpr_at_fpr_0.01"


def roc_points(scores: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of one attack's `scores` rows (one trial, attack, variant and
    evaluation set): scikit-learn's roc_curve, every threshold kept."""
    fpr, tpr, _ = roc_curve(scores.is_member.to_numpy(bool), scores.score.to_numpy(),
                            drop_intermediate=False)
    return fpr, tpr


def roc_curves(scores: pd.DataFrame, attacks: pd.DataFrame, trial_id: str,
               eval_set: str = ORIGINAL) -> list[dict]:
    """One dict per attack variant of the trial on `eval_set`: label, fpr, tpr,
    the attacks table's AUC and TPR at 1% FPR with intervals, n_nonmembers and
    `chosen` (the attacker's choice; its own rows are not repeated)."""
    rows = attacks[(attacks.trial_id == trial_id) & (attacks.eval_set == eval_set)]
    picked = rows[rows.attack == CHOICE].variant
    chosen = picked.iloc[0] if len(picked) else None
    mine = scores[(scores.trial_id == trial_id) & (scores.eval_set == eval_set)]
    out = []
    for r in rows[rows.attack != CHOICE].to_dict("records"):
        own = mine[(mine.attack == r["attack"]) & (mine.variant == r["variant"])]
        if own.empty:
            continue
        fpr, tpr = roc_points(own)
        name = f"{r['attack']}/{r['variant']}"
        out.append({"label": name, "fpr": fpr, "tpr": tpr,
                    "n_nonmembers": int(r["n_nonmembers"]), "chosen": name == chosen,
                    **{k: r.get(k) for k in ("auc", "auc_lo", "auc_hi")},
                    "tpr1": r[TPR1], "tpr1_lo": r.get(TPR1 + "_lo"),
                    "tpr1_hi": r.get(TPR1 + "_hi")})
    return out


def family(row) -> str:
    """A trial's defense family: its output defense when it has one, else its
    training defense ('none' for the undefended target)."""
    output = row.get("output.name")
    return output if isinstance(output, str) and output != "none" else row["defense"]


def own_setting(trial) -> str:
    """The fields of a trial's defense (or output defense) that differ from its
    defaults, as `field=value`s; when none do, its first field and '(defaults)'."""
    name = family(trial)
    section, registry = ("output", OUTPUTS) if name == trial.get("output.name") \
        else ("defense", DEFENSES)
    if name not in registry:
        return ""
    fields = [(k, v) for k, v in to_dict(registry[name]()).items()
              if k != "name" and present(trial.get(f"{section}.{k}"))]
    changed = [setting(f"{section}.{k}", trial[f"{section}.{k}"]) for k, v in fields
               if trial[f"{section}.{k}"] != v]
    if changed or not fields:
        return ", ".join(changed) or "defaults"
    return f"{setting(f'{section}.{fields[0][0]}', trial[f'{section}.{fields[0][0]}'])} (defaults)"


def present(value) -> bool:
    """Neither None nor NaN (a config column a trial's own defense lacks)."""
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def setting(column: str, value) -> str:
    """`field=value` of a config column: defense.name -> defense, defense.epsilon
    -> epsilon, model.widths -> widths."""
    parts = column.split(".")
    name = parts[0] if parts[-1] == "name" else parts[-1]
    return f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"


def order(value) -> tuple:
    """A sort key for config values of any kind: numbers by value (2 before 16,
    inf last among them), then strings, then missing values; tuples element-wise."""
    if isinstance(value, tuple):
        return (3, tuple(order(v) for v in value))
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return (2, 0)
    if isinstance(value, (int, float, np.number)):
        return (0, float(value))
    return (1, repr(value))


def tradeoff(trials: pd.DataFrame, attacks: pd.DataFrame) -> pd.DataFrame:
    """One row per trial that finished: family, `parameter` and `value` (the
    family's field that varies among its trials, e.g. defense.epsilon), seed,
    test_acc, and the attacker's choice on the original set: auc, tpr1 (at 1%
    FPR) with `_lo`/`_hi` intervals and the null band's ends, and canary_tpr1
    with its interval (on the canaries; NaN without them); ordered by family
    and value. `undefended`: family 'none', or DP-SGD at epsilon = inf.
    `threat`: how the attacker's shadow models trained (shadows.train); where
    a sweep has both, the family names it."""
    ok = trials[trials.status == "ok"].copy()
    threat = ok["shadows.train"] if "shadows.train" in ok else pd.Series("", index=ok.index)
    ok["threat"] = threat
    both = threat.nunique() > 1
    ok["family"] = [family(r) + (f" [{r.threat} shadows]" if both else "")
                    for _, r in ok.iterrows()]
    chosen = attacks[(attacks.attack == CHOICE) & (attacks.eval_set == ORIGINAL)]
    chosen = chosen.set_index("trial_id")
    canary = attacks[(attacks.attack == CHOICE) & (attacks.eval_set == CANARIES)]
    canary = canary.set_index("trial_id")
    rows = []
    for name, group in ok.groupby("family", sort=True):
        prefix = "output." if name in set(ok.get("output.name", ())) else "defense."
        params = [c for c in varying_fields(group)
                  if c.startswith(prefix) and not c.endswith(".name")]
        for _, t in group.iterrows():
            if t.trial_id not in chosen.index:
                continue
            c = chosen.loc[t.trial_id]
            epsilon = t.get("epsilon")
            k = canary.loc[t.trial_id] if t.trial_id in canary.index else {}
            rows.append({"trial_id": t.trial_id, "family": name, "threat": t.threat,
                         "undefended": family(t) == "none" or epsilon == np.inf,
                         "parameter": ", ".join(params),
                         "value": ", ".join(setting(p, t[p]) for p in params
                                            if present(t[p])) or own_setting(t),
                         "sort": tuple(t[p] for p in params), "seed": t.seed,
                         "test_acc": t.test_acc, "choice": c.variant,
                         "auc": c.auc, "auc_lo": c.auc_lo, "auc_hi": c.auc_hi,
                         "null_auc_lo": c.get("null_auc_lo"), "null_auc_hi": c.get("null_auc_hi"),
                         "tpr1": c[TPR1], "tpr1_lo": c[TPR1 + "_lo"], "tpr1_hi": c[TPR1 + "_hi"],
                         "tpr1_n": c.get("n_members"), "canary_tpr1_n": k.get("n_members"),
                         "null_tpr1_lo": c.get(f"null_{TPR1}_lo"),
                         "null_tpr1_hi": c.get(f"null_{TPR1}_hi"),
                         **{f"canary_tpr1{end}": k.get(TPR1 + end, np.nan)
                            for end in ("", "_lo", "_hi")}})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["family", "sort", "seed"], key=lambda col: col.map(order)) \
        .drop(columns="sort")


def against_dp(trials: pd.DataFrame, attacks: pd.DataFrame) -> pd.DataFrame:
    """Each defended trial (not DP-SGD, not undefended) beside the utility-matched
    DP-SGD baseline: the DP-SGD trial at a finite epsilon of the same seed and
    threat model whose test accuracy is closest (ties: the more accurate).
    Leakage is the attacker's choice's TPR at 1% FPR on the canaries where the
    trials have them (the most vulnerable samples), else on the population,
    with its bootstrap interval (`_lo`, `_hi`) and an exact Clopper-Pearson
    95% interval on the TPR as a proportion of the members (`_cp_lo`,
    `_cp_hi`), which stays wide where every member is found (15 of 15: the
    bootstrap says [1, 1], Clopper-Pearson [0.78, 1]). `verdict`: 'leaks
    less' or 'leaks more' than DP-SGD where both kinds of interval are
    disjoint, else 'no clear difference'."""
    rows = tradeoff(trials, attacks)
    if rows.empty:
        return rows
    base = rows.family.str.split(" ").str[0]
    dp = rows[(base == "dp_sgd") & ~rows.undefended]
    out = []
    for _, r in rows[(base != "dp_sgd") & ~rows.undefended].iterrows():
        pool = dp[(dp.seed == r.seed) & (dp.threat == r.threat)]
        if pool.empty:
            continue
        gap = (pool.test_acc - r.test_acc).abs()
        m = pool.loc[min(pool.index, key=lambda i: (round(gap[i], 9), -pool.test_acc[i]))]
        on = "canary_tpr1" if pd.notna(r.canary_tpr1) and pd.notna(m.canary_tpr1) else "tpr1"
        lo, hi = r[on + "_lo"], r[on + "_hi"]
        mine, theirs = _exact(r[on], r[on + "_n"]), _exact(m[on], m[on + "_n"])
        less = hi < m[on + "_lo"] and mine[1] < theirs[0]
        more = lo > m[on + "_hi"] and mine[0] > theirs[1]
        verdict = "leaks less" if less else "leaks more" if more else "no clear difference"
        out.append({"family": r.family, "value": r.value,
                    "seed": r.seed, "threat": r.threat,
                    "test_acc": r.test_acc, "on": "canaries" if on != "tpr1" else "population",
                    "tpr1": r[on], "tpr1_lo": lo, "tpr1_hi": hi, "tpr1_cp_lo": mine[0],
                    "tpr1_cp_hi": mine[1], "dp": m.value, "dp_test_acc": m.test_acc,
                    "dp_tpr1": m[on], "dp_tpr1_lo": m[on + "_lo"], "dp_tpr1_hi": m[on + "_hi"],
                    "dp_tpr1_cp_lo": theirs[0], "dp_tpr1_cp_hi": theirs[1], "verdict": verdict,
                    "trial_id": r.trial_id, "dp_trial_id": m.trial_id})
    return pd.DataFrame(out)


def _exact(tpr: float, n_members) -> tuple[float, float]:
    """Two-sided 95% Clopper-Pearson interval on a TPR over `n_members` members
    ((0, 1) when the count is unknown: parts written before it was stored)."""
    if pd.isna(n_members) or n_members <= 0:
        return 0.0, 1.0
    n = int(n_members)
    lo, hi = _clopper_pearson(round(tpr * n), n, 0.025)
    return float(lo), float(hi)


def _clopper_pearson(k: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided (1 - alpha) lower and upper Clopper-Pearson bounds on k/n."""
    k = np.asarray(k, float)
    lo = np.where(k > 0, beta.ppf(alpha, np.maximum(k, 1), n - k + 1), 0.0)
    hi = np.where(k < n, beta.ppf(1 - alpha, k + 1, np.maximum(n - k, 1)), 1.0)
    return lo, hi


def _bounds(scores, is_member, thresholds, delta: float, alpha: float) -> np.ndarray:
    """(2, t) epsilon bounds at each threshold (predict member when score >=
    threshold), from TPR/FPR and from TNR/FNR, each pair of Clopper-Pearson
    bounds at alpha/2 so both hold together with probability >= 1 - alpha."""
    pos, neg = np.sort(scores[is_member]), np.sort(scores[~is_member])
    tp = len(pos) - np.searchsorted(pos, thresholds, side="left")
    fp = len(neg) - np.searchsorted(neg, thresholds, side="left")
    tpr_lo, tpr_hi = _clopper_pearson(tp, len(pos), alpha / 2)
    fpr_lo, fpr_hi = _clopper_pearson(fp, len(neg), alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        member_side = np.log(np.maximum(tpr_lo - delta, 0) / fpr_hi)  # TPR <= e^eps FPR + d
        other_side = np.log(np.maximum((1 - fpr_hi) - delta, 0) / (1 - tpr_lo))  # TNR, FNR
    return np.nan_to_num(np.stack([member_side, other_side]), nan=-np.inf)


def epsilon_lower_bound(scores: np.ndarray, is_member: np.ndarray, delta: float = 0.0,
                        alpha: float = 0.05, seed: int = 0) -> float:
    """The epsilon that (epsilon, delta)-DP must at least have for an attack to
    reach these scores, at confidence 1 - alpha (Jagielski et al. 2020; Nasr et
    al. 2021): eps >= log((TPR_lo - delta) / FPR_hi), or the same from TNR and
    FNR, with Clopper-Pearson bounds. The examples are split into two halves
    stratified by membership (seeded): the threshold and side are picked on the
    first half, the bound is computed on the second, so the pick costs no
    correction. 0 when no threshold gives a positive bound. Each example
    counts as one trial of the membership game: in one training run that is
    the usual heuristic, not a proof (a rigorous one-run audit needs Steinke
    et al. 2023's analysis)."""
    scores, is_member = np.asarray(scores, np.float64), np.asarray(is_member, bool)
    gen = rng(seed, "epsilon_lower_bound")
    pick = np.zeros(len(scores), bool)
    for group in (np.flatnonzero(is_member), np.flatnonzero(~is_member)):
        pick[gen.permutation(group)[:len(group) // 2]] = True
    rest = ~pick
    if min(is_member[pick].sum(), (~is_member[pick]).sum(),
           is_member[rest].sum(), (~is_member[rest]).sum()) == 0:
        return float("nan")
    thresholds = np.unique(scores[pick])
    on_pick = _bounds(scores[pick], is_member[pick], thresholds, delta, alpha)
    side, at = np.unravel_index(np.argmax(on_pick), on_pick.shape)
    got = _bounds(scores[rest], is_member[rest], thresholds[at:at + 1], delta, alpha)[side, 0]
    return float(max(got, 0.0))


def epsilon_bound_ceiling(n_members: int, n_nonmembers: int, delta: float = 0.0,
                          alpha: float = 0.05) -> float:
    """The largest epsilon_lower_bound these many audit examples can show: the
    bound of a perfect attack on the half it is computed from."""
    k, n = n_members - n_members // 2, n_nonmembers - n_nonmembers // 2
    tpr_lo, _ = _clopper_pearson(np.array([k]), k, alpha / 2)
    _, fpr_hi = _clopper_pearson(np.array([0]), n, alpha / 2)
    return float(max(np.log(max(tpr_lo[0] - delta, 0) / fpr_hi[0]), 0.0))


def trial_epsilon(scores: pd.DataFrame, seed: int, delta: float | None,
                  alpha: float = 0.05) -> float:
    """A trial's `epsilon_lower_bound`: epsilon_lower_bound of the attacker's
    choice on the original evaluation set, its rows in sample_id order, at the
    trial's DP delta (0 for a trial without one) and seed."""
    rows = scores[(scores.attack == CHOICE) & (scores.eval_set == ORIGINAL)]
    rows = rows.sort_values("sample_id", kind="stable")
    d = 0.0 if delta is None or pd.isna(delta) else float(delta)
    return epsilon_lower_bound(rows.score.to_numpy(), rows.is_member.to_numpy(bool), d,
                               alpha, int(seed))


def ood_rates(attacks: pd.DataFrame) -> pd.DataFrame:
    """Rows: trial, attack variant; columns: each evaluation set's false-positive
    rate at the attack's fitted threshold (non-members, or OOD examples in their
    place, called members)."""
    rows = attacks.assign(name=attacks.attack + "/" + attacks.variant)
    return rows.pivot_table(index=["trial_id", "name"], columns="eval_set", values="fpr",
                            sort=False)


def outcomes(scores: pd.DataFrame, attacks: pd.DataFrame) -> pd.DataFrame:
    """The scores rows with `outcome` (tp, fp, tn, fn: score >= the attacks
    table's threshold for that attack, trial and evaluation set) beside their
    `prediction_score` (the target's maximum softmax output)."""
    key = ["trial_id", "attack", "variant", "eval_set"]
    merged = scores.merge(attacks[key + ["threshold"]], on=key, how="left")
    called = merged.score >= merged.threshold
    merged["outcome"] = np.select(
        [merged.is_member & called, ~merged.is_member & called, ~merged.is_member & ~called],
        ["tp", "fp", "tn"], "fn")
    return merged


def cost(trials: pd.DataFrame) -> pd.DataFrame:
    """Per trial: train/shadow/attack seconds, models trained and cached, the
    node the trial ran on and the nodes its training jobs ran on."""
    cols = ["trial_id", "status", "train_s", "shadow_s", "attack_s", "wall_s",
            "models_trained", "models_cached", "node", "job_nodes"]
    return trials[[c for c in cols if c in trials.columns]].reset_index(drop=True)


def _comparable(trials: pd.DataFrame) -> pd.DataFrame:
    """List-valued config fields (model.widths) as tuples: hashable, comparable."""
    frame = trials.copy()
    for c in frame.columns:
        if "." in c or c == "attacks":
            frame[c] = frame[c].map(lambda v: tuple(v) if isinstance(v, (list, np.ndarray))
                                    else v)
    return frame


def varying_fields(trials: pd.DataFrame) -> list[str]:
    """The config fields (dotted columns, and `attacks`) whose values differ
    between the trials, seeds aside."""
    leaves = [c for c in trials.columns if "." in c or c == "attacks"]
    return [c for c in leaves if trials[c].map(repr).nunique() > 1]


def trial_table(trials: pd.DataFrame, attacks: pd.DataFrame | None) -> pd.DataFrame:
    """Every trial: the config fields that vary between trials first (ordered by
    them, then seed), status and error, test accuracy, gap, ECE, epsilon, the
    epsilon lower bound, and the attacker's choice with its intervals."""
    frame = _comparable(trials)
    varying = varying_fields(frame)
    out = frame[["trial_id", *varying, "seed", "status", "error"]].copy()
    for col in ("test_acc", "gap", "ece", "epsilon", "epsilon_lower_bound"):
        out[col] = frame[col] if col in frame.columns else np.nan
    if attacks is not None:
        chosen = attacks[(attacks.attack == CHOICE) & (attacks.eval_set == ORIGINAL)]
        chosen = chosen.set_index("trial_id")
        out["choice"] = out.trial_id.map(chosen.variant)
        for col in ("auc", "auc_lo", "auc_hi", TPR1, TPR1 + "_lo", TPR1 + "_hi"):
            out[col] = out.trial_id.map(chosen[col])
    return out.sort_values([*varying, "seed"], key=lambda col: col.map(order)) \
        .reset_index(drop=True)

