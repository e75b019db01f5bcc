"""The quickstart workload two ways, in one run: as the original research
scripts did it (one model after another in a plain PyTorch loop, one process)
and with raymia on a local Ray. Same splits, epochs, shadow models, attacks.

    python benchmarks/sequential_baseline.py [--sweep sweeps/quickstart.py] [--runs 3]

Runs each `--runs` times, alternating, and prints every run's wall times and
the ratio of their medians (baseline / raymia; above 1 means raymia is
faster). raymia trains each job's shadow models stacked (`train.engine`,
raymia.train.stacked), as a sweep does by default.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from raymia.attacks import AttackInputs, run_attacks
from raymia.data import load_dataset
from raymia.data.splits import make_splits
from raymia.models import build_model
from raymia.seeding import derive_seed
from raymia.sweep import load_sweep


def train_plain(exp, data, train_idx, seed):
    """A research script's loop: DataLoader, optimizer, epochs; then logits on the universe."""
    torch.manual_seed(seed)
    cfg = exp.defense.training(exp.train)
    model = build_model(exp.model, data.input_shape, data.n_classes)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    loader = DataLoader(TensorDataset(x[train_idx], y[train_idx]), batch_size=cfg.batch_size,
                        shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    for _ in range(cfg.epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    model.eval()
    return model


def baseline(experiments, datasets_by_name) -> float:
    start = time.perf_counter()
    for exp in experiments:
        data = datasets_by_name[exp.data.name]
        splits = make_splits(len(data), exp.split, exp.shadows.n_models, exp.seed)
        universe = splits.universe
        x_universe = torch.from_numpy(data.x[universe])
        target = train_plain(exp, data, splits.members, derive_seed(exp.seed, "target"))
        with torch.no_grad():
            target_logits = target(x_universe).numpy()
        shadows = []
        for m in range(exp.shadows.n_models):
            model = train_plain(exp, data, universe[splits.keep[m]],
                                derive_seed(exp.seed, "shadow", m))
            with torch.no_grad():
                shadows.append(model(x_universe).numpy())
        n_audit = 2 * exp.split.n_members
        labels = data.y[universe]
        run_attacks(exp.attacks, AttackInputs(target_logits[:n_audit], labels[:n_audit],
                                              np.stack(shadows), labels, splits.keep))
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sweep", default="sweeps/quickstart.py")
    p.add_argument("--runs", type=int, default=3, help="runs of each; the medians are compared")
    args = p.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from raymia.execution.plan import expand
    from raymia.execution.runner import run_sweep

    sweep = load_sweep(args.sweep)
    experiments = expand(sweep)
    datasets = {e.data.name: load_dataset(e.data) for e in experiments}
    print(f"workload: {len(experiments)} trials x (1 target + {sweep.base.shadows.n_models} "
          f"shadow models, {sweep.base.shadows.models_per_job} per job, train.engine "
          f"{sweep.base.train.engine!r}), {sweep.base.train.epochs} epochs, "
          f"{os.cpu_count()} CPUs")
    bases, rays = [], []
    for run in range(args.runs):  # alternated, so both see the same machine
        torch.set_num_threads(os.cpu_count())
        bases.append(baseline(experiments, datasets))
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            run_sweep(sweep, Path(tmp) / sweep.name, out=lambda line: None)
            ray.shutdown()  # every run pays Ray's start-up
            rays.append(time.perf_counter() - start)
        print(f"run {run + 1}: sequential baseline (one process, {torch.get_num_threads()} "
              f"torch threads) {bases[-1]:.1f} s, raymia on local Ray (incl. Ray start-up) "
              f"{rays[-1]:.1f} s, ratio {bases[-1] / rays[-1]:.2f}x", flush=True)
    base, ray_s = float(np.median(bases)), float(np.median(rays))
    print(f"median of {args.runs}: baseline {base:.1f} s, raymia {ray_s:.1f} s, "
          f"speed-up baseline / raymia {base / ray_s:.2f}x")


if __name__ == "__main__":
    main()
