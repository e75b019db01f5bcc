"""The GPU benchmarks in one call: many small models on one GPU, three ways.

    python benchmarks/gpu_suite.py [--out gpu_suite.json] [--models 16] [--epochs 3]
    python benchmarks/gpu_suite.py --smoke     # CPU, tiny, under a minute (tested)

For each workload, the same k models (own seeds, own random halves of the
data) train
  alone    one after another in one process (a job with `train.engine`
           "sequential": the loop without stacking),
  stacked  as one stacked model in one process (raymia.train.stacked),
  packed   one at a time in p Ray actors sharing the GPU (`gpus_per_job` 1/p,
           each actor's CUDA memory capped to its share), p = 2 and 4,
and the suite prints models per second, the ratio to `alone` and the peak
GPU memory of a process, then writes the table as JSON (`--out`).

Workloads, on seeded synthetic data (no download): a Purchase-sized MLP
(600 binary features, 100 classes, 1024-512-256-128 Tanh) and a CIFAR-sized
CNN (small_cnn on 3x32x32, 10 classes), and the CIFAR ResNet-18, which has
BatchNorm and so does not stack (alone and packed only). Sized to finish in
about 8 minutes on one H100; `--smoke` shrinks everything (2 models, 128
examples, 8x8 images, packing for the MLP only) and runs on CPU, with a fake
GPU resource for the packing (or CPU actors on a Ray already running).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from raymia import ModelConfig, Resources, TrainConfig
from raymia.data.dataset import checked
from raymia.seeding import derive_seed, rng
from raymia.train.job import TrainJob, run_job

#: name -> (model, data kind, examples, batch size, stacks)
WORKLOADS = {
    "purchase_mlp": (ModelConfig(name="purchase_mlp"), "purchase", 20_000, 128, True),
    "small_cnn": (ModelConfig(name="small_cnn"), "cifar", 10_000, 128, True),
    "cifar_resnet18": (ModelConfig(name="cifar_resnet18"), "cifar", 10_000, 128, False),
}


def synthetic(kind: str, n: int, side: int = 32):
    """Seeded noise around class prototypes, shaped like Purchase or CIFAR-10
    (images `side` pixels wide)."""
    gen = rng(0, f"gpu_suite/{kind}")
    if kind == "purchase":
        prototypes = gen.random((100, 600)) < 0.2
        y = gen.integers(0, 100, n)
        x = (prototypes[y] ^ (gen.random((n, 600)) < 0.05)).astype(np.float32)
        return checked("purchase_like", x, y, 100, "tabular", "benchmark generator")
    prototypes = gen.random((10, 3, side, side), dtype=np.float32)
    y = gen.integers(0, 10, n)
    x = np.clip(prototypes[y] + 0.3 * gen.standard_normal((n, 3, side, side), dtype=np.float32),
                0, 1)
    return checked("cifar_like", x, y, 10, "image", "benchmark generator")


def job(data, model: ModelConfig, k: int, epochs: int, batch: int, device: str,
        engine: str, first: int = 0) -> TrainJob:
    """k models, each on its own random half of the data, answering 1000 examples."""
    gen = rng(0, "gpu_suite/indices")
    halves = [np.sort(gen.permutation(len(data))[: len(data) // 2]) for _ in range(first + k)]
    train = TrainConfig(epochs=epochs, batch_size=batch, lr=1e-3, device=device, engine=engine)
    return TrainJob("shadow", first, tuple(halves[first:]),
                    tuple(derive_seed(0, "shadow", m) for m in range(first, first + k)),
                    model, train, None, np.arange(min(1000, len(data))))


def in_process(data, model, k, epochs, batch, device, engine) -> dict:
    work = job(data, model, k, epochs, batch, device, engine)
    if device == "cuda":  # warm-up: CUDA context, cuDNN autotuning
        run_job(dataclasses.replace(work, train_indices=work.train_indices[:2],
                                    seeds=work.seeds[:2]), data)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = run_job(work, data)
    wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0.0
    return {"wall_s": wall, "peak_mib": peak, "stacked": bool(result.stacked.all())}


def packed(data, model, k, epochs, batch, device, per_gpu: int) -> dict:
    import ray

    from raymia.execution.actors import RayExecutor

    cpus = int(ray.cluster_resources().get("CPU", 1))
    gpus = 1 / per_gpu if ray.cluster_resources().get("GPU") else 0.0  # smoke: a Ray without
    resources = Resources(cpus_per_job=max(1, cpus // per_gpu), gpus_per_job=gpus,  # GPUs
                          parallel_jobs=per_gpu)
    executor = RayExecutor(ray.put(data), resources)
    work = [job(data, model, 1, epochs, batch, device, "sequential", m) for m in range(k)]
    if device == "cuda":
        executor.run(work[:per_gpu])  # warm-up
    start = time.perf_counter()
    executor.run(work)
    wall = time.perf_counter() - start
    peaks = ray.get([a.__ray_call__.remote(lambda self: torch.cuda.max_memory_allocated() / 2**20
                                           if torch.cuda.is_available() else 0.0)
                     for a in executor.actors])
    executor.close()
    return {"wall_s": wall, "peak_mib": max(peaks), "stacked": False}


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=16, help="models per workload and mode")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--packing", type=int, nargs="+", default=[2, 4])
    p.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    p.add_argument("--out", default="gpu_suite.json", help="where the table goes, as JSON")
    p.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, a fake GPU resource")
    args = p.parse_args(argv)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    device = "cpu" if args.smoke else "cuda"
    if args.smoke:
        args.models, args.epochs, args.packing = 2, 1, [2]
    torch.set_num_threads(1 if args.smoke else max(1, (os.cpu_count() or 1) // 2))
    started = not ray.is_initialized()  # a smoke run may share a Ray already running
    if started:
        ray.init(address="local", num_cpus=os.cpu_count() or 1, num_gpus=1,
                 include_dashboard=False, logging_level="WARNING")
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU (smoke, CPU)"
    print(f"{args.models} models per workload and mode, {args.epochs} epochs; {name}", flush=True)
    rows = []
    try:
        for workload in args.workloads:
            model, kind, n, batch, stacks = WORKLOADS[workload]
            # the smoke run: a few hundred examples, 8x8 images, small batches
            data = synthetic(kind, 128, side=8) if args.smoke else synthetic(kind, n)
            batch = 32 if args.smoke else batch
            epochs = args.epochs
            modes = [("alone", lambda: in_process(data, model, args.models, epochs, batch,
                                                  device, "sequential"))]
            if stacks:
                # on a CPU convolutions do not stack (raymia.train.stacked.why_not)
                modes.append(("stacked", lambda: in_process(data, model, args.models, epochs,
                                                            batch, device, "stacked")))
            for per_gpu in args.packing if not args.smoke or workload == "purchase_mlp" else ():
                modes.append((f"packed x{per_gpu}", lambda per_gpu=per_gpu: packed(
                    data, model, args.models, epochs, batch, device, per_gpu)))
            base = None
            for mode, run in modes:
                got = run()
                rate = args.models / got["wall_s"]
                base = base or rate
                row = {"workload": workload, "mode": mode, "models": args.models,
                       "epochs": epochs, "device": name, **got, "models_per_s": rate,
                       "ratio_to_alone": rate / base}
                rows.append(row)
                print(f"{workload:<16}{mode:<12}{rate:8.2f} models/s  {rate / base:5.2f}x alone"
                      f"  peak {got['peak_mib']:7.0f} MiB  stacked={got['stacked']}",
                      flush=True)
    finally:
        if started:
            ray.shutdown()
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print(f"table: {args.out}")
    return rows


if __name__ == "__main__":
    main()
