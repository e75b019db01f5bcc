"""A training worker imports what training needs (torch, numpy, its model and
defense, ray), not the attacks', tables' and plots' libraries; the registries
still hold every built-in wherever a name is looked up."""
import json
import os
import subprocess
import sys
import textwrap

import cloudpickle

from conftest import tiny_experiment
from raymia import (DPSGD, DataConfig, Experiment, LabelOnly, ModelConfig, QueryConfig,
                    ReferenceConfig, Selena, SplitConfig, TrainConfig)
from test_extensions import write

#: what no training job imports unless it asks for it
HEAVY = ("pandas", "pyarrow", "sklearn", "scipy", "torchvision", "matplotlib", "opacus",
         "ray.tune")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: a job worker: the actors module, then the dataset and each job as Ray hands
#: them over; after each job, the top-level packages of HEAVY it has imported
WORKER = '''
import json, pickle, sys
import raymia.execution.actors  # the module TrainWorker comes from
from raymia.train.job import run_job

heavy = json.loads(sys.argv[1])
data = pickle.loads(open(sys.argv[2], "rb").read())
for path in sys.argv[3:]:
    job = pickle.loads(open(path, "rb").read())
    result = run_job(job, data)
    assert result.logits.shape[0] == len(job.seeds)
    print(json.dumps(sorted(h for h in heavy
                            if any(m == h or m.startswith(h + ".") for m in sys.modules))))
'''


def run_python(code: str, *args) -> str:
    """Run `code` in a fresh interpreter (the tests' Ray settings); its stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "tests")])}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def jobs_of(exp: Experiment):
    """The trial's training jobs, built as the trial builds them, and its data."""
    from raymia.audit import boundary_jobs
    from raymia.data import load_dataset
    from raymia.data.splits import make_splits
    from raymia.experiment import make_jobs

    data = load_dataset(exp.data)
    splits = make_splits(len(data), exp.split, exp.shadows.n_models, exp.seed, exp.data.name)
    jobs = make_jobs(exp, splits, None, data.kind)
    if "boundary" in exp.attacks:
        jobs += boundary_jobs(exp, splits, jobs, cached=False)[0][:1]
    return jobs, data


ONE_EPOCH = TrainConfig(epochs=1, batch_size=16, lr=3e-3)


def imported_by_jobs(tmp_path, named_jobs: dict, data) -> dict[str, list[str]]:
    """{job name: the HEAVY packages imported by then}, the jobs run in turn in one
    fresh worker process."""
    (tmp_path / "data.pkl").write_bytes(cloudpickle.dumps(data))
    paths = []
    for name, job in named_jobs.items():
        paths.append(tmp_path / f"{name}.pkl")
        paths[-1].write_bytes(cloudpickle.dumps(job))
    lines = run_python(WORKER, json.dumps(HEAVY), tmp_path / "data.pkl", *paths).splitlines()
    return dict(zip(named_jobs, map(json.loads, lines)))


def test_a_training_worker_imports_only_what_training_needs(tmp_path):
    """A shadow job; a target answering augmented and out-of-distribution queries
    through a label-only output; a boundary query job; a SELENA target; then a
    DP-SGD job, which imports Opacus (and the SciPy Opacus imports), no more."""
    queries = dict(attacks=("augmentation", "boundary"), output=LabelOnly(),
                   queries=QueryConfig(eval_sets=("permuted",), boundary_queries=20))
    plain, data = jobs_of(tiny_experiment(train=ONE_EPOCH, **queries))
    selena, _ = jobs_of(tiny_experiment(train=ONE_EPOCH, defense=Selena(K=4, L=2)))
    dp, _ = jobs_of(tiny_experiment(train=ONE_EPOCH, defense=DPSGD(accountant="rdp")))
    named = {"shadow": plain[1], "target with queries": plain[0], "boundary": plain[-1],
             "selena": selena[0], "dp_sgd": dp[0]}
    assert named["boundary"].boundary is not None and named["target with queries"].query_sets
    imported = imported_by_jobs(tmp_path, named, data)
    assert len(imported) == len(named)
    assert imported.pop("dp_sgd") == ["opacus", "scipy"]
    for name, offenders in imported.items():
        assert not offenders, f"a worker imported {offenders} by the end of its {name} job"


def test_importing_raymia_imports_nothing_heavy_and_its_names_still_resolve():
    out = run_python('''
        import json, sys
        import raymia
        before = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "numpy", *sys.argv[1:]))
        from raymia import DPSGD, Experiment, Selena, __version__, read_results
        from raymia.attacks import run_attacks
        print(json.dumps([before, raymia.__version__ == __version__, callable(read_results),
                          [n for n in raymia.__all__ if getattr(raymia, n, None) is None]]))
    ''', *(h for h in HEAVY if "." not in h))
    before, same_version, readable, missing = json.loads(out)
    assert before == [] and same_version and readable and missing == []


