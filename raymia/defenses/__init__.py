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
from raymia.defenses.posthoc import (OUTPUTS, Laplace, LabelOnly, MemGuard, NoOutput,
                                     OutputDefense, Rounding, Temperature, TopK)
from raymia.defenses.regularization import L2, LabelSmoothing
from raymia.defenses.selena_defense import Selena

DEFENSES: dict[str, type[Defense]] = {cls.name: cls for cls in (
    NoDefense, L2, LabelSmoothing, DPSGD, AdvReg, MixupMMD, EarlyStopping, Selena)}


def _from_registry(value, registry: dict, base: type, where: str, what: str):
    if isinstance(value, base):
        return value
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or "name" not in value:
        raise ConfigError(where, f"expected {what} config with a 'name', got {value!r}")
    check_choice(value["name"], registry, f"{where}.name")
    return from_dict(registry[value["name"]], value, where)


def defense_from_dict(value, where: str = "defense") -> Defense:
    """A defense from its config, a mapping with `name`, or a bare name."""
    return _from_registry(value, DEFENSES, Defense, where, "a defense")


def output_from_dict(value, where: str = "output") -> OutputDefense:
    """An output defense from its config, a mapping with `name`, or a bare name."""
    return _from_registry(value, OUTPUTS, OutputDefense, where, "an output defense")


def _fields(registry: dict) -> dict[str, type]:
    import typing

    out: dict[str, type] = {}
    for cls in registry.values():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if out.setdefault(f.name, hints[f.name]) != hints[f.name]:
                raise TypeError(f"{cls.name} field {f.name!r} has two types")
    return out


def defense_fields() -> dict[str, type]:
    """Every parameter any registered defense has, with its type (the trials table
    has a `defense.<field>` column for each, null where a defense lacks it)."""
    return _fields(DEFENSES)


def output_fields() -> dict[str, type]:
    """Every parameter any registered output defense has (`output.<field>` columns)."""
    return _fields(OUTPUTS)


#: config fields resolved through a registry: field name -> (from_dict, fields)
REGISTRIES = {"defense": (defense_from_dict, defense_fields),
              "output": (output_from_dict, output_fields)}


__all__ = ["DEFENSES", "DPSGD", "OUTPUTS", "REGISTRIES", "AdvReg", "Defense", "EarlyStopping",
           "L2", "LabelOnly", "LabelSmoothing", "Laplace", "MemGuard", "MixupMMD", "NoDefense",
           "NoOutput", "OutputDefense", "Rounding", "Selena", "Temperature", "TopK", "defense_fields",
           "defense_from_dict", "output_fields", "output_from_dict"]
