"""Last-layer Laplace approximation (Kristiadi et al. 2020; Daxberger et al. 2021).

The network up to its final nn.Linear is a fixed feature map a(x) (with a 1
appended when the layer has a bias: a in R^D, D = d+1); the final layer's
parameters theta = [W | b] (C, D), flattened row-major to P = C D numbers, get a
Gaussian posterior N(theta_MAP, (H + delta I)^-1) where H is the Hessian of the
SUMMED training cross-entropy w.r.t. theta (exactly the generalised
Gauss-Newton, as the logits z = theta a are linear in theta):

    H = sum_n Lambda_n kron a_n a_n^T,   Lambda_n = diag(p_n) - p_n p_n^T  (C, C)

`full` keeps H (P, P); `kron` (KFAC) approximates it by G kron A with
G = sum_n Lambda_n (C, C) and A = mean_n a_n a_n^T (D, D). Both are kept
as eigendecompositions, so a new prior precision delta costs nothing. The
logits of an input are then Gaussian, N(z_MAP, J Sigma J^T) with
J = I_C kron a^T, and the predictive is either MacKay's probit approximation
softmax(z_MAP / sqrt(1 + pi/8 var)) (per-class variances, the diagonal) or a
Monte-Carlo average of softmax over sampled logits. The probit ignores the
correlations between logits, among them the shift common to all classes that
softmax ignores, so with a weak prior it is much less confident than the MC
predictive: tune the prior with the predictive that is released. Unlike the
output defenses (raymia.outputs.release) this may change the predicted label.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from raymia.config import ConfigError, check, check_choice

#: `hessian="auto"` uses the full Hessian when P = C (d+1) is at most this
MAX_FULL = 3000
#: default prior-precision grid of `tune_prior` (5 values a decade)
DEFAULT_GRID = np.logspace(-4, 6, 51)
_CHUNK = 2**22  # float64 numbers per intermediate (32 MiB)


def split_last_layer(model: nn.Module, n_classes: int | None = None
                     ) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Linear]:
    """(feature_fn, linear): `linear` is the last nn.Linear registered in
    model.modules() (with out_features == n_classes when given): the last child
    of an nn.Sequential MLP/CNN, `.fc` of a torchvision ResNet, `heads.head` of
    a ViT. feature_fn(x (n, ...)) -> (n, d) is the input of `linear` in an
    eval-mode, no-grad forward pass, captured by a forward hook."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)
               and (n_classes is None or m.out_features == n_classes)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer"
                         + (f" with {n_classes} outputs" if n_classes is not None else ""))
    linear = linears[-1]

    def feature_fn(x: torch.Tensor) -> torch.Tensor:
        return _run(model, linear, x)[0]

    return feature_fn, linear


@torch.no_grad()
def _run(model: nn.Module, linear: nn.Linear, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (n, d), logits (n, C)) of `linear` in one eval-mode forward pass;
    raises ValueError if the model's output is not the linear layer's output."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    handle = linear.register_forward_hook(lambda _m, inp, out: seen.append((inp[0], out)))
    was_training = model.training
    try:
        model.eval()
        out = model(x)
    finally:
        handle.remove()
        model.train(was_training)
    if (len(seen) != 1 or seen[0][0].ndim != 2 or not isinstance(out, torch.Tensor)
            or not (out is seen[0][1] or torch.equal(out, seen[0][1]))):
        raise ValueError("the model's output must be the output of its last nn.Linear, called "
                         "once on (n, d) features")
    return seen[0]


