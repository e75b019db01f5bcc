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

import numpy as np
from ray.tune.search.sample import Domain

from raymia.attacks.spec import unread_fields
from raymia.config import ConfigError, Experiment, Sweep, set_path
from raymia.data import Dataset, load_dataset
from raymia.data.splits import make_splits
from raymia.queries import check_queries
from raymia.seeding import derive_seed


def _is_grid(value) -> bool:
    return isinstance(value, dict) and set(value) == {"grid_search"}


def expand(sweep: Sweep) -> list[Experiment]:
    """Every distinct trial of the sweep, in a stable order."""
    paths = sorted(sweep.space, key=lambda p: (p.count("."), p))  # parents before children
    grid_paths = [p for p in paths if _is_grid(sweep.space[p])]
    for p in grid_paths:
        if not isinstance(sweep.space[p]["grid_search"], (list, tuple)) or not sweep.space[p]["grid_search"]:
            raise ConfigError(f"sweep.space.{p}", "grid_search needs a non-empty list")
    gen = np.random.default_rng(derive_seed(0, f"sweep/{sweep.name}"))
    base = sweep.base.to_dict()
    trials: dict[str, Experiment] = {}
    for _ in range(sweep.num_samples):
        drawn = {p: sweep.space[p].sample(random_state=gen) for p in paths
                 if isinstance(sweep.space[p], Domain)}
        for combo in itertools.product(*(sweep.space[p]["grid_search"] for p in grid_paths)):
            values = {**{p: sweep.space[p] for p in paths}, **drawn, **dict(zip(grid_paths, combo))}
            for seed in sweep.seeds:
                tree = copy.deepcopy(base)
                tree["seed"] = seed
                for p in paths:
                    _set(tree, p, values[p])
                exp = _build(tree, values)
                trials.setdefault(exp.trial_id, exp)
    attacks = {name for exp in trials.values() for name in exp.attacks}
    for path, readers in unread_fields(paths, attacks).items():
        raise ConfigError(f"sweep.space.{path}", f"no attack of this sweep reads it; "
                                                 f"{', '.join(readers)} would")
    return list(trials.values())


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


def data_key(exp: Experiment) -> str:
    return json.dumps(exp.to_dict()["data"], sort_keys=True)


def load_and_check(experiments: list[Experiment]) -> dict[str, Dataset]:
    """Load each distinct dataset once and draw every trial's splits, so a missing
    file or an impossible split fails now, before any training."""
    datasets: dict[str, Dataset] = {}
    for exp in experiments:
        key = data_key(exp)
        if key not in datasets:
            datasets[key] = load_dataset(exp.data)
        make_splits(len(datasets[key]), exp.split, exp.shadows.n_models, exp.seed, exp.data.name)
        exp.defense.check(exp, datasets[key])
        check_queries(exp, datasets[key])
        try:
            exp.output.check(exp, datasets[key])
        except ConfigError as e:
            raise (e if e.where.startswith(("output", "split")) else e.under("output")) from None
    return datasets
