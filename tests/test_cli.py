"""Bad input: one clear line, exit status 2, before any training, nothing written."""
import json
import textwrap

import pytest

from raymia.sweep import main

GOOD = """
from ray import tune
from raymia import Experiment, SplitConfig, Sweep
sweep = Sweep(name="bad", base=Experiment(split=SplitConfig(n_members={members})), space={space})
"""


def sweep_file(tmp_path, text=None, members=50, space="{}"):
    path = tmp_path / "sweep.py"
    path.write_text(textwrap.dedent(text) if text else GOOD.format(members=members, space=space))
    return path


def run_bad(tmp_path, capsys, path):
    results = tmp_path / "results"
    status = main([str(path), "--results", str(results)])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1 and err.startswith("raymia: error: ")
    assert not results.exists()
    return err


@pytest.mark.parametrize("kind, expect", [
    ("missing", "nope.py: no such sweep file"),
    ("syntax", "sweep.py:3: syntax error"),
    ("no_sweep", "must define `sweep = raymia.Sweep(...)`"),
    ("raises", "NameError: name 'undefined_name' is not defined"),
])
def test_broken_sweep_files(tmp_path, capsys, kind, expect):
    path = {
        "missing": lambda: tmp_path / "nope.py",
        "syntax": lambda: sweep_file(tmp_path, "x = 1\ny = 2\nsweep = (\n"),
        "no_sweep": lambda: sweep_file(tmp_path, "sweep = 3\n"),
        "raises": lambda: sweep_file(tmp_path, "undefined_name\n"),
    }[kind]()
    assert expect in run_bad(tmp_path, capsys, path)


@pytest.mark.parametrize("space, expect", [
    ('{"data.name": "mnist"}', "data.name: unknown value 'mnist'; valid: cifar10"),
    ('{"model.name": "resnet_typo"}', "model.name: unknown model 'resnet_typo'"),
    ('{"attacks": ["loss", "nope"]}', "attacks[1]: unknown value 'nope'"),
    ('{"train.learning_rate": 0.1}', "train.learning_rate: unknown field; valid: batch_size"),
    ('{"trian.lr": 0.1}', "sweep.space.trian: is not a config section"),
    ('{"defense": tune.grid_search(["none", {"name": "l2", "weight_decay": -1.0}])}',
     "defense.weight_decay: must be >= 0, got -1.0"),
    ('{"train.lr": tune.grid_search([])}', "sweep.space.train.lr: grid_search needs a non-empty"),
    ('{"defense": {"name": "dp_sgd", "epsilon": 0.0}}', "defense.epsilon: must be > 0"),
    ('{"defense": {"name": "dp_sgd", "delta": 1.0}}', "defense.delta: must be in (0, 1)"),
    ('{"defense": {"name": "adv_reg", "alpha": -1.0}}', "defense.alpha: must be >= 0"),
    ('{"defense": {"name": "label_smoothing", "smoothing": 1.0}}',
     "defense.smoothing: must be in [0, 1)"),
    ('{"defense": {"name": "adv_reg"}}', "split.n_validation: the adv_reg defense needs held-out"),
])
def test_bad_fields_are_named(tmp_path, capsys, space, expect):
    assert expect in run_bad(tmp_path, capsys, sweep_file(tmp_path, space=space))


def test_more_members_than_the_data_holds(tmp_path, capsys):
    err = run_bad(tmp_path, capsys, sweep_file(tmp_path, members=1000))
    assert "split: needs 2000 examples" in err and "digits holds 1797" in err


def test_a_missing_dataset_file(tmp_path, capsys):
    space = f'{{"data.name": "purchase100", "data.root": "{tmp_path}"}}'
    err = run_bad(tmp_path, capsys, sweep_file(tmp_path, space=space))
    assert "no purchase100 files found" in err


def test_bad_flag_value(tmp_path, capsys):
    results = tmp_path / "results"
    assert main([str(sweep_file(tmp_path)), "--max-concurrent", "0", "--results", str(results)]) == 2
    assert "--max-concurrent: must be >= 1" in capsys.readouterr().err


