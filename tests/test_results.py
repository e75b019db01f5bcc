from datetime import datetime, timezone

import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import tiny_experiment
from raymia.experiment import trial_row
from raymia.results import SCHEMAS, finished_ok, read_results, write_part


def scores(trial_id, n=3):
    return pd.DataFrame({"sweep": "s", "trial_id": trial_id, "attack": "loss", "variant": "global",
                         "eval_set": "original", "sample_id": range(n), "is_member": True,
                         "score": [0.5] * n, "prediction_score": [0.9] * n})


def test_parts_are_written_atomically_and_overwritten(tmp_path):
    path = write_part(tmp_path, "scores", "abc", scores("abc"))
    assert path == tmp_path / "scores" / "abc.parquet"
    write_part(tmp_path, "scores", "abc", scores("abc", n=5))
    write_part(tmp_path, "scores", "def", scores("def"))
    assert sorted(p.name for p in (tmp_path / "scores").iterdir()) == ["abc.parquet", "def.parquet"]
    table = read_results(tmp_path)["scores"]
    assert len(table) == 8 and str(table.score.dtype) == "float32"
    assert pq.read_schema(path).names == SCHEMAS["scores"].names


def test_a_leftover_temporary_file_is_ignored_by_readers(tmp_path):
    write_part(tmp_path, "scores", "abc", scores("abc"))
    (tmp_path / "scores" / ".xyz.123.tmp").write_bytes(b"PAR1 half written")
    assert len(pd.read_parquet(tmp_path / "scores")) == 3


def test_wrong_columns_are_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="missing columns \\['score'\\]"):
        write_part(tmp_path, "scores", "abc", scores("abc").drop(columns="score"))
    assert not (tmp_path / "scores" / "abc.parquet").exists()


def test_finished_ok_reads_the_status(tmp_path):
    exp = tiny_experiment()
    now = datetime.now(timezone.utc)
    assert not finished_ok(tmp_path, exp.trial_id)
    write_part(tmp_path, "trials", exp.trial_id, trial_row(exp, "s", "failed", "boom", now, 0, ""))
    assert not finished_ok(tmp_path, exp.trial_id)
    write_part(tmp_path, "trials", exp.trial_id, trial_row(exp, "s", "ok", "", now, 0, ""))
    assert finished_ok(tmp_path, exp.trial_id)


def test_parts_of_two_schema_versions_read_back_with_every_column(tmp_path, digits):
    """A sweep begun with schema_version 1 (no intervals, no attacker's choice) and
    resumed with 2: every column of both is there, null where a part lacks it."""
    import pyarrow as pa

    from raymia.execution.inprocess import InProcessExecutor
    from raymia.experiment import run_trial
    from raymia.results import SCHEMA_VERSION, write_trial

    new = run_trial(tiny_experiment(), digits, InProcessExecutor(digits), "s")
    write_trial(tmp_path, "new", new)
    old_columns = [c for c in SCHEMAS["attacks"].names
                   if not c.endswith(("_lo", "_hi")) and not c.startswith(
                       ("max_fp", "rehearsal", "direction", "n_no_out", "advantage", "oracle",
                        "ppv"))]
    old = new["attacks"][new["attacks"].attack != "attacker_choice"][old_columns]
    (tmp_path / "attacks").mkdir(exist_ok=True)
    pq.write_table(pa.Table.from_pandas(old.assign(trial_id="old"), preserve_index=False),
                   tmp_path / "attacks" / "old.parquet")  # sorts first: read before "new"
    trials = new["trials"].assign(trial_id="old", schema_version=1)
    pq.write_table(pa.Table.from_pandas(trials.drop(columns=["models_cached"]),
                                        preserve_index=False), tmp_path / "trials" / "old.parquet")
    tables = read_results(tmp_path)
    attacks = tables["attacks"]
    assert set(attacks.columns) == set(SCHEMAS["attacks"].names)
    assert attacks[attacks.trial_id == "old"].auc_lo.isna().all()
    assert attacks[attacks.trial_id != "old"].auc_lo.notna().all()
    assert attacks[attacks.trial_id == "old"].advantage.isna().all()  # added columns: null
    assert attacks[attacks.trial_id != "old"].advantage_lo.notna().all()
    assert set(tables["slices"].columns) == set(SCHEMAS["slices"].names)  # the new tables
    assert set(tables["risk"].columns) == set(SCHEMAS["risk"].names)
    assert sorted(tables["trials"].schema_version) == [1, SCHEMA_VERSION]
    assert "models_cached" in tables["trials"].columns
