"""Attack registry: name -> fn(AttackInputs) -> list[AttackOutput]. Higher score = member."""
from __future__ import annotations

from functools import partial

from raymia.attacks.base import AttackInputs, AttackOutput
from raymia.attacks.metric import METRICS, metric_attack

ATTACKS = {name: partial(metric_attack, name) for name in METRICS}


def run_attacks(names, inputs: AttackInputs) -> list[AttackOutput]:
    return [out for name in names for out in ATTACKS[name](inputs)]


__all__ = ["ATTACKS", "AttackInputs", "AttackOutput", "run_attacks"]
