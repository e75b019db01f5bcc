"""Per-example risk: how exposed each audit example is to an attack.

For an attack variant on an evaluation set, every example gets
  rank          1 = the highest score among the set's examples (ties share
                the best rank: 1 + how many score strictly higher)
  fpr_at_score  the fraction of non-members scoring at least as high: the
                false-positive rate an attacker accepts to flag this example
  tpr_at_score  the fraction of members scoring at least as high
A member with a low `fpr_at_score` is one the attack singles out. The `risk`
table holds the attacker's choice and LiRA's online variants (`RISK_LIRA`)
when LiRA ran, on the population ("original") and the canaries; a user joins
`sample_id` to their data. `most_exposed` lists the members most exposed.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from raymia.analysis import CHOICE
from raymia.data.canaries import CANARIES
from raymia.results import read_table
from raymia.slices import by_sample_id

RISK_LIRA = re.compile(r"online(_aug\d+)?")  # per-example variance, plain and augmented
EVAL_SETS = ("original", CANARIES)
COLUMNS = ("sweep", "trial_id", "attack", "variant", "eval_set", "sample_id", "label",
           "is_member", "correct", "score", "rank", "fpr_at_score", "tpr_at_score")


def exposure(scores: np.ndarray, is_member: np.ndarray) -> dict[str, np.ndarray]:
    """{rank, fpr_at_score, tpr_at_score} of each example (see the module);
    NaN rates where there is no non-member (or no member)."""
    scores, is_member = np.asarray(scores), np.asarray(is_member, bool)
    ranked = np.sort(scores)
    rank = 1 + len(scores) - np.searchsorted(ranked, scores, "right")
    out = {"rank": rank.astype(np.int64)}
    for name, group in (("fpr_at_score", scores[~is_member]), ("tpr_at_score",
                                                               scores[is_member])):
        at_or_above = len(group) - np.searchsorted(np.sort(group), scores, "left")
        out[name] = at_or_above / len(group) if len(group) else np.full(len(scores), np.nan)
    return out


def risk_rows(scores: pd.DataFrame, labels, correct, eval_sets=EVAL_SETS) -> pd.DataFrame:
    """The `risk` table of one trial's `scores` rows: labels, correct: each
    example's true class (the one the target trained on) and whether the
    target classifies it correctly, by sample_id (raymia.slices.by_sample_id).
    Rows of the attacker's choice and of LiRA's online variants on
    `eval_sets`, each (attack, variant, eval_set) sorted by rank, then sample_id."""
    keep = scores.eval_set.isin(eval_sets) & (
        (scores.attack == CHOICE)
        | ((scores.attack == "lira") & scores.variant.map(lambda v: bool(RISK_LIRA.fullmatch(v)))))
    label_of, correct_of = by_sample_id(labels, "label"), by_sample_id(correct, "correct")
    parts = []
    for _, g in scores[keep].groupby(["attack", "variant", "eval_set"], sort=False):
        g = g.assign(label=label_of.loc[g.sample_id].to_numpy(),
                     correct=correct_of.loc[g.sample_id].to_numpy(bool),
                     **exposure(g.score.to_numpy(), g.is_member.to_numpy()))
        parts.append(g.sort_values(["rank", "sample_id"], kind="stable"))
    if not parts:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(parts, ignore_index=True)[list(COLUMNS)]


def most_exposed(risk, n: int = 20, attack: str = CHOICE,
                 eval_set: str = "original") -> pd.DataFrame:
    """The `n` members of each trial with the lowest `fpr_at_score` under
    `attack` (the attacker's choice by default; for LiRA give "lira") on
    `eval_set`. `risk`: the risk table, or a results directory holding one
    (an empty frame where it holds none)."""
    if not isinstance(risk, pd.DataFrame):
        folder = Path(risk) / "risk"
        risk = (read_table(folder) if any(folder.glob("*.parquet"))
                else pd.DataFrame(columns=list(COLUMNS)))
    rows = risk[(risk.attack == attack) & (risk.eval_set == eval_set) & risk.is_member]
    rows = rows.sort_values(["trial_id", "variant", "fpr_at_score", "rank", "sample_id"],
                            kind="stable")
    return rows.groupby(["trial_id", "variant"], sort=False).head(n).reset_index(drop=True)
