"""Run a sweep on Ray Tune: one trial per configuration, results in Parquet."""
from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd
import ray
from ray import tune

from raymia.config import ConfigError, Sweep, flatten
from raymia.extensions import Extensions, foreign
from raymia.execution.progress import MAX_FAILURES, Progress
from raymia.execution.plan import check_devices, data_key, draws, expand, load_and_check
from raymia.execution.trainable import one_line, summary, trainable
from raymia.experiment import trial_row
from raymia.manifest import check_claim, claim
from raymia.results import finished_ok, part_path, read_part, write_trial

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's banner and hints stay out of ours


class Interrupted(Exception):
    """Ctrl-C during a sweep: the message says how far it got."""


def connect(address: str | None) -> None:
    """Join the cluster at `address`, else start a local Ray on this machine (never
    a cluster some other process left behind)."""
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)


def check_fits(sweep: Sweep, out: Callable[[str], None] = print) -> None:
    """A ConfigError naming the field when a trial's bundle or a job's bundle fits
    on no node of the cluster (it would wait forever). A cluster whose
    autoscaler runs may add such a node: said, not refused."""
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    r = sweep.resources
    for field, kind, amount in (("resources.cpus_per_job", "CPU", r.cpus_per_job),
                                ("resources.gpus_per_job", "GPU", r.gpus_per_job),
                                ("resources.trial_cpus", "CPU", r.trial_cpus)):
        most = max((n.get(kind, 0.0) for n in nodes), default=0.0)
        if amount > most:
            has = f"the largest node has {most:g}" if most else f"no node has a {kind}"
            if _autoscaling():
                out(f"note: sweep.{field} asks for {amount:g} {kind} but {has} yet: trials "
                    "wait for the cluster's autoscaler to add one")
                continue
            raise ConfigError(f"sweep.{field}", f"asks for {amount:g} {kind} but {has} and "
                                                "no autoscaler runs; lower it or run on a "
                                                "cluster that has one (--address)")


def _autoscaling(raw: bytes | None = None) -> bool:
    """Whether an autoscaler with node types of its own runs (its status in the
    GCS, or `raw`). Ray started without a cluster config reports each node as a
    type of its own (`node_<id>`): a read-only provider that adds nothing."""
    if raw is None:
        from ray.experimental.internal_kv import _internal_kv_get

        raw = _internal_kv_get("__autoscaling_status")
    report = (json.loads(raw).get("autoscaler_report") or {}) if raw else {}
    types = (report.get("node_type_mapping") or {}).values()
    return any(not str(t).startswith("node_") for t in types)


def placement(sweep: Sweep) -> tune.PlacementGroupFactory:
    """The trial's bundle, then one bundle per concurrently running training job."""
    r = sweep.resources
    job = {"CPU": r.cpus_per_job, **({"GPU": r.gpus_per_job} if r.gpus_per_job else {})}
    head = {"CPU": r.trial_cpus} if r.trial_cpus else {}
    return tune.PlacementGroupFactory([head] + [dict(job) for _ in range(r.parallel_jobs)])


def varying(experiments) -> dict[str, dict]:
    """trial_id -> the config leaves that differ between the sweep's trials and
    that the trial has (a defense's fields only where it is that defense)."""
    flat = {e.trial_id: flatten(e.to_dict()) for e in experiments}
    keys = sorted({k for f in flat.values() for k in f})
    differ = [k for k in keys if len({repr(f.get(k)) for f in flat.values()}) > 1]
    return {tid: {k: f[k] for k in differ if k in f} for tid, f in flat.items()}


