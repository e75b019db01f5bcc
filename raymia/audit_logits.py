"""Audit a model from its outputs alone: no weights, no training.

    python -m raymia.audit_logits FILE.npz [--results DIR] [--name NAME] [--seed N]
                                  [--attacks A B ...]

FILE.npz holds numeric arrays (never unpickled):
  logits            (n, C) the model's logits (or log-probabilities) on the audit
                    examples; or `probs` (n, C), probabilities
  labels            (n,) their true classes, 0..C-1
  is_member         (n,) bool: the example was in the model's training set
  sample_id         (n,) optional ids to join the results to the data (default 0..n-1)
  is_canary         (n,) optional bool: examples reported apart (eval_set "canaries")
  ref_logits        (m, n + p, C) optional: m reference models on the audit
                    examples, then on p population examples
  ref_keep          (m, n + p) optional bool: the reference model trained on the
                    example (default: none did: offline references)
  population_logits (p, C) and population_labels (p,): the model on the
                    population examples, when p > 0 (RMIA's z samples)
TF-Privacy's names are read too: `logits_train`, `logits_test`, `labels_train`,
`labels_test` (train: the members).

With reference models that trained on some audit examples and not on
others (IN and OUT for each), every attack that needs no extra queries runs
as in a sweep: thresholds and directions fitted on the references, LiRA,
RMIA (given a population), the learned attacks, and the attacker's choice
rehearsed on the references. Without them, the metric attacks run without a
threshold: their AUC, TPR at low FPR and oracle advantage stand, and the
figures of a fitted threshold (acc, precision, recall, fpr, advantage) are
null, since nothing but the evaluation labels could fit one. A sweep's
`logits/<trial_id>.npz` is such a file: auditing it reproduces the trial's
attacks.

The tables (attacks, scores, slices, risk, and a trials row) land under
--results (default results/<name>), as a sweep's do.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from raymia.attacks import AttackInputs, AttackOutput, MissingSignal
from raymia.attacks.metric import METRICS
from raymia.audit import ORIGINAL
from raymia.choice import choose, rehearse
from raymia.config import ConfigError, EvaluationConfig, Experiment
from raymia.data.canaries import CANARIES
from raymia.registry import ATTACKS
from raymia.results import SCHEMA_VERSION, SCHEMAS, to_table, write_trial
from raymia.risk import risk_rows
from raymia.slices import slice_rows

#: columns that only a threshold fitted without evaluation labels gives
THRESHOLD_FIGURES = ("acc", "precision", "recall", "fpr", "advantage", "mmps_tp", "mmps_fp",
                     "mmps_tn", "mmps_fn", "threshold")


def read_logits(path: str) -> dict[str, np.ndarray]:
    """The arrays of FILE.npz, checked; a ConfigError naming the file otherwise."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(path, "no such file")
    try:
        npz = np.load(file, allow_pickle=False)
        arrays = {k: npz[k] for k in npz.files}
    except ValueError:
        raise ConfigError(path, "holds object (pickled) arrays; save numeric arrays") from None
    except (OSError, EOFError, zipfile.BadZipFile):
        raise ConfigError(path, "not a readable .npz file") from None
    arrays = _tf_privacy_names(arrays)
    if "logits" not in arrays and "probs" in arrays:
        arrays["logits"] = np.log(np.clip(arrays.pop("probs").astype(np.float64), 1e-30, None))
    need = [k for k in ("logits", "labels", "is_member") if k not in arrays]
    if need:
        raise ConfigError(path, f"needs arrays {', '.join(need)} (has {', '.join(sorted(arrays))})")
    return _checked(path, arrays)


def _tf_privacy_names(a: dict) -> dict:
    for kind in ("logits", "probs"):
        if f"{kind}_train" in a and f"{kind}_test" in a and "labels_train" in a:
            train, test = a.pop(f"{kind}_train"), a.pop(f"{kind}_test")
            a[kind] = np.concatenate([train, test])
            a["labels"] = np.concatenate([a.pop("labels_train"), a.pop("labels_test")])
            a["is_member"] = np.arange(len(a[kind])) < len(train)
    return a


