"""One trial, start to finish, given an executor for its training jobs. No Ray here.

  1. splits: members / non-members / shadow pool / keep matrix (data.splits)
  2. jobs: the target (with its defense) and the shadow models, run together
  3. signals: every model's logits on the attacker's universe
  4. attacks: pure functions of the signals -> scores (higher = member); the
     attacker's choice among them, rehearsed on the shadow models (raymia.choice)
  5. metrics with intervals and the null band (raymia.intervals) -> rows of the
     trials / attacks / scores / signals tables
"""
from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime, timezone
from importlib import metadata
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from raymia.version import __version__
from raymia.selena.attacker import Attacker, reference_query
from raymia.analysis import trial_epsilon
from raymia.attacks import run_attacks
from raymia.attacks.spec import needs_stage
from raymia.choice import CRITERION, choose, rehearse
from raymia.audit import ORIGINAL, boundary_distances, boundary_jobs, ood_inputs, original_inputs
from raymia.config import Experiment, flatten
from raymia.data import Dataset
from raymia.data.canaries import CANARIES, Relabel, relabel, relabeled
from raymia.data.splits import Splits, make_splits
from raymia.defenses import NoDefense, defense_fields
from raymia.outputs import NoOutput, output_fields
from raymia.intervals import bootstrap_intervals, null_band
from raymia.metrics import FPR_POINTS, accuracy, attack_metrics, ece
from raymia.results import SCHEMA_VERSION, to_table, training_stats
from raymia.risk import risk_rows
from raymia.slices import slice_rows
from raymia.seeding import derive_seed, rng
from raymia.signals import correct, max_prob, phi, true_log_prob
from raymia.queries import ood_name, query_sets
from raymia.target import load_target
from raymia.train.job import JobResult, TrainJob


class Executor(Protocol):
    def run(self, jobs: list[TrainJob]) -> list[JobResult]:
        """Run the jobs (in parallel where it can); results in job order."""


def make_jobs(exp: Experiment, splits: Splits, cache_dir: str | None = None,
              kind: str = "image", relabel: Relabel | None = None,
              weights: dict | None = None) -> list[TrainJob]:
    """The target's job, then the shadow models in jobs of `models_per_job`.
    Shadow seeds depend on the root seed only, not on the defense. The target's
    held-out data is the validation split; the shadow models' is the
    attacker's held-out split, outside the universe the attacks are fitted on.
    With `cache_dir`, jobs load models already trained there instead of training them.
    Every model also answers the trial's extra queries (raymia.queries) for data
    of `kind`: the shadow models on the universe, where their thresholds are
    fitted, the target on the audit set, all the attacks ask of it. Every model
    trains with the canaries' labels `relabel`. With `weights` (a model trained
    elsewhere, raymia.target), the target's job loads them instead of training;
    the shadow models train with the experiment's recipe as ever."""
    universe = splits.universe
    extra = query_sets(exp, kind, universe, splits.nonmembers)
    answered = np.zeros(0, np.int64) if fans_out(exp, cache_dir, len(universe)) else universe
    target = TrainJob("target", 0, (splits.members,), (derive_seed(exp.seed, "target"),),
                      exp.model, exp.train, exp.defense if weights is None else NoDefense(),
                      answered, (splits.validation,), cache_dir=cache_dir, output=exp.output,
                      query_sets=query_sets(exp, kind, splits.audit, splits.nonmembers),
                      relabel=relabel, weights=weights)
    like_target = exp.shadows.train == "like_target"
    shadow_defense = exp.defense if like_target and exp.defense.applies_to_shadows else NoDefense()
    shadow_output = exp.output if like_target and exp.output.applies_to_shadows else NoOutput()
    jobs = [target]
    per_job = exp.shadows.models_per_job
    for first in range(0, exp.shadows.n_models, per_job):
        ids = range(first, min(first + per_job, exp.shadows.n_models))
        holdouts = (splits.shadow_holdout,) * len(ids)
        jobs.append(TrainJob("shadow", first, tuple(universe[splits.keep[m]] for m in ids),
                             tuple(derive_seed(exp.seed, "shadow", m) for m in ids),
                             exp.model, exp.train, shadow_defense, universe, holdouts,
                             cache_dir=cache_dir, output=shadow_output, query_sets=extra,
                             relabel=relabel))
    return jobs


def fans_out(exp: Experiment, cache_dir: str | None, n: int) -> bool:
    """Whether the target's answers on the universe are query jobs over chunks
    (an output defense with a `chunk`, MemGuard, and the model cache to load from)."""
    chunk = getattr(exp.output, "chunk", None)
    return cache_dir is not None and chunk is not None and n > chunk


