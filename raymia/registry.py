"""The open registries: names -> what they stand for. A leaf module.

Each kind of thing a config names (dataset, model, activation, attack, attack
model, augmentation, out-of-distribution set, training defense, output
defense) has one Registry here. The modules that implement them register
their entries where they are written (`@ATTACKS.register(...)`,
`@DEFENSES.register`); `raymia.config` validates names against these
registries without importing those modules, so the config imports nothing
but this module and `raymia.errors`. A sweep file may add its own entries
(raymia.extensions ships them to every node).

Each registry fills itself with the built-ins on first use: reading it (a
lookup, `in`, iteration, `check`, ...) or adding to it first imports the
modules that register its built-in entries (`builtins`). A process imports
only what it uses: a training worker builds its model from MODELS without
importing the attacks (scikit-learn, SciPy) or the result tables (pandas,
pyarrow), and `import raymia` itself imports nothing heavy.
"""
from __future__ import annotations

import dataclasses
import importlib
import sys
import threading
import typing
from typing import Any, Callable

from raymia.errors import ConfigError


class Registry(dict):
    """name -> entry, with an error listing the valid names. `accept` may admit
    names by a rule (`torchvision.<arch>` models) besides the registered ones.
    `builtins`: the modules that register the built-in entries, imported when
    the registry is first read or added to (see the module docstring)."""

    def __init__(self, kind: str, builtins: tuple[str, ...] = ()):
        super().__init__()
        self.kind = kind
        self.builtins = builtins
        self.accept: Callable[[str], str | None] | None = None
        #: called as on_register(name, entry) before a new entry goes in; may raise
        self.on_register: Callable[[str, Any], None] | None = None
        self._builtin: dict | None = None  # the built-in entries, once they are all in
        self._loading: set[int] = set()  # the threads importing the built-ins now

    def _load(self) -> None:
        """Import the built-in modules once, then note what they registered.

        While one of them is still being imported by this thread (a built-in
        module's own registration, or a read from code it imports), nothing is
        imported and the registry reads as it stands: loading the others then
        would change the order of the entries, and the note would miss what
        that module registers next. The next use after it loads the rest.
        Threads load on their own; the import system makes them wait for each
        other's imports."""
        if self._builtin is not None:
            return
        me = threading.get_ident()
        if me in self._loading:
            return
        self._loading.add(me)
        try:
            for name in self.builtins:  # import_module waits for another thread's import
                if _initializing(name) and _initializing(importlib.import_module(name)):
                    return
            for name in self.builtins:
                importlib.import_module(name)
            if self._builtin is None:
                self._builtin = self._in_module_order()
        finally:
            self._loading.discard(me)

    def _in_module_order(self) -> dict:
        """The entries reordered as `builtins` registers them, whichever of those
        modules this process happened to import first (entries in the order of
        their module, those defined elsewhere after; otherwise as they came)."""
        def rank(item) -> int:
            module = origin(item[1]).__module__
            return next((i for i, m in enumerate(self.builtins)
                         if module == m or module.startswith(m + ".")), len(self.builtins))
        ordered = sorted(dict.items(self), key=rank)
        dict.clear(self)
        dict.update(self, ordered)
        return dict(ordered)

    def builtin_entries(self) -> dict:
        """name -> entry for what raymia itself registered (not a sweep file)."""
        self._load()
        return dict(self._builtin if self._builtin is not None else dict.items(self))

    # every read and write fills the registry first
    def __getitem__(self, name):
        self._load()
        return super().__getitem__(name)

    def __setitem__(self, name, entry):
        self._load()
        super().__setitem__(name, entry)

    def __contains__(self, name) -> bool:
        self._load()
        return super().__contains__(name)

    def __iter__(self):
        self._load()
        return super().__iter__()

    def __len__(self) -> int:
        self._load()
        return super().__len__()

    def __repr__(self) -> str:
        self._load()
        return super().__repr__()

    def get(self, name, default=None):
        self._load()
        return super().get(name, default)

    def keys(self):
        self._load()
        return super().keys()

    def values(self):
        self._load()
        return super().values()

    def items(self):
        self._load()
        return super().items()

    def copy(self) -> dict:
        self._load()
        return dict(super().items())

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
        self._load()
        old = super().get(name)
        if old is not None and _qualname(old) != _qualname(entry):
            raise ValueError(f"{self.kind} {name!r} is registered already ({_qualname(old)})")
        if self.on_register:
            self.on_register(name, entry)
        super().__setitem__(name, entry)
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


def _initializing(module) -> bool:
    """Whether a module (or module name) is being imported right now: importlib
    marks a module's spec `_initializing` while its code runs."""
    if isinstance(module, str):
        module = sys.modules.get(module)
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


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


# each with the modules that register its built-in entries, in registration order
DATASETS = Registry("dataset", ("raymia.data",))
MODELS = Registry("model", ("raymia.models",))
ACTIVATIONS = Registry("activation", ("raymia.models.mlp",))
ATTACKS = Registry("attack", ("raymia.attacks.label_only", "raymia.attacks.learned",
                              "raymia.attacks.lira", "raymia.attacks.metric",
                              "raymia.attacks.rmia", "raymia.selena.attack"))
ATTACK_MODELS = Registry("attack model", ("raymia.attacks.learned",))
AUGMENTATIONS = Registry("augmentation", ("raymia.augment",))
OOD_SETS = Registry("out-of-distribution set", ("raymia.data.ood",))
DEFENSES = Registry("defense", ("raymia.defenses", "raymia.selena.defense"))
OUTPUTS = Registry("output defense", ("raymia.outputs.defenses",))
DEFENSES.on_register = one_type_per_field(DEFENSES)
OUTPUTS.on_register = one_type_per_field(OUTPUTS)
