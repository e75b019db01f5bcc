"""Label-only attacks: query augmentations, scores and thresholds against slow,
obvious references, and the query-only boundary distance against linear models
whose exact L2 distance is known."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from raymia.attacks.boundary import boundary_distance
from raymia.attacks.label_only import (
    UNREACHED,
    augmentation_attack,
    augmentation_scores,
    boundary_attack,
    boundary_scores,
    choose_flips,
    fit_threshold,
    noise_attack,
)
from raymia.attacks.thresholds import best_threshold
from raymia.augment import (
    AUGMENTATIONS,
    check_augmentations,
    check_binary,
    n_queries,
    queries,
    shift_offsets,
    translate,
)
from raymia.config import ConfigError

torch.set_num_threads(1)
FAST = settings(max_examples=40, deadline=None)


# ---------------------------------------------------------------- augmentations

def slow_translate(img, i, j):
    """(H, W) list-of-lists reference: out[h][w] = img[h - i][w - j] or 0."""
    h, w = len(img), len(img[0])
    return [[img[r - i][c - j] if 0 <= r - i < h and 0 <= c - j < w else 0.0
             for c in range(w)] for r in range(h)]


@FAST
@given(st.integers(1, 6), st.integers(1, 6), st.integers(-7, 7), st.integers(-7, 7))
def test_translate_moves_pixels_with_zero_padding(h, w, i, j):
    img = torch.arange(1.0, h * w + 1).reshape(h, w)
    assert translate(img, i, j).tolist() == slow_translate(img.tolist(), i, j)


def test_translate_example_by_hand():
    img = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert translate(img, 1, 0).tolist() == [[0, 0], [1, 2]]
    assert translate(img, 0, -1).tolist() == [[2, 0], [4, 0]]


@pytest.mark.parametrize("d", [1, 2, 3])
def test_shift_offsets_are_the_4d_translations_of_l1_norm_d(d):
    offsets = shift_offsets(d)
    assert len(offsets) == len(set(offsets)) == 4 * d
    assert all(abs(i) + abs(j) == d for i, j in offsets)


def test_image_queries_shapes_order_and_determinism():
    x = torch.rand(5, 3, 6, 7, generator=torch.Generator().manual_seed(0))
    names = ["identity", "hflip", "shift"]
    q = queries(x, names, shift=2)
    assert q.shape == (1 + 1 + 8, 5, 3, 6, 7) and n_queries(names, shift=2) == 10
    assert torch.equal(q[0], x) and torch.equal(q[1], x.flip(-1))
    for a, (i, j) in enumerate(shift_offsets(2)):
        assert torch.equal(q[2 + a], translate(x, i, j))
    assert torch.equal(q, queries(x, names, shift=2))


def test_hflip_twice_is_identity():
    x = torch.rand(4, 2, 5, 5)
    once = queries(x, ["hflip"])[0]
    assert not torch.equal(once, x)
    assert torch.equal(queries(once, ["hflip"])[0], x)


def test_numpy_input_gives_tensors():
    q = queries(np.ones((2, 1, 3, 3), np.float32), ["identity", "hflip"])
    assert isinstance(q, torch.Tensor) and q.shape == (2, 2, 1, 3, 3)


@FAST
@given(st.integers(1, 12), st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**31))
def test_flip_copies_differ_in_exactly_k_features(d, n, n_noise, seed):
    k = (seed % d) + 1
    x = torch.randint(0, 2, (n, d), generator=torch.Generator().manual_seed(seed)).float()
    q = queries(x, ["flip"], flips=k, n_noise=n_noise, seed=seed)
    assert q.shape == (n_noise, n, d) and n_queries(["flip"], n_noise=n_noise) == n_noise
    assert ((q != x).sum(-1) == k).all()
    assert ((q == 0) | (q == 1)).all()
    assert torch.equal(q, queries(x, ["flip"], flips=k, n_noise=n_noise, seed=seed))


def test_flip_seeds_differ_and_features_are_spread():
    x = torch.zeros(200, 10)
    a = queries(x, ["flip"], flips=2, n_noise=5, seed=1)
    assert not torch.equal(a, queries(x, ["flip"], flips=2, n_noise=5, seed=2))
    per_feature = a.sum((0, 1)) / a.sum()  # each feature about 1/10 of the flips
    assert (per_feature - 0.1).abs().max() < 0.03


def test_an_examples_flips_depend_on_its_key_alone():
    """The same example gets the same noisy copies whatever else is in the batch,
    so a target asked about the audit set and a shadow asked about the universe
    see the same queries; distinct keys draw apart."""
    x = torch.randint(0, 2, (50, 30), generator=torch.Generator().manual_seed(0)).float()
    whole = queries(x, ["flip"], flips=3, n_noise=4, seed=7, keys=np.arange(100, 150))
    part = queries(x[[9, 2, 40]], ["flip"], flips=3, n_noise=4, seed=7, keys=[109, 102, 140])
    assert torch.equal(part, whole[:, [9, 2, 40]])
    same_x = queries(x[[0, 0]], ["flip"], flips=3, n_noise=4, seed=7, keys=[1, 2])
    assert not torch.equal(same_x[:, 0], same_x[:, 1])
    with pytest.raises(ValueError, match="one key per example"):
        queries(x, ["flip"], keys=[1, 2])


def test_unknown_augmentation_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="rotate") as err:
        queries(torch.zeros(1, 1, 4, 4), ["identity", "rotate"])
    assert all(name in str(err.value) for name in AUGMENTATIONS)
    assert err.value.where == "augmentations"


@pytest.mark.parametrize("names, shape, params, message", [
    (["hflip"], (10,), {}, "image"),
    (["shift"], (28, 28), {}, "image"),
    (["flip"], (1, 4, 4), {}, "binary"),
    (["shift"], (1, 4, 4), {"shift": 4}, "shift"),
    (["shift"], (1, 4, 4), {"shift": 0}, "shift"),
    (["flip"], (6,), {"flips": 7}, "flips"),
    (["flip"], (6,), {"flips": 0}, "flips"),
    (["flip"], (6,), {"n_noise": 0}, "n_noise"),
    ([], (6,), {}, "at least one"),
])
def test_augmentations_that_do_not_fit_the_data_fail_early(names, shape, params, message):
    with pytest.raises(ConfigError, match=message) as err:
        check_augmentations(names, shape, "attack.augmentations", **params)
    assert err.value.where == "attack.augmentations"


def test_fitting_augmentations_pass():
    check_augmentations(["identity", "hflip", "shift"], (3, 32, 32), "a", shift=3)
    check_augmentations(["identity", "flip"], (600,), "a", flips=600, n_noise=3)


def test_check_binary():
    check_binary(torch.tensor([[0.0, 1.0], [1.0, 1.0]]), "data")
    check_binary(np.array([0, 1, 1]), "data")
    with pytest.raises(ConfigError, match="0.5"):
        check_binary(np.array([0, 0.5, 1]), "data")


# ---------------------------------------------------------------- scores and thresholds

correct_arrays = hnp.arrays(bool, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6))


@FAST
@given(correct_arrays)
def test_augmentation_scores_are_the_fraction_correct(correct):
    n_aug, n = correct.shape
    expected = [sum(bool(correct[a, i]) for a in range(n_aug)) / n_aug for i in range(n)]
    assert np.allclose(augmentation_scores(correct), expected)


@pytest.mark.parametrize("n", [1, 4])
def test_augmentation_scores_edge_cases(n):
    assert (augmentation_scores(np.ones((3, n), bool)) == 1).all()
    assert (augmentation_scores(np.zeros((3, n), bool)) == 0).all()
    with pytest.raises(ValueError):
        augmentation_scores(np.ones((0, n), bool))
    with pytest.raises(ValueError):
        augmentation_scores(np.ones(n, bool))


def test_augmentation_attack_by_hand():
    target = np.array([[1, 0, 1], [1, 0, 0]], bool)  # (n_aug=2, n=3)
    shadow = np.array([[[1, 1, 0, 0]], [[1, 0, 0, 0]]], bool)  # (2, m=1, u=4)
    shadow_in = np.array([[True, True, False, False]])
    scores, threshold = augmentation_attack(target, shadow, shadow_in)
    assert scores.tolist() == [1.0, 0.0, 0.5]
    assert threshold == 0.5  # shadow scores 1, .5 (in) and 0, 0 (out)


def slow_auc(scores, is_in):
    """P(member score > non-member score) + P(tie) / 2, over all pairs."""
    ins = [s for s, m in zip(scores, is_in) if m]
    outs = [s for s, m in zip(scores, is_in) if not m]
    return sum((a > b) + 0.5 * (a == b) for a in ins for b in outs) / (len(ins) * len(outs))


@FAST
@given(st.integers(1, 4), st.integers(1, 5), st.integers(2, 12), st.integers(0, 2**31))
def test_choose_flips_picks_the_best_shadow_auc(n_k, n_noise, n, seed):
    gen = np.random.default_rng(seed)
    correct = gen.random((n_k, n_noise, 2, n)) < gen.random((n_k, 1, 1, 1))
    shadow_in = np.zeros((2, n), bool)
    shadow_in[:, : n // 2 + 1] = True
    shadow_in[:, 0] = False
    aucs = [slow_auc(correct[k].mean(0).ravel(), shadow_in.ravel()) for k in range(n_k)]
    best = max(aucs)
    assert choose_flips(correct, shadow_in) == next(k for k, a in enumerate(aucs)
                                                    if abs(a - best) < 1e-12)


def test_choose_flips_ties_take_the_first_and_needs_both_classes():
    correct = np.ones((3, 2, 4), bool)  # every k: all scores 1, AUC 0.5
    assert choose_flips(correct, np.array([1, 0, 1, 0], bool)) == 0
    with pytest.raises(ValueError, match="members and non-members"):
        choose_flips(correct, np.ones(4, bool))


def test_noise_attack_scores_at_the_chosen_flip_count():
    shadow_in = np.array([True, True, False, False])
    useless = np.ones((4, 4), bool)  # k=0: everything correct
    separating = np.array([[1, 1, 0, 0]] * 3 + [[1, 0, 0, 0]], bool)  # k=1
    shadow = np.stack([useless, separating])  # (K=2, n_noise=4, 4)
    target = np.stack([np.zeros((4, 2), bool), np.array([[1, 0]] * 4, bool)])
    scores, threshold, k = noise_attack(target, shadow, shadow_in)
    assert k == 1 and scores.tolist() == [1.0, 0.0]
    assert threshold == best_threshold(separating.mean(0), shadow_in) == 0.75


def test_boundary_scores_and_attack():
    d = np.array([0.0, 2.0, np.inf, 0.5])
    assert boundary_scores(d).tolist() == [0.0, 2.0, UNREACHED, 0.5]
    assert boundary_scores(d, np.array([1, 0, 1, 1], bool)).tolist() == [0, 0, UNREACHED, 0.5]
    for bad in ([-1.0], [np.nan]):
        with pytest.raises(ValueError):
            boundary_scores(np.array(bad))
    shadow = np.array([[3.0, np.inf, 0.1, 0.0]])
    shadow_in = np.array([[True, True, False, False]])
    scores, threshold = boundary_attack(d, shadow, shadow_in)
    assert scores.tolist() == boundary_scores(d).tolist() and threshold == 3.0


@FAST
@given(hnp.arrays(np.float64, st.integers(2, 20), elements=st.floats(0, 5)), st.integers(0, 2**31))
def test_fit_threshold_is_best_threshold_on_the_flat_arrays(values, seed):
    is_in = np.random.default_rng(seed).random(len(values)) < 0.5
    is_in[0], is_in[1] = True, False
    assert fit_threshold(values[None], is_in[None]) == best_threshold(values, is_in)


# ---------------------------------------------------------------- boundary distance

class Counting:
    """A label oracle that records every call's batch size."""

    def __init__(self, predict):
        self.predict, self.calls = predict, []

    def __call__(self, batch):
        self.calls.append(len(batch))
        return self.predict(batch)


