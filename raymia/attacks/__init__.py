"""The attacks: each registered where it is written (`@register_attack`,
raymia.attacks.spec) into raymia.registry.ATTACKS, name -> AttackSpec.
ATTACKS imports the modules that define the built-in ones (scikit-learn and
SciPy among their imports) the first time it is read, not this package: a
training worker imports raymia.attacks.boundary without them.

Higher score = member, for every attack and variant."""
from __future__ import annotations

from raymia.attacks.base import AttackInputs, AttackOutput, MissingSignal
from raymia.attacks.spec import AttackSpec, register_attack
from raymia.config import ReferenceConfig
from raymia.registry import ATTACKS


def run_attacks(names, inputs: AttackInputs, cfg: ReferenceConfig | None = None
                ) -> list[AttackOutput]:
    cfg = cfg or ReferenceConfig()
    return [out for name in names for out in ATTACKS[name].run(inputs, cfg)]


__all__ = ["ATTACKS", "AttackInputs", "AttackOutput", "AttackSpec", "MissingSignal",
           "register_attack", "run_attacks"]
