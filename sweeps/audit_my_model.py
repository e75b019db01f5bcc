"""Audit a model you trained yourself: its weights and the ids it trained on.

First train and save one (README, "Audit your own model": a plain PyTorch
script that writes my_model/weights.pt and my_model/members.npy), then

    python -m raymia.sweep sweeps/audit_my_model.py

raymia trains 16 reference models with the same recipe on Ray (each on as
many examples as your model, each audit example IN for half of them), runs
the metric attacks and LiRA on your model, and, beside it, on a model
raymia trains itself with the same recipe and seed: the two LiRA figures
agree within their intervals when your recipe is the one stated below.
`RAYMIA_MY_MODEL` names another folder.
"""
import os
from pathlib import Path

from ray import tune

from raymia import (DataConfig, Experiment, ModelConfig, ShadowConfig, SplitConfig, Sweep, Target,
                    TrainConfig)
from raymia.protocol import ATTACKS

MY_MODEL = Path(os.environ.get("RAYMIA_MY_MODEL", "my_model"))

sweep = Sweep(
    name="audit_my_model",
    base=Experiment(
        data=DataConfig(name="digits"),
        # raymia's own target: as many members as yours (yours: all in members.npy)
        split=SplitConfig(n_members=300),
        # your model's architecture and recipe: the reference models train with it
        model=ModelConfig(name="mlp", widths=(256, 256)),
        train=TrainConfig(optimizer="adam", lr=1e-3, epochs=60, batch_size=32),
        shadows=ShadowConfig(n_models=16, models_per_job=4),
        attacks=ATTACKS,  # the metric attacks and LiRA
    ),
    space={"target": tune.grid_search([
        Target(weights=str(MY_MODEL / "weights.pt"), members=str(MY_MODEL / "members.npy")),
        Target(),  # raymia trains the target itself: the comparison
    ])},
)