def test_the_registries_are_complete_on_first_use_in_a_fresh_process():
    """A plain `from raymia.config import Experiment`: every registry fills itself
    with the built-ins when a config is validated or a name is looked up, in the
    order raymia registers them, whichever of their modules came in first."""
    out = run_python('''
        import json
        import raymia.attacks.lira, raymia.outputs.memguard  # noqa: F401  (out of order)
        from raymia.config import ConfigError, Experiment
        from raymia import registry
        from raymia.extensions import foreign

        exp = Experiment.from_dict({
            "data": {"name": "digits"}, "model": {"name": "torchvision.resnet18",
                                                  "activation": "tanh"},
            "defense": {"name": "dp_sgd"}, "output": {"name": "temperature"},
            "attacks": ["lira", "shokri", "augmentation"],
            "reference": {"attack_model": "gboost"},
            "queries": {"augmentations": ["shift"], "eval_sets": ["permuted"]}})
        assert exp.defense.name == "dp_sgd" and exp.output.name == "temperature"
        try:
            Experiment.from_dict({"attacks": ["no_such_attack"]})
        except ConfigError as e:
            assert "lira" in str(e) and "selena_adaptive" in str(e), e  # lists every name
        else:
            raise AssertionError("an unknown attack was accepted")
        print(json.dumps([{name: list(reg) for name, reg in vars(registry).items()
                           if isinstance(reg, registry.Registry)}, bool(foreign())]))
    ''')
    names, shipped = json.loads(out)
    assert not shipped  # every entry there is a built-in
    assert {"digits", "cifar10", "files"} <= set(names["DATASETS"])
    assert {"lira", "rmia", "shokri", "boundary", "selena_adaptive"} <= set(names["ATTACKS"])
    assert {"dp_sgd", "adv_reg", "selena", "none"} <= set(names["DEFENSES"])
    assert {"memguard", "temperature", "none"} <= set(names["OUTPUTS"])
    assert {"mlp", "cifar_resnet18"} <= set(names["MODELS"])
    assert {"relu", "tanh"} <= set(names["ACTIVATIONS"])
    assert {"gboost", "logistic"} <= set(names["ATTACK_MODELS"])
    assert {"shift", "flip"} <= set(names["AUGMENTATIONS"])
    assert {"permuted", "noise"} <= set(names["OOD_SETS"])
    from raymia import registry

    here = {name: list(reg.builtin_entries()) for name, reg in vars(registry).items()
            if isinstance(reg, registry.Registry)}
    assert names == here  # the order of this process's built-ins, imported otherwise
    assert names["ATTACKS"][0] == "augmentation" and names["ATTACKS"][-1] == "selena_adaptive"
    assert Experiment(data=DataConfig(name="digits"), model=ModelConfig(activation="tanh"),
                      reference=ReferenceConfig(attack_model="logistic"),
                      split=SplitConfig(n_members=60)).model.activation == "tanh"


def test_a_sweep_files_own_entries_in_a_fresh_process_and_on_a_worker(tmp_path):
    """Entries registered before any registry was read are the sweep file's, not
    built-ins; installed on a fresh worker, they are foreign there too."""
    path = write(tmp_path, "fresh")
    out = run_python('''
        import json, sys
        import cloudpickle
        from raymia.sweep import load_sweep
        from raymia.extensions import foreign
        from raymia import registry

        sweep = load_sweep(sys.argv[1])
        ext = foreign()
        assert "lira" in registry.ATTACKS and "dp_sgd" in registry.DEFENSES
        print(json.dumps([sorted(ext.names()), sweep.base.defense.name]))
        for module in ext.modules:  # by value, as raymia.execution.runner ships them
            cloudpickle.register_pickle_by_value(sys.modules[module])
        open(sys.argv[2], "wb").write(cloudpickle.dumps(ext))
    ''', path, tmp_path / "ext.pkl")
    names, defense = json.loads(out)
    assert names == ["attack calibrated_loss", "defense input_noise"]
    assert defense == "input_noise"
    out = run_python('''
        import json, pickle, sys
        from raymia.extensions import foreign, install
        from raymia import registry

        install(pickle.loads(open(sys.argv[1], "rb").read()))
        print(json.dumps([sorted(foreign().names()), "selena" in registry.DEFENSES]))
    ''', tmp_path / "ext.pkl")
    assert json.loads(out) == [["attack calibrated_loss", "defense input_noise"], True]
