"""What attacks take and give. Declared once: a higher score means more likely a member."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class MissingSignal(ValueError):
    """The inputs lack a signal the attack needs (queries, boundary distances, an
    adaptive attacker's models): the attack cannot run on them."""


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
    target_queries: name -> (q, n_audit, C) the target on extra queries of the
        audit set (raymia.queries: "aug" augmented copies, "noise/<k>" noisy ones).
    shadow_queries: name -> (n_shadow, q, n_universe, C), the same for the shadows.
    target_boundary: (n_audit,) the target's label-only boundary distances, or None;
    shadow_boundary: (b, n_universe) those of the first b shadow models, or None.
    fit_columns: (n_universe,) bool, the universe columns thresholds and attack
        models may be fitted on (None: all); out-of-distribution audit examples
        are excluded, so the attacker's decision rule is the in-distribution one.
    reference_columns: universe column indices of the in-distribution audit set
        (None: the first n_audit), where per-example attacks (LiRA) fit their
        thresholds and pooled variances; the population (RMIA's z samples) is
        every column that is neither audit nor reference column.
    The universe starts with the audit set: column j < n_audit is audit example j.
    """

    target_logits: np.ndarray
    labels: np.ndarray
    shadow_logits: np.ndarray
    universe_labels: np.ndarray
    keep: np.ndarray
    target_population_logits: np.ndarray | None = None
    target_queries: dict = field(default_factory=dict)
    shadow_queries: dict = field(default_factory=dict)
    target_boundary: np.ndarray | None = None
    shadow_boundary: np.ndarray | None = None
    fit_columns: np.ndarray | None = None
    reference_columns: np.ndarray | None = None
    extra: dict = field(default_factory=dict)  # attack-specific signals, by attack name

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

    @property
    def fit(self) -> np.ndarray:
        """(n_universe,) bool: the columns an attack may fit on."""
        if self.fit_columns is None:
            return np.ones(self.keep.shape[1], bool)
        return self.fit_columns

    @property
    def references(self) -> np.ndarray:
        """Universe column indices of the in-distribution audit set."""
        if self.reference_columns is None:
            return np.arange(len(self.labels))
        return np.asarray(self.reference_columns)

    @property
    def population(self) -> np.ndarray:
        """(n_universe,) bool: the columns that are population samples."""
        taken = np.zeros(self.keep.shape[1], bool)
        taken[:len(self.labels)] = True
        taken[self.references] = True
        return ~taken

    def query(self, name: str, attack: str) -> tuple[np.ndarray, np.ndarray]:
        """(target (q, n_audit, C), shadows (n_shadow, q, n_universe, C)) of a query set."""
        if name not in self.target_queries or name not in self.shadow_queries:
            raise MissingSignal(f"{attack} needs the {name!r} queries, which this trial lacks")
        return self.target_queries[name], self.shadow_queries[name]


@dataclass(frozen=True, eq=False)
class AttackOutput:
    """One variant's verdict on the audit set: `scores` (n_audit,), higher = member,
    and the decision `threshold` fitted without evaluation labels (predict
    member where score >= threshold)."""

    attack: str
    variant: str
    scores: np.ndarray
    threshold: float
    #: (n_audit,) bool, the examples the attack is judged on (None: all); an
    #: attack that trains on some audit examples (selena_adaptive) leaves them out
    evaluated: np.ndarray | None = None
    #: +1, or -1 where the attack found on shadow data that members score lower
    #: and negated its statistic (None: an attack with no direction to choose)
    direction: int | None = None
    #: offline reference attacks: audit examples with no OUT reference model,
    #: scored from statistics pooled over the other examples' OUT models
    n_no_out_reference: int | None = None

    @property
    def predicted(self) -> np.ndarray:
        return self.scores >= self.threshold
