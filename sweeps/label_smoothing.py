"""Label smoothing under the defense-evaluation protocol (raymia.protocol):
smoothing swept beside the undefended model and the DP-SGD baseline, on the
embedded digits.

    python -m raymia.sweep sweeps/label_smoothing.py --report
"""
from ray import tune

from raymia import LabelSmoothing, NoDefense, Sweep
from raymia import protocol

sweep = Sweep(
    name="label_smoothing",
    base=protocol.base(),
    space={
        "defense": tune.grid_search([NoDefense(), LabelSmoothing(smoothing=0.1),
                                     LabelSmoothing(smoothing=0.3), LabelSmoothing(smoothing=0.5),
                                     *protocol.dp_baseline()]),
    },
)
