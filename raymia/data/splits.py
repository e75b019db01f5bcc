"""The one place membership is decided.

From the seed, a permutation of the dataset gives five disjoint sets:
target members, as many target non-members (together: the audit set), the
attacker's shadow pool, the defender's validation set, and as many held-out
examples for the attacker's shadow models (defenses that train shadow models
`like_target` need the attacker's own held-out data, outside every set the
attacks are fitted or evaluated on). The attacker's
universe is the audit set followed by the shadow pool; shadow model m trains
on `universe[keep[m]]`. `keep` is LiRA's design: every column is IN for exactly
half of the shadow models, so every audit example has as many IN as OUT
shadow models.
"""
from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def audit(self) -> np.ndarray:
        """Members then non-members: (2 * n_members,)."""
        return np.concatenate([self.members, self.nonmembers])

    @property
    def universe(self) -> np.ndarray:
        """Audit set then shadow pool: the columns of `keep`."""
        return np.concatenate([self.audit, self.shadow_pool])

    @property
    def audit_is_member(self) -> np.ndarray:
        return np.arange(2 * len(self.members)) < len(self.members)


def make_splits(n_examples: int, cfg: SplitConfig, n_shadow: int, seed: int,
                dataset: str = "the dataset") -> Splits:
    """Draw the splits; asking for more examples than exist is a ConfigError."""
    sizes = [cfg.n_members, cfg.n_members, cfg.n_shadow_pool, cfg.n_validation, cfg.n_validation]
    if sum(sizes) > n_examples:
        raise ConfigError("split", f"needs {sum(sizes)} examples ({cfg.n_members} members, as many "
                          f"non-members, {cfg.n_shadow_pool} shadow pool, {cfg.n_validation} "
                          f"validation and as many held out for shadow models) but {dataset} "
                          f"holds {n_examples}")
    if n_shadow < 2 or n_shadow % 2:
        raise ConfigError("shadows.n_models", f"must be even and >= 2, got {n_shadow}")
    order = rng(seed, "splits").permutation(n_examples).astype(np.int64)
    members, nonmembers, pool, validation, shadow_holdout, _ = np.split(order, np.cumsum(sizes))
    n_universe = 2 * cfg.n_members + cfg.n_shadow_pool
    ranks = rng(seed, "keep").random((n_shadow, n_universe)).argsort(0).argsort(0)
    keep = ranks < n_shadow // 2  # (n_shadow, n_universe): each column IN for half the models
    return Splits(members, nonmembers, pool, validation, shadow_holdout, keep)
