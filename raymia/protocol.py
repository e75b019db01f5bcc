"""The defense-evaluation protocol (README, "Evaluating a defense") as the
building blocks of a sweep file.

Aerni, Zhang and Tramèr (CCS 2024) show that evaluations of empirical
defenses mislead in three ways; a sweep built from these avoids each:

  the average example    mislabeled canaries join the audit set
                         (`split.canaries`), reported apart (eval_set
                         `canaries`): the most vulnerable samples
  a weak attacker        LiRA beside the metric attacks, on shadow models
                         trained like the target (`shadows.train`, default
                         `like_target`: with the defense, SELENA included)
  a weak baseline        DP-SGD trials whose test accuracy brackets the
                         defenses' (`dp_baseline`), each defense set beside
                         the one of closest accuracy (raymia.analysis.against_dp)
"""
from __future__ import annotations

import dataclasses

from raymia.config import (DataConfig, Experiment, ModelConfig, ShadowConfig, SplitConfig,
                           TrainConfig)
from raymia.defenses import DPSGD

METRIC_ATTACKS = ("correctness", "confidence", "entropy", "modified_entropy", "loss")
ATTACKS = METRIC_ATTACKS + ("lira",)
#: DP-SGD's epsilons for the baseline on the embedded digits: test accuracy
#: from about 0.5 to 0.93 on the base audit, bracketing the defenses'
DP_EPSILONS = (1.0, 4.0, 16.0, 64.0, 256.0)
#: DP-SGD's own recipe (tuned here for utility on the base audit): with Adam
#: the clipping norm matters little once every gradient is clipped; the
#: learning rate, batch size and epochs are what buy accuracy
DP_RECIPE = dict(lr=1e-2, epochs=30, batch_size=64, max_grad_norm=1.0, accountant="rdp")


def base(**changes) -> Experiment:
    """The audit every defense sweep on the embedded digits shares: 300 members
    and as many non-members, 60 mislabeled canaries (30 of them members: enough
    for an exact interval to tell 30 of 30 found from 20 of 30), 150 validation
    examples for the defenses that need them (and as many held out by the
    attacker), an MLP trained long enough to overfit, 16 shadow models trained
    like the target, the metric attacks and LiRA. `changes` replace whole
    fields (e.g. attacks=..., shadows=...)."""
    exp = Experiment(
        data=DataConfig(name="digits"),
        split=SplitConfig(n_members=300, n_validation=150, canaries=60),
        model=ModelConfig(name="mlp", widths=(256, 256)),
        train=TrainConfig(optimizer="adam", lr=1e-3, epochs=60, batch_size=32),
        shadows=ShadowConfig(n_models=16, models_per_job=4),
        attacks=ATTACKS,
    )
    return dataclasses.replace(exp, **changes)


def dp_baseline(epsilons=DP_EPSILONS, **recipe) -> list[DPSGD]:
    """DP-SGD at each epsilon with DP_RECIPE (`recipe` changes it): the
    candidates of the utility-matched baseline. The RDP accountant: the PRV
    accountant's search is slow and unstable at epsilons in the hundreds."""
    return [DPSGD(epsilon=float(e), **{**DP_RECIPE, **recipe}) for e in epsilons]
