"""SELENA's mechanisms as pure numpy functions (Tang et al., USENIX Security 2022,
"Mitigating Membership Inference Attacks by Self-Distillation Through a Novel
Ensemble Architecture"; reference code: inspire-group/MIAdefenseSELENA).

1. Split-AI. K submodels; every training example is assigned L distinct
   submodels that do NOT train on it (`split_assignment`); submodel k trains on
   every example whose set excludes k (`submodel_train_sets`).
2. Split-AI inference (`split_ai_probs`). A training member (matched by sample
   id) gets the mean softmax of its L excluding submodels; any other query gets
   the mean softmax of L submodels chosen from a hash of its bytes and a salt
   (`query_submodels`). The reference code draws them at random per query (the
   L-set of a random training row), so repeating a query and averaging the
   answers would converge to the mean of all K submodels, while a member's
   answer is fixed; hashing makes every answer a function of the query alone,
   so repetition reveals nothing. A member sent as a new query (another id,
   or perturbed bytes) is routed by hash: Split-AI's known weakness, which
   self-distillation removes because the released model never sees ids.
3. Self-distillation. The released model trains on the training set with the
   Split-AI probabilities of the members as soft labels (`distillation_targets`;
   the loop takes (B, C) probability targets) and is the only model queried.

The adaptive attack of the paper (reference code: attack/adaptive_attack.py and
<dataset>/SELENA/adaptive_attack/) assumes an attacker who knows a fraction
(`known_ratio`, 0.5) of the members (`attacker_known_members`), trains a shadow
Split-AI with the same K and L but its own assignment on those known members,
and compares the shadow Split-AI's output s with SELENA's output q per example
(`adaptive_features`):
  - ce  = -sum_c s_c log q_c   (q <= 0 replaced by 1e-30, as the reference code)
  - l2  =  sum_c (s_c - q_c)^2
  - nn_diff = [s - q, onehot(y)]    input of its first inference network
  - nn_both = [q, s, onehot(y)]     input of its second (three branches)
The shadow Split-AI answers known members in member mode (their L excluding
shadow submodels) and everything else with L submodels not tied to the query
(`split_ai_probs` with the attacker's own salt gives both). The attack trains
on known members (label 1) against as many of the attacker's own non-members
(label 0), and is evaluated on the unknown members against as many fresh
non-members. ce and l2 are thresholded both ways (member if stat >= t, and if
-stat >= t; `orient` picks the way on training data), globally and per true
class; the networks are trained with MSE, Adam (lr 1e-4), 150 epochs. The
reference code reports the best of all of these, with the direction, global
vs per-class threshold and the networks' epoch picked on the evaluation set
(an oracle); here `orient` fits the direction on the attacker's training data,
and the thresholds (raymia.attacks.thresholds) and networks should be fitted
there too.
"""
from __future__ import annotations

import numpy as np

from raymia.attacks.thresholds import best_threshold
from raymia.config import ConfigError, check
from raymia.seeding import input_hashes
from raymia.signals import log_probs

_PERSON = b"raymia.selena"  # blake2b personalization: this module's hashes only
_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # splitmix64 increment
_TINY = 1e-30  # the reference code's floor for log(q)


def check_split_params(K: int, L: int, *, k_name: str = "K", l_name: str = "L") -> None:
    """ConfigError naming the field for K < 2, L < 1 or L >= K (a member must
    keep at least one submodel that trains on it, and there must be two)."""
    check(K >= 2, k_name, f"Split-AI needs at least 2 submodels, got {K}")
    check(L >= 1, l_name, f"each example must be left out of at least 1 submodel, got {L}")
    check(L < K, l_name, f"must be < {k_name} ({K}) so that some submodel trains on each "
          f"example, got {L}")


def split_assignment(n_train: int, K: int, L: int, seed: int) -> np.ndarray:
    """(n_train, K) bool: excluded[i, k] = submodel k does not train on example i.

    Every row has exactly L True. Rows are filled in order, each taking the L
    least-used submodels so far with ties broken by seeded uniform noise; so the
    column counts always lie in {m, m+1} and finish at floor or ceil of
    n_train * L / K (they differ by at most 1, also after any prefix of rows),
    while the sets themselves stay random. The reference code draws each row's
    set independently, which leaves the counts unbalanced."""
    check_split_params(K, L)
    if n_train < 0:
        raise ValueError(f"n_train must be >= 0, got {n_train}")
    noise = np.random.default_rng(seed).random((n_train, K)) * 0.5  # (n, K) in [0, 0.5)
    counts = np.zeros(K, np.int64)
    excluded = np.zeros((n_train, K), bool)
    for i in range(n_train):
        chosen = np.argpartition(counts + noise[i], L - 1)[:L]  # L least-used, random ties
        excluded[i, chosen] = True
        counts[chosen] += 1
    return excluded


