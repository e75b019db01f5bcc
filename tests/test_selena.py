"""SELENA mechanisms: Split-AI assignment, hashed query routing, Split-AI
inference against a slow loop reference, distillation targets, and the
adaptive attack's features."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax

from raymia.config import ConfigError
from raymia.selena.mechanism import (
    adaptive_features,
    attacker_known_members,
    check_split_params,
    distillation_targets,
    orient,
    query_submodels,
    split_ai_probs,
    split_ai_weights,
    split_assignment,
    submodel_train_sets,
)

small_kl = st.integers(2, 8).flatmap(lambda K: st.tuples(st.just(K), st.integers(1, K - 1)))


# ---- parameters ---------------------------------------------------------------------------

@pytest.mark.parametrize("K, L, field", [(1, 1, "K"), (0, 1, "K"), (5, 0, "L"),
                                         (5, 5, "L"), (5, 7, "L")])
def test_bad_params_raise_config_error_naming_the_field(K, L, field):
    for call in (lambda: check_split_params(K, L), lambda: split_assignment(10, K, L, 0),
                 lambda: query_submodels(np.zeros((2, 3)), K, L, 0)):
        with pytest.raises(ConfigError) as err:
            call()
        assert err.value.where == field
        assert "\n" not in str(err.value)


def test_field_names_can_follow_the_config():
    with pytest.raises(ConfigError) as err:
        check_split_params(4, 4, k_name="n_models", l_name="n_excluded")
    assert err.value.where == "n_excluded" and "n_models" in err.value.message


def test_known_ratio_must_be_a_fraction():
    for ratio in (0.0, 1.0, -0.5, 2.0):
        with pytest.raises(ConfigError, match="known_ratio"):
            attacker_known_members(np.arange(10), 0, ratio)


# ---- assignment ---------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(kl=small_kl, n=st.integers(0, 60), seed=st.integers(0, 2**32))
def test_assignment_rows_have_L_and_columns_are_balanced(kl, n, seed):
    K, L = kl
    ex = split_assignment(n, K, L, seed)
    assert ex.shape == (n, K) and ex.dtype == bool
    assert (ex.sum(1) == L).all()
    counts = ex.sum(0)
    assert counts.max() - counts.min() <= 1 and counts.sum() == n * L
    assert counts.min() == (n * L) // K
    # balanced after any prefix too (the greedy fill's invariant)
    prefix = np.cumsum(ex, axis=0)
    assert (prefix.max(1) - prefix.min(1) <= 1).all()


def test_assignment_is_seeded_and_random():
    a, b = split_assignment(500, 25, 10, 7), split_assignment(500, 25, 10, 7)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, split_assignment(500, 25, 10, 8))
    # the sets vary: far more than K distinct subsets (a round-robin window would give <= K)
    assert len({row.tobytes() for row in a}) > 400


@settings(max_examples=40, deadline=None)
@given(kl=small_kl, n=st.integers(0, 40), seed=st.integers(0, 1000))
def test_submodel_k_trains_on_exactly_the_examples_it_does_not_exclude(kl, n, seed):
    K, L = kl
    ids = np.random.default_rng(seed).permutation(1000)[:n] + 5
    ex = split_assignment(n, K, L, seed)
    sets = submodel_train_sets(ids, ex)
    assert len(sets) == K
    for k in range(K):
        expected = {int(ids[i]) for i in range(n) if not ex[i, k]}
        assert set(sets[k].tolist()) == expected and len(sets[k]) == len(expected)
    # every example is trained on by exactly K - L submodels
    for i in range(n):
        assert sum(int(ids[i]) in set(s.tolist()) for s in sets) == K - L


# ---- hashed routing of queries ------------------------------------------------------------

def test_query_submodels_are_L_distinct_sorted_and_deterministic():
    x = np.random.default_rng(0).normal(size=(300, 4, 5))
    q = query_submodels(x, 25, 10, salt=3)
    assert q.shape == (300, 10) and q.dtype == np.int64
    assert (np.diff(q, axis=1) > 0).all() and q.min() >= 0 and q.max() < 25
    assert np.array_equal(q, query_submodels(x, 25, 10, salt=3))
    assert np.array_equal(q, query_submodels(x.copy(order="F"), 25, 10, salt=3))


def test_same_query_same_submodels_whatever_the_batch():
    x = np.random.default_rng(1).normal(size=(50, 7)).astype(np.float32)
    full = query_submodels(x, 9, 4, salt=11)
    perm = np.random.default_rng(2).permutation(50)
    assert np.array_equal(query_submodels(x[perm], 9, 4, salt=11), full[perm])
    for i in (0, 17, 49):
        assert np.array_equal(query_submodels(x[i:i + 1], 9, 4, salt=11)[0], full[i])
    dup = np.concatenate([x[:5], x[:5], x[20:23]])
    assert np.array_equal(query_submodels(dup, 9, 4, salt=11),
                          np.concatenate([full[:5], full[:5], full[20:23]]))


def test_dtype_is_normalised_to_float32():
    x = np.random.default_rng(3).normal(size=(20, 6)).astype(np.float32)
    base = query_submodels(x, 10, 3, salt=0)
    assert np.array_equal(query_submodels(x.astype(np.float64), 10, 3, salt=0), base)
    ints = np.arange(12).reshape(3, 4)
    assert np.array_equal(query_submodels(ints, 10, 3, 0),
                          query_submodels(ints.astype(np.float32), 10, 3, 0))
    # -0.0 and 0.0 are the same number, so the same query
    z = np.zeros((1, 4), np.float32)
    assert np.array_equal(query_submodels(z, 10, 3, 0), query_submodels(-z, 10, 3, 0))


def test_salt_and_small_changes_give_independent_choices():
    x = np.random.default_rng(4).normal(size=(400, 8)).astype(np.float32)
    a, b = query_submodels(x, 25, 10, salt=1), query_submodels(x, 25, 10, salt=2)
    assert (a != b).any(axis=1).mean() > 0.95
    nudged = x.copy()
    nudged[:, 0] = np.nextafter(nudged[:, 0], np.float32(np.inf))  # one ulp
    c = query_submodels(nudged, 25, 10, salt=1)
    assert (a != c).any(axis=1).mean() > 0.95
    # overlap of two independent 10-of-25 sets is 4 on average
    overlap = np.mean([len(set(r) & set(s)) for r, s in zip(a, c)])
    assert 3.5 < overlap < 4.5


def test_query_choices_are_uniform_over_submodels():
    x = np.random.default_rng(5).normal(size=(5000, 3))
    q = query_submodels(x, 10, 3, salt=9)
    freq = np.bincount(q.ravel(), minlength=10) / len(q)
    np.testing.assert_allclose(freq, 0.3, atol=0.03)


def test_empty_batch():
    assert query_submodels(np.zeros((0, 5)), 4, 2, 0).shape == (0, 2)


# ---- Split-AI inference -------------------------------------------------------------------

def slow_split_ai(sub_logits, eval_ids, train_ids, excluded, x_eval, L, salt):
    """The obvious loop: one eval example at a time."""
    K, n, C = sub_logits.shape
    out = np.zeros((n, C))
    for i in range(n):
        hits = [j for j, t in enumerate(train_ids) if t == eval_ids[i]]
        if hits:
            models = [k for k in range(K) if excluded[hits[0], k]]
        else:
            models = list(query_submodels(x_eval[i:i + 1], K, L, salt)[0])
        assert len(models) == L
        out[i] = np.mean([softmax(sub_logits[k, i].astype(np.float64)) for k in models], axis=0)
    return out


def make_case(seed, K=6, L=2, n_train=15, n_other=9, C=4, d=3):
    gen = np.random.default_rng(seed)
    train_ids = gen.permutation(100)[:n_train]
    others = np.arange(100, 100 + n_other)  # ids that are not training members
    excluded = split_assignment(n_train, K, L, seed)
    eval_ids = gen.permutation(np.concatenate([train_ids[: n_train // 2 + 1], others]))
    x_eval = gen.normal(size=(len(eval_ids), d)).astype(np.float32)
    sub_logits = gen.normal(size=(K, len(eval_ids), C)).astype(np.float32) * 3
    return sub_logits, eval_ids, train_ids, excluded, x_eval


@settings(max_examples=40, deadline=None)
@given(kl=small_kl, seed=st.integers(0, 10_000), n_train=st.integers(0, 12),
       n_other=st.integers(0, 6), C=st.integers(1, 5))
def test_split_ai_matches_the_slow_reference(kl, seed, n_train, n_other, C):
    K, L = kl
    case = make_case(seed, K, L, n_train, n_other, C)
    fast = split_ai_probs(*case, L, salt=seed)
    np.testing.assert_allclose(fast, slow_split_ai(*case, L, seed), rtol=1e-12, atol=1e-12)
    if len(fast):
        np.testing.assert_allclose(fast.sum(1), 1.0)


def test_member_averages_exactly_its_L_excluding_submodels():
    sub_logits, eval_ids, train_ids, excluded, x_eval = make_case(0, K=5, L=2)
    probs = split_ai_probs(sub_logits, eval_ids, train_ids, excluded, x_eval, 2, 0)
    w = split_ai_weights(eval_ids, train_ids, excluded, x_eval, 2, 0)
    for i, sid in enumerate(eval_ids):
        j = np.flatnonzero(train_ids == sid)
        if len(j):
            np.testing.assert_array_equal(w[i] > 0, excluded[j[0]])
            ks = np.flatnonzero(excluded[j[0]])
            expect = softmax(sub_logits[ks, i].astype(np.float64), axis=1).mean(0)
            np.testing.assert_allclose(probs[i], expect, rtol=1e-12)
    assert np.allclose(w.sum(1), 1.0) and ((w > 0).sum(1) == 2).all()


def test_member_answer_ignores_submodels_that_trained_on_it():
    sub_logits, eval_ids, train_ids, excluded, x_eval = make_case(1, K=5, L=2)
    base = split_ai_probs(sub_logits, eval_ids, train_ids, excluded, x_eval, 2, 0)
    i = int(np.flatnonzero(np.isin(eval_ids, train_ids))[0])
    j = int(np.flatnonzero(train_ids == eval_ids[i])[0])
    changed = sub_logits.copy()
    changed[~excluded[j], i] += np.random.default_rng(0).normal(size=(5 - 2, 4)) * 10
    assert np.allclose(split_ai_probs(changed, eval_ids, train_ids, excluded, x_eval, 2, 0), base)


def test_non_member_answer_depends_only_on_its_bytes():
    sub_logits, eval_ids, train_ids, excluded, x_eval = make_case(2, K=7, L=3, n_other=20)
    probs = split_ai_probs(sub_logits, eval_ids, train_ids, excluded, x_eval, 3, 5)
    perm = np.random.default_rng(3).permutation(len(eval_ids))
    permuted = split_ai_probs(sub_logits[:, perm], eval_ids[perm], train_ids, excluded,
                              x_eval[perm], 3, 5)
    np.testing.assert_allclose(permuted, probs[perm], rtol=1e-12)
    # the same bytes under a different (non-member) id: the same submodels
    others = np.flatnonzero(~np.isin(eval_ids, train_ids))
    relabelled = eval_ids.copy()
    relabelled[others] += 1000
    w = split_ai_weights(eval_ids, train_ids, excluded, x_eval, 3, 5)
    w2 = split_ai_weights(relabelled, train_ids, excluded, x_eval, 3, 5)
    np.testing.assert_array_equal(w, w2)
    # and a repeated query gets the same answer, so averaging repeats reveals nothing
    twice = np.concatenate([others, others])
    w3 = split_ai_weights(eval_ids[twice], train_ids, excluded, x_eval[twice], 3, 5)
    np.testing.assert_array_equal(w3[: len(others)], w3[len(others):])


def test_split_ai_checks_its_inputs():
    sub_logits, eval_ids, train_ids, excluded, x_eval = make_case(3)
    with pytest.raises(ValueError, match="x_eval is needed"):
        split_ai_probs(sub_logits, eval_ids, train_ids, excluded, None, 2, 0)
    with pytest.raises(ValueError, match="sub_logits"):
        split_ai_probs(sub_logits[:-1], eval_ids, train_ids, excluded, x_eval, 2, 0)
    with pytest.raises(ValueError, match="exactly L"):
        split_ai_probs(sub_logits, eval_ids, train_ids, excluded, x_eval, 3, 0)
    with pytest.raises(ValueError, match="duplicates"):
        dup = train_ids.copy()
        dup[1] = dup[0]
        split_ai_probs(sub_logits, eval_ids, dup, excluded, x_eval, 2, 0)
    with pytest.raises(ValueError, match="does not match"):
        split_ai_probs(sub_logits, eval_ids, train_ids[:-1], excluded, x_eval, 2, 0)


def test_members_only_need_no_inputs():
    sub_logits, _, train_ids, excluded, _ = make_case(4)
    ids = train_ids[:5]
    out = split_ai_probs(sub_logits[:, :5], ids, train_ids, excluded, None, 2, 0)
    assert out.shape == (5, 4)


# ---- self-distillation targets ------------------------------------------------------------

def test_distillation_targets_are_the_members_split_ai_probabilities():
    gen = np.random.default_rng(6)
    K, L, n, C = 5, 2, 12, 3
    excluded = split_assignment(n, K, L, 1)
    logits = gen.normal(size=(K, n, C)) * 2
    t = distillation_targets(logits, excluded)
    assert t.shape == (n, C) and t.dtype == np.float32
    ids = gen.permutation(50)[:n]
    ref = slow_split_ai(logits, ids, ids, excluded, None, L, 0)
    np.testing.assert_allclose(t, ref, rtol=1e-6)
    np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-6)


# ---- adaptive attack ----------------------------------------------------------------------

def test_attacker_knows_a_seeded_half_of_the_members():
    members = np.random.default_rng(0).permutation(1000)[:101] + 3
    known, unknown = attacker_known_members(members, seed=4)
    assert len(known) == 50 and len(unknown) == 51
    assert np.array_equal(np.sort(np.concatenate([known, unknown])), np.sort(members))
    assert not set(known) & set(unknown)
    again = attacker_known_members(members, seed=4)
    assert np.array_equal(again[0], known) and np.array_equal(again[1], unknown)
    assert not np.array_equal(attacker_known_members(members, seed=5)[0], known)
    k3, u3 = attacker_known_members(members, seed=4, known_ratio=0.3)
    assert len(k3) == 30 and len(u3) == 71


def test_adaptive_features_golden_values():
    q = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    s = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    f = adaptive_features(q, s, np.array([0, 2]))
    np.testing.assert_allclose(f["ce"], [np.log(2), -(0.04 * 0 + 0.2 * np.log(0.2)
                                                      + 0.3 * np.log(0.3) + 0.5 * np.log(0.5))])
    np.testing.assert_allclose(f["l2"], [0.5, 0.0])
    np.testing.assert_allclose(f["nn_diff"], [[0.5, -0.5, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1]])
    np.testing.assert_allclose(f["nn_both"][1], [0.2, 0.3, 0.5, 0.2, 0.3, 0.5, 0, 0, 1])
    # a zero SELENA probability under shadow mass is floored, not infinite
    g = adaptive_features(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([1]))
    np.testing.assert_allclose(g["ce"], [-np.log(1e-30)])


def test_adaptive_features_check_shapes():
    with pytest.raises(ValueError):
        adaptive_features(np.ones((3, 2)) / 2, np.ones((3, 3)) / 3, np.zeros(3, int))
    with pytest.raises(ValueError):
        adaptive_features(np.ones((3, 2)) / 2, np.ones((3, 2)) / 2, np.zeros(2, int))


def test_orient_picks_the_direction_on_training_data():
    gen = np.random.default_rng(7)
    member = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    low_for_members = np.where(member, gen.normal(0, 1, 400), gen.normal(2, 1, 400))
    assert orient(low_for_members, member) == -1
    assert orient(-low_for_members, member) == 1
    assert orient(np.zeros(400), member) == 1  # no signal: a tie keeps +1


def test_adaptive_pipeline_end_to_end_shapes():
    """The attacker's shadow Split-AI answers through the same function."""
    gen = np.random.default_rng(8)
    K, L, C = 6, 2, 4
    members = np.arange(40)
    known, unknown = attacker_known_members(members, seed=0)
    shadow_ex = split_assignment(len(known), K, L, seed=123)
    eval_ids = np.concatenate([known, unknown, np.arange(100, 120)])
    x = gen.normal(size=(len(eval_ids), 5))
    shadow_logits = gen.normal(size=(K, len(eval_ids), C))
    s = split_ai_probs(shadow_logits, eval_ids, known, shadow_ex, x, L, salt=99)
    w = split_ai_weights(eval_ids, known, shadow_ex, x, L, salt=99)
    assert np.array_equal(w[: len(known)] > 0, shadow_ex)  # known members: member mode
    q = softmax(gen.normal(size=(len(eval_ids), C)), axis=1)
    f = adaptive_features(q, s, gen.integers(0, C, len(eval_ids)))
    assert f["ce"].shape == f["l2"].shape == (len(eval_ids),)
    assert f["nn_diff"].shape == (len(eval_ids), 2 * C)
    assert f["nn_both"].shape == (len(eval_ids), 3 * C)
