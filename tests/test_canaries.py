"""Canaries (split.canaries): drawn with the splits, relabeled, reported apart."""
import numpy as np
import pytest

from raymia import ConfigError, SplitConfig
from raymia.config import ShadowConfig
from raymia.data.canaries import CANARIES, relabel, relabeled
from raymia.data.splits import make_splits
from raymia.execution.inprocess import InProcessExecutor
from raymia.experiment import make_jobs, run_trial

from conftest import tiny_experiment


def test_canaries_join_the_audit_set_half_members_and_leave_the_population_as_drawn():
    plain = make_splits(1000, SplitConfig(60, 0, 10), 8, 3)
    s = make_splits(1000, SplitConfig(60, 0, 10, canaries=30), 8, 3)
    for name in ("shadow_pool", "validation", "shadow_holdout"):
        np.testing.assert_array_equal(getattr(s, name), getattr(plain, name))
    np.testing.assert_array_equal(s.members[:60], plain.members)  # the population as drawn
    np.testing.assert_array_equal(s.nonmembers[:60], plain.nonmembers)
    assert len(s.canaries) == 30 and len(np.unique(s.canaries)) == 30
    np.testing.assert_array_equal(s.members[60:], s.canaries[:15])  # half of them members
    np.testing.assert_array_equal(s.nonmembers[60:], s.canaries[15:])
    others = np.concatenate([plain.audit, s.shadow_pool, s.validation, s.shadow_holdout])
    assert not np.isin(s.canaries, others).any()
    assert s.audit_is_canary.sum() == 30 and s.audit_is_canary[60:75].all()
    assert (s.keep.sum(1) == 75).all()  # shadows train on as many examples as the target
    ins = s.keep[:, np.isin(s.universe, s.canaries)].sum(0)
    assert (ins == 4).all()  # IN for exactly half, like every audit example without a pool


def test_which_canaries_are_members_is_drawn_from_the_seed():
    a, b = (make_splits(1000, SplitConfig(60, canaries=40), 8, seed) for seed in (1, 2))
    assert set(a.members[60:]) != set(b.members[60:])


def test_odd_or_too_many_canaries_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^split.canaries: must be even"):
        SplitConfig(60, canaries=3)
    with pytest.raises(ConfigError, match=r"^split: needs 130 examples .*10 canaries\) but"):
        make_splits(129, SplitConfig(60, canaries=10), 4, 0)
    with pytest.raises(ConfigError, match=r"^split.canary_kind"):
        SplitConfig(60, canaries=2, canary_kind="loud")


def test_mislabeled_canaries_take_another_class_in_every_model_and_in_the_attacks(digits):
    s = make_splits(len(digits), SplitConfig(60, canaries=40), 4, 0)
    change = relabel(s.canaries, digits.y, digits.n_classes, "mislabeled", 0)
    assert (change.labels != digits.y[s.canaries]).all()
    assert ((change.labels >= 0) & (change.labels < 10)).all()
    assert len(set(change.labels - digits.y[s.canaries])) > 1  # not one fixed shift
    data = relabeled(digits, change)
    np.testing.assert_array_equal(data.y[s.canaries], change.labels)
    assert (np.delete(data.y, s.canaries) == np.delete(digits.y, s.canaries)).all()
    jobs = make_jobs(tiny_experiment(split=SplitConfig(60, canaries=40)), s, relabel=change)
    assert all(job.relabel is change for job in jobs)


def test_attacks_report_on_the_canaries_apart_and_utility_on_the_population(digits):
    exp = tiny_experiment(split=SplitConfig(n_members=60, canaries=20), attacks=("loss", "lira"),
                          shadows=ShadowConfig(n_models=4, models_per_job=4))
    tables = run_trial(exp, digits, InProcessExecutor(digits))
    attacks, scores, trial = tables["attacks"], tables["scores"], tables["trials"].iloc[0]
    assert set(attacks.eval_set) == {"original", CANARIES}
    canary = attacks[attacks.eval_set == CANARIES]
    assert (canary.n_members == 10).all() and (canary.n_nonmembers == 10).all()
    assert (attacks[attacks.eval_set == "original"].n_members == 60).all()
    assert set(canary.attack) == {"loss", "lira", "attacker_choice"}
    s = make_splits(len(digits), exp.split, 4, exp.seed)
    ids = scores[scores.eval_set == CANARIES].sample_id
    assert set(ids) == set(s.canaries)
    assert not scores[scores.eval_set == "original"].sample_id.isin(s.canaries).any()
    assert trial.n_canaries == 20 and trial.n_members == 60 and trial.n_nonmembers == 60
    # the signals judge the canaries by their new labels: the target gets the
    # non-member canaries wrong (70% right under their true labels) and has
    # begun to memorise its member canaries
    signals = tables["signals"][tables["signals"].role == "target"]
    ins = signals[signals.sample_id.isin(s.canaries[:10])].correct.mean()
    outs = signals[signals.sample_id.isin(s.canaries[10:])].correct.mean()
    assert outs <= 0.2 and ins > outs


def test_without_canaries_the_trial_id_is_the_one_before_canaries_existed():
    assert tiny_experiment().trial_id == "ec4c3f975fad"
    assert tiny_experiment(split=SplitConfig(60, canaries=2)).trial_id != "ec4c3f975fad"
