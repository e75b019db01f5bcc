"""The one place membership is decided.

From the seed, a permutation of the dataset gives five disjoint sets:
target members, as many target non-members (together: the audit set), the
attacker's shadow pool, the defender's validation set, and as many held-out
examples for the attacker's shadow models (defenses that train shadow models
`like_target` need the attacker's own held-out data, outside every set the
attacks are fitted or evaluated on). The attacker's
universe is the audit set followed by the shadow pool; shadow model m trains
on `universe[keep[m]]`. `keep` mirrors the target: every shadow model trains
on exactly `n_members` examples, as the target does, and every universe column
is IN for as equal a number of shadow models as the sizes allow (they differ
by at most one). Without a shadow pool that is LiRA's design, every column IN
for exactly half of the models; with one, each column is IN for about
n_shadow * n_members / n_universe of them, and at least one and never all, so
every audit example has IN and OUT shadow models.

Canaries (`split.canaries`, drawn after the five sets) join the audit set:
half of them, at random, after the members, the other half after the
non-members, so the target trains on `n_members + canaries / 2` examples and
every shadow model on as many. Their labels are changed (raymia.data.canaries)
in every model's training data and in the attacks' labels alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from raymia.config import ConfigError, SplitConfig
from raymia.seeding import rng


@dataclass(frozen=True, eq=False)
class Splits:
    members: np.ndarray  # (n_members,) int64 sample ids
    nonmembers: np.ndarray  # (n_members,)
    shadow_pool: np.ndarray  # (n_shadow_pool,)
    validation: np.ndarray  # (n_validation,)
    shadow_holdout: np.ndarray  # (n_validation,)
    keep: np.ndarray  # (n_shadow, n_universe) bool
    canaries: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (k,) ids,
    # the members' half first

    @property
    def audit_is_canary(self) -> np.ndarray:
        """(2 * len(members),) bool: which audit positions hold canaries."""
        return np.isin(self.audit, self.canaries)

    @property
    def audit(self) -> np.ndarray:
        """Members then non-members: (2 * len(members),)."""
        return np.concatenate([self.members, self.nonmembers])

    @property
    def universe(self) -> np.ndarray:
        """Audit set then shadow pool: the columns of `keep`."""
        return np.concatenate([self.audit, self.shadow_pool])

    @property
    def audit_is_member(self) -> np.ndarray:
        return np.arange(2 * len(self.members)) < len(self.members)


def make_splits(n_examples: int, cfg: SplitConfig, n_shadow: int, seed: int,
                dataset: str = "the dataset", known: tuple | None = None) -> Splits:
    """Draw the splits; asking for more examples than exist is a ConfigError.

    `known`: (members, non-members or None) of a model trained elsewhere
    (raymia.target). Its members are the audit's members, all of them
    (`cfg.n_members` is not read); the non-members, shadow pool, validation and
    held-out sets are drawn from the known non-members, else from every other
    example."""
    if n_shadow < 2 or n_shadow % 2:
        raise ConfigError("shadows.n_models", f"must be even and >= 2, got {n_shadow}")
    if known is not None:
        return _around_members(n_examples, cfg, n_shadow, seed, dataset, *known)
    sizes = [cfg.n_members, cfg.n_members, cfg.n_shadow_pool, cfg.n_validation, cfg.n_validation]
    if sum(sizes) + cfg.canaries > n_examples:
        canaries = f", {cfg.canaries} canaries" if cfg.canaries else ""
        raise ConfigError("split", f"needs {sum(sizes) + cfg.canaries} examples ({cfg.n_members} "
                          f"members, as many non-members, {cfg.n_shadow_pool} shadow pool, "
                          f"{cfg.n_validation} validation and as many held out for shadow "
                          f"models{canaries}) but {dataset} holds {n_examples}")
    order = rng(seed, "splits").permutation(n_examples).astype(np.int64)
    members, nonmembers, pool, validation, shadow_holdout, rest = np.split(order, np.cumsum(sizes))
    canaries = rest[:cfg.canaries]
    if len(canaries):
        half = rng(seed, "canaries").permutation(len(canaries)) < len(canaries) // 2
        canaries = np.concatenate([canaries[half], canaries[~half]])
        members = np.concatenate([members, canaries[:len(canaries) // 2]])
        nonmembers = np.concatenate([nonmembers, canaries[len(canaries) // 2:]])
    return _with_keep(members, nonmembers, pool, validation, shadow_holdout, canaries,
                      n_shadow, seed)


def _around_members(n_examples: int, cfg: SplitConfig, n_shadow: int, seed: int, dataset: str,
                    members: np.ndarray, nonmembers: np.ndarray | None) -> Splits:
    """The splits of a given target: its members, the rest drawn from the others."""
    others = np.setdiff1d(np.arange(n_examples), members) if nonmembers is None else nonmembers
    sizes = [len(members), cfg.n_shadow_pool, cfg.n_validation, cfg.n_validation]
    if sum(sizes) > len(others):
        source = "known non-members" if nonmembers is not None else "other examples"
        raise ConfigError("split", f"needs {sum(sizes)} non-members ({len(members)} for the "
                          f"audit, as many as the target's members, {cfg.n_shadow_pool} shadow "
                          f"pool, {cfg.n_validation} validation and as many held out for shadow "
                          f"models) but {dataset} holds {len(others)} {source}")
    order = others[rng(seed, "splits").permutation(len(others))].astype(np.int64)
    outside, pool, validation, shadow_holdout, _ = np.split(order, np.cumsum(sizes))
    return _with_keep(np.asarray(members, np.int64), outside, pool, validation, shadow_holdout,
                      np.zeros(0, np.int64), n_shadow, seed)


def _with_keep(members, nonmembers, pool, validation, shadow_holdout, canaries, n_shadow: int,
               seed: int) -> Splits:
    n_train = len(members)
    n_universe = 2 * n_train + len(pool)
    if n_shadow * n_train < n_universe:
        raise ConfigError("shadows.n_models", f"{n_shadow} shadow models of {n_train} "
                          f"examples each cannot train on every one of the {n_universe} universe "
                          f"examples; use at least {-(-n_universe // n_train)}")
    keep = balanced_keep(n_shadow, n_universe, n_train, rng(seed, "keep"))
    return Splits(members, nonmembers, pool, validation, shadow_holdout, keep, canaries)


def balanced_keep(n_models: int, n_columns: int, row_size: int,
                  gen: np.random.Generator) -> np.ndarray:
    """(n_models, n_columns) bool with every row holding `row_size` True and the
    column counts differing by at most one (random which columns get the extra
    one), otherwise drawn at random.

    Columns are filled one at a time, each by the models with the most places
    left (random among ties): this greedy realises any bipartite degree
    sequence that can be realised (Gale-Ryser), and these can."""
    total = n_models * row_size
    counts = np.full(n_columns, total // n_columns)
    counts[gen.permutation(n_columns)[:total % n_columns]] += 1
    left = np.full(n_models, row_size)
    keep = np.zeros((n_models, n_columns), bool)
    for j in sorted(gen.permutation(n_columns), key=lambda j: -counts[j]):  # larger first
        chosen = np.argsort(-(left + gen.random(n_models)), kind="stable")[:counts[j]]
        keep[chosen, j] = True
        left[chosen] -= 1
    assert (left == 0).all(), "balanced_keep: greedy fill left places open"
    return keep
