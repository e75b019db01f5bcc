"""The Parquet tables: schemas, atomic part files, reading back.

schema_version 2 adds to version 1 the `attacks` table's intervals, null band,
rehearsal and direction columns and its `attacker_choice` rows (the chosen
variant named in `variant`); shadow models train on as many examples as the
target. Parts of both versions read back together (`read_results`).

Added since (columns only, the version stays): the attacks table's headline
figures `advantage` (TPR - FPR at the fitted threshold), `oracle_advantage`
(the largest TPR - FPR over the ROC, chosen on the evaluation labels) and
`ppv_at_fpr_<a>` with their intervals and null bands (raymia.metrics,
raymia.intervals); and two tables:
  slices  one row per (trial, attack, variant, eval_set "original", slice):
          `slice_kind` ("all", "class", "correct", "confidence"), `slice`
          ("3", "true", "q1"...), `slice_low`/`slice_high` (a confidence
          quartile's edges), `n_members`, `n_nonmembers`, `auc`,
          `tpr_at_fpr_0.01`, `advantage` with their intervals, and
          `oracle_advantage` (raymia.slices)
  risk    one row per (trial, attack, variant, eval_set, audit example) of the
          attacker's choice and LiRA's online variants on the population and
          the canaries: `sample_id`, `label`, `is_member`, `correct`, `score`,
          `rank`, `fpr_at_score`, `tpr_at_score` (raymia.risk)

Under a results directory each table is a folder of part files, one per trial,
named `<table>/<trial_id>.parquet`. A part is written to a hidden temporary
file and renamed into place, so a crash never leaves a half-written part
(Parquet readers skip names starting with '.'), and a rerun overwrites.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import types
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from raymia.config import ConfigError, Experiment
from raymia.defenses import defense_fields
from raymia.outputs import output_fields
from raymia.registry import DEFENSES, OUTPUTS
from raymia.intervals import interval_columns
from raymia.metrics import FPR_POINTS

SCHEMA_VERSION = 2
TABLES = ("trials", "attacks", "scores", "signals", "slices", "risk")
F64, F32, I64, STR, BOOL = pa.float64(), pa.float32(), pa.int64(), pa.string(), pa.bool_()
TIME = pa.timestamp("us", tz="UTC")


def _arrow(tp) -> pa.DataType:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return _arrow(next(a for a in typing.get_args(tp) if a is not type(None)))
    if typing.get_origin(tp) is tuple:
        return pa.list_(_arrow(typing.get_args(tp)[0]))
    return {int: I64, float: F64, str: STR, bool: BOOL}[tp]


def config_columns() -> dict[str, pa.DataType]:
    """Every leaf of the Experiment config as a dotted column; `defense.<field>`
    for every field any registered defense has."""
    fields = {"defense": defense_fields, "output": output_fields}

    def walk(cls, prefix: str) -> dict[str, pa.DataType]:
        out: dict[str, pa.DataType] = {}
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            path, tp = prefix + f.name, hints[f.name]
            if dataclasses.is_dataclass(tp):
                out.update(walk(tp, path + "."))
            elif tp is typing.Any:  # the defense or output, registries of dataclasses
                out[path + ".name"] = STR
                out.update({f"{path}.{k}": _arrow(t) for k, t in fields[f.name]().items()})
            else:
                out[path] = _arrow(tp)
        return out

    return walk(Experiment, "")


def _schema(columns) -> pa.Schema:
    return pa.schema([pa.field(name, tp) for name, tp in columns])


def training_stats() -> dict[str, pa.DataType]:
    """What the target's training reports, null where not applicable: the epochs
    run, and every stat a registered defense or output defense declares
    (`stats`: DP accounting, the epoch early stopping chose, a fitted temperature...)."""
    out = {"epochs_run": I64}
    for cls in [*DEFENSES.values(), *OUTPUTS.values()]:
        out.update({name: _arrow(tp) for name, tp in cls.stats.items()})
    return out


def trials_schema() -> pa.Schema:
    head = [("schema_version", I64), ("sweep", STR), ("trial_id", STR), ("status", STR),
            ("error", STR), ("seed", I64), ("dataset", STR), ("model", STR), ("defense", STR)]
    config = [(k, t) for k, t in config_columns().items() if k != "seed"]
    tail = [("config_json", STR), ("train_acc", F64), ("test_acc", F64), ("gap", F64),
            ("ece", F64), ("epsilon_lower_bound", F64), *training_stats().items(), ("n_members", I64),
            ("n_nonmembers", I64), ("n_canaries", I64), ("n_shadow_models", I64), ("wall_s", F64),
            ("train_s", F64), ("shadow_s", F64), ("attack_s", F64), ("models_trained", I64),
            ("models_cached", I64), ("models_stacked", I64), ("node", STR), ("job_nodes", STR),
            ("raymia_version", STR), ("torch_version", STR), ("ray_version", STR),
            ("started_at", TIME), ("finished_at", TIME)]
    return _schema(head + config + tail)


KEY = [("sweep", STR), ("trial_id", STR)]
ATTACK_KEY = KEY + [("attack", STR), ("variant", STR), ("eval_set", STR)]


class _Schemas(dict):
    """The tables' schemas; `trials` is derived from the registries when asked,
    so a defense registered later (from a sweep file) has its columns."""

    def __getitem__(self, name: str) -> pa.Schema:
        return trials_schema() if name == "trials" else super().__getitem__(name)


SCHEMAS = _Schemas({
    "trials": None,
    "attacks": _schema(ATTACK_KEY + [("auc", F64)]
                       + [(f"tpr_at_fpr_{a:g}", F64) for a in FPR_POINTS]
                       + [(k, F64) for k in ("acc", "precision", "recall", "fpr", "threshold",
                                             "mmps_tp", "mmps_fp", "mmps_tn", "mmps_fn")]
                       + [(k, F64) for k in ("advantage", "oracle_advantage")]
                       + [(f"ppv_at_fpr_{a:g}", F64) for a in FPR_POINTS]
                       + [("n_members", I64), ("n_nonmembers", I64)]
                       + [(c, F64) for c in interval_columns()]
                       + [(f"max_fp_at_fpr_{a:g}", I64) for a in FPR_POINTS]
                       + [("direction", I64), ("n_no_out_reference", I64),
                          ("rehearsal_auc", F64), ("rehearsal_tpr_at_fpr_0.01", F64),
                          ("rehearsal_rounds", I64)]),
    "scores": _schema(ATTACK_KEY + [("sample_id", I64), ("is_member", BOOL), ("score", F32),
                                   ("prediction_score", F32)]),
    "signals": _schema(KEY + [("role", STR), ("model_index", I64), ("sample_id", I64),
                              ("in_train", BOOL), ("p_true", F32), ("phi", F32),
                              ("correct", BOOL)]),
    "slices": _schema(ATTACK_KEY + [("slice_kind", STR), ("slice", STR), ("slice_low", F64),
                                    ("slice_high", F64), ("n_members", I64),
                                    ("n_nonmembers", I64)]
                      + [(f"{f}{end}", F64) for f in ("auc", "tpr_at_fpr_0.01", "advantage")
                         for end in ("", "_lo", "_hi")] + [("oracle_advantage", F64)]),
    "risk": _schema(ATTACK_KEY + [("sample_id", I64), ("label", I64), ("is_member", BOOL),
                                 ("correct", BOOL), ("score", F32), ("rank", I64),
                                 ("fpr_at_score", F64), ("tpr_at_score", F64)]),
})


def to_table(name: str, frame: pd.DataFrame | dict) -> pa.Table:
    """Columns in schema order and types; a missing or extra column is an error."""
    frame = pd.DataFrame(frame) if isinstance(frame, dict) else frame
    schema = SCHEMAS[name]
    missing, extra = set(schema.names) - set(frame.columns), set(frame.columns) - set(schema.names)
    if missing or extra:
        raise ValueError(f"{name} table: missing columns {sorted(missing)}, extra {sorted(extra)}")
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def part_path(results_dir: Path, table: str, trial_id: str) -> Path:
    return Path(results_dir) / table / f"{trial_id}.parquet"


def write_part(results_dir: Path, table: str, trial_id: str, frame) -> Path:
    """Write one trial's part of a table atomically (temporary file, then rename)."""
    path = part_path(results_dir, table, trial_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = to_table(table, frame)
    fd, tmp = tempfile.mkstemp(prefix=f".{trial_id}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(data, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def read_table(folder) -> pd.DataFrame:
    """One table's part files as one DataFrame, their schemas unified: a column
    that some parts lack (written by an older schema_version, or before a new
    stat or defense field existed) is null in those rows, never dropped."""
    parts = [pq.read_table(path) for path in sorted(Path(folder).glob("*.parquet"))]
    return pa.concat_tables(parts, promote_options="permissive").to_pandas()


def read_results(results_dir) -> dict[str, pd.DataFrame]:
    """Every table present under `results_dir` as a DataFrame, keyed by table name."""
    root = Path(results_dir)
    return {t: read_table(root / t) for t in TABLES
            if (root / t).is_dir() and any((root / t).glob("*.parquet"))}


def open_results(results_dir, need: tuple[str, ...] = ("trials", "attacks")) -> dict:
    """The tables of a results directory for a reader (summarize, rerun); a
    ConfigError naming the directory when it is missing, not a results
    directory, or lacks a table the reader needs."""
    root = Path(results_dir)
    if not root.is_dir():
        raise ConfigError(str(results_dir), "no such results directory")
    tables = {t: read_table(root / t) for t in {"trials", *need}  # only what is asked for
              if (root / t).is_dir() and any((root / t).glob("*.parquet"))}
    if "trials" not in tables:
        raise ConfigError(str(results_dir), "not a results directory (no trials/*.parquet): "
                                            "give the directory a sweep wrote")
    for table in need:
        if table not in tables:
            ok = tables["trials"].status.eq("ok").sum()
            why = ("every trial failed, e.g. " + str(tables["trials"].error.iloc[0])
                   if ok == 0 else f"it holds no {table} table")
            raise ConfigError(str(results_dir), why)
    return tables


def write_trial(results_dir, trial_id: str, tables: dict[str, pd.DataFrame]) -> None:
    """Write a trial's parts, `trials` last (its presence marks the trial done);
    parts of an earlier run that this run did not produce are removed."""
    for table in TABLES:
        if table == "trials":
            continue
        if table in tables:
            write_part(results_dir, table, trial_id, tables[table])
        else:
            part_path(results_dir, table, trial_id).unlink(missing_ok=True)
    logits = logits_path(results_dir, trial_id)
    if "logits" in tables:
        write_arrays(logits, tables["logits"])
    else:
        logits.unlink(missing_ok=True)
    write_part(results_dir, "trials", trial_id, tables["trials"])


def logits_path(results_dir, trial_id: str) -> Path:
    """A trial's logits (raymia.experiment.logits_file), the input of
    `python -m raymia.audit_logits`."""
    return Path(results_dir) / "logits" / f"{trial_id}.npz"


def write_arrays(path: Path, arrays: dict) -> None:
    """An .npz of numeric arrays, written atomically like a part file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items() if v is not None})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_part(results_dir, table: str, trial_id: str) -> pd.DataFrame | None:
    path = part_path(results_dir, table, trial_id)
    return pd.read_parquet(path) if path.exists() else None


def finished_ok(results_dir, trial_id: str) -> bool:
    """Whether the trial's `trials` part exists with status "ok" (written last)."""
    part = read_part(results_dir, "trials", trial_id)
    return part is not None and part["status"].iloc[0] == "ok"
