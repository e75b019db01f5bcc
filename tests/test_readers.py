"""`raymia.summarize` and `raymia.rerun` on bad input: one line, exit 2; and on
results a user can have (list-valued fields that vary, failed trials)."""
from datetime import datetime, timezone

import pytest

from conftest import tiny_experiment
from raymia import ModelConfig, SplitConfig
from raymia.execution.inprocess import InProcessExecutor
from raymia.experiment import run_trial, trial_row
from raymia.rerun import main as rerun_main
from raymia.results import write_trial
from raymia.summarize import main as summarize_main


@pytest.fixture(scope="module")
def results(digits, tmp_path_factory):
    """Two configurations differing in a list-valued field, and a failed trial."""
    root = tmp_path_factory.mktemp("results")
    for widths in ((64,), (32, 16)):
        exp = tiny_experiment(model=ModelConfig(widths=widths),
                              split=SplitConfig(n_members=60, n_shadow_pool=20))
        write_trial(root, exp.trial_id, run_trial(exp, digits, InProcessExecutor(digits), "s"))
    failed = tiny_experiment(seed=7)
    now = datetime.now(timezone.utc)
    write_trial(root, failed.trial_id, {"trials": trial_row(failed, "s", "failed",
                                                            "TrainingDiverged: nan", now, 0, "")})
    return root


def one_line_error(capsys, status) -> str:
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and err.startswith("raymia: error: ")
    return err


def test_summarize_shows_varying_list_fields_and_says_what_failed(results, capsys):
    assert summarize_main([str(results)]) == 0
    out = capsys.readouterr().out
    assert "(32, 16)" in out and "(64,)" in out
    header = out.splitlines()[0]
    for figure in ("auc", "tpr_at_fpr_0.01", "advantage", "ppv_at_fpr_0.01"):
        assert f"{figure} [lo, hi]" in header, figure  # a figure and its interval, one column
    assert "auc_lo" not in header and len(header) < 250
    assert "1 failed trial(s) left out" in out and "TrainingDiverged" in out


@pytest.mark.parametrize("args, expect", [
    (["{missing}"], "no such results directory"),
    (["{empty}"], "not a results directory"),
    (["{results}", "--sweep", "nosuch"], "--sweep: no trials of sweep 'nosuch'"),
    (["{results}", "--attacks", "nosuch"], "--attacks: no rows of nosuch"),
])
def test_summarize_bad_input_is_one_line(results, tmp_path, capsys, args, expect):
    paths = {"missing": tmp_path / "nope", "empty": tmp_path, "results": results}
    status = summarize_main([a.format(**paths) for a in args])
    assert expect in one_line_error(capsys, status)


def test_a_directory_where_every_trial_failed(tmp_path, capsys):
    exp = tiny_experiment()
    now = datetime.now(timezone.utc)
    write_trial(tmp_path, exp.trial_id, {"trials": trial_row(exp, "s", "failed", "boom", now,
                                                              0, "")})
    assert "every trial failed, e.g. boom" in one_line_error(capsys, summarize_main([str(tmp_path)]))


@pytest.mark.parametrize("args, expect", [
    (["--n-reference", "0"], "--n-reference: must be between 1 and the 4 shadow models"),
    (["--n-reference", "100"], "got 100"),
    (["--gamma", "-1"], "--gamma: must be > 0, got -1.0"),
])
def test_rerun_bad_input_is_one_line(results, capsys, args, expect):
    assert expect in one_line_error(capsys, rerun_main([str(results), *args]))


def test_rerun_replays_with_the_number_of_references_asked_for(results):
    from raymia.rerun import rerun

    table = rerun(results, (2,), n_resamples=100)
    assert set(table.n_reference) == {2} and set(table.attack) == {"lira", "rmia"}
    assert len(set(table.trial_id)) == 2  # the failed trial has no signals


def test_rerun_says_when_lira_has_fewer_references_than_a_sweep_allows(results, capsys):
    assert rerun_main([str(results), "--n-reference", "2", "4"]) == 0
    out = capsys.readouterr().out
    assert "note: LiRA with fewer than 4 reference models" in out
    assert rerun_main([str(results), "--n-reference", "4"]) == 0
    assert "note:" not in capsys.readouterr().out
