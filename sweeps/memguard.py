"""Output defenses under the defense-evaluation protocol (raymia.protocol):
MemGuard at several distortion budgets, top-k and rounding on one trained
model, beside the DP-SGD baseline, on the embedded digits. The target and
shadow models train once (the model cache shares them: an output defense
does not change training); the attacker's shadow models release through the
same defense, and the label-only augmentation attack reads what a
confidence-hiding release cannot hide.

    python -m raymia.sweep sweeps/memguard.py --report
"""
from ray import tune

from raymia import MemGuard, NoOutput, Rounding, Sweep, TopK
from raymia import protocol

sweep = Sweep(
    name="memguard",
    base=protocol.base(attacks=protocol.ATTACKS + ("nn", "top3", "augmentation")),
    space=[
        {"output": tune.grid_search([
            NoOutput(), MemGuard(epsilon=0.5), MemGuard(epsilon=1.0),
            MemGuard(epsilon=float("inf")), TopK(k=1), TopK(k=3), Rounding(decimals=1)])},
        # DP-SGD's releases are its own outputs: MemGuard fitted on the members would
        # not be covered by epsilon (refused), so the baseline is its own grid
        {"defense": tune.grid_search(protocol.dp_baseline())},
    ],
)