def submodel_train_sets(train_ids: np.ndarray, excluded: np.ndarray) -> list[np.ndarray]:
    """K arrays of sample ids: submodel k trains on train_ids[~excluded[:, k]]."""
    train_ids, excluded = np.asarray(train_ids), np.asarray(excluded, bool)
    if excluded.ndim != 2 or excluded.shape[0] != len(train_ids):
        raise ValueError(f"excluded {excluded.shape} does not match {len(train_ids)} train ids")
    return [train_ids[~excluded[:, k]] for k in range(excluded.shape[1])]


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a bijection of uint64 with good mixing."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def query_submodels(x, K: int, L: int, salt: int) -> np.ndarray:
    """(n, L) int64, each row L distinct submodels in ascending order, for the
    queries x (n, ...): a function of the query's bytes and `salt` only.

    1. h = blake2b-64 of the row (raymia.seeding.input_hashes) keyed by the salt;
    2. key_k = splitmix64(h + (k + 1) * golden gamma) for k < K, all distinct
       (a bijection of distinct inputs);
    3. the L submodels with the smallest keys: a uniformly random-looking
       L-subset, the same for the same query in any batch, and unrelated for a
       query that differs in one bit or under another salt."""
    check_split_params(K, L)
    h = input_hashes(x, salt, _PERSON)  # (n,)
    with np.errstate(over="ignore"):
        z = h[:, None] + np.arange(1, K + 1, dtype=np.uint64) * _GAMMA  # (n, K)
    keys = _splitmix64(z)
    return np.sort(np.argsort(keys, axis=1, kind="stable")[:, :L], axis=1).astype(np.int64)


def split_ai_weights(eval_ids: np.ndarray, train_ids: np.ndarray, excluded: np.ndarray,
                     x_eval, L: int, salt: int) -> np.ndarray:
    """(n_eval, K) float64 averaging weights: 1/L on the L submodels that answer
    each eval example, 0 elsewhere. A member (eval id in train_ids) is answered
    by its excluding submodels, anything else by query_submodels(x_eval row).
    x_eval (n_eval, ...) may be None when every eval example is a member."""
    eval_ids, train_ids = np.asarray(eval_ids), np.asarray(train_ids)
    excluded = np.asarray(excluded, bool)
    if excluded.ndim != 2 or excluded.shape[0] != len(train_ids):
        raise ValueError(f"excluded {excluded.shape} does not match {len(train_ids)} train ids")
    K = excluded.shape[1]
    check_split_params(K, L)
    if len(excluded) and not (excluded.sum(1) == L).all():
        raise ValueError(f"every row of excluded must have exactly L={L} True")
    order = np.argsort(train_ids, kind="stable")
    sorted_ids = train_ids[order]
    if len(sorted_ids) > 1 and (sorted_ids[1:] == sorted_ids[:-1]).any():
        raise ValueError("train_ids has duplicates")
    pos = np.minimum(np.searchsorted(sorted_ids, eval_ids), max(len(sorted_ids) - 1, 0))
    member = (sorted_ids[pos] == eval_ids) if len(sorted_ids) else np.zeros(len(eval_ids), bool)
    weights = np.zeros((len(eval_ids), K))
    weights[member] = excluded[order[pos[member]]] / L
    others = np.flatnonzero(~member)
    if len(others):
        if x_eval is None:
            raise ValueError("x_eval is needed for eval examples that are not training members")
        x_eval = np.asarray(x_eval)
        if len(x_eval) != len(eval_ids):
            raise ValueError(f"x_eval has {len(x_eval)} rows for {len(eval_ids)} eval ids")
        chosen = query_submodels(x_eval[others], K, L, salt)  # (n_others, L)
        weights[others[:, None], chosen] = 1.0 / L
    return weights


