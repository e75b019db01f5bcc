"""Defense registry: name -> frozen config dataclass (see defenses.base.Defense)."""
from __future__ import annotations

import dataclasses

from raymia.config import ConfigError, check_choice, from_dict
from raymia.defenses.base import Defense
from raymia.defenses.advreg import AdvReg
from raymia.defenses.dp import DPSGD
from raymia.defenses.early_stopping import EarlyStopping
from raymia.defenses.mixup_mmd import MixupMMD
from raymia.defenses.none import NoDefense
from raymia.defenses.regularization import L2, LabelSmoothing

DEFENSES: dict[str, type[Defense]] = {cls.name: cls for cls in (
    NoDefense, L2, LabelSmoothing, DPSGD, AdvReg, MixupMMD, EarlyStopping)}


def defense_from_dict(value, where: str = "defense") -> Defense:
    """A defense from its config, a mapping with `name`, or a bare name."""
    if isinstance(value, Defense):
        return value
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or "name" not in value:
        raise ConfigError(where, f"expected a defense config with a 'name', got {value!r}")
    check_choice(value["name"], DEFENSES, f"{where}.name")
    return from_dict(DEFENSES[value["name"]], value, where)


def defense_fields() -> dict[str, type]:
    """Every parameter any registered defense has, with its type (the trials table
    has a `defense.<field>` column for each, null where a defense lacks it)."""
    import typing

    out: dict[str, type] = {}
    for cls in DEFENSES.values():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if out.setdefault(f.name, hints[f.name]) != hints[f.name]:
                raise TypeError(f"defense field {f.name!r} has two types")
    return out


__all__ = ["DEFENSES", "DPSGD", "AdvReg", "Defense", "EarlyStopping", "L2", "LabelSmoothing",
           "MixupMMD", "NoDefense", "defense_fields", "defense_from_dict"]
