"""Learned attacks: trained on shadow outputs, applied to the target."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from conftest import balanced_keep
from raymia import ConfigError, Experiment, ReferenceConfig
from raymia.attacks import AttackInputs, run_attacks
from raymia.attacks.learned import nn, shokri, top3


def inputs(m=4, n=200, c=3, seed=0, flip_class=None):
    """Members confident in their class; with `flip_class`, that class's members
    are the *less* confident ones, which only a per-class model can learn."""
    gen = np.random.default_rng(seed)
    keep = balanced_keep(gen, m, 2 * n)
    labels = gen.integers(0, c, 2 * n)
    onehot = np.eye(c)[labels]

    def logits(member):  # member: (..., k) bool
        boost = np.where(member, 3.0, 1.0)
        if flip_class is not None:
            boost = np.where(labels[: member.shape[-1]] == flip_class, 4.0 - boost, boost)
        return gen.normal(0, 0.3, member.shape + (c,)) + boost[..., None] * onehot[: member.shape[-1]]

    is_member = np.arange(n) < n // 2
    return AttackInputs(logits(is_member), labels[:n], logits(keep), labels, keep), is_member


@pytest.mark.parametrize("attack", [shokri, nn, top3])
@pytest.mark.parametrize("model", ["mlp", "logistic", "gboost"])
def test_learned_attacks_find_confident_members(attack, model):
    data, is_member = inputs()
    (out,) = attack(data, model)
    assert out.variant == model and out.threshold == 0.5
    assert ((0 <= out.scores) & (out.scores <= 1)).all()
    if not (attack is nn and model == "logistic"):  # a linear model cannot pair output and label
        assert roc_auc_score(is_member, out.scores) > 0.9


def test_shokri_learns_each_class_on_its_own():
    data, is_member = inputs(flip_class=1, seed=2)
    (per_class,) = shokri(data, "gboost")
    for c in range(3):
        sel = data.labels == c
        assert roc_auc_score(is_member[sel], per_class.scores[sel]) > 0.9, c
    (pooled,) = top3(data, "gboost")  # class-agnostic: confused by the flipped class
    sel = data.labels == 1
    assert roc_auc_score(is_member[sel], pooled.scores[sel]) < 0.5


def test_a_class_missing_from_shadow_data_uses_the_all_class_model():
    data, _ = inputs(c=3)
    labels = data.labels.copy()
    labels[:5] = 2
    universe = data.universe_labels.copy()
    universe[universe == 2] = 0  # no shadow example of class 2
    logits = data.target_logits
    data = AttackInputs(logits, labels, data.shadow_logits, universe, data.keep)
    (out,) = shokri(data, "logistic")
    assert np.isfinite(out.scores).all()


def test_learned_attacks_are_deterministic():
    data, _ = inputs()
    a = run_attacks(["shokri", "nn", "top3"], data, ReferenceConfig())
    b = run_attacks(["shokri", "nn", "top3"], data, ReferenceConfig())
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.scores, y.scores)


def test_unknown_attack_model_is_a_config_error():
    with pytest.raises(ConfigError, match="^reference.attack_model: unknown value 'svm'"):
        Experiment.from_dict({"reference": {"attack_model": "svm"}})
