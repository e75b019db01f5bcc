"""The adaptive attacker of the SELENA paper, against any target (attack
`selena_adaptive`, raymia.attacks.selena_adaptive).

It knows half of the target's members and trains its own Split-AI on them: K
submodels, each known member left out by L of them (K and L those of a SELENA
target's defense, else SELENA's defaults 25 and 10). Its submodels answer the
audit set, its own non-members (the attacker's held-out split) and the
trial's out-of-distribution sets; the target answers its non-members too.
The submodel jobs run with the shadow models on the executor's workers.
"""
from __future__ import annotations

import numpy as np

from raymia.config import Experiment
from raymia.data.splits import Splits
from raymia.selena import mechanism as selena
from raymia.selena.attack import split_sizes
from raymia.selena.defense import submodel_jobs
from raymia.queries import ood_query_sets
from raymia.seeding import derive_seed
from raymia.signals import log_probs
from raymia.train.job import JobResult, TrainJob
from raymia.train.job import QuerySet

REFERENCE = "selena/reference"  # the target's answers on the attacker's non-members


def plain_inputs(data, rows):
    """The examples themselves, as one query: (1, n, ...)."""
    return data.x[rows][None]


def reference_query(splits: Splits) -> QuerySet:
    return QuerySet(REFERENCE, splits.shadow_holdout, plain_inputs)


class Attacker:
    """The attacker's Split-AI: its jobs, then the attack's signals."""

    def __init__(self, exp: Experiment, splits: Splits, template: TrainJob):
        self.exp, self.splits = exp, splits
        self.K, self.L = split_sizes(exp)
        self.known, _ = selena.attacker_known_members(splits.members,
                                                      derive_seed(exp.seed, "selena/known"))
        self.seed = derive_seed(exp.seed, "selena/attacker")
        self.excluded = selena.split_assignment(len(self.known), self.K, self.L, self.seed)
        self.queried = np.concatenate([splits.audit, splits.shadow_holdout])
        self.ood = ood_query_sets(exp, splits.nonmembers)
        self.jobs = submodel_jobs(self.K, template, self.known, self.excluded,
                                  "attacker_submodel", self.seed, exp.shadows.models_per_job,
                                  self.queried, self.ood)

    def signals(self, data, results: list[JobResult], target: JobResult) -> dict:
        sub = np.concatenate([r.logits for r in results])  # (K, n_queried, C)
        shadow = selena.split_ai_probs(sub, self.queried, self.known, self.excluded,
                                       data.x[self.queried], self.L, self.seed)
        n_audit = len(self.splits.audit)
        ood = {}
        for q in self.ood:  # the OOD inputs are nobody's members: each gets its hashed L
            x = q.make(data, q.rows)[0]
            ood[q.name] = selena.split_ai_probs(np.concatenate([r.queries[q.name][:, 0]
                                                                for r in results]),
                                                q.rows, self.known, self.excluded, x, self.L,
                                                self.seed)
        return {"shadow_probs": shadow[:n_audit], "reference_shadow_probs": shadow[n_audit:],
                "ood_shadow_probs": ood,
                "reference_target_probs": np.exp(log_probs(target.queries[REFERENCE][0][0])),
                "reference_labels": data.y[self.splits.shadow_holdout],
                "known": np.isin(self.splits.audit, self.known),
                "seed": derive_seed(self.exp.seed, "selena/adaptive")}
