"""MemGuard's mechanisms (raymia.outputs.memguard) on synthetic logits."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import softmax

from raymia.config import ConfigError
from raymia.outputs.memguard import (
    memguard,
    memguard_chunks,
    memguard_search,
    release,
    release_probability,
    train_defender_classifier,
)

torch.set_num_threads(1)
C = 10


def make_logits(gen, n, confidence):
    """Logits whose top class stands `confidence` (+ noise) above the rest."""
    z = gen.normal(size=(n, C))
    z[np.arange(n), gen.integers(0, C, n)] += confidence + gen.normal(size=n)
    return z


@pytest.fixture(scope="module")
def data():
    gen = np.random.default_rng(0)
    members, nonmembers = make_logits(gen, 300, 6.0), make_logits(gen, 300, 3.0)
    clf = train_defender_classifier(members, nonmembers, seed=0, epochs=15)
    queries = np.concatenate([make_logits(gen, 60, 6.0), make_logits(gen, 60, 3.0)])
    return clf, queries, memguard_search(queries, clf)  # the original's settings


def scores(clf, probs):
    with torch.no_grad():
        return torch.sigmoid(clf(torch.as_tensor(probs, dtype=torch.float32))).numpy()


def test_classifier_learns_and_is_deterministic(data):
    clf, queries, _ = data
    s = scores(clf, softmax(queries, axis=1))
    assert ((s > 0.5) == (np.arange(120) < 60)).mean() > 0.75
    gen = np.random.default_rng(1)
    m, k = make_logits(gen, 40, 6.0), make_logits(gen, 25, 3.0)  # unbalanced on purpose
    a, b = (train_defender_classifier(m, k, seed=3, epochs=2) for _ in range(2))
    c = train_defender_classifier(m, k, seed=4, epochs=2)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


logit_values = st.one_of(st.floats(-40, 40, allow_nan=False), st.integers(-2, 2).map(float))


@settings(max_examples=25, deadline=None)
@given(logits=arrays(np.float64, st.tuples(st.integers(1, 6), st.just(C)), elements=logit_values),
       epsilon=st.sampled_from([0.3, math.inf]))
def test_labels_never_change(data, logits, epsilon):
    clf, _, _ = data
    out = memguard(logits, clf, epsilon=epsilon, seed=0, max_iter=40, c3_rounds=3)
    np.testing.assert_array_equal(out.argmax(1), softmax(logits, axis=1).argmax(1))


def test_labels_kept_against_a_classifier_that_wants_them_changed():
    class WantsClassOne(torch.nn.Module):  # reaches 0.5 only when p_1 >= p_0
        def forward(self, probs):
            return 10 * (probs[:, 1] - probs[:, 0])

    logits = np.zeros((5, 3))
    logits[:, 0] = np.linspace(0.5, 3, 5)
    search = memguard_search(logits, WantsClassOne(), max_iter=50, c3_rounds=2)
    assert (search.rounds == 0).all()
    np.testing.assert_array_equal(search.noisy, search.original)
    out = memguard(logits, WantsClassOne(), epsilon=math.inf, seed=0, max_iter=50, c3_rounds=2)
    assert (out.argmax(1) == 0).all()


def test_outputs_are_probability_vectors(data):
    clf, queries, search = data
    out = memguard(queries, clf, epsilon=1.0, seed=0)
    assert out.shape == queries.shape and out.dtype == np.float64
    assert (out >= 0).all() and (out <= 1).all()
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(out, release(search, epsilon=1.0, seed=0))


@pytest.mark.parametrize("epsilon", [0.5, math.inf])
def test_classifier_output_moves_toward_one_half(data, epsilon):
    clf, queries, search = data
    before = np.abs(scores(clf, softmax(queries, axis=1)) - 0.5)
    after = np.abs(scores(clf, release(search, epsilon=epsilon, seed=0)) - 0.5)
    assert after.mean() < before.mean() - 0.05
    assert (after <= before + 1e-5).all()  # noise is released only where it helps
    if epsilon == math.inf:
        assert after.mean() < 0.1


def test_search_finds_noise_and_keeps_the_least_distorted(data):
    clf, queries, search = data
    assert (search.rounds > 0).mean() > 0.9
    fewer = memguard_search(queries, clf, c3_rounds=1)
    both = (search.rounds > 1) & (fewer.rounds == 1)
    assert both.any()
    assert (search.distortion[both] <= fewer.distortion[both] + 1e-9).mean() > 0.9


def test_chunks_give_the_whole_batch(data):
    clf, queries, search = data
    ids = np.arange(1000, 1000 + len(queries))
    whole = release(search, epsilon=0.3, seed=5, row_ids=ids)
    pieces = memguard_chunks(queries, 70, row_ids=ids)
    assert [len(i) for i, _ in pieces] == [70, 50]
    parts = np.concatenate([memguard(z, clf, epsilon=0.3, seed=5, row_ids=i)
                            for i, z in pieces])
    np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-9)
    # the same choice to release noise for every query
    moved = np.abs(whole - search.original).sum(1) > 0
    assert 0 < moved.sum() < len(moved)
    np.testing.assert_array_equal(np.abs(parts - search.original).sum(1) > 0, moved)


def test_deterministic_given_seed(data):
    clf, queries, search = data
    again = memguard_search(queries, clf)
    np.testing.assert_array_equal(again.noisy, search.noisy)
    a = release(search, epsilon=0.2, seed=1)
    np.testing.assert_array_equal(a, release(again, epsilon=0.2, seed=1))
    assert not np.array_equal(a, release(search, epsilon=0.2, seed=2))


@pytest.mark.parametrize("epsilon", [0.1, 0.3])
def test_expected_distortion_within_budget(data, epsilon):
    _, _, search = data
    p = release_probability(search, epsilon)
    assert (p * search.distortion <= epsilon + 1e-12).all()  # per query, in expectation
    assert (p < 1).any()  # the budget binds somewhere
    for seed in range(5):
        out = release(search, epsilon=epsilon, seed=seed)
        distortion = np.abs(out - search.original).sum(1)
        spread = np.sqrt((p * (1 - p) * search.distortion ** 2).sum()) / len(p)
        assert distortion.mean() <= epsilon + 3 * spread + 1e-12


def test_zero_budget_releases_the_original(data):
    clf, queries, search = data
    np.testing.assert_array_equal(memguard(queries, clf, epsilon=0.0, seed=0),
                                  softmax(queries, axis=1))
    np.testing.assert_array_equal(release(search, epsilon=0.0, seed=0), search.original)


@pytest.mark.parametrize("changes, where", [
    ({"epsilon": -0.1}, "epsilon"), ({"epsilon": float("nan")}, "epsilon"),
    ({"epsilon": "big"}, "epsilon"), ({"max_iter": 0}, "max_iter"), ({"c1": 0.0}, "c1"),
    ({"c2": -1.0}, "c2"), ({"c3": 0.0}, "c3"), ({"c3_factor": 0.5}, "c3_factor"),
    ({"c3_rounds": 0}, "c3_rounds"), ({"lr": 0.0}, "lr"), ({"row_ids": np.arange(3)}, "row_ids"),
    ({"row_ids": -np.arange(4)}, "row_ids"),
    ({"logits": np.full((2, 10), np.inf)}, "logits"), ({"logits": np.zeros((4, 1))}, "logits"),
])
def test_bad_parameters(data, changes, where):
    clf, queries, _ = data
    kwargs = {"logits": queries[:4], "classifier": clf, "epsilon": 0.5, "seed": 0} | changes
    with pytest.raises(ConfigError) as err:
        memguard(**kwargs)
    assert err.value.where == where and "\n" not in str(err.value)


@pytest.mark.parametrize("changes, where", [
    ({"epochs": 0}, "epochs"), ({"lr": -1.0}, "lr"), ({"batch_size": 0}, "batch_size"),
    ({"nonmember_logits": np.zeros((3, 4))}, "nonmember_logits"),
    ({"member_logits": np.zeros((0, 10))}, "member_logits"),
])
def test_bad_classifier_parameters(changes, where):
    kwargs = {"member_logits": np.zeros((3, 10)), "nonmember_logits": np.ones((3, 10)),
              "seed": 0} | changes
    with pytest.raises(ConfigError) as err:
        train_defender_classifier(**kwargs)
    assert err.value.where == where


def test_chunk_size_checked():
    with pytest.raises(ConfigError, match="chunk_size"):
        memguard_chunks(np.zeros((3, 10)), 0)
