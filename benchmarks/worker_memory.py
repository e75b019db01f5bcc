"""Resident memory of the training-job workers, before their first job and after
one small job, against a bare `import torch` process and a Ray actor that
imports torch and nothing else, all measured in the same run.

    python benchmarks/worker_memory.py [--workers 2] [--epochs 1]

The workers are `TrainWorker` actors made as `RayExecutor` makes them (the
digits dataset in the object store, one torch thread each) on a local Ray
(2 CPUs, no dashboard). Each reports its own resident set size (psutil if
installed, else VmRSS in /proc/self/status) and which heavy packages it has
imported (it should hold none unless a job asks for them).
"""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys

for _key, _value in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                     "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}.items():
    os.environ.setdefault(_key, _value)

#: packages a training worker should not hold unless a job asks for them
HEAVY = ("pandas", "pyarrow", "sklearn", "scipy", "torchvision", "matplotlib", "opacus",
         "ray.tune")


def rss_mb() -> float:
    """This process's resident set size in MB (2**20 bytes)."""
    try:
        import psutil
    except ImportError:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in /proc/self/status") from None
    return psutil.Process().memory_info().rss / 2**20


def probe(actor, heavy: tuple[str, ...]) -> tuple[int, float, list[str]]:
    """Run inside an actor (`__ray_call__`): its pid, resident MB and held HEAVY packages."""
    return os.getpid(), rss_mb(), sorted(h for h in heavy if h in sys.modules)


class TorchOnly:
    """A Ray actor that imports torch and nothing else: the floor for a worker."""

    def __init__(self):
        import torch

        torch.set_num_threads(1)


def bare_torch_mb() -> float:
    """A fresh process that imports torch and nothing else (this script, --bare-torch)."""
    return float(subprocess.run([sys.executable, __file__, "--bare-torch"], check=True,
                                capture_output=True, text=True).stdout)


def small_job(epochs: int):
    """A shadow job of a small digits experiment (MLP 64, 60 members)."""
    from raymia import DataConfig, Experiment, ModelConfig, ShadowConfig, SplitConfig, TrainConfig
    from raymia.data import load_dataset
    from raymia.data.splits import make_splits
    from raymia.experiment import make_jobs

    exp = Experiment(data=DataConfig(name="digits"), split=SplitConfig(n_members=60),
                     model=ModelConfig(widths=(64,)),
                     train=TrainConfig(epochs=epochs, batch_size=16, lr=3e-3),
                     shadows=ShadowConfig(n_models=2, models_per_job=2))
    data = load_dataset(exp.data)
    splits = make_splits(len(data), exp.split, exp.shadows.n_models, exp.seed, exp.data.name)
    return data, make_jobs(exp, splits, None, data.kind)[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args()
    import ray

    from raymia import Resources
    from raymia.execution.actors import RayExecutor

    bare = bare_torch_mb()
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        floor = ray.remote(num_cpus=0)(TorchOnly).remote()
        _, floor_mb, floor_held = ray.get(floor.__ray_call__.remote(probe, HEAVY))
        data, job = small_job(args.epochs)
        resources = Resources(cpus_per_job=2 / args.workers, parallel_jobs=args.workers)
        executor = RayExecutor(ray.put(data), resources)
        before = ray.get([a.__ray_call__.remote(probe, HEAVY) for a in executor.actors])
        ray.get([a.run.remote(job) for a in executor.actors])
        after = ray.get([a.__ray_call__.remote(probe, HEAVY) for a in executor.actors])
        executor.close()
    finally:
        ray.shutdown()
    print(f"bare `import torch` process:        {bare:7.0f} MB")
    print(f"Ray actor importing only torch:     {floor_mb:7.0f} MB; heavy packages held: "
          f"{', '.join(floor_held) or 'none'} (Ray's own imports)")
    for i, ((pid, b, held_b), (_, a, held_a)) in enumerate(zip(before, after)):
        print(f"TrainWorker {i} (pid {pid}): before its first job {b:7.0f} MB "
              f"(holding {', '.join(held_b) or 'none'}), after one job {a:7.0f} MB "
              f"(holding {', '.join(held_a) or 'none'})")
    print(f"mean TrainWorker: before {sum(b for _, b, _ in before) / len(before):.0f} MB, "
          f"after {sum(a for _, a, _ in after) / len(after):.0f} MB")


if __name__ == "__main__":
    if sys.argv[1:] == ["--bare-torch"]:
        importlib.import_module("torch")
        print(rss_mb())
    else:
        main()
