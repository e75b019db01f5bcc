"""A tiny end-to-end trial of each training-time defense on local Ray."""
import math
import textwrap

import pytest

from raymia.results import read_results
from raymia.sweep import main

pytestmark = pytest.mark.ray

SWEEP = """
from ray import tune
from raymia import (DPSGD, AdvReg, EarlyStopping, EvaluationConfig, Experiment, MixupMMD,
                    ModelConfig, ShadowConfig, SplitConfig, Sweep, TrainConfig)

sweep = Sweep(
    name="defenses",
    base=Experiment(split=SplitConfig(n_members=100, n_validation=60),
                    model=ModelConfig(widths=(64,)), train=TrainConfig(epochs=8, lr=3e-3),
                    shadows=ShadowConfig(n_models=2, models_per_job=2),
                    evaluation=EvaluationConfig(n_resamples=200, choice_rounds=2)),
    space={"defense": tune.grid_search([
        DPSGD(epsilon=1.0, accountant="rdp"), AdvReg(alpha=3.0, warmup_epochs=1, attack_steps=1),
        MixupMMD(gap_threshold=0.0), EarlyStopping(patience=2)])},
)
"""


@pytest.fixture(scope="module")
def trials(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("defenses")
    (root / "defenses.py").write_text(textwrap.dedent(SWEEP))
    assert main([str(root / "defenses.py"), "--results", str(root / "results")]) == 0
    tables = read_results(root / "results")
    return tables["trials"].set_index("defense"), tables["attacks"]


def test_every_defense_trial_succeeds_and_reports(trials):
    t, _ = trials
    assert set(t.index) == {"dp_sgd", "adv_reg", "mixup_mmd", "early_stopping"}
    assert (t.status == "ok").all()
    dp = t.loc["dp_sgd"]
    assert dp["epsilon"] == pytest.approx(1.0, rel=0.05) and dp["delta"] == 1e-3
    assert dp["noise_multiplier"] > 0 and dp["accountant"] == "rdp" and dp["dp_steps"] > 0
    assert math.isnan(t.loc["adv_reg", "epsilon"])
    assert 1 <= t.loc["early_stopping", "best_epoch"] <= t.loc["early_stopping", "epochs_run"]
    assert t.loc["mixup_mmd", "mmd_epochs"] >= 1


def test_dp_at_epsilon_one_respects_the_bound_within_sampling_error(trials):
    t, attacks = trials
    dp = t.loc["dp_sgd"]
    rows = attacks[attacks.trial_id == dp["trial_id"]]
    bound = math.exp(dp["epsilon"]) * 0.01 + dp["delta"]
    sampling = 3 * math.sqrt(bound * (1 - bound) / dp["n_members"]) + 1 / dp["n_members"]
    assert (rows["tpr_at_fpr_0.01"] <= bound + sampling).all()
