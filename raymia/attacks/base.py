"""What attacks take and give. Declared once: a higher score means more likely a member."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class AttackInputs:
    """Signals an attack may use; it never sees the target's membership labels.

    target_logits: (n_audit, C) the target model on the audit set.
    labels: (n_audit,) true classes of the audit examples.
    shadow_logits: (n_shadow, n_universe, C) each shadow model on the universe.
    universe_labels: (n_universe,) true classes of the universe examples.
    keep: (n_shadow, n_universe) bool, shadow m trained on universe example j.
    target_population_logits: (n_universe - n_audit, C) the target on the rest
        of the universe (the shadow pool), or None.
    The universe starts with the audit set: column j < n_audit is audit example j.
    """

    target_logits: np.ndarray
    labels: np.ndarray
    shadow_logits: np.ndarray
    universe_labels: np.ndarray
    keep: np.ndarray
    target_population_logits: np.ndarray | None = None

    def __post_init__(self):
        n, c = self.target_logits.shape
        m, u, c2 = self.shadow_logits.shape
        if self.labels.shape != (n,) or c2 != c:
            raise ValueError(f"target logits {self.target_logits.shape}, labels "
                             f"{self.labels.shape} and shadow logits {self.shadow_logits.shape} differ")
        if self.keep.shape != (m, u) or self.universe_labels.shape != (u,):
            raise ValueError(f"keep {self.keep.shape} / universe labels {self.universe_labels.shape} "
                             f"do not match shadow logits {self.shadow_logits.shape}")

    @property
    def n_classes(self) -> int:
        return self.target_logits.shape[1]


@dataclass(frozen=True, eq=False)
class AttackOutput:
    """One variant's verdict on the audit set: `scores` (n_audit,), higher = member,
    and the decision `threshold` fitted without evaluation labels (predict
    member where score >= threshold)."""

    attack: str
    variant: str
    scores: np.ndarray
    threshold: float

    @property
    def predicted(self) -> np.ndarray:
        return self.scores >= self.threshold