class LastLayerLaplace:
    """Laplace posterior over the final nn.Linear of a trained classifier.

    LastLayerLaplace(model).fit(x_train, y_train).tune_prior(x_val, y_val)
    .predict(x) -> (n, C) float64 probabilities. Inputs are torch tensors
    (x: (n, ...) float, y: (n,) int64) on any device; batches move to the
    model's device, where all curvature algebra runs in float64.
    hessian: "full", "kron" (KFAC) or "auto" (full when P <= MAX_FULL). Fitting
    costs O(N C D^2) for kron and O(N P^2) for full (P = 3000, N = 10k: 5 s on
    two CPU cores)."""

    def __init__(self, model: nn.Module, hessian: str = "auto", prior_precision: float = 1.0):
        check_choice(hessian, ("auto", "full", "kron"), "hessian")
        _check_precision([prior_precision], "prior_precision")
        self.model = model
        _, self.linear = split_last_layer(model)
        self.n_classes, self.n_features = self.linear.out_features, self.linear.in_features
        self._bias = self.linear.bias is not None
        self.n_inputs = self.n_features + self._bias  # D
        self.n_params = self.n_classes * self.n_inputs
        if hessian == "auto":
            hessian = "full" if self.n_params <= MAX_FULL else "kron"
        self.hessian, self.prior_precision = hessian, float(prior_precision)
        self.device = next(model.parameters()).device
        self.tuning: dict[str, np.ndarray] | None = None
        self._fitted = False

    # ---- features ---------------------------------------------------------------
    def _batches(self, x: torch.Tensor, batch_size: int):
        """Yields (a (m, D), logits (m, C)) float64 on the model's device."""
        check(batch_size >= 1, "batch_size", f"must be >= 1, got {batch_size}")
        for s in range(0, len(x), batch_size):
            feats, logits = _run(self.model, self.linear, x[s:s + batch_size].to(self.device))
            a = feats.double()
            if self._bias:
                a = torch.cat([a, a.new_ones(len(a), 1)], 1)
            yield a, logits.double()

    # ---- fit --------------------------------------------------------------------
    def fit(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> LastLayerLaplace:
        """Accumulates the curvature over the training set (x (N, ...), y (N,))."""
        if len(y) != len(x):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        C, D, dev = self.n_classes, self.n_inputs, self.device
        kw = {"dtype": torch.float64, "device": dev}
        full = self.hessian == "full"
        H = torch.zeros(self.n_params, self.n_params, **kw) if full else None
        blocks = torch.zeros(C, D, D, **kw)  # full: sum_n p_nc a a^T; kron: A in blocks[0]
        G = torch.zeros(C, C, **kw)
        self.n_data, self.train_nll = 0, 0.0
        for start, (a, logits) in zip(range(0, len(x), batch_size), self._batches(x, batch_size)):
            yb = y[start:start + len(a)].to(dev)
            p = logits.softmax(-1)
            self.train_nll += float(F.cross_entropy(logits, yb, reduction="sum"))
            self.n_data += len(a)
            if full:
                blocks += torch.einsum("mc,mj,mk->cjk", p, a, a)
                v = (p[:, :, None] * a[:, None, :]).reshape(len(a), -1)  # (m, P)
                H -= v.T @ v
            else:
                blocks[0] += a.T @ a
                G += torch.diag(p.sum(0)) - p.T @ p
        if self.n_data == 0:
            raise ValueError("fit needs at least one training example")
        self.theta = self.linear.weight.detach().double().to(dev)  # (C, D)
        if self._bias:
            self.theta = torch.cat([self.theta, self.linear.bias.detach().double()[:, None]], 1)
        if full:
            self._H = H + torch.block_diag(*blocks)
            lam, vec = torch.linalg.eigh(self._H)
            self._lam, self._vec = lam.clamp_min(0), vec.reshape(C, D, self.n_params)
        else:
            self._G, self._A = G, blocks[0] / self.n_data
            lg, self._ug = torch.linalg.eigh(G)
            la, self._ua = torch.linalg.eigh(self._A)
            self._lg, self._la = lg.clamp_min(0), la.clamp_min(0)
            self._lam = torch.outer(self._lg, self._la).reshape(-1)
        self._fitted = True
        return self

    def hessian_matrix(self) -> torch.Tensor:
        """(P, P) float64: H (full) or G kron A (kron), ordered as theta.reshape(-1)."""
        self._require_fit()
        return self._H if self.hessian == "full" else torch.kron(self._G, self._A)

    def _require_fit(self) -> None:
        if not self._fitted:
            raise RuntimeError("call fit() first")

    # ---- logit covariance ---------------------------------------------------------
    def _rows(self) -> int:
        width = self.n_classes * (self.n_params if self.hessian == "full" else self.n_inputs)
        return max(1, _CHUNK // width)

    def _diag_var(self, a: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
        """(m, C, G) variances of the logits of features a (m, D) for each delta (G,)."""
        out = []
        for s in range(0, len(a), self._rows()):
            ab = a[s:s + self._rows()]
            if self.hessian == "full":
                sq = torch.einsum("mj,cjp->mcp", ab, self._vec) ** 2
                out.append(sq @ (1 / (self._lam[:, None] + deltas[None, :])))
            else:
                m = self._kron_eigvar(ab, deltas)  # (m, C, G) in G's eigenbasis
                out.append(torch.einsum("ci,mig->mcg", self._ug ** 2, m))
        return torch.cat(out)

    def _kron_eigvar(self, a: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
        r = 1 / (torch.outer(self._lg, self._la)[:, :, None] + deltas)  # (C, D, G)
        return torch.einsum("mj,ijg->mig", (a @ self._ua) ** 2, r)

    def _factor(self, a: torch.Tensor) -> torch.Tensor:
        """(m, C, K) with cov(logits) = F F^T at the current prior precision."""
        delta = torch.tensor([self.prior_precision], dtype=torch.float64, device=a.device)
        if self.hessian == "kron":
            return self._ug[None] * self._kron_eigvar(a, delta)[:, None, :, 0].sqrt()
        low_rank = torch.einsum("mj,cjp->mcp", a, self._vec) * (self._lam + delta).rsqrt()
        w, q = torch.linalg.eigh(low_rank @ low_rank.transpose(1, 2))  # (m, C, P) -> (m, C, C)
        return q * w.clamp_min(0).sqrt()[:, None, :]

    def logit_moments(self, x: torch.Tensor, batch_size: int = 256
                      ) -> tuple[np.ndarray, np.ndarray]:
        """(mean (n, C), cov (n, C, C)) of the Gaussian over the logits of x."""
        self._require_fit()
        means, covs = [], []
        for a, logits in self._batches(x, batch_size):
            rows = self._rows()
            f = torch.cat([self._factor(a[s:s + rows]) for s in range(0, len(a), rows)])
            means.append(logits.cpu())
            covs.append((f @ f.transpose(1, 2)).cpu())
        return torch.cat(means).numpy(), torch.cat(covs).numpy()

    # ---- prior precision ------------------------------------------------------------
    def log_marginal_likelihood(self, prior_precision: float | None = None) -> float:
        """Laplace estimate of log p(D | delta) (constants dropped):
        -NLL(theta) - delta/2 |theta|^2 + P/2 log delta - 1/2 log det(H + delta I).
        It treats the trained weights as the MAP under this prior."""
        self._require_fit()
        d = self.prior_precision if prior_precision is None else float(prior_precision)
        return float(-self.train_nll - 0.5 * d * self.theta.pow(2).sum()
                     + 0.5 * self.n_params * math.log(d) - 0.5 * torch.log(self._lam + d).sum())

    def tune_prior(self, x_val: torch.Tensor | None = None, y_val: torch.Tensor | None = None,
                   grid=None, method: str = "nll", predictive: str = "probit", n_samples: int = 100,
                   seed: int = 0, batch_size: int = 256) -> LastLayerLaplace:
        """Sets prior_precision to the grid value (first among ties) that minimises
        the mean held-out NLL on (x_val, y_val) of `predictive` ("probit", or "mc"
        with the same draws for every grid value) for method="nll", or maximises
        log_marginal_likelihood on the training data (method="marglik").
        self.tuning keeps {"grid": (G,), "score": (G,)} (score: what is minimised)."""
        self._require_fit()
        check_choice(method, ("nll", "marglik"), "method")
        check_choice(predictive, ("probit", "mc"), "predictive")
        grid = np.asarray(DEFAULT_GRID if grid is None else grid, dtype=np.float64)
        check(grid.ndim == 1 and len(grid) > 0, "grid", "must be a non-empty 1-D sequence")
        _check_precision(grid, "grid")
        if method == "marglik":
            score = np.array([-self.log_marginal_likelihood(d) for d in grid])
        elif x_val is None or y_val is None or len(x_val) == 0 or len(y_val) != len(x_val):
            raise ValueError("method='nll' needs held-out data: x_val (n, ...), y_val (n,), n >= 1")
        elif predictive == "mc":
            rows, labels = np.arange(len(y_val)), y_val.cpu().numpy()
            score = np.empty(len(grid))
            for i, delta in enumerate(grid):
                self.prior_precision = float(delta)
                probs = self.predict(x_val, "mc", n_samples, seed, batch_size)
                score[i] = -np.log(probs[rows, labels]).mean()
        else:
            deltas = torch.as_tensor(grid, device=self.device)
            nll = torch.zeros(len(grid), dtype=torch.float64, device=self.device)
            for start, (a, logits) in zip(range(0, len(x_val), batch_size),
                                          self._batches(x_val, batch_size)):
                logp = _probit(logits[:, :, None], self._diag_var(a, deltas)).log_softmax(1)
                yb = y_val[start:start + len(a)].to(self.device)
                nll -= logp[torch.arange(len(a), device=self.device), yb].sum(0)  # -> (G,)
            score = (nll / len(x_val)).cpu().numpy()
        self.prior_precision = float(grid[int(np.argmin(score))])
        self.tuning = {"grid": grid, "score": score}
        return self

    # ---- predictive ---------------------------------------------------------------
    def predict(self, x: torch.Tensor, method: str = "probit", n_samples: int = 100, seed: int = 0,
                batch_size: int = 256) -> np.ndarray:
        """(n, C) float64 predictive probabilities of x (n, ...): "probit" or "mc"
        (mean softmax of n_samples logit draws per input, from a CPU generator
        seeded with `seed`, so the same on any device for a given batch_size)."""
        self._require_fit()
        check_choice(method, ("probit", "mc"), "method")
        check(n_samples >= 1, "n_samples", f"must be >= 1, got {n_samples}")
        gen = torch.Generator().manual_seed(seed)
        delta = torch.tensor([self.prior_precision], dtype=torch.float64, device=self.device)
        out = []
        for a, logits in self._batches(x, batch_size):
            if method == "probit":
                out.append(_probit(logits, self._diag_var(a, delta)[..., 0]).softmax(-1).cpu())
                continue
            for s in range(0, len(a), self._rows()):
                f = self._factor(a[s:s + self._rows()])  # (m, C, K)
                z = torch.randn((n_samples, len(f), f.shape[2]), generator=gen, dtype=torch.float64)
                draws = logits[s:s + len(f)] + torch.einsum("mck,smk->smc", f, z.to(self.device))
                out.append(draws.softmax(-1).mean(0).cpu())
        if not out:
            return np.zeros((0, self.n_classes))
        return torch.cat(out).numpy()


def _probit(mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """MacKay's probit scaling of logits: mean / sqrt(1 + pi/8 var)."""
    return mean / torch.sqrt(1 + math.pi / 8 * var)


def _check_precision(values, where: str) -> None:
    arr = np.asarray(values, dtype=np.float64)
    if not (np.isfinite(arr).all() and (arr > 0).all()):
        raise ConfigError(where, f"prior precisions must be finite and > 0, got {values!r}")


__all__ = ["DEFAULT_GRID", "MAX_FULL", "LastLayerLaplace", "split_last_layer"]
