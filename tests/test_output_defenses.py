"""Post-hoc output defenses (raymia.outputs.release)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax, softmax

from raymia import signals
from raymia.config import ConfigError
from raymia.outputs.release import (
    FLOOR,
    as_logits,
    fit_temperature,
    label_only,
    rounding,
    temperature,
    top_k,
)

DEFENSES = {
    "top_k": lambda z, k: top_k(z, min(k, z.shape[1])),
    "rounding": lambda z, k: rounding(z, k - 1),
    "label_only": lambda z, k: label_only(z),
    "temperature": lambda z, k: temperature(z, [1e-3, 0.5, 1.0, 7.0, 1e6][k % 5]),
}


@st.composite
def logit_rows(draw, low=-1e4, high=1e4, min_classes=2):
    """(n, C) float32-representable logits: general values, heavy ties, one
    dominant class, and near ties (one float32 ulp apart)."""
    n = draw(st.integers(1, 6))
    c = draw(st.integers(min_classes, 7))
    kind = draw(st.sampled_from(["general", "ties", "dominant", "near"]))
    if kind == "general":
        elem = st.floats(low, high, width=32)
    elif kind == "ties":
        elem = st.sampled_from([0.0, 1.0, np.log(3.0), -2.5])
    elif kind == "dominant":
        elem = st.sampled_from([-30.0, -1.0, 0.0, 60.0])
    else:
        base = draw(st.floats(-50, 50, width=32))
        elem = st.sampled_from([base, float(np.nextafter(np.float32(base), np.float32(np.inf)))])
    rows = draw(st.lists(st.lists(elem, min_size=c, max_size=c), min_size=n, max_size=n))
    return np.array(rows, dtype=np.float32)


@settings(max_examples=150, deadline=None)
@given(logit_rows(), st.sampled_from(sorted(DEFENSES)), st.integers(1, 7))
def test_every_defense_keeps_the_predicted_label(z, name, k):
    released = DEFENSES[name](z, k)
    assert released.shape == z.shape and released.dtype == np.float64
    assert np.isfinite(released).all() and (released >= 0).all()
    label = z.argmax(1)
    np.testing.assert_array_equal(released.argmax(1), label)
    back = as_logits(released)
    np.testing.assert_array_equal(back.argmax(1), label)
    assert np.isfinite(back.astype(np.float32)).all()
    assert signals.correct(back, label).all()


@settings(max_examples=100, deadline=None)
@given(logit_rows(), st.integers(0, 8))
def test_rounding_is_exactly_d_decimals(z, d):
    released = rounding(z, d)
    np.testing.assert_array_equal(np.round(released, d), released)
    p = softmax(z.astype(np.float64), axis=1)
    err = np.abs(released - p)
    unit = 10.0**-d
    label = z.argmax(1)
    others = np.ones_like(p, bool)
    others[np.arange(len(z)), label] = False
    assert (err[others] <= 0.5 * unit + 1e-12).all()  # nearest rounding
    assert (err[~others] <= 1.5 * unit + 1e-12).all()  # at most one unit of tie-break
    assert (released <= 1).all()


def test_rounding_breaks_a_tie_for_the_original_top_class():
    z = np.log([[0.3331, 0.3332, 0.3337], [0.3337, 0.3332, 0.3331]])
    released = rounding(z, 2)
    np.testing.assert_array_equal(released, [[0.33, 0.33, 0.34], [0.33, 0.33, 0.33]])
    np.testing.assert_array_equal(rounding(np.log([[0.2, 0.35, 0.45]]), 0), [[0.0, 0.0, 1.0]])


@settings(max_examples=100, deadline=None)
@given(logit_rows(-50, 50), st.integers(1, 7))
def test_top_k_leaves_exactly_k_nonzero_summing_to_one(z, k):
    k = min(k, z.shape[1])
    released = top_k(z, k)
    assert ((released > 0).sum(1) == k).all()
    np.testing.assert_allclose(released.sum(1), 1.0, rtol=1e-12)
    # the kept classes are the k largest logits, in proportion to softmax
    kept = np.argsort(-z, axis=1, kind="stable")[:, :k]
    p = np.take_along_axis(softmax(z.astype(np.float64), axis=1), kept, 1)
    np.testing.assert_allclose(np.take_along_axis(released, kept, 1), p / p.sum(1, keepdims=True),
                               rtol=1e-12)


def test_float_collapses_keep_the_label():
    # softmax(z / T) rounds both classes to 1/2: class 1 (the label) gets one ulp more
    released = temperature(np.array([[0.0, 1e-7]]), 1e10)
    assert released.argmax() == 1 and released[0, 1] == np.nextafter(0.5, 1)
    # log ties 0.2 and the next double: as_logits raises the later one by an ulp
    p = np.array([[0.2, np.nextafter(0.2, 1), 0.1]])
    assert np.log(p).argmax() == 0 and as_logits(p).argmax() == 1


def test_top_1_is_label_only_and_top_c_is_softmax():
    z = np.array([[2.0, 1.0, 3.0], [0.0, 0.0, -1.0]])
    np.testing.assert_array_equal(top_k(z, 1), label_only(z))
    np.testing.assert_allclose(top_k(z, 3), softmax(z, axis=1), rtol=1e-14)


@settings(max_examples=100, deadline=None)
@given(logit_rows(-100, 100))
def test_label_only_keeps_only_correctness(z):
    released = label_only(z)
    np.testing.assert_array_equal(released.sum(1), 1.0)
    np.testing.assert_array_equal(released.argmax(1), z.argmax(1))
    labels = np.arange(len(z)) % z.shape[1]
    back = as_logits(released)
    phi = signals.phi(back, labels)
    p_true = np.exp(signals.true_log_prob(back, labels))
    right = signals.correct(back, labels)
    assert len(np.unique(phi)) <= 2 and len(np.unique(p_true)) <= 2
    assert ((phi > 0) == right).all()
    np.testing.assert_allclose(p_true[right], 1.0)
    assert (p_true[~right] <= FLOOR * 1.01).all()


@settings(max_examples=100, deadline=None)
@given(logit_rows(), st.floats(1e-3, 1e3))
def test_temperature_is_softmax_of_scaled_logits(z, t):
    released = temperature(z, t)
    np.testing.assert_allclose(released.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(released, softmax(z.astype(np.float64) / t, axis=1), atol=1e-12)
    np.testing.assert_array_equal(released.argmax(1), z.argmax(1))


def _calibrated(n, c, seed):
    gen = np.random.default_rng(seed)
    z = 2.0 * gen.standard_normal((n, c))
    labels = np.array([gen.choice(c, p=q) for q in softmax(z, axis=1)])
    return z, labels


def _nll(z, labels):
    return -log_softmax(z, axis=1)[np.arange(len(z)), labels].mean()


def test_fit_temperature_is_one_on_calibrated_logits():
    z, labels = _calibrated(6000, 5, seed=0)
    assert fit_temperature(z, labels) == pytest.approx(1.0, abs=0.06)


def test_fit_temperature_undoes_overconfidence():
    z, labels = _calibrated(4000, 5, seed=1)
    t = fit_temperature(4.0 * z, labels)  # a model 4x too confident
    assert t == pytest.approx(4.0, rel=0.1)
    assert _nll(4.0 * z / t, labels) < 0.6 * _nll(4.0 * z, labels)
    np.testing.assert_array_equal(temperature(4.0 * z, t).argmax(1), z.argmax(1))


def test_as_logits_inverts_softmax_and_ties_zeros():
    p = np.array([[0.5, 0.25, 0.25, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]])
    z = as_logits(p)
    np.testing.assert_allclose(softmax(z, axis=1), p, atol=5 * FLOOR)
    assert z[0, 3] == z[0, 4] == z[1, 1] == np.log(FLOOR)
    assert np.isfinite(z.astype(np.float32)).all()
    # phi from as_logits equals log p_y - log(1 - p_y) for normalised p
    np.testing.assert_allclose(signals.phi(z, np.array([0, 0])), [0.0, -np.log(4 * FLOOR)])


@pytest.mark.parametrize("call, where", [
    (lambda z: top_k(z, 0), "k"),
    (lambda z: top_k(z, 4), "k"),
    (lambda z: top_k(z, 1.5), "k"),
    (lambda z: rounding(z, -1), "decimals"),
    (lambda z: rounding(z, 16), "decimals"),
    (lambda z: rounding(z, 2.0), "decimals"),
    (lambda z: temperature(z, 0.0), "T"),
    (lambda z: temperature(z, -1.0), "T"),
    (lambda z: temperature(z, float("nan")), "T"),
    (lambda z: temperature(z, float("inf")), "T"),
    (lambda z: as_logits(softmax(z, axis=1), floor=0.0), "floor"),
])
def test_bad_parameters_raise_config_error_naming_them(call, where):
    with pytest.raises(ConfigError) as err:
        call(np.zeros((2, 3)))
    assert err.value.where == where and "\n" not in str(err.value)


def test_bad_arrays_raise_value_error():
    with pytest.raises(ValueError, match="finite"):
        top_k(np.array([[0.0, np.nan]]), 1)
    with pytest.raises(ValueError, match="shape"):
        label_only(np.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        fit_temperature(np.zeros((2, 3)), np.array([0, 3]))
    assert label_only(np.zeros((0, 4))).shape == (0, 4)
