"""DP-SGD's privacy-utility trade-off under the defense-evaluation protocol
(raymia.protocol: canaries, LiRA on DP-trained shadow models): epsilon from
1 to 256 and infinity (the same recipe without noise) beside the undefended
model, on the embedded digits.

    python -m raymia.sweep sweeps/dp_tradeoff.py --report

On Purchase100, change the base:
    base=protocol.base(data=DataConfig(name="purchase100", root="/data/purchase"),
                       model=ModelConfig(name="purchase_mlp"),
                       split=SplitConfig(n_members=10_000, n_validation=5_000, canaries=500)),
"""
import math

from ray import tune

from raymia import NoDefense, Sweep
from raymia import protocol

sweep = Sweep(
    name="dp_tradeoff",
    base=protocol.base(),
    space={
        "defense": tune.grid_search([NoDefense(), *protocol.dp_baseline((1, 4, 16, 64, 256,
                                                                         math.inf))]),
    },
)
