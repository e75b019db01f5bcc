import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raymia import ConfigError, SplitConfig
from raymia.data.splits import make_splits
from raymia.seeding import derive_seed


@settings(max_examples=40, deadline=None)
@given(n_members=st.integers(1, 40), pool=st.integers(0, 30), val=st.integers(0, 20),
       half=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_sets_are_disjoint_and_keep_is_balanced(n_members, pool, val, half, seed):
    n = 2 * n_members + pool + 2 * val + 7
    s = make_splits(n, SplitConfig(n_members, pool, val), 2 * half, seed)
    sets = [s.members, s.nonmembers, s.shadow_pool, s.validation, s.shadow_holdout]
    assert [len(x) for x in sets] == [n_members, n_members, pool, val, val]
    everything = np.concatenate(sets)
    assert len(np.unique(everything)) == len(everything)  # disjoint
    assert everything.min() >= 0 and everything.max() < n
    assert s.keep.shape == (2 * half, 2 * n_members + pool)
    assert (s.keep.sum(0) == half).all()  # every example IN for exactly half the models
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


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(7, "shadow", 3) == derive_seed(7, "shadow", 3)
    seeds = {derive_seed(7, "shadow", i) for i in range(100)} | {derive_seed(7, "target")}
    assert len(seeds) == 101
    assert all(0 <= s < 2**63 for s in seeds)
