import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raymia import DataConfig
from raymia.config import ConfigError
from raymia.data import load_dataset
from raymia.data.dataset import Dataset
from raymia.data.ood import OOD_SETS, SCALE, check_ood_sets, make_ood

TRANSFORMED = ("permuted", "permuted_fixed", "scaled")


def fake(shape, kind="image", n=40, n_classes=10, lo=0.0, hi=1.0, binary=False, seed=0):
    gen = np.random.default_rng(seed)
    x = gen.random((n, *shape))
    x = (x < 0.5).astype(np.float32) if binary else (lo + x * (hi - lo)).astype(np.float32)
    return Dataset("fake", x, gen.integers(0, n_classes, n).astype(np.int64), n_classes, kind)


DIGITS_LIKE = fake((1, 8, 8))
CIFAR_LIKE = fake((3, 32, 32))
TABULAR = fake((20,), kind="tabular", n_classes=100, binary=True)


def available(data):
    return [name for name, s in OOD_SETS.items() if s.unavailable(data.kind, data.input_shape) is None]


def all_cases():
    return [(d, name) for d in (DIGITS_LIKE, CIFAR_LIKE, TABULAR) for name in available(d)]


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig(name="digits"))


def test_registry_has_the_required_sets():
    assert {"permuted", "scaled", "natural", "noise"} <= set(OOD_SETS)
    assert set(available(TABULAR)) == set(OOD_SETS) - {"natural"}
    assert set(available(DIGITS_LIKE)) == set(available(CIFAR_LIKE)) == set(OOD_SETS)