def split_ai_probs(sub_logits: np.ndarray, eval_ids: np.ndarray, train_ids: np.ndarray,
                   excluded: np.ndarray, x_eval, L: int, salt: int) -> np.ndarray:
    """(n_eval, C) float64 Split-AI probabilities from sub_logits (K, n_eval, C),
    the K submodels' logits on the eval examples: members average the softmax
    of their L excluding submodels, other queries of their hashed L (see
    split_ai_weights). Log of the result serves as logits for raymia.signals."""
    sub_logits = np.asarray(sub_logits)
    weights = split_ai_weights(eval_ids, train_ids, excluded, x_eval, L, salt)  # (n, K)
    if sub_logits.ndim != 3 or sub_logits.shape[:2] != weights.shape[::-1]:
        raise ValueError(f"sub_logits {sub_logits.shape} should be (K={weights.shape[1]}, "
                         f"n_eval={weights.shape[0]}, C)")
    out = np.zeros(sub_logits.shape[1:])  # (n, C), one submodel at a time to bound memory
    for k in range(sub_logits.shape[0]):
        out += weights[:, k, None] * np.exp(log_probs(sub_logits[k]))
    return out


def distillation_targets(sub_logits_train: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """(n_train, C) float32 soft labels for self-distillation: row i is the mean
    softmax of the submodels that did not train on example i, from
    sub_logits_train (K, n_train, C), the submodels' logits on the training
    examples in the order of excluded's rows."""
    excluded = np.asarray(excluded, bool)
    n = excluded.shape[0]
    L = int(excluded[0].sum()) if n else 1
    ids = np.arange(n)
    return split_ai_probs(sub_logits_train, ids, ids, excluded, None, L, 0).astype(np.float32)


def attacker_known_members(members: np.ndarray, seed: int,
                           known_ratio: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(known, unknown) sorted member ids: a seeded random int(known_ratio * n)
    of the members that the adaptive attacker knows (the reference code takes
    the first half of its already shuffled member list), and the rest, which
    the attack is evaluated on."""
    if not 0 < known_ratio < 1:
        raise ConfigError("known_ratio", f"must be in (0, 1), got {known_ratio}")
    members = np.asarray(members)
    perm = np.random.default_rng(seed).permutation(len(members))
    n_known = int(known_ratio * len(members))
    return np.sort(members[perm[:n_known]]), np.sort(members[perm[n_known:]])


def adaptive_features(selena_probs: np.ndarray, shadow_probs: np.ndarray,
                      labels: np.ndarray) -> dict[str, np.ndarray]:
    """The adaptive attack's per-example comparison of SELENA's output q
    (n, C) with the shadow Split-AI's output s (n, C), labels (n,) int:
    "ce" (n,), "l2" (n,), "nn_diff" (n, 2C) and "nn_both" (n, 3C), float64;
    see the module docstring. Lower ce and l2 is the reference code's guess
    for members; `orient` fits the direction."""
    q, s = np.asarray(selena_probs, np.float64), np.asarray(shadow_probs, np.float64)
    labels = np.asarray(labels)
    if q.ndim != 2 or s.shape != q.shape or labels.shape != (len(q),):
        raise ValueError(f"SELENA probs {q.shape}, shadow probs {s.shape} and labels "
                         f"{labels.shape} do not match")
    onehot = np.eye(q.shape[1])[labels]  # (n, C)
    return {
        "ce": -(s * np.log(np.where(q > 0, q, _TINY))).sum(1),
        "l2": ((s - q) ** 2).sum(1),
        "nn_diff": np.concatenate([s - q, onehot], axis=1),
        "nn_both": np.concatenate([q, s, onehot], axis=1),
    }


def orient(train_stat: np.ndarray, train_is_member: np.ndarray) -> int:
    """+1 or -1: the sign that makes sign * stat a "higher = member" score,
    chosen by the better best-threshold balanced accuracy on the attacker's
    training data (ties: +1). The reference code tries both directions and
    reports the better one on the evaluation set."""
    stat, member = np.asarray(train_stat, np.float64), np.asarray(train_is_member, bool)

    def accuracy(v):
        t = best_threshold(v, member)
        return (np.mean(v[member] >= t) + np.mean(v[~member] < t)) / 2

    return 1 if accuracy(stat) >= accuracy(-stat) else -1
