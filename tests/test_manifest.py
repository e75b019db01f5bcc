"""A results directory belongs to the sweeps its manifest names."""
import json

import pytest

from raymia.errors import ConfigError
from raymia.manifest import MANIFEST, claim, held_trials, read_manifest


def part(results, table, trial_id):
    (results / table).mkdir(parents=True, exist_ok=True)
    (results / table / f"{trial_id}.parquet").write_bytes(b"")


def test_a_sweep_claims_a_new_directory_and_may_grow_in_it(tmp_path):
    claim(tmp_path, "a", ["t1", "t2"])
    assert read_manifest(tmp_path) == {"a": ["t1", "t2"]}
    part(tmp_path, "trials", "t1")
    claim(tmp_path, "a", ["t1", "t2", "t3"])  # a point added to the grid
    assert read_manifest(tmp_path) == {"a": ["t1", "t2", "t3"]}


def test_trials_this_sweep_would_not_write_are_refused(tmp_path):
    claim(tmp_path, "a", ["t1"])
    part(tmp_path, "scores", "t1")  # an unfinished trial's part counts too
    with pytest.raises(ConfigError, match=r"holds 1 trials this sweep does not have "
                                          r"\(an earlier configuration of this sweep\)"):
        claim(tmp_path, "a", ["t9"])
    with pytest.raises(ConfigError, match=r"\(sweep a\)"):
        claim(tmp_path, "b", ["t9"])
    assert read_manifest(tmp_path) == {"a": ["t1"]}  # nothing changed


def test_parts_without_a_manifest_are_refused_too(tmp_path):
    part(tmp_path, "trials", "old")
    with pytest.raises(ConfigError, match="no recorded sweep"):
        claim(tmp_path, "a", ["t1"])
    assert held_trials(tmp_path) == {"old"} and not (tmp_path / MANIFEST).exists()


def test_share_keeps_both_sweeps(tmp_path):
    claim(tmp_path, "a", ["t1"])
    part(tmp_path, "trials", "t1")
    claim(tmp_path, "b", ["t2"], share=True)
    assert read_manifest(tmp_path) == {"a": ["t1"], "b": ["t2"]}
    claim(tmp_path, "b", ["t3"], share=True)
    assert read_manifest(tmp_path)["b"] == ["t2", "t3"]


def test_a_manifest_that_is_not_ours_is_named(tmp_path):
    (tmp_path / MANIFEST).write_text(json.dumps([1, 2]))
    with pytest.raises(ConfigError, match=f"{MANIFEST}: is not a raymia manifest"):
        claim(tmp_path, "a", ["t1"])
