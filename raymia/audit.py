"""From the models' answers to the attacks' inputs, for each evaluation set.

The "original" set audits the members against in-distribution non-members.
An out-of-distribution set swaps the non-members for examples built from them
(raymia.data.ood): the target and every shadow model answer those inputs too
(no shadow trained on them), and the attacks may fit thresholds and attack
models on in-distribution columns only (`AttackInputs.fit_columns`), so the
decision rule stays the one the attacker would deploy.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from raymia.attacks import AttackInputs
from raymia.config import Experiment
from raymia.data.splits import Splits
from raymia.queries import AUG, ood_data, ood_name
from raymia.train import JobResult, TrainJob
from raymia.train.job import BoundaryQuery

ORIGINAL = "original"


def _stack(results: list[JobResult], name: str) -> np.ndarray:
    return np.concatenate([r.queries[name] for r in results])  # (m, q, n, C)


def original_inputs(splits: Splits, labels_u: np.ndarray, target: JobResult,
                    shadows: list[JobResult], boundary=(None, None),
                    extra: dict | None = None) -> AttackInputs:
    """labels_u (n_universe,): true classes of the universe; boundary: (target
    distances (n_audit,), shadow distances (b, n_universe)) or Nones; extra:
    attack-specific signals (AttackInputs.extra)."""
    n_audit = 2 * len(splits.members)
    target_u = target.logits[0]
    queries = [name for name in target.queries if name == AUG or name.startswith("noise/")]
    return AttackInputs(
        target_u[:n_audit], labels_u[:n_audit], np.concatenate([r.logits for r in shadows]),
        labels_u, splits.keep, target_u[n_audit:],
        target_queries={k: target.queries[k][0][:, :n_audit] for k in queries},
        shadow_queries={k: _stack(shadows, k) for k in queries},
        target_boundary=boundary[0], shadow_boundary=boundary[1], extra=extra or {})


def ood_inputs(exp: Experiment, data, splits: Splits, base: AttackInputs, target: JobResult,
               shadows: list[JobResult], eval_set: str) -> AttackInputs:
    """The audit set with its non-members replaced by the out-of-distribution set.

    Universe columns become [members, OOD, in-distribution non-members, pool]:
    the OOD examples take the non-members' audit positions (no shadow trained
    on them); the displaced non-members stay the reference columns where the
    per-example attacks fit (with the members), and the population stays the
    pool, so every decision rule is the one fitted for the original set."""
    n_m = len(splits.members)
    _, y_ood = ood_data(exp, data, splits.nonmembers, eval_set)
    name = ood_name(eval_set)
    t_ood, s_ood = target.queries[name][0][0], _stack(shadows, name)[:, 0]  # (n, C), (m, n, C)
    u = base.keep.shape[1]

    def insert(a, b, axis):  # put b's columns at the audit non-member positions
        head, tail = np.split(a, [n_m], axis=axis)
        return np.concatenate([head, b, tail], axis=axis)

    fit = insert(np.ones(u, bool), np.zeros(len(y_ood), bool), 0)
    target_queries, shadow_queries = {}, {}
    if AUG in base.target_queries:
        t_aug, s_aug = target.queries[f"{name}/{AUG}"][0], _stack(shadows, f"{name}/{AUG}")
        target_queries[AUG] = np.concatenate([base.target_queries[AUG][:, :n_m], t_aug], 1)
        shadow_queries[AUG] = insert(base.shadow_queries[AUG], s_aug, 2)
    rest = base.target_logits[n_m:]  # the target on the displaced non-members
    return dataclasses.replace(
        base, target_logits=np.concatenate([base.target_logits[:n_m], t_ood]),
        labels=np.concatenate([base.labels[:n_m], y_ood]),
        shadow_logits=insert(base.shadow_logits, s_ood, 1),
        universe_labels=insert(base.universe_labels, y_ood, 0),
        keep=insert(base.keep, np.zeros((len(base.keep), len(y_ood)), bool), 1),
        target_population_logits=np.concatenate([rest, base.target_population_logits]),
        target_queries=target_queries, shadow_queries=shadow_queries,
        target_boundary=None, shadow_boundary=None, fit_columns=fit, extra={},
        # the in-distribution audit set: the members and the displaced non-members
        reference_columns=np.r_[np.arange(n_m), 2 * n_m + np.arange(n_m)])


def boundary_jobs(exp: Experiment, splits: Splits, jobs: list[TrainJob],
                  cached: bool) -> list[TrainJob]:
    """Query-only jobs for the boundary attack, run after training: the target on
    the audit set and the first `queries.boundary_models` shadow models on the
    universe, each in chunks of `queries.boundary_chunk` examples. Their models
    come from the cache (`cached`), so the chunks fan out over the executor's
    workers; without a cache each model is one job that trains it again (the
    same model on CPU; GPU kernels may differ) and runs its chunks in turn. A
    chunk's random draws depend on its position only, so the distances are
    the same either way. The attacker queries released labels: an output
    defense that may move a label (laplace) answers the queries."""
    from raymia.defenses import NoOutput

    q = exp.queries
    models = [(jobs[0], 0, splits.audit)]
    shadow_jobs = jobs[1:]
    for m in range(q.boundary_models):
        job = next(j for j in shadow_jobs if j.first_index <= m < j.first_index + len(j.seeds))
        models.append((job, m - job.first_index, splits.universe))
    out = []
    for job, i, rows in models:
        size = q.boundary_chunk if cached else len(rows)
        for start in range(0, len(rows), size):
            holdout = (job.holdout_indices[i],) if job.holdout_indices else ()
            out.append(dataclasses.replace(
                job, first_index=job.first_index + i, train_indices=(job.train_indices[i],),
                seeds=(job.seeds[i],), holdout_indices=holdout,
                eval_indices=np.zeros(0, np.int64), query_sets=(),
                output=job.output if not getattr(job.output, "keeps_labels", True)
                else NoOutput(),
                boundary=BoundaryQuery(rows[start:start + size], 1, q.boundary_queries,
                                       seed=int(job.seeds[i]) + start,
                                       chunk=q.boundary_chunk)))
    return out


def boundary_distances(exp: Experiment, results: list[JobResult]):
    """(target (n_audit,), shadows (b, n_universe)) from the boundary jobs' results."""
    chunks = [r.boundary[0] for r in results]
    per_model = []
    n_target = sum(1 for r in results if r.role == "target")
    per_model.append(np.concatenate(chunks[:n_target]))
    rest = chunks[n_target:]
    n_shadow_chunks = len(rest) // max(exp.queries.boundary_models, 1)
    for m in range(exp.queries.boundary_models):
        per_model.append(np.concatenate(rest[m * n_shadow_chunks:(m + 1) * n_shadow_chunks]))
    return per_model[0], np.stack(per_model[1:])
