"""The Tune trainable: a thin adapter, dict -> Experiment -> run_trial -> Parquet -> report.

Errors of the experiment itself (a diverging loss, a bad value) are recorded
as a failed trial; errors of the system (a lost actor or node) are raised so
that Tune retries the trial under its FailureConfig.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import ray
import torch
from ray import tune

from raymia.config import Experiment, Resources
from raymia.execution.actors import discard_executor, node_label, torch_threads, warm_executor
from raymia.experiment import run_trial, trial_row
from raymia.extensions import Extensions, install
from raymia.results import finished_ok, read_part, write_trial

SYSTEM_ERRORS = (ray.exceptions.RayActorError, ray.exceptions.NodeDiedError,
                 ray.exceptions.ObjectLostError, ray.exceptions.WorkerCrashedError)


def one_line(error: BaseException) -> str:
    cause = getattr(error, "cause", None) or error  # a RayTaskError wraps the job's error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}".strip()


def summary(trials: pd.DataFrame, attacks: pd.DataFrame | None) -> dict:
    """What the progress line shows of a finished trial: utility and the
    attacker's choice on the original evaluation set, with its intervals."""
    row = trials.iloc[0]
    out = {"trial_id": row["trial_id"], "status": row["status"], "error": row["error"],
           "test_acc": row["test_acc"], "node": row["node"], "job_nodes": row["job_nodes"],
           "models_trained": row["models_trained"], "models_cached": row["models_cached"],
           "choice": None}
    if attacks is not None:
        chosen = attacks[(attacks.eval_set == "original") & (attacks.attack == "attacker_choice")]
        if len(chosen):
            c = chosen.iloc[0]
            out["choice"] = c["variant"]
            out.update({k: float(c[k]) for k in CHOICE_FIGURES})
    return out


#: the attacker's-choice figures a progress line shows
CHOICE_FIGURES = ("auc", "auc_lo", "auc_hi", "tpr_at_fpr_0.01", "tpr_at_fpr_0.01_lo",
                  "tpr_at_fpr_0.01_hi")


def trainable(config: dict, data_refs: dict, results_dir: str, sweep: str,
              resources: Resources, write_signals: bool, resume: bool,
              cache_dir: str | None = None, extensions: Extensions | None = None) -> None:
    install(extensions)  # the sweep file's own attacks, defenses, ... (before the config)
    exp = Experiment.from_dict(config["trial"]["config"])
    results = Path(results_dir)
    if resume and finished_ok(results, exp.trial_id):
        tune.report({**summary(read_part(results, "trials", exp.trial_id),
                               read_part(results, "attacks", exp.trial_id)), "resumed": True})
        return
    torch.set_num_threads(torch_threads(resources.trial_cpus))
    data_ref = data_refs[config["trial"]["data"]]
    node, started, t0 = node_label(), datetime.now(timezone.utc), time.time()
    executor = warm_executor(data_ref, resources, extensions)
    try:
        tables = run_trial(exp, ray.get(data_ref), executor, sweep=sweep, node=node,
                           write_signals=write_signals, cache_dir=cache_dir)
    except SYSTEM_ERRORS:
        discard_executor(data_ref, resources)
        raise
    except Exception as error:  # the experiment failed, not the system: record it
        discard_executor(data_ref, resources)  # stop its other jobs still running
        tables = {"trials": trial_row(exp, sweep, "failed", one_line(error), started, t0, node)}
    write_trial(results, exp.trial_id, tables)
    tune.report({**summary(tables["trials"], tables.get("attacks")), "resumed": False})
