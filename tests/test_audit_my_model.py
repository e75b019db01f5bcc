"""The README's path for a user's own model, end to end on a local Ray, and
`python -m raymia.audit_logits` on a trial's stored logits and on bad files."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from raymia.audit_logits import audit, main as audit_main
from raymia.results import logits_path
from raymia.sweep import main

ROOT = Path(__file__).resolve().parent.parent

SWEEP = """
import dataclasses, importlib.util
from raymia import EvaluationConfig, ShadowConfig
spec = importlib.util.spec_from_file_location("amm", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
base = module.sweep.base
mine = module.sweep.space["target"]["grid_search"][0]  # the user's model, not raymia's own
sweep = dataclasses.replace(module.sweep, space={{}}, base=dataclasses.replace(
    base, shadows=ShadowConfig(n_models=4, models_per_job=2), target=mine,
    train=dataclasses.replace(base.train, epochs=10),
    evaluation=EvaluationConfig(n_resamples=200, choice_rounds=2)))
"""


def readme_script() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Audit your own model"):]
    return re.search(r"```python\n(# train_my_model.py.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def audited(ray_session, tmp_path_factory):
    """The README's script trains and saves a model; the sweep audits it with
    fewer references and epochs (raymia's own target of the same recipe, the
    sweep's second trial, is left out: tests/test_target.py compares the two)."""
    folder = tmp_path_factory.mktemp("user")
    script = readme_script()
    assert "for epoch in range(60):" in script
    # the README's script as it is, trained for 20 epochs instead of 60 (time)
    (folder / "train_my_model.py").write_text(script.replace("range(60)", "range(20)"))
    subprocess.run([sys.executable, "train_my_model.py"], cwd=folder, check=True, timeout=300)
    sweep_file = folder / "sweep.py"
    sweep_file.write_text(SWEEP.format(path=str(ROOT / "sweeps" / "audit_my_model.py")))
    mp = pytest.MonkeyPatch()
    mp.setenv("RAYMIA_MY_MODEL", str(folder / "my_model"))
    try:
        status = main([str(sweep_file), "--results", str(folder / "results")])
    finally:
        mp.undo()
    return status, folder


@pytest.mark.ray
def test_the_readme_path_audits_the_users_model(audited):
    status, folder = audited
    assert status == 0
    results = folder / "results"
    trials = pd.read_parquet(results / "trials")
    assert len(trials) == 1
    mine = trials.iloc[0]
    assert mine["target.weights"] == str(folder / "my_model" / "weights.pt")
    assert mine["n_members"] == 300 and mine["epochs_run"] == 0 and mine["train_acc"] > 0.95
    attacks = pd.read_parquet(results / "attacks")
    lira = attacks.query("attack == 'lira' and variant == 'offline' and eval_set == 'original'")
    assert len(lira) == 1 and (lira.auc > 0.5).all()
    for table in ("scores", "slices", "risk"):
        assert set(pd.read_parquet(results / table).trial_id) == set(trials.trial_id)
    risk = pd.read_parquet(results / "risk").query(f"trial_id == '{mine.trial_id}'")
    members = np.load(folder / "my_model" / "members.npy")
    assert set(risk[risk.is_member].sample_id) == set(members)


@pytest.mark.ray
def test_audit_logits_reproduces_the_trials_attacks(audited, tmp_path):
    """From a trial's stored logits alone, the same attacks give the same AUCs."""
    _, folder = audited
    results = folder / "results"
    attacks = pd.read_parquet(results / "attacks")
    for trial_id in attacks.trial_id.unique():
        again = audit(str(logits_path(results, trial_id)), seed=0)["attacks"]
        stored = attacks[attacks.trial_id == trial_id].set_index(["attack", "variant", "eval_set"])
        again = again.set_index(["attack", "variant", "eval_set"])
        metric = [k for k in stored.index if k[0] in ("loss", "entropy", "modified_entropy",
                                                       "confidence", "correctness", "lira")
                  and "aug" not in k[1]]  # augmented queries are not in the logits
        assert len(metric) >= 12
        for key in metric:
            assert again.loc[key, "auc"] == pytest.approx(stored.loc[key, "auc"], abs=1e-12)
            assert again.loc[key, "tpr_at_fpr_0.01"] == pytest.approx(
                stored.loc[key, "tpr_at_fpr_0.01"], abs=1e-12)


def logits_file(tmp_path, gen=None, **arrays):
    gen = gen or np.random.default_rng(0)
    n, c = 200, 5
    base = {"logits": gen.normal(size=(n, c)).astype(np.float32),
            "labels": gen.integers(0, c, n), "is_member": np.arange(n) < n // 2}
    base["logits"][np.arange(n // 2), base["labels"][:n // 2]] += 2.0  # members fit better
    base.update(arrays)
    path = tmp_path / "out.npz"
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path, base


def test_without_references_the_metric_attacks_run_threshold_free(tmp_path):
    path, a = logits_file(tmp_path)
    tables = audit(str(path), str(tmp_path / "r"))
    rows = tables["attacks"].query("eval_set == 'original' and attack == 'loss'").iloc[0]
    shifted = a["logits"] - a["logits"].max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    loss = log_p[np.arange(len(a["labels"])), a["labels"]]
    assert rows["variant"] == "no_threshold"
    assert rows["auc"] == pytest.approx(roc_auc_score(a["is_member"], loss), abs=1e-6)
    assert pd.isna(rows["acc"]) and pd.isna(rows["advantage"]) and pd.isna(rows["threshold"])
    assert rows["oracle_advantage"] > 0.2
    assert (tmp_path / "r" / "attacks").is_dir() and (tmp_path / "r" / "risk").is_dir()
    assert set(tables["attacks"].attack) == {"correctness", "confidence", "entropy",
                                             "modified_entropy", "loss", "attacker_choice"}


def test_tf_privacy_names_are_read(tmp_path):
    _, a = logits_file(tmp_path)
    m = a["is_member"]
    np.savez(tmp_path / "tf.npz", logits_train=a["logits"][m], logits_test=a["logits"][~m],
             labels_train=a["labels"][m], labels_test=a["labels"][~m])
    ours = audit(str(tmp_path / "out.npz"))["attacks"].auc.to_numpy()
    theirs = audit(str(tmp_path / "tf.npz"))["attacks"].auc.to_numpy()
    assert np.allclose(ours, theirs)


@pytest.mark.parametrize("change, expect", [
    ({"labels": np.full(200, 7)}, "labels must be class ids in [0, 5)"),
    ({"is_member": np.ones(150, bool)}, "is_member must have shape (200,)"),
    ({"is_member": None}, "needs arrays is_member"),
    ({"logits": np.full((200, 5), np.nan)}, "logits must be finite numbers"),
    ({"ref_logits": np.zeros((2, 10, 5))}, "ref_logits must be (models, 200, 5)"),
    ({"sample_id": np.array(["a"] * 200, dtype=object)}, "object (pickled) arrays"),
])
def test_bad_logits_files_are_one_line_exit_2(tmp_path, capsys, change, expect):
    if "sample_id" in change:
        path, a = logits_file(tmp_path)
        np.savez(path, **{**a, **change})  # np.savez pickles object arrays
    else:
        path, _ = logits_file(tmp_path, **change)
    assert audit_main([str(path), "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"raymia: error: {path}: ") and expect in err
    assert not (tmp_path / "r").exists()  # nothing half-written
