"""Attacks, defenses, datasets and models a sweep file brings along.

A sweep file may register its own entries (`@register_attack(...)`,
`@DEFENSES.register`, ...) beside its `sweep`: a research idea tried without
forking raymia. `capture` notes what a sweep file added to the registries;
`install` adds the same entries to another process's registries. The Ray
layer (raymia.execution) ships them by value to every trial, on every node,
and installs them before the trial reads its config; the defense classes
carry the sweep file's text, which the model cache hashes in place of a
source file (raymia.train.cache.defense_code).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from raymia import registry

#: the registries a sweep file may extend, by name
REGISTRIES = {"dataset": registry.DATASETS, "model": registry.MODELS,
              "activation": registry.ACTIVATIONS, "attack": registry.ATTACKS,
              "attack_model": registry.ATTACK_MODELS, "augmentation": registry.AUGMENTATIONS,
              "ood_set": registry.OOD_SETS, "defense": registry.DEFENSES,
              "output": registry.OUTPUTS}


@dataclass
class Extensions:
    """What one sweep file registered: registry name -> {entry name: entry}."""

    entries: dict[str, dict] = field(default_factory=dict)
    module: str = ""  # the sweep file's module name (pickled by value)

    def __bool__(self) -> bool:
        return any(self.entries.values())

    def names(self) -> list[str]:
        return [f"{kind} {name}" for kind, got in self.entries.items() for name in got]


def capture(load: Callable[[], object], module: str = "", source: str = ""):
    """Run `load` (executing a sweep file) and return (its result, Extensions)
    with the registry entries it added; the defense classes among them carry
    `source`, the sweep file's text."""
    before = {kind: dict(reg) for kind, reg in REGISTRIES.items()}
    result = load()
    added = {kind: {name: entry for name, entry in reg.items()
                    if before[kind].get(name) is not entry}
             for kind, reg in REGISTRIES.items()}
    for kind in ("defense", "output"):
        for cls in added[kind].values():
            cls.__raymia_source__ = source
    return result, Extensions({k: v for k, v in added.items() if v}, module)


def install(extensions: Extensions | None) -> None:
    """Register a sweep file's entries here (a trial on any node)."""
    if not extensions:
        return
    for kind, entries in extensions.entries.items():
        for name, entry in entries.items():
            REGISTRIES[kind][name] = entry
