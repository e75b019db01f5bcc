"""What the report draws: ROC points from the scores table, the trade-off rows,
and the empirical lower bound on epsilon (hand-computed, reproducible, below a
DP trial's epsilon)."""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta
from sklearn.metrics import roc_curve

from conftest import tiny_experiment
from raymia import DPSGD
from raymia.analysis import (_bounds, epsilon_bound_ceiling, epsilon_lower_bound, order,
                             roc_curves, tradeoff, trial_epsilon, trial_table)
from raymia.execution.inprocess import InProcessExecutor
from raymia.experiment import run_trial
from raymia.metrics import tpr_at_fpr


@pytest.fixture(scope="module")
def trial(digits):
    exp = tiny_experiment(attacks=("loss", "entropy", "lira"))
    return exp, run_trial(exp, digits, InProcessExecutor(digits))


def test_roc_points_are_scikit_learns_on_the_scores_table(trial):
    exp, tables = trial
    attacks, scores = tables["attacks"], tables["scores"]
    curves = roc_curves(scores, attacks, exp.trial_id)
    assert len(curves) == (attacks.attack != "attacker_choice").sum()
    assert sum(c["chosen"] for c in curves) == 1
    for c in curves:
        name, variant = c["label"].split("/")
        rows = scores[(scores.attack == name) & (scores.variant == variant)]
        fpr, tpr, _ = roc_curve(rows.is_member, rows.score, drop_intermediate=False)
        np.testing.assert_array_equal(c["fpr"], fpr)
        np.testing.assert_array_equal(c["tpr"], tpr)
        assert tpr_at_fpr(c["fpr"], c["tpr"], 0.01) == c["tpr1"]  # the legend's figure
    assert all(c["n_nonmembers"] == 60 for c in curves)


def test_bounds_at_a_threshold_are_clopper_pearsons():
    member = np.r_[np.ones(50, bool), np.zeros(70, bool)]
    scores = np.r_[np.arange(50) >= 10, np.arange(70) >= 63].astype(float)  # tp 40, fp 7
    got = _bounds(scores, member, np.array([1.0]), 1e-3, 0.05)[:, 0]
    tpr_lo, tpr_hi = beta.ppf(0.025, 40, 11), beta.ppf(0.975, 41, 10)
    fpr_lo, fpr_hi = beta.ppf(0.025, 7, 64), beta.ppf(0.975, 8, 63)
    assert got[0] == pytest.approx(np.log((tpr_lo - 1e-3) / fpr_hi))
    assert got[1] == pytest.approx(np.log((1 - fpr_hi - 1e-3) / (1 - tpr_lo)))
    assert tpr_lo < 0.8 < tpr_hi and fpr_lo < 0.1 < fpr_hi


@pytest.mark.parametrize("delta", [0.0, 1e-3])
def test_a_perfect_attack_reaches_the_ceiling_computed_by_hand(delta):
    member = np.arange(80) < 40
    bound = epsilon_lower_bound(member * 1.0, member, delta, seed=3)
    a = 0.025 ** (1 / 20)  # 20 of each on the half the bound is computed from
    assert bound == pytest.approx(np.log((a - delta) / (1 - a)))
    assert epsilon_bound_ceiling(40, 40, delta) == pytest.approx(bound)


def test_scores_without_signal_rarely_give_a_positive_bound():
    gen = np.random.default_rng(0)
    member = np.arange(300) < 150
    positive = sum(epsilon_lower_bound(gen.normal(size=300), member, seed=s) > 0
                   for s in range(40))
    assert positive <= 6  # a 95% bound: about 2 of 40 expected


def test_the_trials_column_is_reproduced_from_the_stored_scores(trial):
    exp, tables = trial
    stored = tables["trials"].epsilon_lower_bound.iloc[0]
    assert trial_epsilon(tables["scores"], exp.seed, None) == stored
    assert stored >= 0


def test_a_dp_trials_bound_stays_below_its_epsilon(digits):
    exp = tiny_experiment(defense=DPSGD(epsilon=1.0, max_grad_norm=1.0))
    tables = run_trial(exp, digits, InProcessExecutor(digits))
    row = tables["trials"].iloc[0]
    assert 0 <= row.epsilon_lower_bound <= row.epsilon
    assert trial_epsilon(tables["scores"], exp.seed, row.delta) == row.epsilon_lower_bound
    assert tables["scores"].prediction_score.between(0, 1).all()


def test_tradeoff_orders_each_family_by_its_swept_value():
    trials = pd.DataFrame({
        "trial_id": list("abcdef"), "status": ["ok"] * 5 + ["failed"], "seed": 0,
        "defense": ["dp_sgd"] * 3 + ["none", "l2", "l2"],
        "output.name": "none", "defense.epsilon": [8.0, np.inf, 1.0, None, None, None],
        "defense.weight_decay": [None] * 4 + [1e-2, 1e-3],
        "epsilon": [8.0, np.inf, 1.0, None, None, None], "test_acc": np.linspace(0.5, 0.9, 6)})
    figures = {"auc": 0.6, "auc_lo": 0.5, "auc_hi": 0.7, "tpr_at_fpr_0.01": 0.1,
               "tpr_at_fpr_0.01_lo": 0.0, "tpr_at_fpr_0.01_hi": 0.2}
    attacks = pd.DataFrame([{"trial_id": t, "attack": "attacker_choice", "variant": "loss/class",
                             "eval_set": "original", **figures} for t in "abcde"])
    rows = tradeoff(trials, attacks)
    assert list(rows.trial_id) == ["c", "a", "b", "e", "d"]  # by family, then value
    assert list(rows.undefended) == [False, False, True, False, True]
    assert set(rows[rows.family == "dp_sgd"].parameter) == {"defense.epsilon"}
    assert list(rows.value[:3]) == ["epsilon=1", "epsilon=8", "epsilon=inf"]


def test_swept_values_are_ordered_as_numbers_not_as_text():
    trials = pd.DataFrame({"trial_id": list("abcd"), "status": "ok", "error": "",
                           "defense.epsilon": [16.0, np.inf, 2.0, 0.5], "seed": [10, 2, 2, 2]})
    assert list(trial_table(trials, None)["defense.epsilon"]) == [0.5, 2.0, 16.0, np.inf]
    assert sorted([None, "b", 16, 2.0, (64, 8), (64,)], key=order) == \
        [2.0, 16, "b", None, (64,), (64, 8)]
