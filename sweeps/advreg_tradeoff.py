"""Adversarial regularization (Nasr et al. 2018) under the defense-evaluation
protocol (raymia.protocol): alpha swept beside the undefended model and the
DP-SGD baseline, on the embedded digits. The defender's reference set is the
validation split, disjoint from every evaluation set; the attacker's shadow
models train with AdvReg too, on the attacker's own held-out data.

    python -m raymia.sweep sweeps/advreg_tradeoff.py --report
"""
from ray import tune

from raymia import AdvReg, NoDefense, Sweep
from raymia import protocol

sweep = Sweep(
    name="advreg_tradeoff",
    base=protocol.base(),
    space={
        "defense": tune.grid_search([NoDefense(), AdvReg(alpha=1.0), AdvReg(alpha=3.0),
                                     *protocol.dp_baseline()]),
    },
)
