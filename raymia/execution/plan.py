"""A sweep's trials, resolved and checked before anything trains.

The space is expanded here, not inside Tune, so every trial's config (and
its trial_id) is known and validated up front: the cartesian product of the
`tune.grid_search` axes, with random domains (`tune.choice`, `tune.uniform`,
...) drawn `num_samples` times from a generator seeded by the sweep, times
the seeds. The same sweep file always yields the same trials.
"""
from __future__ import annotations

import copy
import itertools
import json
import math

import numpy as np
from ray.tune.search.sample import Domain

from raymia.attacks.spec import unread_fields
from raymia.config import ConfigError, Experiment, Sweep, set_path
from raymia.data import Dataset, load_dataset
from raymia.data.splits import make_splits
from raymia.queries import check_queries
from raymia.seeding import derive_seed
from raymia.target import load_target


def _is_grid(value) -> bool:
    return isinstance(value, dict) and set(value) == {"grid_search"}


def expand(sweep: Sweep) -> list[Experiment]:
    """Every distinct trial of the sweep, in a stable order (each space of a
    list in turn)."""
    gen = np.random.default_rng(derive_seed(0, f"sweep/{sweep.name}"))
    base = sweep.base.to_dict()
    trials: dict[str, Experiment] = {}
    for space in sweep.spaces:
        _expand(sweep, space, base, gen, trials)
    attacks = {name for exp in trials.values() for name in exp.attacks}
    paths = {p for space in sweep.spaces for p in space}
    for path, readers in unread_fields(sorted(paths), attacks).items():
        raise ConfigError(f"sweep.space.{path}", f"no attack of this sweep reads it; "
                                                 f"{', '.join(readers)} would")
    return list(trials.values())


def _expand(sweep: Sweep, space: dict, base: dict, gen, trials: dict) -> None:
    paths = sorted(space, key=lambda p: (p.count("."), p))  # parents before children
    grid_paths = [p for p in paths if _is_grid(space[p])]
    for p in grid_paths:
        if not isinstance(space[p]["grid_search"], (list, tuple)) or not space[p]["grid_search"]:
            raise ConfigError(f"sweep.space.{p}", "grid_search needs a non-empty list")
    for _ in range(sweep.num_samples):
        drawn = {p: space[p].sample(random_state=gen) for p in paths
                 if isinstance(space[p], Domain)}
        for combo in itertools.product(*(space[p]["grid_search"] for p in grid_paths)):
            values = {**{p: space[p] for p in paths}, **drawn, **dict(zip(grid_paths, combo))}
            for seed in sweep.seeds:
                tree = copy.deepcopy(base)
                tree["seed"] = seed
                for p in paths:
                    _set(tree, p, values[p])
                exp = _build(tree, values)
                trials.setdefault(exp.trial_id, exp)


def draws(sweep: Sweep) -> int:
    """How many configurations `expand` draws before repeats collapse:
    samples x grid points x seeds, summed over the spaces."""
    return sum(sweep.num_samples * math.prod(len(v["grid_search"]) for v in space.values()
                                             if _is_grid(v)) * len(sweep.seeds)
               for space in sweep.spaces)


def _set(tree: dict, path: str, value) -> None:
    try:
        set_path(tree, path, value)
    except ConfigError as e:
        raise ConfigError(f"sweep.space.{e.where}", e.message) from None


def _build(tree: dict, values: dict) -> Experiment:
    try:
        return Experiment.from_dict(tree)
    except ConfigError as e:
        raise ConfigError(e.where, f"{e.message} (sweep.space: "
                          f"{json.dumps(values, default=str)[:200]})") from None


def check_model_fits(exp: Experiment, data: Dataset) -> None:
    """A ConfigError at `model` unless the model takes two of the data's inputs
    and gives one score per class for each (a CNN on tabular features, a
    torchvision ResNet on 8x8 images, ...)."""
    import torch

    from raymia.models import build_model

    what = f"{exp.model.name} on {exp.data.name} (inputs {data.input_shape}, {data.n_classes} classes)"
    try:
        model = build_model(exp.model, data.input_shape, data.n_classes).eval()
        with torch.no_grad():
            out = model(torch.from_numpy(data.x[:2]))
    except Exception as e:  # whatever the model's own code raises on inputs it cannot take
        text = (str(e).strip().splitlines() or [""])[0][:200]
        raise ConfigError("model", f"{what} does not fit: {type(e).__name__}: {text}") from None
    if tuple(out.shape) != (len(data.x[:2]), data.n_classes):
        raise ConfigError("model", f"{what} gives outputs of shape {tuple(out.shape)}, "
                                   f"expected (batch, {data.n_classes})")


def check_devices(sweep: Sweep, experiments: list[Experiment]) -> None:
    """A ConfigError for a `train.device` the jobs will not have: a GPU needs
    `resources.gpus_per_job` (a job sees its own GPUs only, numbered from 0)."""
    visible = max(1, int(sweep.resources.gpus_per_job)) if sweep.resources.gpus_per_job else 0
    for exp in experiments:
        device = exp.train.device
        if not device.startswith("cuda"):
            continue
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= visible:
            raise ConfigError("train.device", f"{device!r} but each job gets "
                              f"{sweep.resources.gpus_per_job:g} GPUs "
                              "(sweep.resources.gpus_per_job): raise it or use device='auto'")


def data_key(exp: Experiment) -> str:
    return json.dumps(exp.to_dict()["data"], sort_keys=True)


def load_and_check(experiments: list[Experiment]) -> dict[str, Dataset]:
    """Load each distinct dataset once, pass one batch of it through each distinct
    model, and draw every trial's splits, so a missing file, a model that does not
    fit its data or an impossible split fails now, before any training."""
    datasets: dict[str, Dataset] = {}
    fitted: set[tuple[str, str]] = set()
    for exp in experiments:
        key = data_key(exp)
        if key not in datasets:
            datasets[key] = load_dataset(exp.data)
        pair = (key, json.dumps(exp.to_dict()["model"], sort_keys=True))
        if pair not in fitted:
            check_model_fits(exp, datasets[key])
            fitted.add(pair)
        target = load_target(exp, datasets[key])
        make_splits(len(datasets[key]), exp.split, exp.shadows.n_models, exp.seed, exp.data.name,
                    target and target[0])
        exp.defense.check(exp, datasets[key])
        check_queries(exp, datasets[key])
        try:
            exp.output.check(exp, datasets[key])
        except ConfigError as e:
            raise (e if e.where.startswith(("output", "split")) else e.under("output")) from None
    return datasets
