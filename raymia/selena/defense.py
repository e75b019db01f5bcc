"""SELENA as a defense config: Split-AI's K submodels as parallel training jobs,
then self-distillation into the released model (mechanisms: selena/mechanism.py).

Every model trained with SELENA is planned in two stages (`Selena.stages`):
  1. K submodel jobs (`shadows.models_per_job` submodels each), run together
     with every other first-stage job on the executor's workers;
  2. one distillation job: a fresh model of the same architecture trained on
     its members with the Split-AI probabilities as soft labels, its epoch
     chosen on its held-out data (the validation split for the target).
The target is such a model, and so is each of the attacker's shadow models
when they train `like_target` (the default): K + 1 trainings per shadow
model, all of a stage in parallel on Ray. The adaptive attack
(raymia.selena.attack, its jobs in raymia.selena.attacker) is the attacker
of the paper, who knows half of the members.
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
    needs_holdout = True
    revision = 2  # like-target shadow models are distilled from Split-AIs of their own
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

    def stages(self, exp, job) -> Stages:
        return stages(self, exp, job)


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
class Stages:
    """First-stage jobs, and how their results become the jobs that train the
    planned job's models (one job per model, in the planned job's order)."""

    jobs: list
    finish: Callable[[list], list]  # first-stage results -> TrainJobs


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


def stages(defense: Selena, exp, job) -> Stages:
    """Split-AI then distillation for each model of `job` (the target's, or a
    job of shadow models). The target's draws derive from the trial's seed, a
    shadow model's from its own."""
    models = []  # (members, excluded, its submodel jobs) per model of the job
    for i, (members, seed) in enumerate(zip(job.train_indices, job.seeds)):
        root = exp.seed if job.role == "target" else seed
        excluded = selena.split_assignment(len(members), defense.K, defense.L,
                                           derive_seed(root, "selena/assignment"))
        role = "selena_submodel" if job.role == "target" else f"selena_{job.role}_submodel"
        models.append((members, excluded, submodel_jobs(
            defense.K, job, members, excluded, role, root, exp.shadows.models_per_job, members)))
    train = job.train
    if defense.distill_epochs is not None:
        train = dataclasses.replace(train, epochs=defense.distill_epochs)

    def finish(results):
        out, start = [], 0
        for i, (members, excluded, subs) in enumerate(models):
            sub = np.concatenate([r.logits for r in results[start:start + len(subs)]])  # (K, n, C)
            start += len(subs)
            targets = selena.distillation_targets(sub, excluded)
            out.append(dataclasses.replace(
                job, first_index=job.first_index + i, train_indices=(members,),
                seeds=(job.seeds[i],), train=train, defense=Distillation.of(members, targets),
                holdout_indices=job.holdout_indices[i:i + 1]))
        return out

    return Stages([j for _, _, subs in models for j in subs], finish)