def linear(w, b):
    """Two classes: label 1 where w . flat(x) + b > 0."""
    return lambda z: ((z.reshape(len(z), -1).to(w.dtype) @ w + b) > 0).long()


def linear_problem(n=60, d=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w, b = torch.randn(d, generator=gen, dtype=torch.float64), 0.3
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    predict = linear(w, b)
    exact = ((x @ w + b).abs() / w.norm()).numpy()
    return predict, x, predict(x), exact


def test_two_class_linear_distance_is_close_and_never_below_exact():
    predict, x, y, exact = linear_problem()
    oracle = Counting(predict)
    out = boundary_distance(oracle, x, y, max_queries=2500, seed=1, tol=1e-4)
    ratio = out.distance / exact
    assert (ratio >= 1 - 1e-9).all()  # every distance is a misclassified point found
    assert (ratio <= 1.1).mean() >= 0.9
    assert sum(oracle.calls) == out.queries.sum() and out.queries.max() <= 2500


def test_multiclass_images_in_a_box_never_below_exact():
    gen = torch.Generator().manual_seed(2)
    n, c, shape = 40, 3, (1, 4, 4)
    w = torch.randn(c, 16, generator=gen)
    b = -w.sum(1) / 2  # every class wins a cone from the centre of the box
    x = torch.rand(n, *shape, generator=gen)

    def predict(batch):
        return (batch.reshape(len(batch), -1) @ w.T + b).argmax(1)

    y = predict(x)
    z = x.reshape(n, -1) @ w.T + b
    exact = np.array([min(((z[i, y[i]] - z[i, j]) / (w[y[i]] - w[j]).norm()).item()
                          for j in range(c) if j != y[i]) for i in range(n)])
    out = boundary_distance(predict, x, y, bounds=(0.0, 1.0), max_queries=1500, seed=0)
    finite = np.isfinite(out.distance)
    assert finite.mean() > 0.9
    assert (out.distance[finite] >= exact[finite] * (1 - 1e-4)).all()


def test_misclassified_inputs_get_zero_after_one_query():
    predict, x, y, _ = linear_problem(n=8)
    y = y.clone()
    y[:3] = 1 - y[:3]
    out = boundary_distance(predict, x, y, max_queries=300, seed=0)
    assert (out.distance[:3] == 0).all() and (out.queries[:3] == 1).all()
    assert (out.distance[3:] > 0).all()


def test_deterministic_given_the_seed():
    predict, x, y, _ = linear_problem(n=10, d=6)
    first = boundary_distance(predict, x.reshape(10, 2, 3), y, max_queries=400, seed=5)
    again = boundary_distance(predict, x.reshape(10, 2, 3), y, max_queries=400, seed=5)
    other = boundary_distance(predict, x.reshape(10, 2, 3), y, max_queries=400, seed=6)
    assert np.array_equal(first.distance, again.distance)
    assert np.array_equal(first.queries, again.queries)
    assert not np.array_equal(first.distance, other.distance)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 400), st.integers(1, 64), st.integers(0, 3), st.integers(0, 2**31))
def test_query_budget_and_batch_size_are_respected(max_queries, batch_size, iterations, seed):
    predict, x, y, exact = linear_problem(n=6, d=5, seed=seed % 7)
    oracle = Counting(predict)
    out = boundary_distance(oracle, x, y, max_queries=max_queries, iterations=iterations,
                            n_grad=20, batch_size=batch_size, seed=seed)
    assert out.queries.max() <= max_queries and sum(oracle.calls) == out.queries.sum()
    assert max(oracle.calls) <= batch_size
    found = np.isfinite(out.distance)
    assert (out.distance[found] >= exact[found] * (1 - 1e-9)).all()


def test_no_boundary_reached_is_inf_within_budget():
    x = torch.randn(4, 3)
    out = boundary_distance(lambda z: torch.zeros(len(z), dtype=torch.long), x,
                            torch.zeros(4, dtype=torch.long), max_queries=50, init_tries=10)
    assert np.isinf(out.distance).all() and (out.queries == 11).all()
    assert (boundary_scores(out.distance) == UNREACHED).all()