def _answer_in_chunks(exp: Experiment, target_job: TrainJob, universe: np.ndarray,
                      executor: Executor) -> list[JobResult]:
    size = exp.output.chunk
    return executor.run([dataclasses.replace(target_job, eval_indices=universe[s:s + size],
                                             query_sets=(), boundary=None)
                         for s in range(0, len(universe), size)])


def eval_set_rows(outputs, inputs, is_member, sample_ids, ids: dict, exp: Experiment,
                 rehearsal: dict, chosen: tuple[str, str] | None, subset: np.ndarray):
    """The `attacks` rows and `scores` parts of one evaluation set, the audit
    positions `subset` of the attacks' `outputs`: every attack variant, then
    the attacker's choice (the chosen variant's scores again)."""
    prediction_score = max_prob(inputs.target_logits)
    rows, parts = [], []
    ev = exp.evaluation
    # no attack could be rehearsed (e.g. only the adaptive attack): the first one the
    # experiment names stands, chosen by the user's order, not by evaluation labels
    picked = [out for out in outputs if (out.attack, out.variant) == chosen] or outputs[:1]
    for out, name in [(o, None) for o in outputs] + [(o, "attacker_choice") for o in picked]:
        on = subset if out.evaluated is None else out.evaluated & subset
        member = is_member[on]
        scores = out.scores[on].astype(np.float32)  # stored as float32: metrics use these
        names = {**ids, "attack": name or out.attack,
                 "variant": f"{out.attack}/{out.variant}" if name else out.variant}
        predicted = scores >= out.threshold  # from the stored scores, like AUC and TPR
        role = f"intervals/{ids['eval_set']}/{out.attack}/{out.variant}"
        rehearsed = rehearsal.get((out.attack, out.variant), {})
        n_out = int((~member).sum())
        rows.append({**names, **attack_metrics(scores, member, predicted, prediction_score[on]),
                     **bootstrap_intervals(scores, member, out.threshold, ev.n_resamples,
                                           ev.confidence, rng(exp.seed, role)),
                     **null_band(scores, member, out.threshold, ev.n_resamples, ev.confidence,
                                 rng(exp.seed, "null/" + role)),
                     **{f"max_fp_at_fpr_{a:g}": int(np.floor(a * n_out + 1e-9))
                        for a in FPR_POINTS},
                     "threshold": out.threshold, "n_members": int(member.sum()),
                     "n_nonmembers": n_out, "direction": out.direction,
                     "n_no_out_reference": out.n_no_out_reference,
                     "rehearsal_auc": rehearsed.get("auc"),
                     "rehearsal_tpr_at_fpr_0.01": rehearsed.get(CRITERION),
                     "rehearsal_rounds": rehearsed.get("rounds", 0)})
        parts.append(pd.DataFrame({**names, "sample_id": sample_ids[on], "is_member": member,
                                   "score": scores,
                                   "prediction_score": prediction_score[on].astype(np.float32)}))
    return rows, parts


def _placement(results: list[JobResult]) -> dict:
    """How many models the jobs trained or took from the cache, and where they ran."""
    cached = np.concatenate([r.cached for r in results])
    stacked = np.concatenate([r.stacked for r in results])
    return {"models_trained": int((~cached).sum()), "models_cached": int(cached.sum()),
            "models_stacked": int(stacked.sum()),
            "job_nodes": ",".join(sorted({r.node for r in results}))}


def _span(results: list[JobResult]) -> float:
    return max(r.finished_at for r in results) - min(r.started_at for r in results)


def _train(exp: Experiment, jobs: list[TrainJob], theirs: list[TrainJob], executor: Executor):
    """Train the target and shadow `jobs` and the adaptive attacker's jobs `theirs`.

    A job whose defense has stages (SELENA) becomes its first-stage jobs, run
    with every other job at once, then one job per model, run together.
    Returns (the jobs that trained the models, their results: the target's
    first, then the shadow models in order; the first-stage results; theirs)."""
    staged = [job.defense.stages(exp, job) for job in jobs]
    first = [j for st in staged if st is not None for j in st.jobs]
    direct = [job for job, st in zip(jobs, staged) if st is None]
    done = executor.run(first + theirs + direct)
    first_done, theirs_done = done[:len(first)], done[len(first):len(first) + len(theirs)]
    direct_done = iter(done[len(first) + len(theirs):])
    second, start = [], 0
    for st in staged:
        if st is not None:
            second.append(st.finish(first_done[start:start + len(st.jobs)]))
            start += len(st.jobs)
    second_jobs = [j for js in second for j in js]
    second_done = iter(executor.run(second_jobs) if second_jobs else [])
    planned, trained, seconds = [], [], iter(second)
    for st, job in zip(staged, jobs):
        own = [job] if st is None else next(seconds)
        planned += own
        trained += [next(direct_done if st is None else second_done) for _ in own]
    return planned, trained, first_done, theirs_done


