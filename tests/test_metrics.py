import math

import numpy as np
import pytest

from raymia.metrics import accuracy, attack_metrics, ece, tpr_at_fpr
from raymia.signals import phi, true_log_prob


def test_ece_golden():
    # confidences 0.9, 0.9 (one right) and 0.6 (right): bins (0.867, 0.933] and (0.533, 0.6]
    logits = np.log(np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4]]))
    labels = np.array([0, 1, 0])
    want = (2 / 3) * abs(0.5 - 0.9) + (1 / 3) * abs(1.0 - 0.6)
    assert ece(logits, labels) == pytest.approx(want)
    assert accuracy(logits, labels) == pytest.approx(2 / 3)


def test_perfectly_calibrated_has_zero_ece():
    logits = np.log(np.array([[0.5, 0.5]] * 4))
    assert ece(logits, np.array([0, 1, 0, 1])) == pytest.approx(0.0)


def test_tpr_at_fpr_is_largest_tpr_within_the_fpr():
    fpr = np.array([0.0, 0.0, 0.005, 0.02, 1.0])
    tpr = np.array([0.0, 0.1, 0.3, 0.6, 1.0])
    assert tpr_at_fpr(fpr, tpr, 0.01) == 0.3
    assert tpr_at_fpr(fpr, tpr, 0.001) == 0.1


def test_attack_metrics_golden():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.2])
    is_member = np.array([True, True, False, True, False, False])
    predicted = scores >= 0.65
    conf = np.array([0.99, 0.98, 0.97, 0.5, 0.4, 0.3])
    m = attack_metrics(scores, is_member, predicted, conf)
    assert m["auc"] == pytest.approx(8 / 9)
    assert m["tpr_at_fpr_0.01"] == pytest.approx(2 / 3)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 3)
    assert m["acc"] == pytest.approx(2 / 3)
    assert m["mmps_tp"] == pytest.approx(0.985) and m["mmps_fp"] == pytest.approx(0.97)
    assert m["mmps_fn"] == pytest.approx(0.5) and m["mmps_tn"] == pytest.approx(0.35)


def test_mmps_of_an_empty_outcome_is_nan():
    m = attack_metrics(np.array([1.0, 0.0]), np.array([True, False]), np.array([True, False]),
                       np.array([0.9, 0.5]))
    assert math.isnan(m["mmps_fp"]) and math.isnan(m["mmps_fn"])
    assert m["auc"] == 1.0 and m["tpr_at_fpr_0.001"] == 1.0


def test_phi_is_stable_where_the_naive_formula_is_not():
    logits = np.array([[50.0, 0.0, 0.0], [0.0, 1.0, 2.0], [-40.0, 0.0, 0.0]])
    labels = np.array([0, 2, 0])
    got = phi(logits, labels)
    assert got[0] == pytest.approx(50 - math.log(2))  # naive log(1 - p) is log(0) here
    p = np.exp(true_log_prob(logits, labels))
    assert got[1] == pytest.approx(math.log(p[1]) - math.log(1 - p[1]))
    assert got[2] == pytest.approx(-40 - math.log(2))
    assert np.isfinite(got).all()


def test_headline_figures_golden():
    """advantage at the fitted threshold, the oracle's over the ROC, PPV at the
    ROC point of TPR at 1% FPR (of the points with that TPR, the least FPR)."""
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.2])
    is_member = np.array([True, True, False, True, False, False])
    m = attack_metrics(scores, is_member, scores >= 0.65, np.zeros(6))
    assert m["advantage"] == pytest.approx(2 / 3 - 1 / 3)  # recall - fpr
    assert m["oracle_advantage"] == pytest.approx(2 / 3)  # at 0.6: TPR 1, FPR 1/3
    assert m["ppv_at_fpr_0.01"] == pytest.approx(1.0)  # TPR 2/3 with no false positive


def test_ppv_counts_members_and_nonmembers_as_drawn():
    from raymia.metrics import ppv_at_fpr

    fpr = np.array([0.0, 0.0, 0.005, 0.005, 0.02])
    tpr = np.array([0.0, 0.1, 0.3, 0.3, 0.6])
    assert ppv_at_fpr(fpr, tpr, 0.01, 100, 200) == pytest.approx(30 / (30 + 1))
    assert ppv_at_fpr(fpr, tpr, 0.01, 100, 100) == pytest.approx(0.3 / (0.3 + 0.005))
    assert math.isnan(ppv_at_fpr(fpr[:1], tpr[:1], 0.01, 100, 100))  # flags nobody


def test_headline_figures_of_a_perfect_and_of_a_random_attack():
    from raymia.intervals import bootstrap_intervals

    member = np.arange(400) < 200
    perfect = attack_metrics(member * 1.0, member, member, np.zeros(400))
    assert perfect["oracle_advantage"] == 1.0 and perfect["advantage"] == 1.0
    assert perfect["ppv_at_fpr_0.01"] == 1.0 and perfect["ppv_at_fpr_0.001"] == 1.0
    scores = np.random.default_rng(0).normal(size=400)
    noise = attack_metrics(scores, member, scores >= 0, np.zeros(400))
    ci = bootstrap_intervals(scores, member, 0.0, 500, 0.95, np.random.default_rng(1))
    assert ci["advantage_lo"] < 0 < ci["advantage_hi"]
    assert ci["advantage_lo"] <= noise["advantage"] <= ci["advantage_hi"]
    assert 0 < noise["oracle_advantage"] < 0.2  # the oracle's maximum is never below 0


def test_threshold_figures_agree_with_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score, precision_score, recall_score

    gen = np.random.default_rng(3)
    for _ in range(20):
        member = gen.random(50) < 0.5
        member[:2] = [True, False]
        predicted = gen.random(50) < gen.random()
        m = attack_metrics(gen.random(50), member, predicted, gen.random(50))
        assert m["acc"] == pytest.approx(balanced_accuracy_score(member, predicted))
        assert m["precision"] == pytest.approx(precision_score(member, predicted, zero_division=0))
        assert m["recall"] == pytest.approx(recall_score(member, predicted, zero_division=0))