def _checked(path: str, a: dict) -> dict:
    def fail(message):
        raise ConfigError(path, message)

    logits = a["logits"]
    if logits.ndim != 2 or logits.shape[1] < 2:
        fail(f"logits must be (n, classes >= 2), got shape {logits.shape}")
    n, c = logits.shape
    for name, shape in (("labels", (n,)), ("is_member", (n,)), ("sample_id", (n,)),
                        ("is_canary", (n,))):
        if name in a and a[name].shape != shape:
            fail(f"{name} must have shape {shape} like the logits' rows, got {a[name].shape}")
    for name in ("logits", "ref_logits", "population_logits"):
        if name in a and (not np.issubdtype(a[name].dtype, np.number)
                          or not np.isfinite(a[name]).all()):
            fail(f"{name} must be finite numbers (NaN, infinite or non-numeric found)")
    a["is_member"] = a["is_member"].astype(bool)
    if a["is_member"].all() or not a["is_member"].any():
        fail("is_member must mark some members and some non-members")
    a["sample_id"] = a.get("sample_id", np.arange(n)).astype(np.int64)
    p = len(a.get("population_labels", ()))
    if "ref_logits" in a:
        r = a["ref_logits"]
        if r.ndim != 3 or r.shape[1:] != (n + p, c):
            fail(f"ref_logits must be (models, {n + p}, {c}): the audit examples then "
                 f"{p} population examples, got {r.shape}")
        keep = a.get("ref_keep", np.zeros(r.shape[:2], bool))
        if keep.shape != r.shape[:2]:
            fail(f"ref_keep must be {r.shape[:2]} like ref_logits, got {keep.shape}")
        a["ref_keep"] = keep.astype(bool)
    if p and a.get("population_logits", np.zeros((0, c))).shape != (p, c):
        fail(f"population_logits must be ({p}, {c}) like population_labels")
    for name in ("labels", "population_labels"):
        if name in a and len(a[name]):
            y = a[name]
            if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= c:
                fail(f"{name} must be class ids in [0, {c}), got {y.dtype} "
                     f"in [{y.min()}, {y.max()}]")
    return a


def inputs_of(a: dict) -> AttackInputs:
    """The attacks' inputs; without references, one all-OUT placeholder model."""
    logits, labels = a["logits"], a["labels"].astype(np.int64)  # as stored: float32 in a sweep
    pop_labels = a.get("population_labels", np.zeros(0, np.int64)).astype(np.int64)
    universe_labels = np.concatenate([labels, pop_labels])
    if "ref_logits" in a:
        shadows, keep = a["ref_logits"], a["ref_keep"]
    else:
        shadows = np.zeros((1, len(universe_labels), logits.shape[1]))
        keep = np.zeros((1, len(universe_labels)), bool)
    population = a.get("population_logits")
    return AttackInputs(logits, labels, shadows, universe_labels, keep, population)


def fits_thresholds(a: dict) -> bool:
    """Whether the references trained on some audit-set examples and left others out."""
    keep = a.get("ref_keep")
    return keep is not None and keep.any() and not keep.all()


def run(a: dict, inputs: AttackInputs, attacks=None, exp: Experiment | None = None):
    """(outputs, rehearsal, chosen, skipped): every attack the arrays `a` (and
    their `inputs`, inputs_of(a)) allow."""
    exp = exp or Experiment()
    refs, fitted = "ref_logits" in a, fits_thresholds(a)
    everything = [n for n, spec in ATTACKS.items() if not spec.stages] if refs else METRICS
    outputs, skipped = [], []
    for name in attacks or everything:
        if name in METRICS and not fitted:
            outputs.append(AttackOutput(name, "no_threshold",
                                        METRICS[name](inputs.target_logits, inputs.labels),
                                        float("nan")))
        elif not refs:
            skipped.append(f"{name} (needs reference models: ref_logits)")
        else:
            try:
                outputs += ATTACKS[name].run(inputs, exp.reference)
            except MissingSignal as e:
                skipped.append(f"{name} ({str(e).splitlines()[0][:80]})")
    ran = sorted({o.attack for o in outputs})
    rehearsal = rehearse(ran, inputs, exp.reference, exp.evaluation.choice_rounds) if fitted \
        else {}
    return outputs, rehearsal, choose(rehearsal), skipped


