"""MemGuard (Jia, Salem, Backes, Zhang, Gong, CCS 2019): a post-hoc defense that
perturbs the confidence vector the target releases, leaving training alone.

Pure mechanisms, numpy in and out (the trial pipeline and Ray fan-out call them):

* `train_defender_classifier` fits the defender's own membership classifier g
  on the target's outputs for its training members vs held-out non-members.
  As in the original code (jinyuan-jia/MemGuard, `train_defense_model_defensemodel.py`,
  `model/fccnet_location.py`) g reads the softmax vector **sorted in ascending
  order** through a 256-128-64 ReLU MLP and returns a membership logit;
  `DefenderClassifier` sorts inside `forward`, so callers pass plain probabilities.
  The classes are balanced by loss weights (the original uses 1000 + 1000), and
  it trains with Adam (the original: plain SGD, lr 1e-3, 400 epochs, batch 64).

* Phase I, `memguard_search`: for each query, gradient steps on the target's
  logits z (the noise lives in logit space, so every candidate is a probability
  vector) minimise, with the original's constants as defaults,

      c1 * |g_logit(softmax z)|                      (g's output at 0.5)
    + c2 * relu(max_{j != y} z_j - z_y)              (the predicted label y stays)
    + c3 * || softmax z - softmax z0 ||_1            (distortion)

  with the step `lr * grad / ||grad||_2` (0.1 in the original) from z0, until
  the label is kept and g's output has reached or crossed 0.5, for at most
  `max_iter` steps. An outer loop restarts from z0 with c3 multiplied by
  `c3_factor` after each success and keeps the last success (the least
  distorted); it stops at the first failure or after `c3_rounds` rounds (the
  original: 0.1, 1, ..., 1e5, i.e. 7 rounds). A query whose g output is already
  within 1e-5 of 0.5, or for which no round succeeds, keeps its original vector.
  One difference: the original sorts z0 once and feeds the (no longer sorted)
  iterate to g; here g re-sorts softmax(z) at every step (the sort is
  differentiable), so the search sees exactly what g sees on a released vector.

* Phase II, `release` (`memguard` = search + release): the randomisation of the original's evaluation
  (`evaluate_nn_attack.py`). With d the L1 distortion of the phase-I vector,
  the defender releases it with probability p = min(epsilon / d, 1), and the
  original vector otherwise; p = 0 when the phase-I vector does not bring g
  closer to 0.5 (or equals the original). So E[L1 distortion] = p * d <= epsilon
  **for every query**, not only on average. The original computes the expected
  attack accuracy from p instead of drawing; here each query draws its coin from
  `derive_seed(seed, "memguard", row_id)`, so a released vector depends on its
  row id and content only: any split into chunks (`memguard_chunks`) with the
  global row ids gives the results of the whole batch. raymia's MemGuard
  output (raymia.outputs.defenses) keys each query by a hash of its bytes: a
  repeated query gets the same answer (asking again averages nothing out),
  and every distinct input (an augmented copy, say) its own coin. (The search
  runs in float64 by default: batched BLAS may differ in the last bit between batch
  sizes, and in float64 such a difference flipping a stopping decision is
  vanishingly unlikely; `dtype=torch.float32` is 1.5-3x faster on CPU.)

Every released vector has the argmax of the original probability vector: the
search needs z_y strictly above the other logits, and a final check on the
float64 probabilities falls back to the original vector where that fails.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from raymia.config import check
from raymia.seeding import derive_seed

NEAR_HALF = 1e-5  # the original releases a query as is when |g - 0.5| <= this


def softmax(z, axis: int) -> np.ndarray:
    """scipy.special.softmax, imported on first use: every training job imports
    this module (through raymia.outputs), and only MemGuard's need SciPy."""
    from scipy.special import softmax as scipy_softmax

    return scipy_softmax(z, axis=axis)


class DefenderClassifier(nn.Module):
    """The original's defense model: sorted (ascending) softmax vector -> 256 -> 128
    -> 64 -> membership logit. `forward` takes unsorted probabilities (B, C) and
    returns (B,) logits of P(member); the sort is differentiable."""

    def __init__(self, n_classes: int, widths: tuple[int, ...] = (256, 128, 64)):
        super().__init__()
        layers, width = [], n_classes
        for w in widths:
            layers += [nn.Linear(width, w), nn.ReLU()]
            width = w
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        return self.net(torch.sort(probs, dim=1).values)[:, 0]


