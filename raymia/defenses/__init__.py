"""Training defenses: one module each, registered by its decorator
(`@DEFENSES.register`) into raymia.registry.DEFENSES, name -> frozen config
dataclass (see defenses.base.Defense). Output defenses are raymia.outputs;
SELENA is raymia.selena."""
from __future__ import annotations

from raymia.config import registered_config
from raymia.defenses.advreg import AdvReg
from raymia.defenses.base import Defense
from raymia.defenses.dp import DPSGD
from raymia.defenses.early_stopping import EarlyStopping
from raymia.defenses.mixup_mmd import MixupMMD
from raymia.defenses.none import NoDefense
from raymia.defenses.regularization import L2, LabelSmoothing
from raymia.registry import DEFENSES, config_fields


def defense_from_dict(value, where: str = "defense") -> Defense:
    """A defense from its config, a mapping with `name`, or a bare name."""
    return registered_config(value, "defense", where)


def defense_fields() -> dict[str, type]:
    """Every parameter any registered defense has, with its type (the trials table
    has a `defense.<field>` column for each, null where a defense lacks it)."""
    return config_fields(DEFENSES)


__all__ = ["DEFENSES", "DPSGD", "AdvReg", "Defense", "EarlyStopping", "L2", "LabelSmoothing",
           "MixupMMD", "NoDefense", "defense_fields", "defense_from_dict"]
