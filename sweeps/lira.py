"""The attacks that matter, with 64 shadow models: LiRA (with and without
augmented queries) and RMIA beside the learned attacks (Shokri et al.'s
per-class models, the NN attack, Salem et al.'s top-3), the label-only
attacks (augmentation, decision-boundary distance) and every metric attack,
on the undefended model and one defended by L2, each with 16 and with all 64
shadow models as references, on the embedded digits.

    python -m raymia.sweep sweeps/lira.py

On CIFAR-10 with a GPU cluster, change the data and model lines:
    data=DataConfig(name="cifar10", root="/data/cifar"),
    model=ModelConfig(name="cifar_resnet18"), split=SplitConfig(n_members=25_000),
and give the jobs GPUs: resources=Resources(gpus_per_job=0.25, parallel_jobs=4).
"""
from ray import tune

from raymia import (L2, DataConfig, Experiment, ModelConfig, NoDefense, ReferenceConfig,
                    ShadowConfig, SplitConfig, Sweep, TrainConfig)

METRIC_ATTACKS = ("correctness", "confidence", "entropy", "modified_entropy", "loss")

sweep = Sweep(
    name="lira",
    base=Experiment(
        data=DataConfig(name="digits"),
        # the shadow pool holds RMIA's population samples
        split=SplitConfig(n_members=150, n_shadow_pool=150),
        model=ModelConfig(name="mlp", widths=(512, 512)),
        train=TrainConfig(optimizer="adam", lr=1e-3, epochs=100, batch_size=32),
        shadows=ShadowConfig(n_models=64, models_per_job=8),
        attacks=METRIC_ATTACKS + ("shokri", "nn", "top3", "lira", "rmia", "augmentation",
                                  "boundary"),
    ),
    space={
        "defense": tune.grid_search([NoDefense(), L2(weight_decay=1e-2)]),
        "reference": tune.grid_search([ReferenceConfig(n_models=16), ReferenceConfig()]),
    },
    seeds=(0,),
)
