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
from functools import partial

import numpy as np

from raymia.attacks import AttackInputs
from raymia.config import Experiment
from raymia.outputs.defenses import NoOutput
from raymia.data.splits import Splits
from raymia.queries import AUG, ood_data, ood_name
from raymia.seeding import derive_seed
from raymia.train.job import JobResult, TrainJob
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
        target_queries={k: target.queries[k][0] for k in queries},  # the audit set's
        shadow_queries={k: _stack(shadows, k) for k in queries},
        target_boundary=boundary[0], shadow_boundary=boundary[1], extra=extra or {})


def ood_inputs(exp: Experiment, data, splits: Splits, base: AttackInputs, target: JobResult,
               shadows: list[JobResult], eval_set: str,
               boundary: np.ndarray | None = None) -> AttackInputs:
    """The audit set with its non-members replaced by the out-of-distribution set.

    Universe columns become [members, OOD, in-distribution non-members, pool]:
    the OOD examples take the non-members' audit positions (no shadow trained
    on them); the displaced non-members stay the reference columns where the
    per-example attacks fit (with the members), and the population stays the
    pool, so every decision rule is the one fitted for the original set.
    boundary: the target's boundary distances on the OOD set (no shadow's are
    measured there: NaN in their columns, which are never fitted on)."""
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
    for key in base.target_queries:  # "aug", "noise/<k>": the same queries of the OOD set
        t_q, s_q = target.queries[f"{name}/{key}"][0], _stack(shadows, f"{name}/{key}")
        target_queries[key] = np.concatenate([base.target_queries[key][:, :n_m], t_q], 1)
        shadow_queries[key] = insert(base.shadow_queries[key], s_q, 2)
    target_boundary = shadow_boundary = None
    if boundary is not None and base.target_boundary is not None:
        target_boundary = np.concatenate([base.target_boundary[:n_m], boundary])
        shadow_boundary = insert(base.shadow_boundary,
                                 np.full((len(base.shadow_boundary), len(y_ood)), np.nan), 1)
    extra = {}
    adaptive = base.extra.get("selena_adaptive")
    if adaptive is not None:  # the attacker's Split-AI on the OOD set, its reference as it was
        extra["selena_adaptive"] = {**adaptive, "shadow_probs": np.concatenate(
            [adaptive["shadow_probs"][:n_m], adaptive["ood_shadow_probs"][name]])}
    rest = base.target_logits[n_m:]  # the target on the displaced non-members
    return dataclasses.replace(
        base, target_logits=np.concatenate([base.target_logits[:n_m], t_ood]),
        labels=np.concatenate([base.labels[:n_m], y_ood]),
        shadow_logits=insert(base.shadow_logits, s_ood, 1),
        universe_labels=insert(base.universe_labels, y_ood, 0),
        keep=insert(base.keep, np.zeros((len(base.keep), len(y_ood)), bool), 1),
        target_population_logits=np.concatenate([rest, base.target_population_logits]),
        target_queries=target_queries, shadow_queries=shadow_queries,
        target_boundary=target_boundary, shadow_boundary=shadow_boundary, fit_columns=fit,
        extra=extra,
        # the in-distribution audit set: the members and the displaced non-members
        reference_columns=np.r_[np.arange(n_m), 2 * n_m + np.arange(n_m)])


def boundary_jobs(exp: Experiment, splits: Splits, jobs: list[TrainJob],
                  cached: bool) -> tuple[list[TrainJob], list[str]]:
    """Query-only jobs for the boundary attack, run after training, and what each
    measures: the target on the audit set ("target") and on each OOD set
    ("ood/<set>"), and the first `queries.boundary_models` shadow models on the
    universe ("shadow/<m>"), each in chunks of `queries.boundary_chunk`
    examples. Their models come from the cache (`cached`), so the chunks fan
    out over the executor's workers; without a cache each (model, set) is one
    job that trains the model again (the target once more per OOD set: the
    same model on CPU; GPU kernels may differ) and runs its chunks in turn. A chunk's random draws depend on its position
    only, so the distances are the same either way. The attacker queries
    released labels: an output defense that may move a label (laplace)
    answers the queries."""
    q = exp.queries
    models = [("target", jobs[0], 0, splits.audit, None)]
    shadow_jobs = jobs[1:]
    for m in range(q.boundary_models):
        job = next(j for j in shadow_jobs if j.first_index <= m < j.first_index + len(j.seeds))
        models.append((f"shadow/{m}", job, m - job.first_index, splits.universe, None))
    for eval_set in q.eval_sets:  # positions into the OOD set its builder returns
        build = partial(ood_data, exp, rows=splits.nonmembers, eval_set=eval_set)
        models.append((ood_name(eval_set), jobs[0], 0, np.arange(len(splits.nonmembers)), build))
    out, labels = [], []
    for label, job, i, rows, build in models:
        size = q.boundary_chunk if cached else len(rows)
        seed = int(job.seeds[i]) if build is None else derive_seed(int(job.seeds[i]), label)
        for start in range(0, len(rows), size):
            holdout = (job.holdout_indices[i],) if job.holdout_indices else ()
            labels.append(label)
            out.append(dataclasses.replace(
                job, first_index=job.first_index + i, train_indices=(job.train_indices[i],),
                seeds=(job.seeds[i],), holdout_indices=holdout,
                eval_indices=np.zeros(0, np.int64), query_sets=(),
                output=job.output if not getattr(job.output, "keeps_labels", True)
                else NoOutput(),
                boundary=BoundaryQuery(rows[start:start + size], 1, q.boundary_queries,
                                       seed=seed + start, chunk=q.boundary_chunk,
                                       inputs=build)))
    return out, labels


def boundary_distances(exp: Experiment, labels: list[str], results: list[JobResult]):
    """From the boundary jobs' results (in the order of `labels`): (target (n_audit,),
    shadows (b, n_universe)) and {"ood/<set>": the target's (n_nonmembers,)}."""
    parts: dict[str, list] = {}
    for label, result in zip(labels, results):
        parts.setdefault(label, []).append(result.boundary[0])
    d = {label: np.concatenate(chunks) for label, chunks in parts.items()}
    shadows = np.stack([d[f"shadow/{m}"] for m in range(exp.queries.boundary_models)])
    return (d["target"], shadows), {k: v for k, v in d.items() if k.startswith("ood/")}
