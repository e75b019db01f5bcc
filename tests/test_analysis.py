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


def _choice(trial_id, eval_set, tpr, lo, hi, n=30):
    return {"trial_id": trial_id, "attack": "attacker_choice", "variant": "lira/online",
            "eval_set": eval_set, "auc": 0.7, "auc_lo": 0.6, "auc_hi": 0.8, "n_members": n,
            "tpr_at_fpr_0.01": tpr, "tpr_at_fpr_0.01_lo": lo, "tpr_at_fpr_0.01_hi": hi}


def test_each_defense_meets_the_dp_trial_of_closest_accuracy_on_the_canaries():
    from raymia.analysis import against_dp

    trials = pd.DataFrame({
        "trial_id": list("abcdefg"), "status": "ok", "seed": [0, 0, 0, 0, 0, 1, 0],
        "defense": ["dp_sgd", "dp_sgd", "dp_sgd", "adv_reg", "l2", "l2", "none"],
        "output.name": "none", "shadows.train": "like_target",
        "defense.epsilon": [4.0, 64.0, np.inf, None, None, None, None],
        "defense.alpha": [None, None, None, 1.0, None, None, None],
        "defense.weight_decay": [None, None, None, None, 1e-2, 1e-2, None],
        "epsilon": [4.0, 64.0, np.inf, None, None, None, None],
        "test_acc": [0.6, 0.8, 0.9, 0.79, 0.65, 0.8, 0.9]})
    attacks = pd.DataFrame(
        [_choice(t, "original", 0.1, 0.0, 0.2) for t in "abcdefg"]
        + [_choice("a", "canaries", 0.5, 0.3, 0.7), _choice("b", "canaries", 0.6, 0.4, 0.8),
           _choice("c", "canaries", 1.0, 1.0, 1.0), _choice("d", "canaries", 1.0, 1.0, 1.0),
           _choice("e", "canaries", 0.0, 0.0, 0.0)])
    rows = against_dp(trials, attacks).set_index("trial_id")
    # adv_reg at 0.79 meets epsilon=64 (0.8), not the undefended epsilon=inf; l2 at 0.65
    # meets epsilon=4 (0.6); the l2 trial of seed 1 has no DP trial of its seed
    assert rows.dp_trial_id.to_dict() == {"d": "b", "e": "a"}
    assert rows.loc["d", "verdict"] == "leaks more" and rows.loc["e", "verdict"] == "leaks less"
    assert (rows.on == "canaries").all() and rows.loc["d", "dp_tpr1"] == 0.6
    # 30 of 30 found: the bootstrap says [1, 1], the exact interval does not
    assert rows.loc["d", "tpr1_cp_lo"] == pytest.approx(0.8843, abs=1e-4)
    few = attacks.assign(n_members=np.where(attacks.eval_set == "canaries", 5, 30))
    rows = against_dp(trials, few).set_index("trial_id")  # 5 of 5 against 3 of 5: unresolved
    assert (rows.verdict == "no clear difference").all()
    assert rows.loc["d", "value"] == "alpha=1"  # what differs from AdvReg's defaults
    attacks = attacks[attacks.eval_set == "original"]  # without canaries: the population
    rows = against_dp(trials, attacks).set_index("trial_id")
    assert (rows.on == "population").all() and (rows.verdict == "no clear difference").all()


def test_a_trade_off_with_both_threat_models_names_them_and_shows_canaries():
    trials = pd.DataFrame({
        "trial_id": list("ab"), "status": "ok", "seed": 0, "defense": "selena",
        "output.name": "none", "shadows.train": ["like_target", "undefended"],
        "epsilon": None, "test_acc": 0.8})
    attacks = pd.DataFrame([_choice("a", "original", 0.1, 0.0, 0.2),
                            _choice("b", "original", 0.05, 0.0, 0.1),
                            _choice("a", "canaries", 0.7, 0.5, 0.9)])
    rows = tradeoff(trials, attacks).set_index("trial_id")
    assert rows.family.to_dict() == {"a": "selena [like_target shadows]",
                                     "b": "selena [undefended shadows]"}
    assert rows.loc["a", "canary_tpr1"] == 0.7 and np.isnan(rows.loc["b", "canary_tpr1"])


def test_a_setting_left_to_fitting_is_named_by_its_defaults_not_nan():
    trials = pd.DataFrame({
        "trial_id": list("ab"), "status": "ok", "seed": 0, "defense": "none",
        "output.name": "temperature", "output.temperature": [None, 2.0],
        "epsilon": None, "test_acc": 0.8})
    attacks = pd.DataFrame([_choice(t, "original", 0.1, 0.0, 0.2) for t in "ab"])
    rows = tradeoff(trials, attacks).set_index("trial_id")
    assert rows.value.to_dict() == {"a": "defaults", "b": "temperature=2"}
