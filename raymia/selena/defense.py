"""SELENA as a defense config: Split-AI's K submodels as parallel training jobs,
then self-distillation into the released model (mechanisms: defenses/selena.py).

A SELENA target is planned in two stages (`Selena.target_plan`):
  1. K submodel jobs (`shadows.models_per_job` submodels each), run together
     with the attacker's shadow jobs on the executor's workers;
  2. one distillation job: a fresh model of the same architecture trained on
     the members with the Split-AI probabilities as soft labels, its epoch
     chosen on the validation split; it is the target every attack queries.
The attacker's ordinary shadow models train undefended (`applies_to_shadows`
is False: K + 1 trainings per shadow would dominate a sweep); the adaptive
attack (raymia.selena.attack, its jobs in raymia.selena.attacker) is the
defense-aware attacker.
"""
from __future__ import annotations

from typing import ClassVar

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from raymia.config import TrainConfig, check
from raymia.defenses.base import Defense
from raymia.defenses.early_stopping import EarlyStoppingHook
from raymia.defenses.none import NoDefense
from raymia.outputs.defenses import NoOutput
from raymia.registry import DEFENSES
from raymia.seeding import derive_seed
from raymia.selena import mechanism as selena
from raymia.train.hooks import Hook


@DEFENSES.register
@dataclass(frozen=True)
class Selena(Defense):
    """K submodels, each training example left out by L of them; the released
    model distils their Split-AI outputs (`distill_epochs`: None = train.epochs)."""

    name = "selena"
    stats: ClassVar[dict[str, type]] = {"best_epoch": int}  # its distillation stops early
    applies_to_shadows = False
    needs_holdout = True
    K: int = 25
    L: int = 10
    distill_epochs: int | None = None

    def __post_init__(self):
        selena.check_split_params(self.K, self.L)
        check(self.distill_epochs is None or self.distill_epochs >= 1, "distill_epochs",
              f"must be >= 1, got {self.distill_epochs}")

    def check(self, exp, data) -> None:
        super().check(exp, data)
        n = exp.split.n_members
        check(n * (self.K - self.L) >= self.K, "defense.K",
              f"{self.K} submodels leaving out {self.L} each get too few of {n} members")

    def target_plan(self, exp, splits, data, target_job) -> TargetPlan:
        return plan(self, exp, splits, data, target_job)


@dataclass(frozen=True, eq=False)
class Distillation(Defense):
    """Training on soft labels (internal: the second stage of SELENA). The soft
    labels travel outside the dataclass fields; `targets_sha256` stands for them
    in the model cache's key."""

    name = "selena_distillation"
    targets_sha256: str = ""

    @classmethod
    def of(cls, ids: np.ndarray, targets: np.ndarray) -> Distillation:
        digest = hashlib.sha256(np.ascontiguousarray(ids, np.int64).data)
        digest.update(np.ascontiguousarray(targets, np.float32).data)
        out = cls(digest.hexdigest())
        object.__setattr__(out, "ids", np.asarray(ids))
        object.__setattr__(out, "targets", np.asarray(targets, np.float32))
        return out

    def hooks(self, context, cfg: TrainConfig) -> list:
        return [SoftLabels(self.ids, self.targets),
                EarlyStoppingHook(cfg.epochs, context)]  # keeps the best validation epoch


class SoftLabels(Hook):
    """Replaces each batch's hard labels with the soft labels of its sample ids."""

    def __init__(self, ids: np.ndarray, targets: np.ndarray):
        order = np.argsort(ids)
        self.ids, self.targets = ids[order], torch.from_numpy(targets[order])
        self.rows = None

    def setup(self, model, optimizer, loader):
        hook = self

        class Recorded:  # the loader, remembering which rows each batch holds
            def __len__(self):
                return len(loader)

            def __iter__(self):
                for (rows,) in loader:
                    hook.rows = rows
                    yield (rows,)
        return model, optimizer, Recorded()

    def batch(self, x, target):
        pos = np.searchsorted(self.ids, self.rows.cpu().numpy())
        return x, self.targets[pos].to(x.device)


@dataclass
class TargetPlan:
    """First-stage jobs, and how their results become the target's job."""

    jobs: list
    finish: Callable[[list], object]  # first-stage results -> the target's TrainJob


def submodel_jobs(K: int, template, members, excluded, role: str, seed: int,
                  per_job: int, eval_ids: np.ndarray, query_sets: tuple = ()) -> list:
    """Jobs training K Split-AI submodels (`per_job` each) like `template`,
    undefended, answering `eval_ids` and `query_sets`."""
    sets = selena.submodel_train_sets(members, excluded)
    jobs = []
    for first in range(0, K, per_job):
        ks = range(first, min(first + per_job, K))
        jobs.append(dataclasses.replace(
            template, role=role, first_index=first, train_indices=tuple(sets[k] for k in ks),
            seeds=tuple(derive_seed(seed, role, k) for k in ks), defense=NoDefense(),
            eval_indices=eval_ids, holdout_indices=(), output=NoOutput(),
            query_sets=query_sets))
    return jobs


def plan(defense: Selena, exp, splits, data, target_job) -> TargetPlan:
    members = splits.members
    excluded = selena.split_assignment(len(members), defense.K, defense.L,
                                       derive_seed(exp.seed, "selena/assignment"))
    jobs = submodel_jobs(defense.K, target_job, members, excluded, "selena_submodel", exp.seed,
                         exp.shadows.models_per_job, members)

    def finish(results):
        sub = np.concatenate([r.logits for r in results])  # (K, n_members, C)
        targets = selena.distillation_targets(sub, excluded)
        train = target_job.train
        if defense.distill_epochs is not None:
            train = dataclasses.replace(train, epochs=defense.distill_epochs)
        return dataclasses.replace(target_job, train=train,
                                   defense=Distillation.of(members, targets))

    return TargetPlan(jobs, finish)
