"""Distance to the decision boundary from label queries only, HopSkipJump-style
(Chen, Jordan & Wainwright 2020), batched over examples; the signal of the
boundary attacks of Choquette-Choo et al. (2021) and Li & Zhang (2021).

For each correctly classified x (misclassified: distance 0):
  1. init: random points (x + Gaussian noise of doubling scale, clipped to
     `bounds` when given, alternating with uniform noise in `bounds`) until one
     is misclassified; binary search on the segment back to x;
  2. iterations t = 1..T at the boundary point p:
     direction v: mean of (phi_b - mean phi) u_b over B_t = n_grad * sqrt(t)
       random unit vectors u_b, phi_b = +1 if p + delta u_b is misclassified
       else -1 (baseline subtraction; without it when all phi_b agree);
     step: geometric search, xi = ||p - x|| / sqrt(t) halved until p + xi v is
       misclassified; binary search on the segment from x to that point;
       the new point is kept when it is closer.
Every distance returned belongs to a point the model misclassified, so it is
an upper bound of the true L2 distance (for a deterministic `predict_labels`);
binary searches stop at a relative tolerance `tol`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

Tensor = torch.Tensor


class BoundaryResult(NamedTuple):
    """distance (n,) float64: L2 distance to the boundary, 0 when misclassified,
    inf when no misclassified point was found; queries (n,) int64 per example."""

    distance: np.ndarray
    queries: np.ndarray


class _Oracle:
    """The only access to the model: whether points are misclassified, counted
    per example against a budget."""

    def __init__(self, predict_labels, shape, y: Tensor, budget: int, batch_size: int):
        self.predict, self.shape, self.y = predict_labels, shape, y
        self.budget, self.batch_size = budget, batch_size
        self.used = torch.zeros(len(y), dtype=torch.long, device=y.device)

    def left(self, idx: Tensor) -> Tensor:
        return self.budget - self.used[idx]

    @torch.no_grad()
    def adversarial(self, points: Tensor, idx: Tensor) -> Tensor:
        """points (k, d) flat, idx (k,) their examples -> (k,) bool misclassified."""
        labels = torch.cat([torch.as_tensor(self.predict(chunk.reshape(-1, *self.shape)))
                            .to(self.y.device).reshape(-1)
                            for chunk in points.split(self.batch_size)])
        self.used += torch.bincount(idx, minlength=len(self.used))
        if labels.shape != idx.shape or (self.used > self.budget).any():
            raise RuntimeError("predict_labels returned the wrong shape or the budget overran")
        return labels != self.y[idx]


def _binary_search(oracle: _Oracle, x0: Tensor, x1: Tensor, idx: Tensor, tol: float) -> Tensor:
    """Points x0 + h (x1 - x0) (k, d), h the smallest misclassified blend found,
    searched until (hi - lo) <= tol * hi or the budget ends; x1 misclassified."""
    lo = torch.zeros(len(idx), dtype=x0.dtype, device=x0.device)
    hi = torch.ones_like(lo)
    while True:
        a = (((hi - lo) > tol * hi) & (oracle.left(idx) >= 1)).nonzero()[:, 0]
        if len(a) == 0:
            return x0 + hi[:, None] * (x1 - x0)
        mid = (lo[a] + hi[a]) / 2
        adv = oracle.adversarial(x0[a] + mid[:, None] * (x1[a] - x0[a]), idx[a])
        hi[a[adv]], lo[a[~adv]] = mid[adv], mid[~adv]


def _initial(oracle: _Oracle, flat: Tensor, todo: Tensor, tries: int, scale: float,
             bounds, gen) -> tuple[Tensor, Tensor]:
    """Misclassified starting points (n, d) and the mask (n,) of examples that have one."""
    point, found = flat.clone(), torch.zeros_like(todo)
    for t in range(tries):
        idx = (todo & ~found & (oracle.left(slice(None)) >= 1)).nonzero()[:, 0]
        if len(idx) == 0:
            break
        uniform = bounds is not None and t % 2 == 0
        r = (torch.rand if uniform else torch.randn)(flat[idx].shape, generator=gen,
                                                      device=flat.device, dtype=flat.dtype)
        if uniform:
            cand = bounds[0] + (bounds[1] - bounds[0]) * r
        else:
            cand = flat[idx] + scale * 2**t * r
            cand = cand.clamp(*bounds) if bounds else cand
        hit = oracle.adversarial(cand, idx)
        point[idx[hit]], found[idx[hit]] = cand[hit], True
    return point, found


def _direction(oracle: _Oracle, p: Tensor, idx: Tensor, n_probes: int, delta: Tensor,
               bounds, gen, batch_size: int) -> Tensor:
    """(k, d) unit estimates of the boundary normal at p (k, d), pointing to the
    misclassified side, from n_probes sign queries per example."""
    k, d = p.shape
    s_pu, s_u = torch.zeros_like(p), torch.zeros_like(p)
    s_p = torch.zeros(k, dtype=p.dtype, device=p.device)
    per_call = max(1, batch_size // k)
    for start in range(0, n_probes, per_call):
        m = min(per_call, n_probes - start)
        u = torch.randn((m, k, d), generator=gen, device=p.device, dtype=p.dtype)
        u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-30)
        probe = p + delta[:, None] * u
        if bounds:
            probe = probe.clamp(*bounds)
            u = (probe - p) / delta[:, None]
        adv = oracle.adversarial(probe.reshape(m * k, d), idx.repeat(m)).reshape(m, k)
        phi = 2 * adv.to(p.dtype) - 1
        s_pu += (phi[..., None] * u).sum(0)
        s_u += u.sum(0)
        s_p += phi.sum(0)
    mean = s_p / n_probes
    v = torch.where((mean.abs() == 1)[:, None], s_pu, s_pu - mean[:, None] * s_u)
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-30)


def _step(oracle: _Oracle, p: Tensor, v: Tensor, xi: Tensor, idx: Tensor, bounds,
          halvings: int) -> tuple[Tensor, Tensor]:
    """Geometric step search: p + xi v with xi halved until misclassified.
    Returns the points (k, d) and the mask (k,) of those found."""
    cand, ok, xi = p.clone(), torch.zeros(len(idx), dtype=torch.bool, device=p.device), xi.clone()
    for _ in range(halvings + 1):
        a = (~ok & (oracle.left(idx) >= 1)).nonzero()[:, 0]
        if len(a) == 0:
            break
        c = p[a] + xi[a, None] * v[a]
        c = c.clamp(*bounds) if bounds else c
        hit = oracle.adversarial(c, idx[a])
        cand[a[hit]], ok[a[hit]] = c[hit], True
        xi[a[~hit]] /= 2
    return cand, ok


def _norm(a: Tensor) -> Tensor:
    return a.double().norm(dim=1)


def boundary_distance(predict_labels: Callable[[Tensor], Tensor], x, y, *,
                      max_queries: int = 2500, iterations: int = 10, n_grad: int = 100,
                      max_grad: int = 1000, init_tries: int = 20, init_scale: float = 1.0,
                      bounds: tuple[float, float] | None = None, tol: float | None = None,
                      halvings: int = 20, batch_size: int = 4096, seed: int = 0) -> BoundaryResult:
    """Estimated L2 distance from each x[i] (n, *shape) to the boundary of the
    classifier `predict_labels` ((B, *shape) -> (B,) int labels, called in
    batches of at most `batch_size` rows), y (n,) the true labels.

    max_queries: label queries per example (never exceeded); iterations: HSJ
    iterations; n_grad, max_grad: probes of the first and of any iteration;
    init_tries, init_scale: random starts (Gaussian std init_scale * 2**try;
    with `bounds`, the input box every query stays in, clipped to it and every
    other try uniform in it); tol: relative binary-search tolerance, default
    min(1e-3, d**-1.5), d = prod(shape); halvings: step-search halvings; seed: all randomness (a torch generator on x's device). Deterministic given
    the arguments (an example's result also depends on the others in the batch).
    """
    x = torch.as_tensor(x).detach()
    x = x if x.is_floating_point() else x.float()
    n, shape = x.shape[0], tuple(x.shape[1:])
    if n == 0:
        return BoundaryResult(np.zeros(0), np.zeros(0, np.int64))
    flat = x.reshape(n, -1)
    d = flat.shape[1]
    y = torch.as_tensor(y, device=x.device).long().reshape(n)
    if max_queries < 1 or iterations < 0 or n_grad < 1 or batch_size < 1:
        raise ValueError("max_queries, n_grad and batch_size must be >= 1, iterations >= 0")
    tol = max(min(1e-3, d ** -1.5) if tol is None else tol, 4 * torch.finfo(x.dtype).eps)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    oracle = _Oracle(predict_labels, shape, y, max_queries, batch_size)
    everyone = torch.arange(n, device=x.device)
    best = torch.full((n,), math.inf, dtype=torch.float64, device=x.device)
    wrong = oracle.adversarial(flat, everyone)
    best[wrong] = 0.0
    point, found = _initial(oracle, flat, ~wrong, init_tries, init_scale, bounds, gen)
    idx = found.nonzero()[:, 0]
    point[idx] = _binary_search(oracle, flat[idx], point[idx], idx, tol)
    best[idx] = _norm(point[idx] - flat[idx])
    reserve = math.ceil(math.log2(2 / tol)) + 3  # one step and one binary search
    for t in range(1, iterations + 1):
        n_probes = min(int(n_grad * math.sqrt(t)), max_grad)
        idx = (found & (oracle.left(everyone) >= n_probes + reserve)).nonzero()[:, 0]
        if len(idx) == 0:
            break
        x0, p, dist = flat[idx], point[idx], best[idx].to(x.dtype)
        delta = (max(math.sqrt(d), 2.0) * tol * dist).clamp_min(1e-30)
        v = _direction(oracle, p, idx, n_probes, delta, bounds, gen, batch_size)
        cand, ok = _step(oracle, p, v, dist / math.sqrt(t), idx, bounds, halvings)
        sel = ok.nonzero()[:, 0]
        new = _binary_search(oracle, x0[sel], cand[sel], idx[sel], tol)
        closer = _norm(new - x0[sel]) < best[idx[sel]]
        keep = idx[sel][closer]
        point[keep], best[keep] = new[closer], _norm(new[closer] - flat[keep])
    return BoundaryResult(best.cpu().numpy(), oracle.used.cpu().numpy())
