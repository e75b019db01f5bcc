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
                         "score": [0.5] * n})


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
