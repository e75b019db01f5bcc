"""Calibration as a defense under the defense-evaluation protocol
(raymia.protocol): temperature scaling (T fitted on held-out data, or fixed)
and a last-layer Laplace approximation (prior precision tuned on held-out
data; probit or Monte-Carlo predictive), applied after training to the same
model (cached across the sweep), beside the DP-SGD baseline.

    python -m raymia.sweep sweeps/calibration.py --report
"""
from ray import tune

from raymia import Laplace, NoOutput, Sweep, Temperature
from raymia import protocol

sweep = Sweep(
    name="calibration",
    base=protocol.base(attacks=protocol.ATTACKS + ("nn",)),
    space=[
        {"output": tune.grid_search([
            NoOutput(), Temperature(), Temperature(temperature=0.5), Temperature(temperature=2.0),
            Laplace(method="probit"), Laplace(method="mc")])},
        {"defense": tune.grid_search(protocol.dp_baseline())},
    ],
)
