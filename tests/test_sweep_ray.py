"""End to end on a local Ray: the CLI runs a tiny sweep and the Parquet reads back."""
import contextlib
import io
import re
import textwrap
import time

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from conftest import tiny_experiment
from raymia.execution.inprocess import InProcessExecutor
from raymia.experiment import run_trial
from raymia.results import SCHEMAS, read_results
from raymia.sweep import main

pytestmark = pytest.mark.ray

SWEEP = """
from ray import tune
from raymia import (L2, DataConfig, EvaluationConfig, Experiment, ModelConfig, NoDefense,
                    Resources, ShadowConfig, SplitConfig, Sweep, TrainConfig)

ok = TrainConfig(epochs=15, batch_size=16, lr=3e-3)
diverges = TrainConfig(optimizer="sgd", lr=1e12, epochs=5)
sweep = Sweep(
    name="tiny",
    base=Experiment(split=SplitConfig(n_members=60), model=ModelConfig(widths=(64,)), train=ok,
                    shadows=ShadowConfig(n_models=4, models_per_job=2),
                    evaluation=EvaluationConfig(n_resamples=200, choice_rounds=2)),
    space={"defense": tune.grid_search([NoDefense(), L2(weight_decay=1e-2)]),
           "train": tune.grid_search([ok, diverges])},
    resources=Resources(parallel_jobs=1),
)
"""


PRINTED = []  # (time, line) of what the sweep printed


@pytest.fixture(scope="module")
def sweep_run(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    path = root / "tiny.py"
    path.write_text(textwrap.dedent(SWEEP))
    stamped = Stamped()
    with contextlib.redirect_stdout(stamped):  # not a terminal: progress lines
        status = main([str(path), "--results", str(root / "results"), "--progress-every", "2",
                       "--report"])
    PRINTED[:] = stamped.lines
    return status, path, root / "results"


class Stamped(io.StringIO):
    """Standard output that remembers when each line was written."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def write(self, text):
        self.lines += [(time.monotonic(), line) for line in text.splitlines() if line]
        return super().write(text)


def test_without_a_terminal_progress_is_printed_every_few_seconds(sweep_run):
    lines = PRINTED
    progress = [(t, line) for t, line in lines if line.startswith("progress: ")]
    assert progress and all(re.search(r"\d/4 trials done \(\d failed\), \d running; models "
                                      r"\d+ trained \+ \d+ cached", line) for _, line in progress)
    start = lines[0][0]
    end = next(t for t, line in lines if line.startswith("[4/4]"))
    times = [start] + [t for t, _ in progress if t < end] + [end]
    assert max(b - a for a, b in zip(times, times[1:])) < 2 + 3  # every 2 s, and some slack


def test_the_sweep_names_and_writes_its_report(sweep_run):
    _, _, results = sweep_run
    said = [line for _, line in PRINTED]
    assert f"Figures: python -m raymia.report {results.resolve()}" in said
    assert f"report: {results / 'report' / 'report.html'}" in said
    page = (results / "report" / "report.html").read_text()
    assert "2 trial(s) ok, 2 failed" in page


def test_the_sweep_writes_every_table_and_reports_failure(sweep_run):
    status, _, results = sweep_run
    assert status == 1  # the diverging trials failed, the others were still written
    tables = read_results(results)
    assert set(tables) == {"trials", "attacks", "scores", "signals", "slices", "risk"}
    for name, frame in tables.items():
        assert list(frame.columns) == SCHEMAS[name].names
    trials = tables["trials"].set_index("trial_id")
    assert len(trials) == 4 and trials.sweep.eq("tiny").all()
    failed = trials[trials.status == "failed"]
    assert len(failed) == 2 and (failed["train.lr"] == 1e12).all()
    assert failed.error.str.startswith("TrainingDiverged: training loss became nan").all()
    ok = trials[trials.status == "ok"]
    assert set(ok.defense) == {"none", "l2"} and ok.node.str.startswith("127.0.0.1/").all()
    assert set(tables["attacks"].trial_id) == set(ok.index)  # failed trials leave no attack rows
    logits = {p.stem for p in (results / "logits").glob("*.npz")}  # audit_logits' input
    assert logits == set(ok.index)


def test_every_auc_is_reproduced_from_the_scores(sweep_run):
    tables = read_results(sweep_run[2])
    scores = tables["scores"].groupby(["trial_id", "attack", "variant"])
    for _, row in tables["attacks"].iterrows():
        part = scores.get_group((row.trial_id, row.attack, row.variant))
        assert roc_auc_score(part.is_member, part.score) == row.auc


def test_ray_and_in_process_runs_agree(sweep_run, digits):
    """The executor changes where jobs run, never what they compute."""
    exp = tiny_experiment()
    tables = read_results(sweep_run[2])
    ray_attacks = tables["attacks"][tables["attacks"].trial_id == exp.trial_id]
    assert len(ray_attacks) == 11, "the sweep's undefended trial is tiny_experiment()"
    local = run_trial(exp, digits, InProcessExecutor(digits), sweep="tiny")["attacks"]
    pd.testing.assert_frame_equal(ray_attacks.reset_index(drop=True), local[ray_attacks.columns])


def test_resume_keeps_finished_trials(sweep_run, capsys):
    status, path, results = sweep_run
    before = read_results(results)["trials"].set_index("trial_id")
    assert main([str(path), "--results", str(results), "--resume"]) == 1
    assert "(already done)" in capsys.readouterr().out
    after = read_results(results)["trials"].set_index("trial_id")
    ok = before.status == "ok"
    pd.testing.assert_series_equal(after.finished_at[ok], before.finished_at[ok])
    assert (after.finished_at[~ok] > before.finished_at[~ok]).all()  # failed ones ran again


EXTENDED = """
from ray import tune
from raymia import (L2, EvaluationConfig, Experiment, ModelConfig, NoDefense, ShadowConfig,
                    SplitConfig, Sweep)
from raymia import TrainConfig

sweep = Sweep(
    name="grow",
    base=Experiment(split=SplitConfig(n_members=60), model=ModelConfig(widths=(64,)),
                    train=TrainConfig(epochs=15, batch_size=16, lr=3e-3),
                    shadows=ShadowConfig(n_models=4, models_per_job=2, train="undefended"),
                    evaluation=EvaluationConfig(n_resamples=200, choice_rounds=2)),
    space={"defense": tune.grid_search(GRID)},
)
"""


def test_extending_a_sweep_trains_only_what_the_new_trial_does_not_share(ray_session, tmp_path):
    path, results = tmp_path / "grow.py", tmp_path / "results"
    path.write_text(EXTENDED.replace("GRID", "[NoDefense()]"))
    assert main([str(path), "--results", str(results)]) == 0
    first = read_results(results)["trials"]
    assert first.models_trained.tolist() == [5]

    path.write_text(EXTENDED.replace("GRID", "[NoDefense(), L2(weight_decay=1e-2)]"))
    assert main([str(path), "--results", str(results), "--resume"]) == 0
    trials = read_results(results)["trials"].set_index("defense")
    assert trials.loc["none", "finished_at"] == first.finished_at.iloc[0]  # not rerun
    assert trials.loc["l2", "models_trained"] == 1  # its own target only
    assert trials.loc["l2", "models_cached"] == 4  # the attacker's shadows, shared
    assert len(list((results / "models").glob("*.pt"))) == 6
