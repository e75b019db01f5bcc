"""Output defenses under the defense-evaluation protocol (raymia.protocol):
MemGuard at a distortion budget and without one, top-k and rounding on one trained
model, beside the DP-SGD baseline, on the embedded digits. The target and
shadow models train once (the model cache shares them: an output defense
does not change training); the attacker's shadow models release through the
same defense, and the label-only augmentation attack reads what a
confidence-hiding release cannot hide.

    python -m raymia.sweep sweeps/memguard.py --report
"""
from ray import tune

from raymia import MemGuard, NoOutput, Rounding, ShadowConfig, Sweep, TopK
from raymia import protocol

sweep = Sweep(
    name="memguard",
    # MemGuard answers every query of every like-target shadow model with its own
    # optimisation (LiRA's augmented copies included): 8 shadow models keep the
    # sweep within minutes here
    base=protocol.base(attacks=protocol.ATTACKS + ("nn", "top3", "augmentation"),
                       shadows=ShadowConfig(n_models=8, models_per_job=4)),
    space=[
        {"output": tune.grid_search([
            NoOutput(), MemGuard(epsilon=1.0), MemGuard(epsilon=float("inf")), TopK(k=1),
            TopK(k=3), Rounding(decimals=1)])},
        # DP-SGD's releases are its own outputs: MemGuard fitted on the members would
        # not be covered by epsilon (refused), so the baseline is its own grid
        {"defense": tune.grid_search(protocol.dp_baseline())},
    ],
)