def _logits(a, where: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    check(a.ndim == 2 and a.shape[1] >= 2, where, f"must be (n, C) logits with C >= 2, got shape {a.shape}")
    check(bool(np.isfinite(a).all()), where, "must be finite")
    return a


def train_defender_classifier(member_logits, nonmember_logits, seed: int, epochs: int = 100, *,
                              batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.0,
                              widths: tuple[int, ...] = (256, 128, 64)) -> DefenderClassifier:
    """The defender's membership classifier on its own data.

    member_logits (m, C), nonmember_logits (k, C): the target's logits on members
    of its training set and on held-out non-members. Features are the softmax
    vectors (sorted inside the model); label 1 = member. The classes are
    balanced by weighting each one to half of the loss; the original trains on
    1000 + 1000 with plain SGD (lr 1e-3, 400 epochs, batch 64), here Adam.
    Deterministic given `seed` on CPU; returns the model in eval mode."""
    members = _logits(member_logits, "member_logits")
    nonmembers = _logits(nonmember_logits, "nonmember_logits")
    check(len(members) >= 1, "member_logits", "must hold at least one row")
    check(len(nonmembers) >= 1, "nonmember_logits", "must hold at least one row")
    check(members.shape[1] == nonmembers.shape[1], "nonmember_logits",
          f"has {nonmembers.shape[1]} classes, member_logits {members.shape[1]}")
    check(epochs >= 1, "epochs", f"must be >= 1, got {epochs}")
    check(batch_size >= 1, "batch_size", f"must be >= 1, got {batch_size}")
    check(lr > 0 and math.isfinite(lr), "lr", f"must be > 0, got {lr}")
    check(weight_decay >= 0, "weight_decay", f"must be >= 0, got {weight_decay}")
    check(len(widths) >= 1 and all(w >= 1 for w in widths), "widths", f"must be positive, got {widths}")

    x = torch.from_numpy(softmax(np.concatenate([members, nonmembers]), axis=1)).float()
    m, k = len(members), len(nonmembers)
    y = torch.cat([torch.ones(m), torch.zeros(k)])
    weight = torch.cat([torch.full((m,), (m + k) / (2 * m)), torch.full((k,), (m + k) / (2 * k))])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "memguard.classifier.init"))
        model = DefenderClassifier(x.shape[1], tuple(widths))
    gen = torch.Generator().manual_seed(derive_seed(seed, "memguard.classifier.batches"))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(m + k, generator=gen).split(batch_size):
            loss = F.binary_cross_entropy_with_logits(model(x[idx]), y[idx], weight=weight[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


@dataclass(frozen=True)
class MemGuardSearch:
    """Phase I per query: `original` and `noisy` (n, C) float64 probability vectors
    (`noisy` is `original` where no noise was found), g's membership probability
    on each (`score_original`, `score_noisy`, (n,)), and `rounds` (n,) the number
    of successful c3 rounds (0: no noise)."""

    original: np.ndarray
    noisy: np.ndarray
    score_original: np.ndarray
    score_noisy: np.ndarray
    rounds: np.ndarray

    @property
    def distortion(self) -> np.ndarray:
        """(n,) L1 distance between the phase-I and the original vector."""
        return np.abs(self.noisy - self.original).sum(1)


def _check_search(c1, c2, c3, c3_factor, c3_rounds, max_iter, lr) -> None:
    check(c1 > 0 and math.isfinite(c1), "c1", f"must be > 0, got {c1}")
    check(c2 >= 0 and math.isfinite(c2), "c2", f"must be >= 0, got {c2}")
    check(c3 > 0 and math.isfinite(c3), "c3", f"must be > 0, got {c3}")
    check(c3_factor >= 1 and math.isfinite(c3_factor), "c3_factor", f"must be >= 1, got {c3_factor}")
    check(c3_rounds >= 1, "c3_rounds", f"must be >= 1, got {c3_rounds}")
    check(max_iter >= 1, "max_iter", f"must be >= 1, got {max_iter}")
    check(lr > 0 and math.isfinite(lr), "lr", f"must be > 0, got {lr}")


def _scores(clf: nn.Module, probs: torch.Tensor) -> torch.Tensor:
    out = clf(probs)
    if out.numel() != len(probs):
        raise ValueError(f"classifier returned shape {tuple(out.shape)} for {len(probs)} queries; "
                         "expected one membership logit per query")
    return out.reshape(-1)


def memguard_search(logits, classifier: nn.Module, *, c1: float = 1.0, c2: float = 10.0,
                    c3: float = 0.1, c3_factor: float = 10.0, c3_rounds: int = 7,
                    max_iter: int = 300, lr: float = 0.1,
                    dtype: torch.dtype = torch.float64) -> MemGuardSearch:
    """Phase I on a batch: logits (n, C) of the target; `classifier` maps (B, C)
    probabilities to (B,) membership logits (e.g. `DefenderClassifier`; it is
    copied, never changed). All queries step together in one tensor; each stops
    on its own (masks) and drops out of later c3 rounds at its first failure."""
    z_np = _logits(logits, "logits")
    _check_search(c1, c2, c3, c3_factor, c3_rounds, max_iter, lr)
    original = softmax(z_np, axis=1)
    label = torch.from_numpy(original.argmax(1))
    clf = copy.deepcopy(classifier).to(dtype).eval()
    clf.requires_grad_(False)

    z0 = torch.from_numpy(z_np).to(dtype)
    p0 = torch.softmax(z0, 1)
    n, n_classes = z0.shape
    is_label = F.one_hot(label, n_classes).bool()
    with torch.no_grad():
        s0 = _scores(clf, p0)
    side = torch.sign(s0)
    best = z0.clone()
    rounds = torch.zeros(n, dtype=torch.long)
    alive = (torch.sigmoid(s0) - 0.5).abs() > NEAR_HALF

    for r in range(c3_rounds):
        rows = alive.nonzero()[:, 0]
        if len(rows) == 0:
            break
        weight = c3 * c3_factor ** r
        z = z0[rows].clone()
        active = torch.ones(len(rows), dtype=torch.bool)
        success = torch.zeros(len(rows), dtype=torch.bool)
        for step in range(max_iter + 1):
            a = active.nonzero()[:, 0]
            if len(a) == 0:
                break
            za = z[a].requires_grad_(True)
            pa = torch.softmax(za, 1)
            out = _scores(clf, pa)
            mask = is_label[rows[a]]
            z_y = za[mask]
            z_other = za.masked_fill(mask, -math.inf).amax(1)
            done = (z_y > z_other) & (out * side[rows[a]] <= 0)
            success[a[done]] = True
            active[a[done]] = False
            if step == max_iter or bool(done.all()):
                continue
            loss = (c1 * out.abs() + c2 * F.relu(z_other - z_y)
                    + weight * (pa - p0[rows[a]]).abs().sum(1))
            (grad,) = torch.autograd.grad(loss[~done].sum(), za)
            grad = grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-30)
            keep = ~done
            z[a[keep]] = (za.detach() - lr * grad)[keep]
        won = rows[success]
        best[won] = z[success]
        rounds[won] += 1
        alive[rows[~success]] = False

    noisy = softmax(best.double().numpy(), axis=1)
    kept = noisy.argmax(1) == original.argmax(1)
    noisy[~kept] = original[~kept]  # never release a changed label
    rounds = rounds.numpy()
    rounds[~kept] = 0
    with torch.no_grad():
        score_noisy = torch.sigmoid(_scores(clf, torch.from_numpy(noisy).to(dtype)))
    return MemGuardSearch(original, noisy, torch.sigmoid(s0).double().numpy(),
                          score_noisy.double().numpy(), rounds)


def release_probability(search: MemGuardSearch, epsilon: float) -> np.ndarray:
    """(n,) probability of releasing the phase-I vector under L1 budget `epsilon`:
    min(epsilon / d, 1) where it brings g closer to 0.5, else 0."""
    epsilon = _check_epsilon(epsilon)
    d = search.distortion
    helps = (np.abs(search.score_noisy - 0.5) < np.abs(search.score_original - 0.5)) & (d > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(helps, np.minimum(epsilon / np.where(helps, d, 1.0), 1.0), 0.0)
    return p


def _check_epsilon(epsilon) -> float:
    try:
        ok = float(epsilon) >= 0  # False for NaN
    except (TypeError, ValueError):
        ok = False
    check(ok, "epsilon", f"must be >= 0 (an L1 budget on probability vectors), got {epsilon!r}")
    return float(epsilon)


def _row_ids(row_ids, n: int) -> np.ndarray:
    if row_ids is None:
        return np.arange(n)
    ids = np.asarray(row_ids)
    check(ids.shape == (n,) and (n == 0 or np.issubdtype(ids.dtype, np.integer)), "row_ids",
          f"must be {n} integers (one per query), got shape {ids.shape} dtype {ids.dtype}")
    check(bool((ids >= 0).all()), "row_ids", "must be >= 0")
    return ids


def coins(seed: int, row_ids) -> np.ndarray:
    """(n,) uniforms in [0, 1), one per row id, from (seed, "memguard", row id)."""
    return np.array([derive_seed(seed, "memguard", int(i)) / 2.0 ** 63 for i in row_ids])


def release(search: MemGuardSearch, *, epsilon: float, seed: int, row_ids=None) -> np.ndarray:
    """Phase II: (n, C) released vectors, each query's phase-I vector with
    probability `release_probability(search, epsilon)` and its original one
    otherwise; the coin of query i comes from (seed, "memguard", row_ids[i]).
    One search serves every epsilon of a sweep, as in the original."""
    epsilon = _check_epsilon(epsilon)
    ids = _row_ids(row_ids, len(search.original))
    if epsilon == 0 or len(ids) == 0:
        return search.original.copy()
    use = coins(seed, ids) < release_probability(search, epsilon)
    return np.where(use[:, None], search.noisy, search.original)


def memguard(logits, classifier: nn.Module, *, epsilon: float, seed: int, row_ids=None,
             c1: float = 1.0, c2: float = 10.0, c3: float = 0.1, c3_factor: float = 10.0,
             c3_rounds: int = 7, max_iter: int = 300, lr: float = 0.1,
             dtype: torch.dtype = torch.float64) -> np.ndarray:
    """MemGuard's released probability vectors (n, C) float64 for logits (n, C).

    Phase I (`memguard_search`), then phase II (`release`): each query releases
    its phase-I vector with probability `release_probability` (expected L1
    distortion <= epsilon per query; epsilon=math.inf releases every helpful
    phase-I vector, epsilon=0 the original vectors). `row_ids` (n,) are the
    queries' global indices (default 0..n-1) that seed each query's coin; pass
    them when splitting a batch (`memguard_chunks`) to get the whole's result."""
    z = _logits(logits, "logits")
    epsilon = _check_epsilon(epsilon)
    _check_search(c1, c2, c3, c3_factor, c3_rounds, max_iter, lr)
    ids = _row_ids(row_ids, len(z))
    if epsilon == 0 or len(z) == 0:
        return softmax(z, axis=1)
    search = memguard_search(z, classifier, c1=c1, c2=c2, c3=c3, c3_factor=c3_factor,
                             c3_rounds=c3_rounds, max_iter=max_iter, lr=lr, dtype=dtype)
    return release(search, epsilon=epsilon, seed=seed, row_ids=ids)


def memguard_chunks(logits, chunk_size: int, row_ids=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split queries for fan-out: [(row_ids, logits), ...] in order, `chunk_size`
    rows each. `memguard(chunk, clf, row_ids=ids, ...)` on every piece, then
    `np.concatenate`, equals `memguard(logits, clf, row_ids=row_ids, ...)`."""
    z = _logits(logits, "logits")
    check(chunk_size >= 1, "chunk_size", f"must be >= 1, got {chunk_size}")
    ids = _row_ids(row_ids, len(z))
    return [(ids[i:i + chunk_size], z[i:i + chunk_size]) for i in range(0, len(z), chunk_size)]


__all__ = ["DefenderClassifier", "MemGuardSearch", "coins", "memguard",
           "memguard_chunks", "memguard_search", "release", "release_probability",
           "train_defender_classifier"]
