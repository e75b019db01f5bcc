import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raymia import ConfigError, SplitConfig
from raymia.data.splits import make_splits
from raymia.seeding import derive_seed


@settings(max_examples=40, deadline=None)
@given(n_members=st.integers(10, 40), pool=st.integers(0, 30), val=st.integers(0, 20),
       half=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_sets_are_disjoint_and_keep_is_balanced(n_members, pool, val, half, seed):
    n = 2 * n_members + pool + 2 * val + 7
    pool = min(pool, (2 * half - 2) * n_members)  # enough shadow places for every example
    s = make_splits(n, SplitConfig(n_members, pool, val), 2 * half, seed)
    sets = [s.members, s.nonmembers, s.shadow_pool, s.validation, s.shadow_holdout]
    assert [len(x) for x in sets] == [n_members, n_members, pool, val, val]
    everything = np.concatenate(sets)
    assert len(np.unique(everything)) == len(everything)  # disjoint
    assert everything.min() >= 0 and everything.max() < n
    assert s.keep.shape == (2 * half, 2 * n_members + pool)
    assert (s.keep.sum(1) == n_members).all()  # every shadow trains on as many as the target
    ins = s.keep.sum(0)
    assert ins.max() - ins.min() <= 1  # columns balanced to within one model
    assert (ins >= 1).all() and (ins < 2 * half).all()  # every example has IN and OUT models
    if pool == 0:
        assert (ins == half).all()  # LiRA's design: IN for exactly half the models
    np.testing.assert_array_equal(s.universe[: 2 * n_members], s.audit)
    assert s.audit_is_member.sum() == n_members


def test_same_seed_same_splits_other_seed_other_splits():
    cfg = SplitConfig(50, 20, 10)
    a, b, c = (make_splits(500, cfg, 8, seed) for seed in (1, 1, 2))
    np.testing.assert_array_equal(a.members, b.members)
    np.testing.assert_array_equal(a.keep, b.keep)
    assert not np.array_equal(a.members, c.members)


def test_impossible_split_is_a_config_error_naming_the_sizes():
    with pytest.raises(ConfigError, match=r"^split: needs 230 examples .* digits holds 200$"):
        make_splits(200, SplitConfig(100, 30, 0), 4, 0, "digits")
    with pytest.raises(ConfigError, match="shadows.n_models"):
        make_splits(200, SplitConfig(10), 3, 0)


def test_shadow_models_train_on_as_many_examples_as_the_target_with_a_pool():
    s = make_splits(1797, SplitConfig(150, 150, 0), 64, 0)
    assert (s.keep.sum(1) == 150).all()
    assert set(s.keep.sum(0)) == {21, 22}  # 64 * 150 / 450 = 21.3
    other = make_splits(1797, SplitConfig(150, 150, 0), 64, 1)
    assert not np.array_equal(s.keep, other.keep)


def test_too_few_shadow_places_for_the_universe_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^shadows.n_models: 2 shadow models of 10 examples "
                                          r"each .* 30 universe .* at least 3$"):
        make_splits(200, SplitConfig(10, 10, 0), 2, 0)


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(7, "shadow", 3) == derive_seed(7, "shadow", 3)
    seeds = {derive_seed(7, "shadow", i) for i in range(100)} | {derive_seed(7, "target")}
    assert len(seeds) == 101
    assert all(0 <= s < 2**63 for s in seeds)