def audit(path: str, results_dir: str | None = None, name: str | None = None, seed: int = 0,
          attacks=None, evaluation: EvaluationConfig | None = None) -> dict[str, pd.DataFrame]:
    """Audit FILE.npz and write its tables; returns them."""
    from raymia.experiment import eval_set_rows  # the rows a sweep's trial writes

    t0, started = time.time(), datetime.now(timezone.utc)
    a = read_logits(path)
    unknown = [n for n in attacks or () if n not in ATTACKS]
    if unknown:
        raise ConfigError("--attacks", f"unknown attack {unknown[0]!r}; valid: "
                                       f"{', '.join(sorted(ATTACKS))}")
    exp = Experiment(seed=seed, evaluation=evaluation or EvaluationConfig())
    name = name or Path(path).stem
    trial_id = hashlib.sha256(Path(path).read_bytes() + str(seed).encode()).hexdigest()[:12]
    inputs = inputs_of(a)
    outputs, rehearsal, chosen, skipped = run(a, inputs, attacks, exp)
    canary = a.get("is_canary", np.zeros(len(a["labels"]), bool)).astype(bool)
    key = {"sweep": name, "trial_id": trial_id}
    rows, parts = [], []
    for eval_set, subset in [(ORIGINAL, ~canary)] + ([(CANARIES, canary)] if canary.any() else []):
        got_rows, got_parts = eval_set_rows(outputs, inputs, a["is_member"], a["sample_id"],
                                           {**key, "eval_set": eval_set}, exp, rehearsal,
                                           chosen, subset)
        rows += got_rows
        parts += got_parts
    attacks_table = pd.DataFrame(rows)
    no_threshold = attacks_table.variant.str.endswith("no_threshold")
    for col in [c for c in attacks_table.columns
                if c in THRESHOLD_FIGURES or c.rsplit("_", 1)[0] in THRESHOLD_FIGURES]:
        attacks_table.loc[no_threshold, col] = np.nan
    scores = pd.concat(parts, ignore_index=True)
    labels = pd.Series(a["labels"], index=a["sample_id"])
    correct = pd.Series(a["logits"].argmax(1) == a["labels"], index=a["sample_id"])
    tables = {"attacks": to_table("attacks", attacks_table).to_pandas(), "scores": scores,
              "slices": slice_rows(scores, labels, correct, exp.evaluation.n_resamples,
                                   exp.evaluation.confidence, seed, thresholds=attacks_table),
              "risk": risk_rows(scores, labels, correct)}
    tables["trials"] = _trial_row(a, key, path, seed, len(outputs), t0, started)
    if results_dir is not None:
        write_trial(Path(results_dir), trial_id, tables)
    tables["skipped"] = skipped
    return tables


def _trial_row(a: dict, key: dict, path: str, seed: int, n_outputs: int, t0: float,
               started: datetime) -> pd.DataFrame:
    member, correct = a["is_member"], a["logits"].argmax(1) == a["labels"]
    row = {c: None for c in SCHEMAS["trials"].names}
    row.update(key)
    row.update({
        "schema_version": SCHEMA_VERSION, "status": "ok", "error": "", "seed": seed,
        "dataset": f"logits:{Path(path).name}", "model": None, "defense": None,
        "train_acc": float(correct[member].mean()), "test_acc": float(correct[~member].mean()),
        "n_members": int(member.sum()), "n_nonmembers": int((~member).sum()),
        "n_canaries": int(a.get("is_canary", np.zeros(0, bool)).sum()),
        "n_shadow_models": int(len(a["ref_logits"])) if "ref_logits" in a else 0,
        "attack_s": time.time() - t0, "wall_s": time.time() - t0, "started_at": started,
        "finished_at": datetime.now(timezone.utc)})
    row["gap"] = row["train_acc"] - row["test_acc"]
    return to_table("trials", pd.DataFrame([row])).to_pandas()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m raymia.audit_logits",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("file", help="an .npz of logits, labels and is_member (see the module doc)")
    p.add_argument("--results", help="results directory (default: results/<name>)")
    p.add_argument("--name", help="the `sweep` column (default: the file's stem)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")
    p.add_argument("--attacks", nargs="+", help="attacks to run (default: all the file allows)")
    args = p.parse_args(argv)
    try:
        name = args.name or Path(args.file).stem
        results = Path(args.results or Path("results") / name)
        tables = audit(args.file, str(results), name, args.seed, args.attacks)
    except ConfigError as e:
        print(f"raymia: error: {e}", file=sys.stderr)
        return 2
    shown = tables["attacks"][["attack", "variant", "eval_set", "auc", "auc_lo", "auc_hi",
                               "tpr_at_fpr_0.01", "oracle_advantage"]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for line in tables["skipped"]:
        print(f"skipped: {line}")
    print(f"\nParquet tables: {results}/{{trials,attacks,scores,slices,risk}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