def run_sweep(sweep: Sweep, results_dir: Path, address: str | None = None, resume: bool = False,
              max_concurrent: int | None = None, dry_run: bool = False,
              out: Callable[[str], None] = print, extensions: Extensions | None = None,
              share: bool = False, progress_every: float = 30.0) -> int:
    """Validate, run and summarize a sweep. Returns the exit status: 0 when every
    trial succeeded, 1 when some failed. Bad input raises ConfigError first, a
    Ctrl-C raises Interrupted. `extensions`: attacks, defenses, ... registered
    outside raymia (default: all there are, raymia.extensions.foreign); every
    trial and job installs them, shipped by value (their modules need not exist
    on the other nodes). `share`: keep another sweep's trials in `results_dir`
    (raymia.manifest). Without a terminal, a progress line every
    `progress_every` seconds (raymia.execution.progress)."""
    experiments = expand(sweep)
    check_devices(sweep, experiments)
    datasets = load_and_check(experiments)
    params = varying(experiments)
    labels = {tid: " ".join(f"{k}={v}" for k, v in p.items()) for tid, p in params.items()}
    out(f"sweep {sweep.name}: {len(experiments)} trials -> {results_dir}")
    if repeated := draws(sweep) - len(experiments):
        out(f"note: {repeated} of the {draws(sweep)} configurations drawn repeat an earlier "
            "one (a random domain drew the same value, or a grid lists a value twice); "
            "each distinct trial runs once")
    if dry_run:
        for tid, label in labels.items():
            out(f"  {tid}  {label}")
        return 0
    results_dir = results_dir.resolve()
    check_claim(results_dir, sweep.name, list(params), share)  # before Ray starts
    connect(address)
    check_fits(sweep, out)
    claim(results_dir, sweep.name, list(params), share)
    extensions = foreign() if extensions is None else extensions
    for module in extensions.modules:
        if module in sys.modules and module != "__main__":
            ray.cloudpickle.register_pickle_by_value(sys.modules[module])
    refs = {key: ray.put(data) for key, data in datasets.items()}
    space = [{"id": e.trial_id, "data": data_key(e), "config": e.to_dict()} for e in experiments]
    run = tune.with_parameters(trainable, data_refs=refs, results_dir=str(results_dir),
                               sweep=sweep.name, resources=sweep.resources,
                               write_signals=sweep.write_signals, resume=resume,
                               extensions=extensions,
                               cache_dir=str(results_dir / "models") if sweep.cache_models else None)
    name = lambda trial: trial.config["trial"]["id"]  # noqa: E731
    tuner = tune.Tuner(
        tune.with_resources(run, placement(sweep)),
        param_space={"trial": tune.grid_search(space)},
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent or sweep.max_concurrent,
                                    trial_name_creator=name, trial_dirname_creator=name,
                                    reuse_actors=True),
        run_config=tune.RunConfig(name=sweep.name, storage_path=str(results_dir / "_tune"),
                                  failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
                                  verbose=0, callbacks=[Progress(labels, out, progress_every)]))
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C: KeyboardInterrupt, not Tune's advice
    try:
        grid = tuner.fit()
    except KeyboardInterrupt:
        done = sum(finished_ok(results_dir, tid) for tid in params)
        raise Interrupted(f"interrupted: {done} of {len(params)} trials finished; "
                          "rerun with --resume") from None
    by_id = {e.trial_id: e for e in experiments}
    for result in grid:  # trials Tune gave up on leave no row of their own: record them
        tid = result.config["trial"]["id"]
        if result.error is not None and not part_path(results_dir, "trials", tid).exists():
            now = datetime.now(timezone.utc)
            write_trial(results_dir, tid, {"trials": trial_row(
                by_id[tid], sweep.name, "failed", one_line(result.error), now, now.timestamp(), "")})
    table = summary_table(results_dir, params)
    out("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    out(f"\nParquet tables: {results_dir}/{{trials,attacks,scores,signals,slices,risk}}  "
        f"(pandas.read_parquet('{results_dir}/attacks'))")
    out(f"Figures: python -m raymia.report {results_dir}")
    return 0 if (table["status"] == "ok").all() else 1


def _short(path: str) -> str:
    return "defense" if path == "defense.name" else path.removeprefix("defense.")


def summary_table(results_dir: Path, params: dict[str, dict]) -> pd.DataFrame:
    """One row per trial: varied parameters, test accuracy, and the attacker's
    choice (picked on shadow models) with its AUC and TPR at 1% FPR, their 95%
    intervals, and `chance` marking an AUC interval that holds 1/2."""
    rows = []
    for tid, p in params.items():
        trial = read_part(results_dir, "trials", tid)
        attacks = read_part(results_dir, "attacks", tid)
        row = {"trial_id": tid, **{_short(k): v for k, v in p.items()}}
        row["status"] = trial["status"].iloc[0] if trial is not None else "missing"
        row["test_acc"] = trial["test_acc"].iloc[0] if trial is not None else None
        figures = summary(trial, attacks) if trial is not None else {}  # the progress line's
        chosen = figures.get("choice") is not None
        row["choice"] = figures["choice"] if chosen else ""
        for name, col in (("auc", "auc"), ("tpr_at_fpr_0.01", "tpr@1%fpr")):
            row[col] = figures[name] if chosen else None
            row[col + " 95% CI"] = (f"[{figures[name + '_lo']:.3f}, {figures[name + '_hi']:.3f}]"
                                    if chosen else "")
        row["chance"] = ("yes" if figures["auc_lo"] <= 0.5 <= figures["auc_hi"] else "no"
                         ) if chosen else ""
        rows.append(row)
    return pd.DataFrame(rows)