@pytest.mark.parametrize("data,name", all_cases(), ids=lambda v: getattr(v, "input_shape", v))
def test_shapes_dtypes_labels_and_determinism(data, name):
    rows = np.array([5, 0, 17, 17, 39])
    x, y = make_ood(name, data, rows, seed=3)
    assert x.shape == (5, *data.input_shape) and x.dtype == np.float32
    assert y.shape == (5,) and y.dtype == np.int64
    assert np.isfinite(x).all() and y.min() >= 0 and y.max() < data.n_classes
    if name in TRANSFORMED:
        np.testing.assert_array_equal(y, data.y[rows])
    x2, y2 = make_ood(name, data, rows, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    if name != "scaled":  # scaled is not random
        x3, _ = make_ood(name, data, rows, seed=4)
        assert not np.array_equal(x, x3)


@pytest.mark.parametrize("data,name", all_cases(), ids=lambda v: getattr(v, "input_shape", v))
def test_no_rows_gives_empty_arrays(data, name):
    x, y = make_ood(name, data, np.array([], dtype=np.int64), seed=0)
    assert x.shape == (0, *data.input_shape) and x.dtype == np.float32
    assert y.shape == (0,) and y.dtype == np.int64


@pytest.mark.parametrize("name", ["permuted", "permuted_fixed"])
@pytest.mark.parametrize("data", [DIGITS_LIKE, CIFAR_LIKE, TABULAR], ids=["digits", "cifar", "tabular"])
def test_permuted_is_a_non_identity_permutation_of_each_input(data, name):
    rows = np.arange(len(data))
    x, _ = make_ood(name, data, rows, seed=0)
    src = data.x[rows]
    flat = x.reshape(len(rows), -1), src.reshape(len(rows), -1)
    np.testing.assert_array_equal(np.sort(flat[0], 1), np.sort(flat[1], 1))
    if data is not TABULAR:  # random floats: every example actually changes
        assert all(not np.array_equal(a, b) for a, b in zip(x, src))
    else:
        assert not np.array_equal(x, src)


def coded(shape, n=6):
    """Images whose value encodes (example, channel, position): the permutation is readable."""
    c, h, w = shape
    x = np.arange(n * c * h * w, dtype=np.float32).reshape(n, c, h, w)
    return Dataset("coded", x, np.zeros(n, np.int64), 2, "image")


def read_perms(data, x):
    n, c = len(x), data.input_shape[0]
    flat = x.reshape(n, c, -1).astype(np.int64)
    base = data.x.reshape(n, c, -1)[:, :, :1].astype(np.int64)
    return flat - base  # position index each output pixel came from, per channel


def test_permuted_moves_channels_together_and_differs_per_example():
    data = coded((3, 4, 5))
    x, _ = make_ood("permuted", data, np.arange(6), seed=1)
    perms = read_perms(data, x)
    assert (perms == perms[:, :1]).all()  # the same position shuffle in every channel
    assert len({tuple(p[0]) for p in perms}) > 1  # a fresh permutation per example
    assert all(sorted(p[0]) == list(range(20)) for p in perms)


def test_permuted_fixed_shares_one_permutation():
    data = coded((3, 4, 5))
    x, _ = make_ood("permuted_fixed", data, np.arange(6), seed=1)
    perms = read_perms(data, x)
    assert (perms == perms[:1, :1]).all()
    assert sorted(perms[0, 0]) == list(range(20)) and list(perms[0, 0]) != list(range(20))


def test_permutation_of_two_positions_is_never_the_identity():
    data = Dataset("two", np.array([[1.0, 2.0]] * 50, np.float32), np.zeros(50, np.int64), 2, "tabular")
    for seed in range(5):
        for name in ("permuted", "permuted_fixed"):
            x, _ = make_ood(name, data, np.arange(50), seed=seed)
            assert (x == [2.0, 1.0]).all()


@pytest.mark.parametrize("data", [DIGITS_LIKE, CIFAR_LIKE, TABULAR], ids=["digits", "cifar", "tabular"])
def test_scaled_is_x_times_255_unclipped(data):
    rows = np.array([3, 1, 4])
    x, y = make_ood("scaled", data, rows, seed=9)
    assert SCALE == 255.0
    np.testing.assert_array_equal(x, data.x[rows] * np.float32(255))
    assert x.max() > data.x.max()  # on purpose outside the training range
    np.testing.assert_array_equal(y, data.y[rows])


def test_natural_patches_are_in_range_and_are_not_digits(digits):
    rows = np.arange(300)
    x, y = make_ood("natural", digits, rows, seed=0)
    assert x.shape == (300, 1, 8, 8)
    assert digits.x.min() <= x.min() and x.max() <= digits.x.max()
    # digits are mostly exact-zero background; photo patches almost never are
    assert (digits.x[rows] == 0).mean() > 0.4 and (x == 0).mean() < 0.05
    # no patch is (close to) any digit
    d2 = ((x.reshape(300, 1, 64) - digits.x.reshape(1, -1, 64)) ** 2).sum(-1)
    assert d2.min() > 0.5
    # patches vary and are not all flat
    assert x.reshape(300, -1).std(1).mean() > 0.02
    # labels drawn over all classes
    assert set(np.unique(y)) == set(range(10))


def test_natural_uses_the_data_range_and_colour():
    data = fake((3, 32, 32), lo=-1.0, hi=3.0)
    x, y = make_ood("natural", data, np.arange(40), seed=2)
    lo, hi = data.x.min(), data.x.max()
    assert lo <= x.min() and x.max() <= hi and x.max() - x.min() > 1.0
    assert not np.allclose(x[:, 0], x[:, 1])  # RGB, not gray replicated
    gray = fake((2, 6, 6))
    xg, _ = make_ood("natural", gray, np.arange(10), seed=2)
    np.testing.assert_array_equal(xg[:, 0], xg[:, 1])  # other channel counts: luminance


def test_natural_patches_are_box_averaged_crops_of_the_sample_photos():
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(p, np.float64) for p in load_sample_images().images]
    # full-size images: the only crop is the whole photo at k = 1
    full = fake((3, 427, 640), n=2, lo=0.0, hi=255.0)
    full.x[0, 0, 0, 0], full.x[1, 0, 0, 0] = 0.0, 255.0
    x, _ = make_ood("natural", full, np.arange(2), seed=0)
    for img in x:
        assert any(np.allclose(img, p.transpose(2, 0, 1), atol=1e-3) for p in photos)
    # half-size images: k in {1, 2}; with k = 2 each pixel is the mean of a 2x2 block
    half = fake((3, 213, 320), n=8)
    x, _ = make_ood("natural", half, np.arange(8), seed=0)
    lo, hi = half.x.min(), half.x.max()
    candidates = []
    for p in photos:
        for top in range(2):
            crop = p[top:top + 426, :640].reshape(213, 2, 320, 2, 3).mean((1, 3))
            candidates.append(lo + crop.transpose(2, 0, 1) / 255 * (hi - lo))
    matched = [any(np.allclose(img, cand, atol=1e-4) for cand in candidates) for img in x]
    assert any(matched)  # some draws took k = 2; the others are k = 1 crops


