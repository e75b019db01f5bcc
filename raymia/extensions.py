"""Attacks, defenses, datasets and models a sweep file brings along.

A sweep file (or a module of the user's it imports) may register its own
entries (`@register_attack(...)`, `@DEFENSES.register`, ...) beside its
`sweep`: a research idea tried without forking raymia. `foreign` collects
every registered entry defined outside raymia; `install` adds them to
another process's registries. The Ray layer (raymia.execution) ships them by
value to every trial and training job, on every node, and installs them
before the trial reads its config. Their defense classes carry their
module's source text, which the model cache hashes in place of a source
file the workers may not have (raymia.train.cache.defense_code).
"""
from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field

from raymia import registry

#: the registries a sweep file may extend, by name
REGISTRIES = {"dataset": registry.DATASETS, "model": registry.MODELS,
              "activation": registry.ACTIVATIONS, "attack": registry.ATTACKS,
              "attack_model": registry.ATTACK_MODELS, "augmentation": registry.AUGMENTATIONS,
              "ood_set": registry.OOD_SETS, "defense": registry.DEFENSES,
              "output": registry.OUTPUTS}


@dataclass
class Extensions:
    """Entries registered outside raymia: registry name -> {entry name: entry}."""

    entries: dict[str, dict] = field(default_factory=dict)
    modules: tuple[str, ...] = ()  # where they are defined (pickled by value)

    def __bool__(self) -> bool:
        return any(self.entries.values())

    def names(self) -> list[str]:
        return [f"{kind} {name}" for kind, got in self.entries.items() for name in got]


#: what raymia itself registers, by registry name (filled by note_builtins)
BUILTIN: dict[str, dict] = {}


def note_builtins() -> None:
    """Note every registry's built-in entries in BUILTIN. Each registry fills
    itself with them on first use (raymia.registry) and tells them apart from
    a sweep file's entries however late this is called."""
    BUILTIN.update({kind: reg.builtin_entries() for kind, reg in REGISTRIES.items()})


def foreign() -> Extensions:
    """Every registered entry raymia did not register itself, with the modules
    they come from."""
    note_builtins()
    entries, modules = {}, set()
    for kind, reg in REGISTRIES.items():
        builtin = BUILTIN.get(kind, {})
        got = {name: entry for name, entry in reg.items() if builtin.get(name) is not entry}
        if got:
            entries[kind] = got
            modules |= {registry.origin(entry).__module__ for entry in got.values()}
    for kind in ("defense", "output"):
        for cls in entries.get(kind, {}).values():
            if getattr(cls, "__raymia_source__", None) is None:
                cls.__raymia_source__ = _source(cls.__module__)
    return Extensions(entries, tuple(sorted(modules)))


def _source(module: str) -> str:
    try:
        return inspect.getsource(sys.modules[module])
    except (KeyError, OSError, TypeError):  # no module or no file: the class itself names it
        return module


def install(extensions: Extensions | None) -> None:
    """Register a sweep file's entries here (a trial on any node)."""
    if not extensions:
        return
    for kind, entries in extensions.entries.items():
        for name, entry in entries.items():
            REGISTRIES[kind][name] = entry
