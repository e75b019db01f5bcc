"""SELENA (Split-AI + self-distillation, Tang et al. 2022) under the
defense-evaluation protocol (raymia.protocol), with the paper's K = 25,
L = 10, on the embedded digits. The attacker's shadow models train like the
target: each is distilled from its own 25 submodels, all of a stage trained
in parallel as jobs on Ray (26 trainings per shadow model). The same
defense is also attacked with undefended shadow models, the weaker threat
model of earlier evaluations; every trial also faces the paper's adaptive
attacker (it knows half of the members and trains its own Split-AI).

    python -m raymia.sweep sweeps/selena.py --report

On Purchase100 as in the paper:
    base=protocol.base(data=DataConfig(name="purchase100", root="/data/purchase"),
                       model=ModelConfig(name="purchase_mlp"),
                       split=SplitConfig(n_members=10_000, n_validation=5_000, canaries=500)),
"""
from ray import tune

from raymia import NoDefense, Selena, Sweep
from raymia import protocol

sweep = Sweep(
    name="selena",
    base=protocol.base(attacks=protocol.ATTACKS + ("selena_adaptive",)),
    space=[
        {"defense": tune.grid_search([NoDefense(), Selena(K=25, L=10), *protocol.dp_baseline()])},
        {"defense": Selena(K=25, L=10), "shadows.train": "undefended"},
    ],
)