def run_trial(exp: Experiment, data: Dataset, executor: Executor, sweep: str = "",
              node: str = "", write_signals: bool = True,
              cache_dir: str | None = None) -> dict[str, pd.DataFrame]:
    """Run one trial; returns its rows for each table (status "ok"). With
    `cache_dir`, models trained before with the same content hash are reused."""
    started = datetime.now(timezone.utc)
    t0 = time.time()
    known, weights = load_target(exp, data) or (None, None)  # a model trained elsewhere
    splits = make_splits(len(data), exp.split, exp.shadows.n_models, exp.seed, exp.data.name,
                         known)
    change = relabel(splits.canaries, data.y, data.n_classes, exp.split.canary_kind, exp.seed)
    data = relabeled(data, change)
    jobs = make_jobs(exp, splits, cache_dir, data.kind, change, weights)
    attacker = Attacker(exp, splits, jobs[0]) if needs_stage(exp, "adaptive") else None
    theirs = attacker.jobs if attacker else []  # the adaptive attacker's Split-AI
    if attacker:
        jobs[0] = dataclasses.replace(jobs[0], query_sets=jobs[0].query_sets + (
            reference_query(splits),))
    jobs, results, own_done, theirs_done = _train(exp, jobs, theirs, executor)
    extra = {}
    if attacker:
        extra["selena_adaptive"] = attacker.signals(data, theirs_done, results[0])
    target, shadows = results[0], results[1:]
    placement = _placement(own_done + theirs_done + results)
    query_only = []  # jobs that load their model from the cache and answer queries
    if fans_out(exp, cache_dir, len(splits.universe)):
        answers = _answer_in_chunks(exp, jobs[0], splits.universe, executor)
        target.logits = np.concatenate([a.logits for a in answers], axis=1)
        query_only += answers
    boundary, ood_boundary = (None, None), {}
    if needs_stage(exp, "boundary"):
        query_jobs, measured = boundary_jobs(exp, splits, jobs, cached=cache_dir is not None)
        queried = executor.run(query_jobs)
        boundary, ood_boundary = boundary_distances(exp, measured, queried)
        query_only += queried
    placement["job_nodes"] = _placement(own_done + theirs_done + results + query_only)[
        "job_nodes"]

    universe = splits.universe
    labels_u = data.y[universe]  # (n_universe,)
    n_members = len(splits.members)
    target_u = target.logits[0]  # (n_universe, C)
    shadow_u = np.concatenate([r.logits for r in shadows])  # (n_shadow, n_universe, C)

    t_attack = time.time()
    inputs = original_inputs(splits, labels_u, target, shadows, boundary, extra)
    key = {"sweep": sweep, "trial_id": exp.trial_id}
    attack_rows, score_parts = [], []
    canary = splits.audit_is_canary  # the population is every other audit example
    original = [(ORIGINAL, ~canary)] + ([(CANARIES, canary)] if canary.any() else [])
    eval_sets = [(inputs, original)]
    eval_sets += [(ood_inputs(exp, data, splits, inputs, target, shadows, name,
                              ood_boundary.get(ood_name(name))), [(name, ~canary)])
                  for name in exp.queries.eval_sets]
    is_member = splits.audit_is_member
    rehearsal = rehearse(exp.attacks, inputs, exp.reference, exp.evaluation.choice_rounds)
    chosen = choose(rehearsal)
    for attack_inputs, subsets in eval_sets:
        outputs = run_attacks(exp.attacks, attack_inputs, exp.reference)
        for eval_set, subset in subsets:
            rows, parts = eval_set_rows(outputs, attack_inputs, is_member, splits.audit,
                                       {**key, "eval_set": eval_set}, exp, rehearsal, chosen,
                                       subset)
            attack_rows += rows
            score_parts += parts
    attack_s = time.time() - t_attack

    # utility on the population: a mislabeled canary is right only where memorised
    audit_logits, audit_labels = inputs.target_logits[~canary], inputs.labels[~canary]
    n_pop = int((~canary[:n_members]).sum())
    metrics = {
        "train_acc": accuracy(audit_logits[:n_pop], audit_labels[:n_pop]),
        "test_acc": accuracy(audit_logits[n_pop:], audit_labels[n_pop:]),
        "ece": ece(audit_logits[n_pop:], audit_labels[n_pop:]),
        "n_members": n_pop, "n_nonmembers": len(audit_labels) - n_pop,
        "n_canaries": int(canary.sum()),
        "n_shadow_models": exp.shadows.n_models,
        "epochs_run": int(target.epochs_run[0]), **target.stats[0],
        "train_s": target.finished_at - target.started_at, "shadow_s": _span(shadows),
        "attack_s": attack_s, **placement,
    }
    metrics["gap"] = metrics["train_acc"] - metrics["test_acc"]
    declared = {"epochs_run", *exp.defense.stats, *exp.output.stats}
    unknown = set(target.stats[0]) - declared
    if unknown:
        raise ValueError(f"training reported {sorted(unknown)}, which neither "
                         f"{exp.defense.name} nor {exp.output.name} declares in its `stats`")
    scores = pd.concat(score_parts, ignore_index=True)
    metrics["epsilon_lower_bound"] = trial_epsilon(scores, exp.seed, metrics.get("delta"))
    tables = {
        "trials": trial_row(exp, sweep, "ok", "", started, t0, node, **metrics),
        # through the schema: the column types a reader of the Parquet part gets
        "attacks": to_table("attacks", pd.DataFrame(attack_rows)).to_pandas(),
        "scores": scores,
    }
    # where it leaks: every attack per slice, every audit example's exposure
    labels = pd.Series(inputs.labels, index=splits.audit)  # by sample_id
    right = pd.Series(correct(inputs.target_logits, inputs.labels), index=splits.audit)
    tables["slices"] = to_table("slices", slice_rows(
        scores, labels, right, exp.evaluation.n_resamples, exp.evaluation.confidence, exp.seed,
        thresholds=tables["attacks"])).to_pandas()
    tables["risk"] = to_table("risk", risk_rows(scores, labels, right)).to_pandas()
    if write_signals:
        tables["signals"] = signal_rows(key, universe, labels_u, target_u, shadow_u,
                                        splits.keep, n_members)
        tables["logits"] = logits_file(inputs, splits)
    return tables


