"""Attacks, defenses, datasets and models a sweep file brings along.

A sweep file (or a module of the user's it imports) may register its own
entries (`@register_attack(...)`, `@DEFENSES.register`, ...) beside its
`sweep`: a research idea tried without forking raymia. `foreign` collects
every registered entry defined outside raymia; `install` adds them to
another process's registries. The Ray layer (raymia.execution) ships them by
value to every trial and training job, on every node, and installs them
before the trial reads its config. Their defense classes carry their
module's source text, which the model cache hashes in place of a source
file the workers may not have (raymia.train.cache.defense_code); `capture`
notes what loading one sweep file added.
"""
from __future__ import annotations

import inspect
import sys
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
    modules: tuple[str, ...] = ()  # where they are defined (pickled by value)

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
    return result, Extensions({k: v for k, v in added.items() if v}, (module,) if module else ())


def _module(entry) -> str:
    target = getattr(entry, "run", entry)  # an attack spec: its function
    target = getattr(target, "func", target)  # a functools.partial
    return getattr(target, "__module__", "") or ""


#: what raymia itself registers (noted once `import raymia` has filled the registries)
BUILTIN: dict[str, dict] = {}


def note_builtins() -> None:
    BUILTIN.update({kind: dict(reg) for kind, reg in REGISTRIES.items()})


def foreign() -> Extensions:
    """Every registered entry raymia did not register itself, with the modules
    they come from."""
    entries, modules = {}, set()
    for kind, reg in REGISTRIES.items():
        builtin = BUILTIN.get(kind, {})
        got = {name: entry for name, entry in reg.items() if builtin.get(name) is not entry}
        if got:
            entries[kind] = got
            modules |= {_module(entry) for entry in got.values()}
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