def test_noise_lies_in_the_data_range():
    data = fake((5,), kind="tabular", lo=-2.0, hi=7.0)
    x, y = make_ood("noise", data, np.arange(40), seed=0)
    assert data.x.min() <= x.min() and x.max() <= data.x.max()


def test_unknown_set_is_a_config_error_listing_valid_names():
    with pytest.raises(ConfigError) as e:
        check_ood_sets(["permuted", "upside_down"], "image", (1, 8, 8), "attacks.ood_sets")
    assert e.value.where == "attacks.ood_sets"
    msg = str(e.value)
    assert "'upside_down'" in msg and "natural, noise, permuted" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="unknown OOD set 'original'"):
        make_ood("original", DIGITS_LIKE, np.arange(3), seed=0)


def test_natural_on_tabular_is_unavailable():
    with pytest.raises(ConfigError, match="'natural' is unavailable") as e:
        check_ood_sets(["natural"], "tabular", (600,), "ood_sets")
    assert e.value.where == "ood_sets" and "tabular" in str(e.value)
    with pytest.raises(ConfigError, match="'natural'"):
        make_ood("natural", TABULAR, np.arange(3), seed=0)


def test_other_unavailable_and_repeated_sets():
    with pytest.raises(ConfigError, match="'permuted' is unavailable"):
        check_ood_sets(["permuted"], "tabular", (1,), "ood_sets")
    with pytest.raises(ConfigError, match="'natural' is unavailable.*larger"):
        check_ood_sets(["natural"], "image", (3, 512, 512), "ood_sets")
    with pytest.raises(ConfigError, match="'scaled' is listed twice"):
        check_ood_sets(["scaled", "scaled"], "image", (1, 8, 8), "ood_sets")
    with pytest.raises(ConfigError, match="unknown OOD set 3"):
        check_ood_sets([3], "image", (1, 8, 8), "ood_sets")
    check_ood_sets([], "tabular", (10,), "ood_sets")
    check_ood_sets(list(OOD_SETS), "image", (3, 32, 32), "ood_sets")


def test_bad_rows_are_rejected():
    with pytest.raises(ValueError, match="must lie in"):
        make_ood("scaled", DIGITS_LIKE, np.array([0, 40]), seed=0)
    with pytest.raises(ValueError, match="1-D"):
        make_ood("scaled", DIGITS_LIKE, np.zeros((2, 2), np.int64), seed=0)


shapes = st.one_of(
    st.tuples(st.just("image"), st.sampled_from([1, 3]), st.integers(1, 5), st.integers(1, 5)),
    st.tuples(st.just("tabular"), st.integers(1, 9)),
)


@settings(max_examples=60, deadline=None)
@given(spec=shapes, n=st.integers(1, 12), picks=st.lists(st.integers(0, 10**6), max_size=8),
       seed=st.integers(0, 2**32 - 1), lo=st.floats(-5, 5), width=st.floats(0, 10))
def test_every_available_set_on_small_shapes(spec, n, picks, seed, lo, width):
    kind, shape = spec[0], tuple(spec[1:])
    data = fake(shape, kind=kind, n=n, n_classes=3, lo=lo, hi=lo + width, seed=seed % 1000)
    rows = np.array([p % n for p in picks], dtype=np.int64)
    lo_x, hi_x = float(data.x.min()), float(data.x.max())
    for name in available(data):
        x, y = make_ood(name, data, rows, seed)
        assert x.shape == (len(rows), *shape) and x.dtype == np.float32 and np.isfinite(x).all()
        assert y.shape == (len(rows),) and y.dtype == np.int64 and ((0 <= y) & (y < 3)).all()
        x2, y2 = make_ood(name, data, rows, seed)
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
        if name in TRANSFORMED:
            np.testing.assert_array_equal(y, data.y[rows])
        if name.startswith("permuted"):
            d = int(np.prod(shape))
            np.testing.assert_array_equal(np.sort(x.reshape(len(rows), d), 1),
                                          np.sort(data.x[rows].reshape(len(rows), d), 1))
        if name in ("natural", "noise"):
            tol = 1e-5 * (1 + abs(lo_x) + abs(hi_x))
            assert x.size == 0 or (lo_x - tol <= x.min() and x.max() <= hi_x + tol)
    unavailable = set(OOD_SETS) - set(available(data))
    for name in unavailable:
        with pytest.raises(ConfigError, match=repr(name)):
            make_ood(name, data, rows, seed)
