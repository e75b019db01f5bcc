import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import pytest  # noqa: E402

from raymia import (DataConfig, EvaluationConfig, Experiment, ModelConfig,  # noqa: E402
                    ShadowConfig, SplitConfig, TrainConfig)


#: few resamples and rehearsal rounds keep test trials quick; the tests of the
#: intervals and of the attacker's choice set their own
QUICK = EvaluationConfig(n_resamples=200, choice_rounds=2)


def tiny_experiment(**changes) -> Experiment:
    """A trial that trains in about a second on digits."""
    base = dict(
        seed=0,
        data=DataConfig(name="digits"),
        split=SplitConfig(n_members=60),
        model=ModelConfig(name="mlp", widths=(64,)),
        train=TrainConfig(epochs=15, batch_size=16, lr=3e-3),
        shadows=ShadowConfig(n_models=4, models_per_job=2),
        evaluation=QUICK,
    )
    base.update(changes)
    return Experiment(**base)


def balanced_keep(gen, m: int, n: int):
    """A (m, n) keep matrix with every column IN for exactly half the models."""
    import numpy as np

    keep = np.zeros((m, n), bool)
    for j in range(n):
        keep[gen.permutation(m)[: m // 2], j] = True
    return keep


@pytest.fixture(scope="session")
def digits():
    from raymia.data import load_dataset

    return load_dataset(DataConfig(name="digits"))


@pytest.fixture(scope="session")
def _ray_shutdown_at_exit():
    import ray

    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_session(_ray_shutdown_at_exit):
    """One local Ray for the test session, started again after a multi-node test
    (tests/test_cluster.py) has replaced it with its own cluster."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False)
    return ray


@pytest.fixture
def restored_registries():
    """Entries a test's sweep file registers leave with the test."""
    from raymia.extensions import REGISTRIES

    saved = {kind: dict(reg) for kind, reg in REGISTRIES.items()}
    yield
    for kind, reg in REGISTRIES.items():
        reg.clear()
        reg.update(saved[kind])
