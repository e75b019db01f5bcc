"""Defense registry: name -> frozen config dataclass (see defenses.base.Defense)."""
from __future__ import annotations

import dataclasses
import typing

from raymia.config import registered_config
from raymia.defenses.base import Defense
from raymia.defenses.advreg import AdvReg
from raymia.defenses.dp import DPSGD
from raymia.defenses.early_stopping import EarlyStopping
from raymia.defenses.mixup_mmd import MixupMMD
from raymia.defenses.none import NoDefense
from raymia.defenses.posthoc import (Laplace, LabelOnly, MemGuard, NoOutput,
                                     OutputDefense, Rounding, Temperature, TopK)
from raymia.defenses.regularization import L2, LabelSmoothing
from raymia.registry import DEFENSES, OUTPUTS  # filled by the decorators of the modules above


def defense_from_dict(value, where: str = "defense") -> Defense:
    """A defense from its config, a mapping with `name`, or a bare name."""
    return registered_config(value, "defense", where)


def output_from_dict(value, where: str = "output") -> OutputDefense:
    """An output defense from its config, a mapping with `name`, or a bare name."""
    return registered_config(value, "output", where)


def _fields(registry: dict) -> dict[str, type]:
    out: dict[str, type] = {}
    for cls in registry.values():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            out.setdefault(f.name, hints[f.name])
    return out


def _one_type_per_field(registry):
    """A registry's check of a new entry: each `defense.<field>` (`output.<field>`)
    column has one type, whichever defense fills it (its meaning is that of the
    defense in the row's `defense` column)."""
    def check(name, cls):
        known = _fields({k: v for k, v in registry.items() if k != name})
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in known and known[f.name] != hints[f.name]:
                owner = next(k for k, v in registry.items() if k != name and f.name in
                             {g.name for g in dataclasses.fields(v)})
                raise TypeError(f"{registry.kind} {name!r}: field {f.name!r} is "
                                f"{hints[f.name]}, but {owner}'s {f.name} is {known[f.name]} "
                                "and they share one column; rename the field")
    return check


DEFENSES.on_register = _one_type_per_field(DEFENSES)
OUTPUTS.on_register = _one_type_per_field(OUTPUTS)


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
           "NoOutput", "OutputDefense", "Rounding", "Temperature", "TopK", "defense_fields",
           "defense_from_dict", "output_fields", "output_from_dict"]
