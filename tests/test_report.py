"""`python -m raymia.report`: a self-contained report from any results
directory, the missing parts said in words; not a results directory: exit 2."""
import re
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from conftest import tiny_experiment
from raymia import L2
from raymia.execution.inprocess import InProcessExecutor
from raymia.execution.progress import Progress
from raymia.experiment import run_trial, trial_row
from raymia.report import main
from raymia.results import read_results, write_trial

FIGURES = ("roc", "tradeoff", "mmps", "cost")


def write(results, exp, digits, **kw):
    write_trial(results, exp.trial_id, run_trial(exp, digits, InProcessExecutor(digits),
                                                 sweep="r", **kw))


@pytest.fixture(scope="module")
def results(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("results")
    write(root, tiny_experiment(), digits)
    write(root, tiny_experiment(defense=L2(weight_decay=1e-2)), digits, write_signals=False)
    failed = tiny_experiment(seed=5)
    now = datetime.now(timezone.utc)
    write_trial(root, failed.trial_id, {"trials": trial_row(
        failed, "r", "failed", "TrainingDiverged: loss became nan", now, now.timestamp(), "")})
    return root


def test_a_report_with_every_figure_and_no_network(results, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main([str(results), "--out", str(out)]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    for name in FIGURES:
        assert (out / f"{name}.png").stat().st_size > 1000
        assert f'src="{name}.svg"' in page and (out / f"{name}.svg").exists()
    assert "<script" not in page and not re.search(r"(src|href)=\"?https?:", page)
    assert "2 trial(s) ok, 1 failed" in page and "TrainingDiverged" in page
    assert "No finished DP-SGD trial" in page  # said in words
    assert "queries.eval_sets" in page
    svg = (out / "roc.svg").read_text()
    assert "false-positive rate" in svg and "true-positive rate" in svg
    slices = page[page.index("<h2>Slices</h2>"):page.index("<h2>Most exposed examples</h2>")]
    for name in ("class", "correct", "confidence", "q4", "true"):
        assert f"<td>{name}</td>" in slices, name
    assert slices.count("<table") == 1 and re.search(r"0\.\d{3} \[0\.\d{3}, [01]\.\d{3}\]",
                                                     slices)
    exposed = page[page.index("<h2>Most exposed examples</h2>"):]
    assert exposed.count("<th>fpr_at_score</th>") == 2  # the two finished trials


def test_one_trial_without_signals_still_gives_a_report(results, tmp_path):
    l2 = read_results(results)["trials"].query("defense == 'l2'").trial_id.iloc[0]
    assert main([str(results), "--out", str(tmp_path), "--trials", l2[:6]]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "1 trial(s) ok, 0 failed" in page and (tmp_path / "roc.svg").exists()


def test_a_failed_trial_alone_is_said_in_words(results, tmp_path):
    failed = read_results(results)["trials"].query("status == 'failed'").trial_id.iloc[0]
    assert main([str(results), "--out", str(tmp_path), "--trials", failed]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "0 trial(s) ok, 1 failed" in page and "no ROC curves" in page
    assert "no slices" in page and "no per-example risk" in page


def test_an_all_failed_directory_says_so_in_words(tmp_path):
    exp = tiny_experiment()
    now = datetime.now(timezone.utc)
    write_trial(tmp_path, exp.trial_id, {"trials": trial_row(exp, "r", "failed", "boom", now,
                                                              now.timestamp(), "")})
    assert main([str(tmp_path)]) == 0
    page = (tmp_path / "report" / "report.html").read_text()
    assert "no ROC curves" in page and "no trade-off figure" in page


@pytest.mark.parametrize("args, culprit", [
    (["{tmp}/nosuch"], "no such results directory"),
    (["{tmp}"], "not a results directory"),
    (["{results}", "--trials", "zzz"], "--trials"),
])
def test_bad_input_is_one_line_and_exit_2(args, culprit, results, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path, results=results) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("raymia: error:") and culprit in err and err.count("\n") == 1


def test_on_a_terminal_progress_is_one_live_line(capsys):
    progress = Progress({"a": "x=1", "b": "x=2"}, print, live=True)
    progress.setup()
    trial = SimpleNamespace(config={"trial": {"id": "a"}})
    progress.on_trial_start(0, [], trial)
    progress.on_trial_result(0, [], trial, {"status": "ok", "test_acc": 0.9, "choice": None,
                                            "models_trained": 5, "models_cached": 1,
                                            "job_nodes": "n", "node": "n"})
    progress.on_step_end(0, [])
    progress.on_experiment_end([])
    captured = capsys.readouterr()
    assert "[1/2] a" in captured.out  # the trial's line stays, written above the bar
    assert "1/2 trials" in captured.err and "models 5 trained + 1 cached of ~12" in captured.err
    assert "progress:" not in captured.out
