"""Mixup + MMD (Li et al. 2021) and early stopping under the
defense-evaluation protocol (raymia.protocol), beside the undefended model
and the DP-SGD baseline, on the embedded digits. Both defenses use the
validation split (disjoint from every evaluation set); the attacker's shadow
models train with them on its own held-out data.

    python -m raymia.sweep sweeps/mixup_mmd.py --report
"""
from ray import tune

from raymia import EarlyStopping, MixupMMD, NoDefense, Sweep
from raymia import protocol

sweep = Sweep(
    name="mixup_mmd",
    base=protocol.base(),
    space={
        "defense": tune.grid_search([
            NoDefense(), MixupMMD(mmd_weight=0.0), MixupMMD(mmd_weight=1.0),
            MixupMMD(mmd_weight=5.0), EarlyStopping(patience=10), *protocol.dp_baseline()]),
    },
)