def test_dry_run_lists_trials_without_starting_ray(tmp_path, capsys):
    import ray

    was_running = ray.is_initialized()
    space = '{"train.lr": tune.grid_search([0.001, 0.01])}'
    results = tmp_path / "results"
    assert main([str(sweep_file(tmp_path, space=space)), "--dry-run", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "2 trials" in out and "train.lr=0.01" in out
    assert not results.exists() and ray.is_initialized() == was_running


def test_a_trial_is_labelled_by_the_fields_its_own_defense_has(tmp_path, capsys):
    space = ('{"defense": tune.grid_search([{"name": "none"}, '
             '{"name": "l2", "weight_decay": 0.1}])}')
    assert main([str(sweep_file(tmp_path, space=space)), "--dry-run"]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()[1:]]
    assert sorted(line.split("  ", 1)[1] for line in lines) == [
        "defense.name=l2 defense.weight_decay=0.1", "defense.name=none"]


@pytest.mark.parametrize("address, expect", [
    ("127.0.0.1:1", "--address: no Ray cluster at 127.0.0.1:1"),
    ("notahost:xyz", "--address: expected HOST:PORT, ray://HOST:PORT or auto, got 'notahost:xyz'"),
    ("http://127.0.0.1:8265", "--address: expected HOST:PORT"),
])
def test_an_address_where_no_cluster_answers_fails_fast(tmp_path, capsys, address, expect):
    import time

    start = time.time()
    status = main([str(sweep_file(tmp_path)), "--results", str(tmp_path / "r"),
                   "--address", address])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"raymia: error: {expect}")
    assert time.time() - start < 10 and not (tmp_path / "r").exists()


@pytest.mark.ray
@pytest.mark.parametrize("resources, expect", [
    ("Resources(cpus_per_job=64)", "sweep.resources.cpus_per_job: asks for 64 CPU but the "
                                   "largest node has 2"),
    ("Resources(gpus_per_job=0.5)", "sweep.resources.gpus_per_job: asks for 0.5 GPU but no "
                                    "node has a GPU"),
])
def test_resources_no_node_can_hold_fail_fast(ray_session, tmp_path, capsys, resources, expect):
    text = GOOD.format(members=50, space="{}").replace(
        "space={})", f"space={{}}, resources={resources})").replace(
        "import Experiment,", "import Experiment, Resources,")
    err = run_bad(tmp_path, capsys, sweep_file(tmp_path, text))
    assert expect in err


@pytest.mark.parametrize("kind, expect", [
    ("empty", "--results: needs a directory name"),
    ("file", "is a file, not a directory"),
    ("unwritable", "--results: cannot write under"),
])
def test_a_results_place_that_cannot_hold_results_fails_before_ray(tmp_path, capsys, kind,
                                                                   expect):
    import os

    target = {"empty": "", "file": str(tmp_path / "f"),
              "unwritable": str(tmp_path / "ro" / "sub")}[kind]
    (tmp_path / "f").write_text("x")
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        if kind == "unwritable" and os.access(tmp_path / "ro", os.W_OK):
            pytest.skip("root writes anywhere")
        status = main([str(sweep_file(tmp_path)), "--results", target])
    finally:
        os.chmod(tmp_path / "ro", 0o700)
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and expect in err


@pytest.mark.parametrize("kind, expect", [
    ("directory", "is a directory, not a sweep file"),
    ("exit", "called sys.exit(0) instead of defining `sweep`"),
])
def test_a_sweep_file_that_is_a_directory_or_exits(tmp_path, capsys, kind, expect):
    path = tmp_path if kind == "directory" else sweep_file(tmp_path, "import sys\nsys.exit(0)\n")
    assert expect in run_bad(tmp_path, capsys, path)


def test_a_section_given_as_a_mapping_keeps_its_other_fields():
    from raymia.config import set_path, to_dict
    from raymia import Experiment, TrainConfig

    tree = to_dict(Experiment(train=TrainConfig(epochs=7)))
    set_path(tree, "train", {"lr": 0.01})
    assert tree["train"]["epochs"] == 7 and tree["train"]["lr"] == 0.01
    set_path(tree, "defense", {"name": "l2", "weight_decay": 0.1})  # another entry: replaced
    assert tree["defense"] == {"name": "l2", "weight_decay": 0.1}


TEXT = """
from ray import tune
from raymia import *
sweep = Sweep(name="bad", base=Experiment({base}), space={space}{extra})
"""


@pytest.mark.parametrize("base, expect", [
    ("model=ModelConfig(name='torchvision.resnet18')",
     "model: torchvision.resnet18 on digits (inputs (1, 8, 8), 10 classes) does not fit: "
     "RuntimeError: Given groups=1"),
    ("data=DataConfig(name='synthetic', size=400, n_features=20, n_classes=4), "
     "model=ModelConfig(name='small_cnn')", "model: small_cnn on synthetic (inputs (20,), "
                                            "4 classes) does not fit"),
    ("train=TrainConfig(device='cuda')", "train.device: 'cuda' but each job gets 0 GPUs"),
    ("split=SplitConfig(n_members=1)", "split.n_members: must be >= 10"),
    ("shadows=ShadowConfig(n_models=2), attacks=('lira',)", "attacks: lira needs >= 4 "
                                                            "reference models"),
    ("shadows=ShadowConfig(n_models=3)", "shadows.n_models: must be even"),
    ("data=DataConfig(name='mnist')", "data.name: unknown value 'mnist'"),
    ("defense=L2(weight_decay=-1)", "defense.weight_decay: must be >= 0"),
])
def test_what_would_fail_every_trial_fails_the_sweep_first(tmp_path, capsys, base, expect):
    """A model that cannot take the data's inputs (one batch goes through each
    distinct model and dataset), a device the jobs will not have, an audit too
    small to mean anything; a section's error names the section."""
    path = sweep_file(tmp_path, TEXT.format(base=base, space="{}", extra=""))
    assert expect in run_bad(tmp_path, capsys, path)


def test_configurations_drawn_twice_run_once_and_are_said(tmp_path, capsys):
    path = sweep_file(tmp_path, TEXT.format(base="", space="{'train.lr': tune.choice([0.1, 0.01])}",
                                            extra=", num_samples=6"))
    assert main([str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "sweep bad: 2 trials" in out
    assert "note: 4 of the 6 configurations drawn repeat an earlier one" in out


def test_a_results_directory_of_another_sweep_is_refused_before_ray(tmp_path, capsys):
    from raymia.manifest import claim

    results = tmp_path / "results"
    claim(results, "other", ["aaaaaaaaaaaa"])
    before = sorted(p.name for p in results.rglob("*"))
    status = main([str(sweep_file(tmp_path)), "--results", str(results)])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "--results: " in err and "(sweep other)" in err and "--share" in err
    assert sorted(p.name for p in results.rglob("*")) == before


@pytest.mark.ray
def test_ctrl_c_is_one_line_and_exit_130_without_tunes_advice(tmp_path):
    """SIGINT to the process group, as a terminal's Ctrl-C sends it, once a trial runs."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "raymia.sweep", str(sweep_file(tmp_path)),
                             "--results", str(tmp_path / "r")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        seen, deadline = [], time.time() + 120
        while time.time() < deadline and not (seen and seen[-1].startswith("started")):
            seen.append(proc.stdout.readline())
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    out = "".join(seen) + out
    assert proc.returncode == 130
    assert err.strip() == "raymia: interrupted: 0 of 1 trials finished; rerun with --resume"
    for advice in ("Tuner.restore", "tensorboard", "Configuration for experiment",
                   "View detailed results"):
        assert advice not in out


def test_only_an_autoscaler_with_node_types_of_its_own_lets_big_resources_wait():
    from raymia.execution.runner import _autoscaling

    def status(types):
        return json.dumps({"autoscaler_report": {"node_type_mapping": types}}).encode()

    assert not _autoscaling(b"")
    assert not _autoscaling(status({"abc": "node_abc"}))  # plain `ray start`: read-only
    assert _autoscaling(status({"abc": "ray.head.default", "def": "gpu_worker"}))
