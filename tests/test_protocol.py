"""Every defense sweep follows the defense-evaluation protocol (raymia.protocol)."""
import math
from pathlib import Path

import pytest

from raymia import DPSGD, TrainConfig, protocol
from raymia.execution.plan import expand
from raymia.sweep import load_sweep

SWEEPS = Path(__file__).parent.parent / "sweeps"
DEFENSE_SWEEPS = ("dp_tradeoff", "advreg_tradeoff", "label_smoothing", "mixup_mmd", "selena",
                  "memguard", "calibration", "defense_vs_dp")


@pytest.mark.parametrize("name", DEFENSE_SWEEPS)
def test_a_defense_sweep_has_canaries_lira_the_undefended_model_and_dp_baselines(name):
    trials = expand(load_sweep(str(SWEEPS / f"{name}.py")))
    assert all(e.split.canaries > 0 and "lira" in e.attacks for e in trials)
    assert any(e.defense.name == "none" and e.output.name == "none" for e in trials)
    dp = [e for e in trials if e.defense.name == "dp_sgd" and math.isfinite(e.defense.epsilon)]
    assert len(dp) >= 3 and all(e.output.name == "none" for e in dp)
    defended = [e for e in trials if (e.defense.name, e.output.name) != ("none", "none")]
    assert all(e.shadows.train == "like_target" for e in defended
               if e.defense.name != "selena")  # selena also runs with undefended shadows


def test_selena_is_attacked_with_shadow_models_trained_like_it_and_without_it():
    trials = expand(load_sweep(str(SWEEPS / "selena.py")))
    threats = {e.shadows.train for e in trials if e.defense.name == "selena"}
    assert threats == {"like_target", "undefended"}
    assert all("selena_adaptive" in e.attacks for e in trials)


def test_the_dp_baseline_brackets_the_undefended_accuracy_with_its_own_recipe():
    dp = protocol.dp_baseline()
    assert [d.epsilon for d in dp] == list(protocol.DP_EPSILONS)
    assert all(d.lr == protocol.DP_RECIPE["lr"] and d.epochs == protocol.DP_RECIPE["epochs"]
               for d in dp)
    assert protocol.dp_baseline((8,), lr=0.1)[0].lr == 0.1
    trained = dp[0].training(TrainConfig(lr=1e-3, epochs=60, batch_size=32, weight_decay=0.5))
    assert (trained.lr, trained.epochs, trained.batch_size, trained.weight_decay) == \
        (1e-2, 30, 64, 0.5)  # DP-SGD's own recipe, the rest of the experiment's
    assert DPSGD().training(TrainConfig(lr=1e-3)).lr == 1e-3  # no recipe: the experiment's
