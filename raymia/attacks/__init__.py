"""Attack registry: name -> fn(AttackInputs, ReferenceConfig) -> list[AttackOutput].

Higher score = member, for every attack and variant."""
from __future__ import annotations

from raymia.attacks.base import AttackInputs, AttackOutput
from raymia.attacks.lira import lira
from raymia.attacks.metric import METRICS, metric_attack
from raymia.attacks.rmia import rmia


def _metric(name):
    return lambda inputs, cfg: metric_attack(name, inputs)


ATTACKS = {name: _metric(name) for name in METRICS}
ATTACKS["lira"] = lambda inputs, cfg: lira(inputs, cfg.n_models)
ATTACKS["rmia"] = lambda inputs, cfg: rmia(inputs, cfg.n_models, cfg.rmia_gamma)
#: attacks the default list leaves out: they want many shadow models (and rmia a shadow pool)
OPT_IN = ("lira", "rmia")


def run_attacks(names, inputs: AttackInputs, cfg=None) -> list[AttackOutput]:
    from raymia.config import ReferenceConfig

    return [out for name in names for out in ATTACKS[name](inputs, cfg or ReferenceConfig())]


__all__ = ["ATTACKS", "AttackInputs", "AttackOutput", "run_attacks"]
