"""Last-layer Laplace approximation (raymia.outputs.laplace)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import softmax
from torch import nn

from raymia.config import ConfigError
from raymia.outputs.laplace import LastLayerLaplace, split_last_layer
from raymia.models.cnn import small_cnn
from raymia.models.vision import cifar_resnet18

D, C = 3, 3


def _data(n, seed, noise=1.0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=gen)
    w = torch.tensor([[2.0, -1.0, 0.0], [0.0, 2.0, -1.0], [-1.0, 0.0, 2.0]])
    y = (x @ w + noise * torch.randn(n, C, generator=gen)).argmax(1)
    return x, y


def _train(model, x, y, steps=300, lr=0.05):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: threads only add overhead (25x on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def logistic():
    """A logistic regression (features = inputs) fitted to 200 points."""
    torch.manual_seed(0)
    x, y = _data(200, seed=0)
    return _train(nn.Sequential(nn.Linear(D, C)), x, y), x, y


@pytest.fixture(scope="module")
def mlp():
    """A ReLU MLP in float64 (for exact algebra): the last layer sees 8 learned features."""
    torch.manual_seed(1)
    x, y = _data(100, seed=1)
    model = _train(nn.Sequential(nn.Linear(D, 8), nn.ReLU(), nn.Linear(8, C)), x, y)
    return model.double(), x.double(), y


@pytest.fixture(scope="module")
def overconfident():
    """Few noisy points and a long unregularised fit; held-out data."""
    torch.manual_seed(2)
    x, y = _data(40, seed=2, noise=2.0)
    model = _train(nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, C)), x, y, steps=600)
    return model, x, y, *_data(300, seed=3, noise=2.0)


def _nll(probs, y):
    return float(-np.log(probs[np.arange(len(y)), y.numpy()]).mean())


@pytest.mark.parametrize("hessian", ["full", "kron"])
def test_infinite_prior_precision_gives_the_map_softmax(logistic, hessian):
    model, x, y = logistic
    la = LastLayerLaplace(model, hessian=hessian, prior_precision=1e12).fit(x, y, batch_size=64)
    map_probs = softmax(model(x).detach().double().numpy(), axis=1)
    np.testing.assert_allclose(la.predict(x), map_probs, atol=1e-8)
    np.testing.assert_allclose(la.predict(x, "mc", n_samples=20), map_probs, atol=1e-5)


def test_closed_form_hessian_matches_autograd(mlp):
    model, x, y = mlp
    la = LastLayerLaplace(model, hessian="full").fit(x[:7], y[:7], batch_size=3)
    feature_fn, linear = split_last_layer(model)
    feats = feature_fn(x[:7]).double()

    def nll(theta):
        t = theta.reshape(C, 9)
        return F.cross_entropy(feats @ t[:, :8].T + t[:, 8], y[:7], reduction="sum")

    theta = torch.cat([linear.weight, linear.bias[:, None]], 1).detach().double().reshape(-1)
    expected = torch.autograd.functional.hessian(nll, theta)
    torch.testing.assert_close(la.hessian_matrix(), expected, rtol=1e-9, atol=1e-10)
    assert la.train_nll == pytest.approx(float(nll(theta)), rel=1e-6)


def test_a_linear_without_bias_has_no_bias_parameters(mlp):
    model, x, y = mlp
    head = nn.Linear(8, C, bias=False).double()
    nobias = nn.Sequential(model[0], model[1], head)
    la = LastLayerLaplace(nobias, hessian="full").fit(x[:5], y[:5])
    feats = split_last_layer(nobias)[0](x[:5])

    def nll(theta):
        return F.cross_entropy(feats @ theta.reshape(C, 8).T, y[:5], reduction="sum")

    expected = torch.autograd.functional.hessian(nll, head.weight.detach().reshape(-1))
    torch.testing.assert_close(la.hessian_matrix(), expected, rtol=1e-9, atol=1e-10)
    la.prior_precision = 1e12
    probs = softmax(nobias(x).detach().numpy(), axis=1)
    np.testing.assert_allclose(la.predict(x), probs, atol=1e-8)


def test_kron_is_exact_for_one_point_and_both_calm_far_away_inputs(mlp):
    model, x, y = mlp
    full = LastLayerLaplace(model, hessian="full").fit(x[:1], y[:1])
    kron = LastLayerLaplace(model, hessian="kron").fit(x[:1], y[:1])
    torch.testing.assert_close(kron.hessian_matrix(), full.hessian_matrix(), rtol=1e-9, atol=1e-12)
    gen = torch.Generator().manual_seed(3)
    far = 100.0 * torch.randn(50, D, generator=gen, dtype=torch.float64)
    map_conf = softmax(model(far).detach().double().numpy(), axis=1).max(1)
    for hessian in ("full", "kron"):
        la = LastLayerLaplace(model, hessian=hessian, prior_precision=1.0).fit(x, y)
        conf = la.predict(far).max(1)
        assert (conf <= map_conf + 1e-12).all()
        assert conf.mean() < map_conf.mean() - 0.05


@pytest.mark.parametrize("hessian", ["full", "kron"])
def test_logit_moments_match_the_dense_formula(mlp, hessian):
    """cov(z) = J (H + delta I)^-1 J^T with J = I_C kron [a, 1]; probit uses its diagonal."""
    model, x, y = mlp
    la = LastLayerLaplace(model, hessian=hessian, prior_precision=0.3).fit(x, y, batch_size=32)
    mean, cov = la.logit_moments(x[:10], batch_size=4)
    feature_fn, _ = split_last_layer(model)
    a = torch.cat([feature_fn(x[:10]).double(), torch.ones(10, 1, dtype=torch.float64)], 1)
    sigma = torch.linalg.inv(la.hessian_matrix() + 0.3 * torch.eye(C * 9, dtype=torch.float64))
    jac = torch.stack([torch.kron(torch.eye(C, dtype=torch.float64), ai[None]) for ai in a])
    expected = (jac @ sigma @ jac.transpose(1, 2)).numpy()
    np.testing.assert_allclose(cov, expected, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(mean, model(x[:10]).detach().double().numpy(), rtol=1e-6)
    var = np.diagonal(cov, axis1=1, axis2=2)
    probit = softmax(mean / np.sqrt(1 + math.pi / 8 * var), axis=1)
    np.testing.assert_allclose(la.predict(x[:10]), probit, rtol=1e-10)


def test_monte_carlo_sums_to_one_is_seeded_and_samples_the_logit_gaussian(mlp):
    model, x, y = mlp
    la = LastLayerLaplace(model, prior_precision=0.5).fit(x, y)
    mc = la.predict(x[:20], "mc", n_samples=4000, seed=7, batch_size=8)
    assert mc.shape == (20, C) and mc.dtype == np.float64
    np.testing.assert_allclose(mc.sum(1), 1.0, rtol=1e-12)
    again = la.predict(x[:20], "mc", n_samples=4000, seed=7, batch_size=8)
    np.testing.assert_array_equal(mc, again)
    assert not np.array_equal(mc, la.predict(x[:20], "mc", n_samples=4000, seed=8, batch_size=8))
    # against a plain numpy Monte Carlo from the logit moments
    mean, cov = la.logit_moments(x[:20])
    for i in (3, 11):
        draws = np.random.default_rng(i).multivariate_normal(mean[i], cov[i], size=20000)
        np.testing.assert_allclose(mc[i], softmax(draws, axis=1).mean(0), atol=0.02)
    # with a weak prior the diagonal probit is far less confident than MC ...
    assert (mc.max(1) > la.predict(x[:20]).max(1)).mean() > 0.9
    # ... and close to it once the logit variances are around 1 or less
    la.prior_precision = 50.0
    probit = la.predict(x[:20])
    assert np.abs(la.predict(x[:20], "mc", n_samples=4000) - probit).max() < 0.03


@pytest.mark.parametrize("hessian", ["full", "kron"])
def test_tuned_prior_beats_map_on_an_overconfident_model(overconfident, hessian):
    model, x, y, xv, yv = overconfident
    grid = np.logspace(-3, 5, 17)
    la = LastLayerLaplace(model, hessian=hessian).fit(x, y).tune_prior(xv, yv, grid=grid)
    assert la.prior_precision in grid
    map_nll = _nll(softmax(model(xv).detach().double().numpy(), axis=1), yv)
    laplace_nll = _nll(la.predict(xv), yv)
    assert la.tuning["score"].min() == pytest.approx(laplace_nll, rel=1e-9)
    assert laplace_nll < 0.8 * map_nll
    la.tune_prior(method="marglik", grid=grid)
    assert la.prior_precision in grid
    assert la.tuning["score"].argmin() == np.argmin([-la.log_marginal_likelihood(d) for d in grid])
    la.tune_prior(xv, yv, grid=grid, predictive="mc", n_samples=200)
    assert la.prior_precision in grid
    assert _nll(la.predict(xv, "mc", n_samples=200), yv) == pytest.approx(la.tuning["score"].min())
    assert la.tuning["score"].min() < 0.8 * map_nll


def test_marginal_likelihood_matches_the_dense_formula(mlp):
    model, x, y = mlp
    la = LastLayerLaplace(model, hessian="full").fit(x, y)
    theta = torch.cat([model[2].weight, model[2].bias[:, None]], 1).detach().double()
    logdet = torch.logdet(la.hessian_matrix() + 2.0 * torch.eye(C * 9, dtype=torch.float64))
    expected = (-la.train_nll - theta.pow(2).sum() + 0.5 * C * 9 * math.log(2.0) - 0.5 * logdet)
    assert la.log_marginal_likelihood(2.0) == pytest.approx(float(expected), rel=1e-9)


def test_split_last_layer_finds_the_classifier_of_each_architecture():
    cnn = small_cnn((1, 8, 8), 20)
    feature_fn, linear = split_last_layer(cnn)
    assert linear is cnn[-1] and feature_fn(torch.randn(5, 1, 8, 8)).shape == (5, 256)
    resnet = cifar_resnet18((3, 8, 8), 10)
    resnet.train()
    feature_fn, linear = split_last_layer(resnet)
    assert linear is resnet.fc and feature_fn(torch.randn(2, 3, 8, 8)).shape == (2, 512)
    assert resnet.training  # the mode is restored
    la = LastLayerLaplace(cnn, prior_precision=10.0)
    assert la.hessian == "kron"  # 20 x 257 parameters > MAX_FULL
    probs = la.fit(torch.randn(12, 1, 8, 8), torch.arange(12) % 20, batch_size=5).predict(
        torch.randn(4, 1, 8, 8), "mc", n_samples=5)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-12)
    _, head = split_last_layer(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 7)), n_classes=3)
    assert head.out_features == 3


def test_models_it_cannot_handle_fail_clearly():
    with pytest.raises(ValueError, match="no nn.Linear"):
        split_last_layer(nn.Sequential(nn.Conv2d(1, 2, 3)))
    wrapped = nn.Sequential(nn.Linear(D, C), nn.LogSoftmax(dim=1))
    with pytest.raises(ValueError, match="output of its last nn.Linear"):
        LastLayerLaplace(wrapped).fit(torch.randn(4, D), torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("kwargs, where", [
    ({"hessian": "diag"}, "hessian"),
    ({"prior_precision": 0.0}, "prior_precision"),
    ({"prior_precision": float("inf")}, "prior_precision"),
])
def test_bad_settings_raise_config_error(logistic, kwargs, where):
    with pytest.raises(ConfigError) as err:
        LastLayerLaplace(logistic[0], **kwargs)
    assert err.value.where == where


def test_bad_calls_raise(logistic):
    model, x, y = logistic
    with pytest.raises(RuntimeError, match="fit"):
        LastLayerLaplace(model).predict(x)
    la = LastLayerLaplace(model).fit(x, y)
    for call, where in [(lambda: la.predict(x, "sample"), "method"),
                        (lambda: la.predict(x, "mc", n_samples=0), "n_samples"),
                        (lambda: la.tune_prior(x, y, grid=[1.0, -1.0]), "grid"),
                        (lambda: la.tune_prior(x, y, grid=[]), "grid"),
                        (lambda: la.tune_prior(x, y, method="cv"), "method"),
                        (lambda: la.tune_prior(x, y, predictive="map"), "predictive")]:
        with pytest.raises(ConfigError) as err:
            call()
        assert err.value.where == where
    with pytest.raises(ValueError, match="held-out"):
        la.tune_prior()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("hessian", ["full", "kron"])
def test_gpu_gives_the_cpu_numbers(mlp, hessian):
    import copy

    model, x, y = mlp
    cpu = LastLayerLaplace(model, hessian=hessian).fit(x, y).tune_prior(x, y)
    gpu = LastLayerLaplace(copy.deepcopy(model).cuda(), hessian=hessian).fit(x, y).tune_prior(x, y)
    assert gpu.prior_precision == cpu.prior_precision
    np.testing.assert_allclose(gpu.predict(x), cpu.predict(x), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gpu.predict(x, "mc", n_samples=50),
                               cpu.predict(x, "mc", n_samples=50),
                               rtol=1e-6, atol=1e-9)
