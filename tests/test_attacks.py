"""Metric attacks and thresholds against slow, obvious references on hand-made arrays."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import balanced_keep
from raymia.attacks import AttackInputs, run_attacks
from raymia.attacks.metric import METRICS
from raymia.attacks.thresholds import best_threshold, class_thresholds


def softmax(z):
    e = [math.exp(v - max(z)) for v in z]
    return [v / sum(e) for v in e]


def reference_metric(name, z, y):
    """Per-example formulas of Song & Mittal, with their 1e-30 clip."""
    p = softmax(list(z))
    log = lambda v: math.log(max(v, 1e-30))  # noqa: E731
    if name == "correctness":
        return float(int(np.argmax(z)) == y)
    if name == "confidence":
        return p[y]
    if name == "entropy":
        return sum(pi * log(pi) for pi in p)
    if name == "modified_entropy":
        return -(-(1 - p[y]) * log(p[y]) - sum(p[i] * log(1 - p[i]) for i in range(len(p)) if i != y))
    if name == "loss":
        return log(p[y])
    raise KeyError(name)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metrics_match_the_per_example_formulas(name):
    gen = np.random.default_rng(1)
    logits = gen.normal(0, 3, (40, 5))
    logits[0] = [30, 0, 0, 0, 0]  # very confident and right
    logits[1] = [0, 30, 0, 0, 0]  # very confident and wrong
    labels = gen.integers(0, 5, 40)
    labels[:2] = 0
    got = METRICS[name](logits, labels)
    want = [reference_metric(name, z, y) for z, y in zip(logits, labels)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    batched = METRICS[name](np.stack([logits, logits[::-1]]), labels)  # (models, n, C)
    np.testing.assert_allclose(batched[0], got)


def reference_threshold(values, is_member):
    best, best_t = -1.0, None
    for t in sorted(set(values.tolist())):
        acc = 0.5 * ((values[is_member] >= t).mean() + (values[~is_member] < t).mean())
        if acc > best + 1e-12:
            best, best_t = acc, t
    return best_t


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=2, max_size=40))
def test_threshold_matches_brute_force_with_ties(pairs):
    values = np.array([v for v, _ in pairs], float)  # few distinct values: many ties
    is_member = np.array([m for _, m in pairs])
    if is_member.all() or not is_member.any():
        with pytest.raises(ValueError):
            best_threshold(values, is_member)
        return
    assert best_threshold(values, is_member) == reference_threshold(values, is_member)


def test_threshold_golden():
    values = np.array([0.1, 0.2, 0.3, 0.8, 0.9, 0.95])
    is_member = np.array([False, False, True, False, True, True])
    assert best_threshold(values, is_member) == 0.3  # 3/3 members >= 0.3, 2/3 non-members below


def test_class_thresholds_per_label_and_fallback():
    values = np.array([1, 2, 3, 4, 10, 20, 30, 40, 5, 6.0])
    is_member = np.array([0, 0, 1, 1, 0, 0, 1, 1, 1, 1], bool)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    got = class_thresholds(values, is_member, labels, 4)
    assert got[0] == 3 and got[1] == 30
    fallback = best_threshold(values, is_member)
    assert got[2] == fallback and got[3] == fallback  # class 2: members only; class 3: empty


def make_inputs(n=60, m=4, c=3, seed=0):
    gen = np.random.default_rng(seed)
    keep = balanced_keep(gen, m, 2 * n)
    labels = gen.integers(0, c, 2 * n)
    onehot = np.eye(c)[labels]
    shadow = gen.normal(0, 1, (m, 2 * n, c)) + 3 * onehot * keep[..., None]  # members: confident
    target_in = np.arange(n) < n // 2
    target = gen.normal(0, 1, (n, c)) + 3 * np.eye(c)[labels[:n]] * target_in[:, None]
    return AttackInputs(target, labels[:n], shadow, labels, keep), target_in


def test_every_metric_attack_scores_members_higher_on_separable_data():
    inputs, is_member = make_inputs()
    outputs = run_attacks(list(METRICS), inputs)
    assert {(o.attack, o.variant) for o in outputs} == {(a, v) for a in METRICS
                                                        for v in ("global", "class")}
    for out in outputs:
        assert out.scores.shape == (60,)
        assert out.scores[is_member].mean() > out.scores[~is_member].mean(), out.attack
        assert out.predicted[is_member].mean() > out.predicted[~is_member].mean()


def test_class_variant_is_the_margin_over_the_class_threshold():
    inputs, _ = make_inputs(seed=3)
    out = {(o.attack, o.variant): o for o in run_attacks(["loss"], inputs)}
    shadow_values = METRICS["loss"](inputs.shadow_logits, inputs.universe_labels).ravel()
    labels = np.broadcast_to(inputs.universe_labels, inputs.keep.shape).ravel()
    thresholds = class_thresholds(shadow_values, inputs.keep.ravel(), labels, 3)
    target = METRICS["loss"](inputs.target_logits, inputs.labels)
    np.testing.assert_allclose(out["loss", "class"].scores, target - thresholds[inputs.labels])
    np.testing.assert_array_equal(out["loss", "class"].predicted,
                                  target >= thresholds[inputs.labels])


def test_inputs_reject_mismatched_shapes():
    inputs, _ = make_inputs()
    with pytest.raises(ValueError, match="keep"):
        AttackInputs(inputs.target_logits, inputs.labels, inputs.shadow_logits,
                     inputs.universe_labels, inputs.keep[:, :-1])
    with pytest.raises(ValueError, match="labels"):
        AttackInputs(inputs.target_logits, inputs.labels[:-1], inputs.shadow_logits,
                     inputs.universe_labels, inputs.keep)
