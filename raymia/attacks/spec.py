"""What an attack declares beside its code: `@register_attack(name, ...)`.

The pipeline asks these specs instead of testing attack names: the config
checks `labels_only` and `requires`, raymia.queries asks `queries`, the trial
runs the `stages` some attack needs, raymia.rerun replays the `replayable`
ones from stored signals. An attack registered from a sweep file gets the
same treatment (raymia.extensions ships it to every node).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from raymia.registry import ATTACKS

#: pipeline stages an attack may ask for
STAGES = ("boundary", "adaptive")


def _nothing(*args) -> tuple:
    return ()


def _fine(*args) -> None:
    return None


@dataclass(frozen=True)
class AttackSpec:
    """An attack and what it needs.

    run(inputs: AttackInputs, cfg: ReferenceConfig) -> list[AttackOutput],
        scores higher = member; raises attacks.base.MissingSignal when the
        inputs lack a signal it needs.
    labels_only: it reads the predicted labels only (so it runs against an
        output defense that releases labels only).
    default: part of the default attack list.
    queries(exp, data_kind) -> the per-example queries every model answers for
        it ("aug": identity + augmentations, "noise": flipped features).
    stages: extra pipeline stages of the trial ("boundary": label-query jobs
        after training; "adaptive": the adaptive attacker's own models).
    requires(exp): raise ConfigError when the experiment cannot run it;
    requires_data(exp, data): the same, given the loaded dataset; both run
        before any training.
    replayable: it reads the models' p_y only, so raymia.rerun can replay it
        from the stored `signals` with another number of reference models.
    fields: the config fields (dotted paths) it reads; a sweep that varies
        one of them without running an attack that reads it is refused.
    """

    name: str
    run: Callable
    labels_only: bool = False
    default: bool = False
    queries: Callable = _nothing
    stages: tuple[str, ...] = ()
    requires: Callable = _fine
    requires_data: Callable = _fine
    replayable: bool = False
    fields: tuple[str, ...] = ()

    def __post_init__(self):
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"attack {self.name!r}: unknown stages {sorted(unknown)}; "
                             f"valid: {', '.join(STAGES)}")


def register_attack(name: str, **needs):
    """Decorator: register `run(inputs, cfg)` as attack `name` with its needs."""
    def wrap(run):
        ATTACKS.register(name, AttackSpec(name, run, **needs))
        return run
    return wrap


def unread_fields(paths, attack_names) -> dict[str, list[str]]:
    """{path: the attacks that read it} for each config path in `paths` that some
    registered attack declares in its `fields` but none of `attack_names` does."""
    out = {}
    for path in paths:
        readers = sorted(n for n, spec in ATTACKS.items() if path in spec.fields)
        if readers and not set(readers) & set(attack_names):
            out[path] = readers
    return out


def asked_queries(exp, data_kind: str) -> set[str]:
    """The per-example queries the experiment's attacks ask every model to answer."""
    return {q for name in exp.attacks for q in ATTACKS[name].queries(exp, data_kind)}


def needs_stage(exp, stage: str) -> bool:
    return any(stage in ATTACKS[name].stages for name in exp.attacks)
