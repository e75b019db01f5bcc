"""The model cache: content-hash keys, safe loading, and reuse that changes no result."""
import dataclasses

import numpy as np
import pandas as pd
import torch

from conftest import tiny_experiment
from raymia import DPSGD, L2, EarlyStopping, ShadowConfig, SplitConfig
from raymia.data import Dataset
from raymia.execution.inprocess import InProcessExecutor
from raymia.experiment import run_trial
from raymia.train.cache import ModelCache, fingerprint, model_key

TIMING = ["wall_s", "train_s", "shadow_s", "attack_s", "started_at", "finished_at",
          "models_trained", "models_cached", "models_stacked"]  # how, not what


def _trial(exp, digits, cache):
    return run_trial(exp, digits, InProcessExecutor(digits), sweep="c", node="n",
                     cache_dir=str(cache))


def test_a_cached_rerun_trains_nothing_and_gives_identical_tables(digits, tmp_path):
    exp = tiny_experiment()
    fresh = _trial(exp, digits, tmp_path)
    again = _trial(exp, digits, tmp_path)
    assert fresh["trials"].models_trained.item() == 5 and fresh["trials"].models_cached.item() == 0
    assert again["trials"].models_trained.item() == 0 and again["trials"].models_cached.item() == 5
    assert len(list(tmp_path.glob("*.pt"))) == 5
    for name in ("attacks", "scores", "signals"):
        pd.testing.assert_frame_equal(fresh[name], again[name])
    pd.testing.assert_frame_equal(fresh["trials"].drop(columns=TIMING),
                                  again["trials"].drop(columns=TIMING))


def test_undefended_shadows_are_shared_across_a_defense_sweep(digits, tmp_path):
    shadows = ShadowConfig(n_models=4, models_per_job=2, train="undefended")
    _trial(tiny_experiment(shadows=shadows), digits, tmp_path)
    other = _trial(tiny_experiment(shadows=shadows, defense=L2(weight_decay=1e-2)), digits,
                   tmp_path)["trials"]
    assert other.models_trained.item() == 1 and other.models_cached.item() == 4


def test_what_training_reported_survives_the_cache(digits, tmp_path):
    exp = tiny_experiment(defense=EarlyStopping(patience=2), split=SplitConfig(
        n_members=60, n_validation=40), shadows=ShadowConfig(n_models=2, models_per_job=2))
    fresh, again = (_trial(exp, digits, tmp_path)["trials"] for _ in range(2))
    assert again.models_cached.item() == 3
    for column in ("best_epoch", "epochs_run", "train_acc", "test_acc"):
        assert again[column].item() == fresh[column].item()


def test_a_dp_model_comes_back_with_its_privacy_accounting(digits, tmp_path):
    exp = tiny_experiment(defense=DPSGD(epsilon=4.0), shadows=ShadowConfig(n_models=2,
                                                                           models_per_job=2))
    fresh, again = (_trial(exp, digits, tmp_path) for _ in range(2))
    assert again["trials"].models_cached.item() == 3
    assert again["trials"].epsilon.item() == fresh["trials"].epsilon.item()
    pd.testing.assert_frame_equal(fresh["scores"], again["scores"])


def test_the_key_changes_with_everything_that_determines_a_model(digits):
    exp = tiny_experiment()
    ids, hold, cpu = np.arange(50), np.arange(50, 60), torch.device("cpu")
    fp = fingerprint(digits)
    base = model_key(fp, ids, hold, 1, exp.model, exp.train, exp.defense, cpu)
    changed = [
        model_key(fp, ids[1:], hold, 1, exp.model, exp.train, exp.defense, cpu),
        model_key(fp, ids, hold[1:], 1, exp.model, exp.train, exp.defense, cpu),
        model_key(fp, ids, hold, 2, exp.model, exp.train, exp.defense, cpu),
        model_key(fp, ids, hold, 1, dataclasses.replace(exp.model, widths=(32,)), exp.train,
                  exp.defense, cpu),
        model_key(fp, ids, hold, 1, exp.model, dataclasses.replace(exp.train, lr=1e-2),
                  exp.defense, cpu),
        model_key(fp, ids, hold, 1, exp.model, exp.train, L2(weight_decay=1e-3), cpu),
        model_key(fp, ids, hold, 1, exp.model, exp.train, exp.defense, torch.device("cuda")),
    ]
    x = digits.x.copy()
    x[0, 0, 0, 0] += 1
    other = Dataset(digits.name, x, digits.y, digits.n_classes, digits.kind)
    changed.append(model_key(fingerprint(other), ids, hold, 1, exp.model, exp.train,
                             exp.defense, cpu))
    assert base == model_key(fp, ids.copy(), hold, 1, exp.model, exp.train, exp.defense, cpu)
    assert len({base, *changed}) == len(changed) + 1


TRIGGERED = []


class Payload:
    def __setstate__(self, state):  # what unpickling an untrusted file would run
        TRIGGERED.append(state)


def test_loading_refuses_anything_but_tensors_and_plain_values(tmp_path):
    cache = ModelCache(tmp_path)
    trap = Payload()
    trap.x = 1
    torch.save({"state_dict": {}, "trap": trap}, cache.path("bad"))
    assert cache.load("bad", torch.device("cpu")) is None  # refused: a miss, not code run
    assert TRIGGERED == []
    assert cache.load("absent", torch.device("cpu")) is None


def test_a_truncated_entry_is_trained_again(digits, tmp_path):
    exp = tiny_experiment()
    _trial(exp, digits, tmp_path)
    victim = sorted(tmp_path.glob("*.pt"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    again = _trial(exp, digits, tmp_path)["trials"]
    assert again.models_trained.item() == 1 and again.models_cached.item() == 4
    third = _trial(exp, digits, tmp_path)["trials"]  # the entry was written anew
    assert third.models_trained.item() == 0


def test_a_model_being_trained_elsewhere_is_waited_for_not_trained_twice(tmp_path):
    import threading

    cache, cpu, model = ModelCache(tmp_path), torch.device("cpu"), torch.nn.Linear(2, 2)
    got = []
    with cache.claim("k", cpu) as entry:  # this worker trains it
        assert entry is None
        other = threading.Thread(target=lambda: got.append(
            cache.claim("k", cpu).__enter__()))
        other.start()
        other.join(0.5)
        assert other.is_alive()  # the other worker waits for the entry
        cache.save("k", model, 1.0, 3, {"epsilon": np.float64(2.0)})
    other.join(5)
    assert got and got[0]["epochs_run"] == 3 and got[0]["stats"] == {"epsilon": 2.0}
    assert not (tmp_path / "k.lock").exists()


def test_a_dead_workers_lock_goes_stale(tmp_path):
    import os

    from raymia.train import cache as cache_module

    cache = ModelCache(tmp_path)
    lock = tmp_path / "k.lock"
    lock.write_text("elsewhere 1")
    old = lock.stat().st_mtime - cache_module.STALE_S - 1
    os.utime(lock, (old, old))
    with cache.claim("k", torch.device("cpu")) as entry:
        assert entry is None and lock.exists()  # taken over
    assert not lock.exists()
