"""Models per second, stacked (raymia.train.stacked) against one at a time,
in one run, at one torch thread.

    python benchmarks/stacking.py [--ks 1 4 8 16 64] [--epochs 10] [--models mlp_digits ...]

For each architecture and k, k freshly built models train on their own
random index sets for the same epochs, batch size 32, Adam: once stacked
(`train_stacked`), once one after another (`train_model`, the loop a job runs
without stacking). Prints models/s of each and their ratio (stacked / one at
a time; above 1, stacking is faster).

Architectures: `mlp_digits` (raymia's quickstart MLP, 64 -> 512 -> 512 -> 10,
on 8x8 digits-shaped inputs), `mlp_purchase` (600 -> 1024 -> 512 -> 256 ->
128 -> 100, Tanh), `cnn_digits` (small_cnn on 1x8x8), `cnn_cifar` (small_cnn
on 3x32x32). Inputs are seeded noise of the right shape: the timing does not
depend on the values.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from raymia import ModelConfig, TrainConfig
from raymia.models import build_model
from raymia.train.loop import train_model
from raymia.train.stacked import train_stacked

#: name -> (model config, input shape, classes, examples per model)
ARCHITECTURES = {
    "mlp_digits": (ModelConfig(name="mlp", widths=(512, 512)), (1, 8, 8), 10, 150),
    "mlp_purchase": (ModelConfig(name="purchase_mlp"), (600,), 100, 300),
    "cnn_digits": (ModelConfig(name="small_cnn"), (1, 8, 8), 10, 150),
    "cnn_cifar": (ModelConfig(name="small_cnn"), (3, 32, 32), 10, 64),
}


def measure(name: str, k: int, epochs: int) -> dict:
    cfg_model, shape, classes, size = ARCHITECTURES[name]
    gen = np.random.default_rng(0)
    n = max(4 * size, 1000)
    x = torch.from_numpy(gen.random((n, *shape), dtype=np.float32))
    y = torch.from_numpy(gen.integers(0, classes, n))
    idx = [gen.permutation(n)[:size] for _ in range(k)]
    cfg = TrainConfig(epochs=epochs, batch_size=32, lr=1e-3)

    def build(seed):
        torch.manual_seed(seed)
        return build_model(cfg_model, shape, classes)
    t0 = time.perf_counter()
    train_stacked([build(i) for i in range(k)], x, y, idx, cfg, [[] for _ in range(k)],
                  [torch.Generator().manual_seed(i) for i in range(k)])
    stacked = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(k):
        train_model(build(i), x, y, idx[i], cfg, [], torch.Generator().manual_seed(i))
    alone = time.perf_counter() - t0
    return {"model": name, "k": k, "stacked_models_per_s": k / stacked,
            "alone_models_per_s": k / alone, "ratio": alone / stacked}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ks", type=int, nargs="+", default=[1, 4, 8, 16, 64])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--models", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    measure("mlp_digits", 2, 1)  # warm-up: first-call costs are nobody's
    print(f"{'model':<14}{'k':>4}{'stacked models/s':>18}{'alone models/s':>16}{'ratio':>8}")
    rows = []
    for name in args.models:
        for k in args.ks:
            r = measure(name, k, args.epochs)
            rows.append(r)
            print(f"{name:<14}{k:>4}{r['stacked_models_per_s']:>18.2f}"
                  f"{r['alone_models_per_s']:>16.2f}{r['ratio']:>8.2f}", flush=True)
    return rows


if __name__ == "__main__":
    main()
