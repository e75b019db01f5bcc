"""Shadow-model training throughput on Ray actors with 1 and 2 workers (one
torch thread each), against the same jobs run one after another in this
process, all measured in one run; and the per-job scheduling overhead (what
the driver waits beyond the time a job spends training) as a share of a job.

    python benchmarks/scaling.py [--models 16] [--epochs 30] [--workers 1 2]

Each model is its own job, as in a sweep with `ShadowConfig(models_per_job=1)`.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import ray
import torch

from raymia import DataConfig, ModelConfig, Resources, TrainConfig
from raymia.data import load_dataset
from raymia.data.splits import make_splits
from raymia.execution.actors import RayExecutor
from raymia.execution.inprocess import InProcessExecutor
from raymia.seeding import derive_seed
from raymia.train.job import TrainJob


def shadow_jobs(data, n_models: int, epochs: int) -> list[TrainJob]:
    from raymia.config import SplitConfig

    splits = make_splits(len(data), SplitConfig(n_members=300), n_models, 0, data.name)
    model, train = ModelConfig(widths=(256, 256)), TrainConfig(epochs=epochs, batch_size=32)
    universe = splits.universe
    return [TrainJob("shadow", m, (universe[splits.keep[m]],), (derive_seed(0, "shadow", m),),
                     model, train, None, universe) for m in range(n_models)]


def timed(executor, jobs) -> tuple[float, float]:
    """(wall seconds, sum of the jobs' own training seconds)."""
    start = time.perf_counter()
    results = executor.run(jobs)
    wall = time.perf_counter() - start
    return wall, sum(r.finished_at - r.started_at for r in results)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", type=int, default=16)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    data = load_dataset(DataConfig(name="digits"))
    jobs = shadow_jobs(data, args.models, args.epochs)
    print(f"{args.models} shadow models (MLP 256x256, digits, 600 examples, {args.epochs} "
          f"epochs), one job each; {os.cpu_count()} CPUs")

    base_wall, _ = timed(InProcessExecutor(data, threads=1), jobs)
    base = args.models / base_wall
    print(f"in process, one after another, 1 thread: {base:.2f} models/s")

    ray.init(address="local", num_cpus=max(args.workers), include_dashboard=False,
             logging_level="WARNING")
    ref = ray.put(data)
    rates = {}
    for workers in args.workers:
        executor = RayExecutor(ref, Resources(cpus_per_job=1, parallel_jobs=workers))
        timed(executor, jobs[:workers])  # start the actors before timing
        wall, busy = timed(executor, jobs)
        executor.close()
        rates[workers] = args.models / wall
        overhead = (wall * workers - busy) / busy  # idle or scheduling time per unit of work
        print(f"Ray, {workers} worker(s) x 1 thread: {rates[workers]:.2f} models/s "
              f"({rates[workers] / base:.2f}x in process); per-job overhead "
              f"{100 * overhead:.1f}% of a job's {busy / len(jobs):.2f} s")
    if len(rates) > 1:
        lo, hi = min(rates), max(rates)
        print(f"scaling {hi} vs {lo} worker(s): {rates[hi] / rates[lo]:.2f}x "
              f"(ideal {hi / lo:.0f}x)")
    ray.shutdown()
    np.testing.assert_array_less(0, list(rates.values()))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
