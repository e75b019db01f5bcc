"""Numbers a reviewer can trust: intervals reproduced by an independent
bootstrap, a null band that holds chance, the attacker's choice made on shadow
models only, metric attacks oriented on shadow data, offline attacks OUT-only."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score, roc_curve

from conftest import balanced_keep, tiny_experiment
from raymia import EvaluationConfig, ReferenceConfig, SplitConfig
from raymia.attacks import AttackInputs, run_attacks
from raymia.attacks.rmia import marginal
from raymia.choice import as_target, choose, rehearse
from raymia.execution.inprocess import InProcessExecutor
from raymia.experiment import run_trial
from raymia.intervals import FIGURES, bootstrap_intervals, weighted_figures
from raymia.metrics import attack_metrics, ppv_at_fpr, tpr_at_fpr


def slow_figures(scores, member, threshold):
    fpr, tpr, _ = roc_curve(member, scores, drop_intermediate=False)
    flagged = scores >= threshold
    return {"auc": roc_auc_score(member, scores),
            "tpr_at_fpr_0.001": tpr_at_fpr(fpr, tpr, 0.001),
            "tpr_at_fpr_0.01": tpr_at_fpr(fpr, tpr, 0.01),
            "acc": balanced_accuracy_score(member, flagged),
            "advantage": flagged[member].mean() - flagged[~member].mean(),
            "oracle_advantage": max((tpr - fpr).max(), 0.0),
            **{f"ppv_at_fpr_{a:g}": ppv_at_fpr(fpr, tpr, a, member.sum(), (~member).sum())
               for a in (0.001, 0.01)}}


def same(a, b, abs=1e-12) -> bool:
    return (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, abs=abs)


@pytest.mark.parametrize("decimals", [1, 5])
def test_weighted_figures_with_unit_weights_are_scikit_learns(decimals):
    gen = np.random.default_rng(decimals)
    for _ in range(10):
        member = gen.random(200) < 0.4
        scores = np.round(gen.normal(member * 0.7, 1), decimals)
        got = weighted_figures(scores, member[None] * 1.0, ~member[None] * 1.0, 0.2)
        want = slow_figures(scores, member, 0.2)
        for f in FIGURES:
            assert same(got[f][0], want[f]), f


def test_bootstrap_weights_equal_resampled_rows():
    """A weighting by bootstrap counts is the figure of the resampled rows."""
    gen = np.random.default_rng(3)
    member = np.arange(60) < 25
    scores = np.round(gen.normal(member, 1), 1)
    for _ in range(20):
        rows = np.r_[gen.choice(25, 25), 25 + gen.choice(35, 35)]
        counts = np.bincount(rows, minlength=60).astype(float)[None]
        got = weighted_figures(scores, counts * member, counts * ~member, 0.3)
        want = slow_figures(scores[rows], member[rows], 0.3)
        for f in FIGURES:
            assert same(got[f][0], want[f]), f


def independent_bootstrap(scores, member, threshold, n, gen):
    """A slow loop over resampled rows, stratified by membership."""
    ins, outs = np.flatnonzero(member), np.flatnonzero(~member)
    draws = {f: [] for f in FIGURES}
    for _ in range(n):
        rows = np.r_[gen.choice(ins, len(ins)), gen.choice(outs, len(outs))]
        for f, v in slow_figures(scores[rows], member[rows], threshold).items():
            draws[f].append(v)
    return {f: np.nanquantile(v, [0.025, 0.975]) for f, v in draws.items()}  # PPV may be NaN


@pytest.fixture(scope="module")
def trial(digits):
    exp = tiny_experiment(split=SplitConfig(n_members=60, n_shadow_pool=40),
                          attacks=("loss", "entropy", "lira", "rmia"),
                          evaluation=EvaluationConfig(n_resamples=1000, choice_rounds=4))
    return exp, run_trial(exp, digits, InProcessExecutor(digits))


def test_every_interval_is_reproduced_from_the_scores_table(trial):
    _, tables = trial
    attacks, scores = tables["attacks"], tables["scores"]
    gen = np.random.default_rng(11)
    rows = attacks.attack.isin(["loss", "lira", "rmia"]) & attacks.variant.isin(["global",
                                                                                  "online"])
    for _, row in attacks[rows].iterrows():
        part = scores[(scores.attack == row.attack) & (scores.variant == row.variant)
                      & (scores.eval_set == row.eval_set)]
        member, s = part.is_member.to_numpy(), part.score.to_numpy()
        want = independent_bootstrap(s, member, row.threshold, 200, gen)
        for f in FIGURES:
            assert row[f"{f}_lo"] <= row[f] + 1e-9 or f.startswith(("tpr", "ppv", "oracle"))
            if np.isnan(want[f]).all() and np.isnan(row[f"{f}_lo"]):
                continue  # a PPV no resample defines
            width = want[f][1] - want[f][0]
            tol = 0.25 * width + 0.02  # two Monte-Carlo estimates of a 2.5% quantile
            assert abs(row[f"{f}_lo"] - want[f][0]) <= tol, (row.attack, row.variant, f)
            assert abs(row[f"{f}_hi"] - want[f][1]) <= tol, (row.attack, row.variant, f)


def test_intervals_and_null_band_are_seeded_and_cover(trial):
    _, tables = trial
    a = tables["attacks"].set_index(["attack", "variant"])
    assert a.loc[("loss", "global"), "auc_lo"] < a.loc[("loss", "global"), "auc"] \
        < a.loc[("loss", "global"), "auc_hi"]
    assert (a.null_auc_lo < 0.5).all() and (a.null_auc_hi > 0.5).all()
    assert (a["max_fp_at_fpr_0.01"] == 0).all()  # 60 non-members: TPR at zero false positives
    scores = np.random.default_rng(0).normal(size=100)
    member = np.arange(100) < 50
    one = bootstrap_intervals(scores, member, 0.0, 200, 0.95, np.random.default_rng(5))
    two = bootstrap_intervals(scores, member, 0.0, 200, 0.95, np.random.default_rng(5))
    assert one == two


def test_the_attackers_choice_is_a_row_chosen_on_shadow_models_only(trial, digits):
    exp, tables = trial
    attacks = tables["attacks"]
    chosen = attacks[attacks.attack == "attacker_choice"]
    assert len(chosen) == 1
    name, variant = chosen.variant.iloc[0].split("/")
    same = attacks[(attacks.attack == name) & (attacks.variant == variant)].iloc[0]
    for column in ("auc", "tpr_at_fpr_0.01", "auc_lo", "auc_hi", "rehearsal_auc"):
        assert chosen[column].iloc[0] == same[column]
    real = attacks[attacks.attack != "attacker_choice"]
    best = real.sort_values(["rehearsal_tpr_at_fpr_0.01", "rehearsal_auc"]).iloc[-1]
    assert (best.attack, best.variant) == (name, variant)
    assert (real.rehearsal_rounds == 4).all()
    scores = tables["scores"]
    assert set(scores[scores.attack == "attacker_choice"].variant) == {f"{name}/{variant}"}


def test_rehearsal_never_reads_the_targets_outputs():
    gen = np.random.default_rng(0)
    m, u, n = 6, 40, 30
    keep = balanced_keep(gen, m, u)
    shadow = gen.normal(0, 1, (m, u, 3)) + 3 * keep[..., None] * np.eye(3)[0]
    labels = np.zeros(u, int)
    inputs = AttackInputs(gen.normal(0, 1, (n, 3)), labels[:n], shadow, labels, keep)
    other = AttackInputs(-inputs.target_logits, labels[:n], shadow, labels, keep)
    a = rehearse(("loss", "correctness"), inputs, ReferenceConfig(), 4)
    assert a == rehearse(("loss", "correctness"), other, ReferenceConfig(), 4)
    assert choose(a)[0] == "loss"  # members are more confident on the shadows
    round_inputs, member = as_target(inputs, 2)
    np.testing.assert_array_equal(member, keep[2, :n])
    np.testing.assert_array_equal(round_inputs.target_logits, shadow[2, :n])
    assert len(round_inputs.keep) == m - 1


def test_a_target_with_no_signal_prints_intervals_that_hold_chance(digits):
    """Shadow models trained on the data, the target on other data: nothing of
    the audit set's membership reaches the target. Over three seeds, >= 90% of
    the 95% AUC intervals hold 1/2, and the attacker's choice's in 2 of 3."""
    rows = []
    for seed in range(3):
        exp = tiny_experiment(seed=seed, split=SplitConfig(n_members=100),
                              evaluation=EvaluationConfig())
        rows.append(run_trial(exp, digits, _OtherMembers(InProcessExecutor(digits)))["attacks"])
    attacks = pd.concat(rows)
    holds = (attacks.auc_lo <= 0.5) & (0.5 <= attacks.auc_hi)
    assert holds.mean() >= 0.9
    assert holds[(attacks.attack == "attacker_choice").to_numpy()].sum() >= 2


class _OtherMembers:
    """An executor that trains the target on examples outside the audit set."""

    def __init__(self, executor):
        self.executor = executor

    def run(self, jobs):
        jobs = [dataclasses.replace(j, train_indices=(
            np.setdiff1d(np.arange(1797), j.eval_indices)[:100],)) if j.role == "target" else j
            for j in jobs]
        return self.executor.run(jobs)


def test_metric_attacks_catch_members_that_score_lower():
    """A defense that makes members look less confident: a fixed direction
    would print AUC < 1/2; the direction found on shadow data recovers it."""
    gen = np.random.default_rng(0)
    m, n = 8, 200
    keep = balanced_keep(gen, m, n)
    member = np.arange(n) < n // 2
    def logits(is_in):  # members less confident in their true class 0
        z = np.zeros(is_in.shape + (4,))
        z[..., 0] = 2.0 - 1.5 * is_in + gen.normal(0, 0.5, is_in.shape)
        return z
    inputs = AttackInputs(logits(member), np.zeros(n, int), logits(keep), np.zeros(n, int), keep)
    for out in run_attacks(("loss", "confidence", "modified_entropy"), inputs):
        assert out.direction == -1
        assert roc_auc_score(member, out.scores) > 0.8
        m_ = attack_metrics(out.scores, member, out.predicted, np.zeros(n))
        assert m_["acc"] > 0.7


def test_offline_attacks_never_take_an_in_model_as_out():
    gen = np.random.default_rng(0)
    m, n, pool = 2, 20, 20
    keep = balanced_keep(gen, m, n + pool)
    keep[:, 0] = True  # no OUT model for example 0
    refs = np.where(keep, 0.99, 0.2)  # IN models are sure, OUT ones are not
    p = marginal(refs, keep, a=1.0)
    assert p[0] == pytest.approx(0.2)  # the mean OUT answer, not an IN model's 0.99
    logits = np.log(np.stack([np.where(keep, 0.99, 0.2), np.where(keep, 0.01, 0.8)], -1))
    labels = np.zeros(n + pool, int)
    inputs = AttackInputs(logits[0, :n], labels[:n], logits, labels, keep, logits[0, n:])
    outs = {(o.attack, o.variant): o for o in run_attacks(("lira", "rmia"), inputs)}
    assert outs[("lira", "offline")].n_no_out_reference == 1
    assert outs[("rmia", "offline")].n_no_out_reference == 1
    assert outs[("lira", "online")].n_no_out_reference is None


def test_without_a_rehearsable_attack_the_first_named_one_stands():
    from raymia.attacks import AttackOutput
    from raymia.experiment import eval_set_rows

    assert choose({}) is None
    gen = np.random.default_rng(0)
    member = np.arange(40) < 20
    inputs = AttackInputs(gen.normal(size=(40, 3)), np.zeros(40, int),
                          gen.normal(size=(2, 40, 3)), np.zeros(40, int), np.ones((2, 40), bool))
    outputs = [AttackOutput("a", "x", gen.normal(size=40), 0.0),
               AttackOutput("b", "y", gen.normal(size=40), 0.0)]
    rows, _ = eval_set_rows(outputs, inputs, member, np.arange(40),
                           {"sweep": "s", "trial_id": "t", "eval_set": "original"},
                           tiny_experiment(evaluation=EvaluationConfig(n_resamples=100)), {}, None,
                           np.ones(40, bool))
    chosen = [r for r in rows if r["attack"] == "attacker_choice"]
    assert len(chosen) == 1 and chosen[0]["variant"] == "a/x" and chosen[0]["rehearsal_rounds"] == 0
