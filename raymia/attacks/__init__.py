"""Attack registry: name -> fn(AttackInputs, ReferenceConfig) -> list[AttackOutput].

Higher score = member, for every attack and variant."""
from __future__ import annotations

from raymia.attacks import label_only, learned
from raymia.attacks.base import AttackInputs, AttackOutput
from raymia.attacks.lira import lira
from raymia.attacks.metric import METRICS, metric_attack
from raymia.attacks.rmia import rmia
from raymia.attacks.selena_adaptive import selena_adaptive


def _metric(name):
    return lambda inputs, cfg: metric_attack(name, inputs)


ATTACKS = {name: _metric(name) for name in METRICS}
ATTACKS["lira"] = lambda inputs, cfg: lira(inputs, cfg.n_models)
ATTACKS["rmia"] = lambda inputs, cfg: rmia(inputs, cfg.n_models, cfg.rmia_gamma)
ATTACKS["shokri"] = lambda inputs, cfg: learned.shokri(inputs, cfg.attack_model)
ATTACKS["nn"] = lambda inputs, cfg: learned.nn(inputs, cfg.attack_model)
ATTACKS["top3"] = lambda inputs, cfg: learned.top3(inputs, cfg.attack_model)
ATTACKS["selena_adaptive"] = lambda inputs, cfg: selena_adaptive(inputs, cfg.attack_model)
ATTACKS["augmentation"] = lambda inputs, cfg: label_only.augmentation(inputs)
ATTACKS["noise"] = lambda inputs, cfg: label_only.noise(inputs)
ATTACKS["boundary"] = lambda inputs, cfg: label_only.boundary(inputs)
#: attacks that use the predicted label only (allowed on a label-only output defense)
LABEL_ONLY_ATTACKS = ("correctness", "augmentation", "noise", "boundary")
#: the default attack list: the metric attacks; the others are asked for by name
DEFAULT_ATTACKS = tuple(METRICS)


def run_attacks(names, inputs: AttackInputs, cfg=None) -> list[AttackOutput]:
    from raymia.config import ReferenceConfig

    return [out for name in names for out in ATTACKS[name](inputs, cfg or ReferenceConfig())]


__all__ = ["ATTACKS", "LABEL_ONLY_ATTACKS", "AttackInputs", "AttackOutput", "run_attacks"]
