"""The open registries: names -> what they stand for. A leaf module.

Each kind of thing a config names (dataset, model, activation, attack, attack
model, augmentation, out-of-distribution set, training defense, output
defense) has one Registry here. The modules that implement them register
their entries where they are written (`@ATTACKS.register(...)`,
`@DEFENSES.register`); `raymia.config` validates names against these
registries without importing those modules, so the config imports nothing
but this module and `raymia.errors`. Importing `raymia` fills them; a sweep
file may add its own entries (raymia.extensions ships them to every node).
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Callable

from raymia.errors import ConfigError


class Registry(dict):
    """name -> entry, with an error listing the valid names. `accept` may admit
    names by a rule (`torchvision.<arch>` models) besides the registered ones."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.accept: Callable[[str], str | None] | None = None
        #: called as on_register(name, entry) before a new entry goes in; may raise
        self.on_register: Callable[[str, Any], None] | None = None

    def register(self, name: str | None = None, entry: Any = None):
        """`reg.register("x", entry)`, or as a decorator: `@reg.register("x")`, or
        `@reg.register` on a class with a `name` attribute. Registering a name
        again is allowed for the same qualified name (a module loaded twice, or
        shipped to a worker), and an error otherwise."""
        if entry is not None:
            return self._add(name, entry)
        if callable(name) and not isinstance(name, str):  # bare decorator on a named class
            return self._add(name.name, name)
        return lambda obj: self._add(name or obj.name, obj)

    def _add(self, name: str, entry):
        old = self.get(name)
        if old is not None and _qualname(old) != _qualname(entry):
            raise ValueError(f"{self.kind} {name!r} is registered already ({_qualname(old)})")
        if self.on_register:
            self.on_register(name, entry)
        self[name] = entry
        return entry

    def check(self, name, where: str) -> None:
        """ConfigError at `where` unless `name` is registered (or accepted)."""
        if not isinstance(name, str):
            raise ConfigError(where, f"must be a name, got {name!r}")
        if name in self:
            return
        reason = self.accept(name) if self.accept else "unknown"
        if reason is None:
            return
        valid = ", ".join(sorted(self)) or "none registered"
        raise ConfigError(where, f"unknown value {name!r}; valid: {valid}"
                          if reason == "unknown" else reason)


def origin(entry):
    """The function or class that defines an entry: an attack spec's function, a
    functools.partial's function, else the entry's class or the entry itself."""
    target = getattr(entry, "run", entry)
    target = getattr(target, "func", target)
    return target if hasattr(target, "__qualname__") else type(target)


def _qualname(obj) -> str:
    target = origin(obj)
    return f"{target.__module__}.{target.__qualname__}"


def config_fields(registry: Registry) -> dict[str, type]:
    """Every field of a registry of config dataclasses (defenses, output
    defenses), with its type: one `defense.<field>` / `output.<field>` column each."""
    out: dict[str, type] = {}
    for cls in registry.values():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            out.setdefault(f.name, hints[f.name])
    return out


def one_type_per_field(registry: Registry):
    """A check of new entries: a field shares its column with the same-named
    field of every other entry (its meaning is that of the row's `defense`),
    so it must have the same type; a clash names both."""
    def check(name: str, cls) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            for other_name, other in registry.items():
                if other_name == name or f.name not in {g.name for g in dataclasses.fields(other)}:
                    continue
                theirs = typing.get_type_hints(other)[f.name]
                if theirs != hints[f.name]:
                    raise TypeError(f"{registry.kind} {name!r}: field {f.name!r} is "
                                    f"{hints[f.name]}, but {other_name}'s {f.name} is {theirs} "
                                    "and they share one column; rename the field")
    return check


DATASETS = Registry("dataset")
MODELS = Registry("model")
ACTIVATIONS = Registry("activation")
ATTACKS = Registry("attack")
ATTACK_MODELS = Registry("attack model")
AUGMENTATIONS = Registry("augmentation")
OOD_SETS = Registry("out-of-distribution set")
DEFENSES = Registry("defense")
OUTPUTS = Registry("output defense")
DEFENSES.on_register = one_type_per_field(DEFENSES)
OUTPUTS.on_register = one_type_per_field(OUTPUTS)
