"""Every defense against the utility-matched DP-SGD baseline, under the
defense-evaluation protocol (raymia.protocol: mislabeled canaries, LiRA on
shadow models trained like the target) on the embedded digits. The report's
"Against utility-matched DP-SGD" table sets each defense beside the DP-SGD
trial of the closest test accuracy and says which leaks less on the canaries.

    python -m raymia.sweep sweeps/defense_vs_dp.py --report
"""
from ray import tune

from raymia import (L2, AdvReg, EarlyStopping, LabelSmoothing, MemGuard, MixupMMD, NoDefense,
                    Selena, Sweep, Temperature)
from raymia import protocol

sweep = Sweep(
    name="defense_vs_dp",
    base=protocol.base(),
    space=[
        {"defense": tune.grid_search([
            NoDefense(), L2(weight_decay=1e-2), LabelSmoothing(smoothing=0.1),
            AdvReg(alpha=1.0), MixupMMD(mmd_weight=1.0), EarlyStopping(patience=10),
            Selena(K=10, L=5), *protocol.dp_baseline()])},
        {"output": tune.grid_search([MemGuard(epsilon=1.0), Temperature()])},
    ],
)
