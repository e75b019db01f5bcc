"""Shadow-model training throughput against models per GPU, in one call on a
GPU machine: the same jobs with `Resources(gpus_per_job=1/k, parallel_jobs=k)`
for k in 1, 2, 4, 8 (each actor's CUDA memory capped to its fraction), with the
ratio to one model per GPU and each process's peak GPU memory.

    python benchmarks/gpu_packing.py [--models 16] [--epochs 5] [--packing 1 2 4 8]
    python benchmarks/gpu_packing.py --smoke   # no GPU: a fake GPU resource on CPU

The data are CIFAR-shaped (3x32x32, 10 classes, 10k examples, seeded noise
around class prototypes) so that no download is needed; the model is the
CIFAR ResNet-18 by default (`--model small_cnn` for a lighter one).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import ray
import torch

from raymia import ModelConfig, Resources, TrainConfig
from raymia.data.dataset import checked
from raymia.execution.actors import RayExecutor
from raymia.seeding import derive_seed, rng
from raymia.train.job import TrainJob


def cifar_like(n: int = 10_000, classes: int = 10):
    gen = rng(0, "gpu_packing")
    prototypes = gen.random((classes, 3, 32, 32), dtype=np.float32)
    y = gen.integers(0, classes, n)
    x = np.clip(prototypes[y] + 0.3 * gen.standard_normal((n, 3, 32, 32), dtype=np.float32), 0, 1)
    return checked("cifar_like", x, y, classes, "image", "benchmark generator")


def jobs(data, n_models: int, model: str, epochs: int, device: str) -> list[TrainJob]:
    gen = rng(0, "gpu_packing/jobs")
    train = TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, device=device)
    universe = np.arange(len(data))
    return [TrainJob("shadow", m, (np.sort(gen.permutation(len(data))[: len(data) // 2]),),
                     (derive_seed(0, "shadow", m),), ModelConfig(name=model), train, None,
                     universe[:1000]) for m in range(n_models)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", type=int, default=16)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--packing", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--model", default="cifar_resnet18")
    p.add_argument("--smoke", action="store_true", help="CPU only, a fake GPU resource, tiny run")
    args = p.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if args.smoke:
        args.models, args.epochs, args.packing, args.model = 4, 1, [1, 2], "small_cnn"
    cpus = os.cpu_count() or 1
    device = "cpu" if args.smoke else "cuda"
    ray.init(address="local", num_cpus=cpus, num_gpus=1, include_dashboard=False,
             logging_level="WARNING")
    data = cifar_like(2000 if args.smoke else 10_000)
    ref = ray.put(data)
    work = jobs(data, args.models, args.model, args.epochs, device)
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU (smoke)"
    print(f"{args.models} x {args.model}, {len(data) // 2} examples, {args.epochs} epochs, "
          f"batch 128; {name}, {cpus} CPUs")
    rates = {}
    for k in args.packing:
        resources = Resources(cpus_per_job=max(1, cpus // k), gpus_per_job=1 / k,
                              parallel_jobs=k)
        executor = RayExecutor(ref, resources)
        executor.run(work[:k])  # warm up: CUDA contexts, cuDNN autotuning
        start = time.perf_counter()
        results = executor.run(work)
        wall = time.perf_counter() - start
        peaks = ray.get([a.__ray_call__.remote(lambda self: (
            torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0,
            self.memory_fraction)) for a in executor.actors])
        executor.close()
        rates[k] = args.models / wall
        devices = sorted({r.device for r in results})
        print(f"{k} model(s) per GPU: {60 * rates[k]:.1f} models/min "
              f"({rates[k] / rates[args.packing[0]]:.2f}x {args.packing[0]} per GPU); "
              f"peak {max(mb for mb, _ in peaks):.0f} MiB per process, memory cap "
              f"{peaks[0][1]}, devices {devices}")
    ray.shutdown()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
