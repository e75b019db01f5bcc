"""Output defenses: what a trained model releases (top-k, rounding, labels
only, temperature, last-layer Laplace, MemGuard), each registered by its
decorator (`@OUTPUTS.register`) into raymia.registry.OUTPUTS. `defenses`
holds the configs, `release` the pure functions on probabilities,
`laplace` and `memguard` the two fitted mechanisms."""
from __future__ import annotations

from raymia.config import registered_config
from raymia.outputs.defenses import (LabelOnly, Laplace, MemGuard, NoOutput, OutputDefense,
                                     Rounding, Temperature, TopK)
from raymia.registry import OUTPUTS, config_fields


def output_from_dict(value, where: str = "output") -> OutputDefense:
    """An output defense from its config, a mapping with `name`, or a bare name."""
    return registered_config(value, "output", where)


def output_fields() -> dict[str, type]:
    """Every parameter any registered output defense has (`output.<field>` columns)."""
    return config_fields(OUTPUTS)


__all__ = ["OUTPUTS", "LabelOnly", "Laplace", "MemGuard", "NoOutput", "OutputDefense",
           "Rounding", "Temperature", "TopK", "output_fields", "output_from_dict"]
