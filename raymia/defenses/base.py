"""What every defense config offers the training job."""
from __future__ import annotations

from typing import ClassVar

from raymia.config import ConfigError, TrainConfig
from raymia.errors import Section


class Defense(Section):
    """Base of the defense configs (frozen dataclasses registered by `name`).

    A defense changes training in two ways only: `training` adjusts the loop's
    config (weight decay, label smoothing, ...), and `hooks` returns hooks the
    loop calls (raymia.train.hooks). `needs_holdout` defenses use held-out
    data: `split.n_validation` examples for the target, as many of the
    attacker's own for the shadow models (raymia.data.splits)."""

    name: ClassVar[str]
    section = "defense"  # its errors name `defense.<field>`
    #: what its hooks report (Hook.report), name -> int, float or str: each becomes
    #: a `trials` column (null for other defenses); reporting an undeclared stat
    #: fails the trial, and the conformance tests train every defense to check
    stats: ClassVar[dict[str, type]] = {}
    #: whether the attacker's `like_target` shadow models train with it too
    applies_to_shadows: ClassVar[bool] = True
    #: raised when what the defense does changes for the same fields: from 2 on the
    #: trial_id counts it, so results of an earlier meaning keep an id of their own
    revision: ClassVar[int] = 1
    needs_holdout: ClassVar[bool] = False
    #: whether a job's models with this defense train stacked (raymia.train.stacked):
    #: its hooks act at epoch ends only (epoch_end, finish, report), each model's on
    #: that model alone; a defense that changes batches, losses or the optimizer does not
    stacks: ClassVar[bool] = False

    def training(self, cfg: TrainConfig) -> TrainConfig:
        return cfg

    def hooks(self, context, cfg: TrainConfig) -> list:
        """Hooks for one model's training (context: raymia.train.hooks.HookContext)."""
        return []

    def stages(self, exp, job):
        """None: `job` trains its models with this defense. A defense whose models
        need jobs of their own first (SELENA's submodels) returns them and how
        their results become the models' jobs (raymia.selena.defense.Stages)."""
        return None

    def check(self, exp, data) -> None:
        """Raise ConfigError if this defense cannot run the experiment (called
        before any training, with the loaded dataset)."""
        if self.needs_holdout and exp.split.n_validation == 0:
            raise ConfigError("split.n_validation", f"the {self.name} defense needs held-out "
                              "data: set split.n_validation > 0")
