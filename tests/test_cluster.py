"""Scale-out and faults: a multi-node cluster on this machine, a worker node lost
mid-sweep, the driver killed and the sweep resumed."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pandas as pd
import pytest

from raymia.results import read_results
from raymia.sweep import main
from test_extensions import EXTENSION

pytestmark = pytest.mark.ray

#: the sweep file brings its own attack and defense (the README's example): every
#: trial and training job runs on a worker node that never loaded the file
SWEEP = """
from raymia import EvaluationConfig, NoDefense

sweep = Sweep(
    name="{name}",
    base=Experiment(split=SplitConfig(n_members=60), model=ModelConfig(widths=(64,)),
                    train=TrainConfig(epochs={epochs}, batch_size=16, lr=3e-3),
                    shadows=ShadowConfig(n_models=4, models_per_job=2),
                    attacks=("correctness", "confidence", "entropy", "modified_entropy", "loss",
                             "calibrated_loss"),
                    evaluation=EvaluationConfig(n_resamples=200, choice_rounds=2)),
    space={{"defense": tune.grid_search([NoDefense(), InputNoise(sigma=0.05)])}},
    seeds=(0, 1),
    resources=Resources(trial_cpus=1, cpus_per_job=1, parallel_jobs=1),
)
"""
ROWS = 12  # ten metric-attack variants, calibrated_loss and the attacker's choice


def write_sweep(root, name: str, epochs: int = 15):
    path = root / f"{name}.py"
    path.write_text(textwrap.dedent(EXTENSION) + textwrap.dedent(
        SWEEP.format(name=name, epochs=epochs)))
    return path


@pytest.fixture
def cluster():
    """A head that runs nothing and two worker nodes of 2 CPUs: one trial
    (1 CPU for the trial, 1 for its training job) fills a node."""
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def exactly_once(results, n_trials: int) -> pd.DataFrame:
    tables = read_results(results)
    trials = tables["trials"]
    assert len(trials) == n_trials and trials.trial_id.is_unique
    assert (trials.status == "ok").all(), trials.error.tolist()
    per_trial = tables["attacks"].groupby("trial_id").size()
    assert set(per_trial.index) == set(trials.trial_id) and (per_trial == ROWS).all()
    scores = tables["scores"]
    assert not scores.duplicated(["trial_id", "attack", "variant", "eval_set", "sample_id"]).any()
    assert len(scores) == n_trials * ROWS * 120
    return trials


def test_trials_and_jobs_spread_over_the_worker_nodes(cluster, tmp_path, capsys,
                                                     restored_registries):
    path = write_sweep(tmp_path, "spread")
    big = tmp_path / "big.py"  # a job no node of this cluster (no autoscaler) can hold
    big.write_text(path.read_text().replace(" cpus_per_job=1,", " cpus_per_job=64,"))
    from raymia.extensions import REGISTRIES

    saved = {kind: dict(reg) for kind, reg in REGISTRIES.items()}
    assert main([str(big), "--results", str(tmp_path / "big"), "--address",
                 cluster.address]) == 2
    for kind, reg in REGISTRIES.items():  # the same extension registers again below
        reg.clear()
        reg.update(saved[kind])
    assert ("sweep.resources.cpus_per_job: asks for 64 CPU but the largest node has 2 and no "
            "autoscaler runs") in capsys.readouterr().err
    assert main([str(path), "--results", str(tmp_path / "out"), "--address",
                 cluster.address]) == 0
    trials = exactly_once(tmp_path / "out", 4)
    assert trials.node.nunique() >= 2
    assert (trials.job_nodes == trials.node).all()  # a trial's jobs run in its placement group
    assert "jobs on 127.0.0.1/" in capsys.readouterr().out
    head = cluster.head_node.node_id[:8]  # the only node that loaded the sweep file
    assert not trials.node.str.endswith(head).any()
    # the sweep file's defense trained there (its stat and field are columns) ...
    noisy = trials[trials.defense == "input_noise"]
    assert len(noisy) == 2 and (noisy["defense.sigma"] == 0.05).all()
    assert (noisy.noisy_batches == 15 * 4).all()  # 60 members in batches of 16, 15 epochs
    assert trials[trials.defense == "none"].noisy_batches.isna().all()
    # ... and its attack ran in every trial
    attacks = read_results(tmp_path / "out")["attacks"]
    own = attacks[attacks.attack == "calibrated_loss"]
    assert len(own) == 4 and own.auc.between(0, 1).all()


def test_a_worker_node_lost_mid_sweep_loses_and_duplicates_nothing(cluster, tmp_path,
                                                                  restored_registries):
    path = write_sweep(tmp_path, "loss", epochs=200)  # trials train for seconds
    victim = next(iter(cluster.worker_nodes))
    lines: list[str] = []  # Tune pickles the progress callback: it holds nothing else

    def remove_when_running():
        while not any(line.startswith("started") for line in lines):
            time.sleep(0.1)
        time.sleep(2.0)  # mid-trial: both nodes run a trial until the last one starts
        cluster.remove_node(victim)

    threading.Thread(target=remove_when_running, daemon=True).start()

    from raymia.execution.runner import run_sweep
    from raymia.sweep import load_sweep

    status = run_sweep(load_sweep(str(path)), tmp_path / "out", address=cluster.address,
                       out=lines.append)
    assert status == 0
    assert victim not in cluster.worker_nodes
    assert any(line.startswith("retrying") for line in lines), "no trial was hit by the loss"
    exactly_once(tmp_path / "out", 4)


def _launch(args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen([sys.executable, "-m", "raymia.sweep", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


def test_a_killed_driver_resumes_without_retraining_finished_trials(tmp_path,
                                                                   restored_registries):
    path = write_sweep(tmp_path, "killed", epochs=8)
    out = tmp_path / "out"
    args = [str(path), "--results", str(out), "--max-concurrent", "1"]
    driver = _launch(args)
    deadline = time.time() + 240
    while time.time() < deadline and len(list((out / "trials").glob("*.parquet"))) < 1:
        time.sleep(0.2)
        assert driver.poll() is None, driver.stdout.read()
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    before = read_results(out)["trials"].set_index("trial_id")  # readable after the crash
    assert 1 <= len(before) < 4, "kill the driver while trials remain"

    resumed = _launch([*args, "--resume"])
    log, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, log
    assert log.count("(already done)") == len(before)
    after = exactly_once(out, 4).set_index("trial_id")
    pd.testing.assert_series_equal(after.finished_at[before.index], before.finished_at)
    assert (after.loc[before.index, "models_trained"] == before.models_trained).all()