def logits_file(inputs, splits: Splits) -> dict[str, np.ndarray]:
    """The trial's logits as `python -m raymia.audit_logits` reads them: the
    target and every shadow model, the audit set then the shadow pool."""
    n_audit = len(inputs.labels)
    return {"logits": inputs.target_logits, "labels": inputs.labels,
            "is_member": splits.audit_is_member, "sample_id": splits.audit,
            "is_canary": splits.audit_is_canary, "ref_logits": inputs.shadow_logits,
            "ref_keep": inputs.keep,
            "population_logits": inputs.target_population_logits,
            "population_labels": inputs.universe_labels[n_audit:]}


def signal_rows(key: dict, universe, labels, target_logits, shadow_logits, keep,
                n_members: int) -> pd.DataFrame:
    """One row per (model, universe example): target first, then each shadow."""
    logits = np.concatenate([target_logits[None], shadow_logits])  # (1 + m, n_universe, C)
    in_train = np.concatenate([(np.arange(len(universe)) < n_members)[None], keep])
    roles = np.array(["target"] + ["shadow"] * len(keep))
    n_models, n = in_train.shape
    return pd.DataFrame({
        **key,
        "role": np.repeat(roles, n),
        "model_index": np.repeat(np.r_[0, np.arange(len(keep))], n),
        "sample_id": np.tile(universe, n_models),
        "in_train": in_train.ravel(),
        "p_true": np.exp(true_log_prob(logits, labels)).astype(np.float32).ravel(),
        "phi": phi(logits, labels).astype(np.float32).ravel(),
        "correct": correct(logits, labels).ravel(),
    })


def trial_row(exp: Experiment, sweep: str, status: str, error: str, started: datetime,
              t0: float, node: str, **metrics) -> pd.DataFrame:
    """The trial's one `trials` row; metrics left out are null (e.g. a failed trial)."""
    config = exp.to_dict()
    leaves = {f"defense.{k}": None for k in defense_fields()}
    leaves.update({f"output.{k}": None for k in output_fields()})
    leaves.update(flatten(config))
    row = {
        "schema_version": SCHEMA_VERSION, "sweep": sweep, "trial_id": exp.trial_id,
        "status": status, "error": error, "dataset": exp.data.name, "model": exp.model.name,
        "defense": exp.defense.name, **leaves, "config_json": json.dumps(config, sort_keys=True),
        "wall_s": time.time() - t0, "node": node,
        "raymia_version": __version__, "torch_version": torch.__version__,
        "ray_version": _version("ray"), "started_at": started,
        "finished_at": datetime.now(timezone.utc),
    }
    for name in ("train_acc", "test_acc", "gap", "ece", "epsilon_lower_bound", "n_members",
                 "n_nonmembers", "n_canaries", "n_shadow_models", "train_s", "shadow_s",
                 "attack_s", "models_trained", "models_cached", "models_stacked", "job_nodes",
                 *training_stats()):
        row[name] = metrics.get(name)
    return pd.DataFrame([row])


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
