"""Typed, frozen configuration: Experiment (one trial) and its parts.

Every default lives here, once. `Experiment.from_dict` builds a config from
plain data (a sweep's resolved trial) and raises `ConfigError` naming the
dotted path of the first bad field. Registry names (dataset, model, defense,
attack) are checked against their registries, whose errors list valid names.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from raymia import registry
from raymia.errors import ConfigError, Section, check, check_choice

__all__ = ["ConfigError", "check", "check_choice"]  # with the config classes below


def check_types(obj) -> None:
    """ConfigError naming the field whose value is not of its declared type (a
    config built directly, `TrainConfig(epochs="10")`; from_dict coerces)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, tp = getattr(obj, f.name), hints[f.name]
        if not _is_a(value, tp):
            name = tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")
            raise ConfigError(f.name, f"expected {name}, got {value!r}")


def _is_a(value, tp) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_is_a(value, arg) for arg in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is tuple:
        item = typing.get_args(tp)[0]
        return isinstance(value, (tuple, list)) and all(_is_a(v, item) for v in value)
    if tp is float:  # numbers: numpy's scalars count
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if tp in (str, bool):
        return isinstance(value, tp)
    return True  # sections and registry configs are checked by their own classes


@dataclass(frozen=True)
class DataConfig(Section):
    """Which dataset. `root` (or the RAYMIA_DATA variable) holds local files for
    purchase100, texas100, cifar10 and cifar100; `size`, `n_features` and
    `n_classes` shape the `synthetic` generator and are ignored otherwise.
    `files` reads your own data (raymia.data.files) from `path`, required
    there and ignored otherwise: a .npz, a folder of x.npy and y.npy, a .csv
    whose column `label_column` holds the labels, or an ImageFolder tree. The
    path is made absolute, and must be readable where trials run."""

    section = "data"

    name: str = "digits"
    root: str | None = None
    size: int = 10_000
    n_features: int = 600
    n_classes: int = 100
    path: str | None = None
    label_column: str = "label"

    def __post_init__(self):
        check_types(self)
        registry.DATASETS.check(self.name, "name")
        check(self.name != "files" or bool(self.path), "path",
              "files reads your own data: set data.path to a .npz or .csv file or a folder")
        if self.path:
            object.__setattr__(self, "path", os.path.abspath(os.path.expanduser(self.path)))
        check(self.label_column != "", "label_column", "must name a CSV column")
        check(self.size >= 2, "size", f"must be >= 2, got {self.size}")
        check(self.n_features >= 1, "n_features", f"must be >= 1, got {self.n_features}")
        check(self.n_classes >= 2, "n_classes", f"must be >= 2, got {self.n_classes}")


CANARY_KINDS = ("mislabeled",)

#: the smallest target training set: its audit set has twice as many examples
MIN_MEMBERS = 10


@dataclass(frozen=True)
class SplitConfig(Section):
    """Sizes of the membership split (see raymia.data.splits).

    The target trains on `n_members` examples; as many non-members are drawn;
    together they form the audit set. `n_shadow_pool` extra examples, disjoint
    from the audit set, join the attacker's universe that shadow models sample
    from; `n_validation` examples are held out for defenses that need them.

    `canaries` extra examples of kind `canary_kind` (`mislabeled`: each takes a
    random other class) join the audit set, half of them (at random) members of
    the target, each IN for half of the shadow models like every audit example;
    the attacks report on them apart (eval_set `canaries`): the most
    vulnerable samples beside the population."""

    section = "split"

    n_members: int = 150
    n_shadow_pool: int = 0
    n_validation: int = 0
    canaries: int = 0
    canary_kind: str = "mislabeled"

    def __post_init__(self):
        check_types(self)
        check(self.n_members >= MIN_MEMBERS, "n_members",
              f"must be >= {MIN_MEMBERS} (the audit set is n_members members and as many "
              f"non-members; fewer give figures without meaning), got {self.n_members}")
        check(self.n_shadow_pool >= 0, "n_shadow_pool", f"must be >= 0, got {self.n_shadow_pool}")
        check(self.n_validation >= 0, "n_validation", f"must be >= 0, got {self.n_validation}")
        check(self.canaries >= 0 and self.canaries % 2 == 0, "canaries",
              f"must be even and >= 0 (half of them are members), got {self.canaries}")
        check_choice(self.canary_kind, CANARY_KINDS, "canary_kind")


@dataclass(frozen=True)
class ModelConfig(Section):
    """Architecture, by registry name or `torchvision.<arch>`; `widths` and
    `activation` shape the `mlp`."""

    section = "model"

    name: str = "mlp"
    widths: tuple[int, ...] = (256, 256)
    activation: str = "relu"

    def __post_init__(self):
        check_types(self)
        registry.MODELS.check(self.name, "name")
        check(all(w >= 1 for w in self.widths), "widths", f"must be positive, got {self.widths}")
        registry.ACTIVATIONS.check(self.activation, "activation")


OPTIMIZERS = ("sgd", "adam")
#: how a job trains its models: together as one stacked model where they can
#: (raymia.train.stacked), else (or with "sequential") one after another
ENGINES = ("stacked", "sequential")
SCHEDULES = ("constant", "cosine", "step")


@dataclass(frozen=True)
class TrainConfig(Section):
    """The one training loop's knobs (raymia.train.loop). `engine`: a job's
    models of one architecture and training-set size train `stacked` as one
    model where the architecture and the defense allow (raymia.train.stacked),
    else one after another (`sequential`, the only choice for a job of one model)."""

    section = "train"

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    epochs: int = 100
    batch_size: int = 32
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    schedule: str = "constant"
    device: str = "auto"
    engine: str = "stacked"

    def __post_init__(self):
        check_types(self)
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        check_choice(self.engine, ENGINES, "engine")
        check_choice(self.schedule, SCHEDULES, "schedule")
        check(self.lr > 0 and math.isfinite(self.lr), "lr", f"must be > 0, got {self.lr}")
        check(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        check(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        check(0 <= self.label_smoothing < 1, "label_smoothing",
              f"must be in [0, 1), got {self.label_smoothing}")
        check(re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device) is not None, "device",
              f"must be auto, cpu or cuda[:N], got {self.device!r}")


@dataclass(frozen=True)
class ShadowConfig(Section):
    """The attacker's shadow models. `train`: `like_target` trains them with the
    target's defense (the attacker knows the training recipe), `undefended`
    without it. `models_per_job` shadow models share one training job."""

    section = "shadows"

    n_models: int = 8
    train: str = "like_target"
    models_per_job: int = 4

    def __post_init__(self):
        check_types(self)
        check(self.n_models >= 2 and self.n_models % 2 == 0, "n_models",
              f"must be even and >= 2 (each example is IN for half of them), got {self.n_models}")
        check_choice(self.train, ("like_target", "undefended"), "train")
        check(self.models_per_job >= 1, "models_per_job", f"must be >= 1, got {self.models_per_job}")


def _default_attacks() -> tuple[str, ...]:
    """The attacks registered as defaults (the metric attacks)."""
    return tuple(name for name, spec in registry.ATTACKS.items() if spec.default)


@dataclass(frozen=True)
class ReferenceConfig(Section):
    """Settings of the attacks built on shadow models: LiRA and RMIA use
    `n_models` of them (None: all) as references, RMIA with `rmia_gamma`; the
    learned attacks (shokri, nn, top3) train a scikit-learn `attack_model`
    (`mlp`, `logistic` or `gboost`) on their outputs."""

    section = "reference"

    n_models: int | None = None
    rmia_gamma: float = 1.0
    attack_model: str = "mlp"

    def __post_init__(self):
        check_types(self)
        registry.ATTACK_MODELS.check(self.attack_model, "attack_model")
        check(self.n_models is None or self.n_models >= 1, "n_models",
              f"must be >= 1, got {self.n_models}")
        check(self.rmia_gamma > 0, "rmia_gamma", f"must be > 0, got {self.rmia_gamma}")


@dataclass(frozen=True)
class QueryConfig(Section):
    """Queries beyond each model's plain outputs on the audit set.

    augmentations: image augmentations (raymia.augment) after the identity, for
        LiRA's augmented variants and the label-only `augmentation` attack;
        `shift` is the translation in pixels.
    flips, n_noise: the `noise` attack's grid of flipped features (chosen on
        shadow data) and noisy copies per example (binary tabular data).
    boundary_queries: label queries per example of the `boundary` attack;
        boundary_models: shadow models whose distances fit its threshold;
        boundary_chunk: examples per query job (they fan out on Ray).
    eval_sets: out-of-distribution non-member sets (raymia.data.ood) every
        attack is also evaluated with (`eval_set` column)."""

    section = "queries"

    augmentations: tuple[str, ...] = ("hflip", "shift")
    shift: int = 1
    flips: tuple[int, ...] = (1, 2, 4, 8, 16)
    n_noise: int = 20
    boundary_queries: int = 1000
    boundary_models: int = 2
    boundary_chunk: int = 100
    eval_sets: tuple[str, ...] = ()

    def __post_init__(self):
        check_types(self)
        for i, name in enumerate(self.augmentations):
            registry.AUGMENTATIONS.check(name, f"augmentations[{i}]")
        check(self.shift >= 1, "shift", f"must be >= 1, got {self.shift}")
        check(len(self.flips) > 0 and min(self.flips) >= 1, "flips",
              f"must be counts >= 1, got {self.flips}")
        check(self.n_noise >= 1, "n_noise", f"must be >= 1, got {self.n_noise}")
        check(self.boundary_queries >= 10, "boundary_queries",
              f"must be >= 10, got {self.boundary_queries}")
        check(self.boundary_models >= 1, "boundary_models",
              f"must be >= 1, got {self.boundary_models}")
        check(self.boundary_chunk >= 1, "boundary_chunk",
              f"must be >= 1, got {self.boundary_chunk}")
        for i, name in enumerate(self.eval_sets):
            registry.OOD_SETS.check(name, f"eval_sets[{i}]")
        check(len(set(self.eval_sets)) == len(self.eval_sets), "eval_sets",
              f"names a set twice: {self.eval_sets}")


@dataclass(frozen=True)
class EvaluationConfig(Section):
    """How the attacks' figures are judged (raymia.intervals, raymia.choice).

    n_resamples: bootstrap resamples behind each figure's interval, and label
        permutations behind the null band; confidence: their level.
    choice_rounds: shadow models that in turn play the target (the others its
        shadow models) when the attacker picks its attack without the
        target's membership labels: the first min(choice_rounds, n_models)."""

    section = "evaluation"

    n_resamples: int = 1000
    confidence: float = 0.95
    choice_rounds: int = 8

    def __post_init__(self):
        check_types(self)
        check(self.n_resamples >= 100, "n_resamples", f"must be >= 100, got {self.n_resamples}")
        check(0.5 <= self.confidence < 1, "confidence",
              f"must be in [0.5, 1), got {self.confidence}")
        check(self.choice_rounds >= 1, "choice_rounds",
              f"must be >= 1, got {self.choice_rounds}")


@dataclass(frozen=True)
class Target(Section):
    """A model trained elsewhere, audited as it is (raymia.target): `weights`, its
    state_dict (a `torch.save(model.state_dict())` file, read with
    `weights_only=True`, or `.safetensors`) for the experiment's `model` on its
    `data`; `members`, the sample ids it trained on (a `.npy` of ids or a
    boolean mask over the dataset, or a text file of ids, one per line or
    comma-separated); `nonmembers` (optional), ids known to be outside its
    training set, to draw the audit's non-members from (default: every other
    example). The reference models train with the experiment's `train` and
    `defense` (its recipe) on as many examples as the target's members. Paths
    are made absolute and read where trials run (a shared filesystem on a
    cluster). `digest`, filled in from the files when the config is made, is
    their sha256: a model saved again under the same name is another trial,
    and a file changed after the sweep started fails its trial. Unset
    `weights`: raymia trains the target itself."""

    section = "target"

    weights: str | None = None
    members: str | None = None
    nonmembers: str | None = None
    digest: str | None = None

    def __post_init__(self):
        check_types(self)
        for name in ("weights", "members", "nonmembers"):
            path = getattr(self, name)
            if path is not None:
                object.__setattr__(self, name, os.path.abspath(os.path.expanduser(path)))
        if self.digest is None and self.weights is not None:
            object.__setattr__(self, "digest", self.files_digest())
        check(self.weights is None or self.members is not None, "members",
              "needs the sample ids the model trained on (a .npy of ids or a boolean mask, "
              "or a text file of ids)")
        check(self.weights is not None or (self.members is None and self.nonmembers is None),
              "weights", "members are given without the model's weights")

    @property
    def given(self) -> bool:
        return self.weights is not None

    def files_digest(self) -> str | None:
        """sha256 over the files' bytes (None while one of them is missing)."""
        h = hashlib.sha256()
        for path in (self.weights, self.members, self.nonmembers):
            if path is None:
                h.update(b"-")
                continue
            try:
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
            except OSError:
                return None
        return h.hexdigest()[:16]


#: Experiment fields added after the first release (see Experiment.trial_id)
LATER_SECTIONS = ("output", "queries", "evaluation", "target")
#: fields added to a first-release section later: counted only where not at their default
LATER_FIELDS = {"split": ("canaries", "canary_kind"), "data": ("path", "label_column"),
                "train": ("engine",)}


def _default_defense():
    return registry.DEFENSES["none"]()


def _default_output():
    return registry.OUTPUTS["none"]()


@dataclass(frozen=True)
class Experiment:
    """One trial: everything that determines its results (and so its trial_id)."""

    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    defense: Any = field(default_factory=_default_defense)
    output: Any = field(default_factory=_default_output)
    shadows: ShadowConfig = field(default_factory=ShadowConfig)
    attacks: tuple[str, ...] = field(default_factory=_default_attacks)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    queries: QueryConfig = field(default_factory=QueryConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    target: Target = field(default_factory=Target)

    def __post_init__(self):
        check(0 <= self.seed < 2**32, "seed", f"must be in [0, 2**32), got {self.seed}")
        if self.target.given:
            check(self.split.canaries == 0, "split.canaries",
                  "a model trained elsewhere holds no canaries; set canaries to 0")
        check(type(self.defense) in registry.DEFENSES.values(), "defense",
              f"must be a defense config, got {self.defense!r}")
        check(type(self.output) in registry.OUTPUTS.values(), "output",
              f"must be an output defense config, got {self.output!r}")
        check(isinstance(self.attacks, (tuple, list)), "attacks",
              f"must be a list of attack names, e.g. ({self.attacks!r},), got {self.attacks!r}")
        check(len(self.attacks) > 0, "attacks", "must name at least one attack")
        for i, name in enumerate(self.attacks):
            registry.ATTACKS.check(name, f"attacks[{i}]")
        labels_only = sorted(n for n, spec in registry.ATTACKS.items() if spec.labels_only)
        for i, name in enumerate(self.attacks):
            check(not self.output.labels_only or registry.ATTACKS[name].labels_only,
                  f"attacks[{i}]", f"{name} needs scores, but output {self.output.name} "
                  f"releases labels only; label-only attacks: {', '.join(labels_only)}")
        n_ref = self.reference.n_models
        check(n_ref is None or n_ref <= self.shadows.n_models, "reference.n_models",
              f"asks for {n_ref} reference models but shadows.n_models trains "
              f"{self.shadows.n_models}")
        for name in self.attacks:  # what each attack declares it needs of the experiment
            registry.ATTACKS[name].requires(self)

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Experiment":
        return from_dict(cls, data)

    @property
    def trial_id(self) -> str:
        """Short content hash of the whole config: same config, same id. Sections
        added after schema_version 1 (`output`, `queries`, `evaluation`, `target`)
        count only when they differ from their defaults, so earlier trials keep their ids; so do the
        fields of LATER_FIELDS. A defense whose meaning changed (`revision` > 1)
        adds its revision."""
        tree = self.to_dict()
        for name in LATER_SECTIONS:
            if tree[name] == to_dict(Experiment.__dataclass_fields__[name].default_factory()):
                del tree[name]
        for name, later in LATER_FIELDS.items():
            default = to_dict(Experiment.__dataclass_fields__[name].default_factory())
            for key in later:
                if tree[name][key] == default[key]:
                    del tree[name][key]
        revision = getattr(type(self.defense), "revision", 1)
        if revision > 1:
            tree["defense"]["revision"] = revision
        blob = json.dumps(tree, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


# --- plain data <-> dataclasses -------------------------------------------------

def to_dict(obj) -> Any:
    """Dataclasses to nested dicts (defenses carry their registry `name`)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        if hasattr(type(obj), "name") and "name" not in {f.name for f in dataclasses.fields(obj)}:
            out["name"] = type(obj).name
        for f in dataclasses.fields(obj):
            out[f.name] = to_dict(getattr(obj, f.name))
        return out
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    return obj


def from_dict(cls, data: Any, path: str = ""):
    """Build dataclass `cls` from plain data, checking every field's name and type."""
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = to_dict(data)
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a mapping of fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key == "name" and "name" not in fields and hasattr(cls, "name"):
            continue  # registry tag of a defense config
        if key not in fields:
            raise ConfigError(where, _unknown_field(cls, key, fields))
        kwargs[key] = _coerce(value, hints[key], where)
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise (e.under(path) if path and getattr(cls, "section", "") != path else e) from None


def _unknown_field(cls, key: str, fields) -> str:
    """The message for a field `cls` lacks; for a registry entry (a defense), which
    entries have it."""
    valid = f"valid: {', '.join(sorted(fields))}" if fields else f"{cls.name} has no fields"
    for section, (reg, _) in CLASS_REGISTRIES.items():
        if cls in reg.values():
            owners = sorted(n for n, c in reg.items()
                            if key in {f.name for f in dataclasses.fields(c)})
            if owners:
                return (f"unknown field of {cls.name}; {valid}; {key} belongs to "
                        f"{', '.join(owners)}: set {section} to one of them")
    return f"unknown field; {valid}"


#: Experiment fields whose value is a config class from a registry (the name picks it)
CLASS_REGISTRIES = {"defense": (registry.DEFENSES, "a defense"),
                    "output": (registry.OUTPUTS, "an output defense")}


def registered_config(value, field_name: str, where: str):
    """The config of a `defense`/`output` field from an instance, a mapping with
    `name`, or a bare name."""
    reg, what = CLASS_REGISTRIES[field_name]
    if isinstance(value, tuple(reg.values())):
        return value
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or "name" not in value:
        raise ConfigError(where, f"expected {what} config with a 'name', got {value!r}")
    reg.check(value["name"], f"{where}.name")
    return from_dict(reg[value["name"]], value, where)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:  # the defense or output defense: resolved through its registry
        return registered_config(value, where.rsplit(".", 1)[-1], where)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)), where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(where, f"expected a list, got {value!r}")
        (item,) = typing.get_args(tp)[:1]
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and hasattr(value, "__index__") and not isinstance(value, bool):
        return int(value)
    if tp in (str, bool) and isinstance(value, tp):
        return value
    raise ConfigError(where, f"expected {getattr(tp, '__name__', tp)}, got {value!r}")


def set_path(tree: dict, dotted: str, value: Any) -> None:
    """Set `tree[a][b][c] = value` for dotted path 'a.b.c', creating no new levels
    but the last (a wrong middle name is reported by `from_dict`). A mapping
    given for a section updates that section's fields (`{"train": {"lr": 0.01}}`
    keeps the base's other training fields) unless it names another registry
    entry (`{"defense": {"name": "l2"}}` replaces the defense)."""
    *parents, leaf = dotted.split(".")
    node = tree
    for i, key in enumerate(parents):
        child = node.get(key)
        if not isinstance(child, dict):
            raise ConfigError(".".join(parents[: i + 1]), "is not a config section")
        node = child
    new, old = to_dict(value), node.get(leaf)
    if isinstance(new, dict) and isinstance(old, dict) and new.get("name") == old.get("name"):
        new = {**old, **new}
    node[leaf] = new


def flatten(tree: dict, prefix: str = "") -> dict:
    """Nested dict to {dotted path: leaf}."""
    out = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


@dataclass(frozen=True)
class Resources(Section):
    """What each trial reserves (its placement group): a bundle of `trial_cpus`
    for the trial itself (it runs the attacks) plus `parallel_jobs` bundles of
    `cpus_per_job` CPUs and `gpus_per_job` GPUs (fractions share a GPU), one
    per training job running at once."""

    section = "sweep.resources"

    cpus_per_job: float = 1.0
    gpus_per_job: float = 0.0
    parallel_jobs: int = 1
    trial_cpus: float = 0.0

    def __post_init__(self):
        check_types(self)
        check(self.cpus_per_job > 0, "cpus_per_job", f"must be > 0, got {self.cpus_per_job}")
        check(self.gpus_per_job >= 0, "gpus_per_job", f"must be >= 0, got {self.gpus_per_job}")
        check(self.gpus_per_job <= 1 or float(self.gpus_per_job).is_integer(), "gpus_per_job",
              f"must be a fraction <= 1 or a whole number, got {self.gpus_per_job}")
        check(self.parallel_jobs >= 1, "parallel_jobs", f"must be >= 1, got {self.parallel_jobs}")
        check(self.trial_cpus >= 0, "trial_cpus", f"must be >= 0, got {self.trial_cpus}")


@dataclass(frozen=True)
class Sweep:
    """A sweep file's `sweep`: a base experiment, a space over dotted config
    paths (plain values or Ray Tune search-space primitives such as
    `tune.grid_search([...])`), and the seeds every configuration runs with.
    `num_samples` draws that many configurations from random domains. A list
    of such dicts is the union of their spaces (e.g. output defenses on one
    grid, DP-SGD without them on another)."""

    name: str
    base: Experiment = field(default_factory=Experiment)
    space: dict | list = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    num_samples: int = 1
    resources: Resources = field(default_factory=Resources)
    max_concurrent: int | None = None
    write_signals: bool = True
    cache_models: bool = True  # reuse trained models from <results>/models (raymia.train.cache)

    @property
    def spaces(self) -> list[dict]:
        """The space as a list of dicts (their union)."""
        return self.space if isinstance(self.space, list) else [self.space]

    def __post_init__(self):
        check(isinstance(self.name, str) and self.name.replace("_", "").replace("-", "").isalnum(),
              "sweep.name", f"must be letters, digits, '-' or '_', got {self.name!r}")
        check(isinstance(self.base, Experiment), "sweep.base", "must be a raymia.Experiment")
        check(isinstance(self.space, (dict, list)) and len(self.spaces) > 0
              and all(isinstance(space, dict) and all(isinstance(k, str) for k in space)
                      for space in self.spaces),
              "sweep.space", "must be a dict keyed by dotted config paths, or a non-empty "
                             "list of such dicts")
        check(all("seed" not in space for space in self.spaces), "sweep.space.seed",
              "give seeds with Sweep(seeds=...)")
        check(len(self.seeds) > 0, "sweep.seeds", "must hold at least one seed")
        check(len(set(self.seeds)) == len(self.seeds), "sweep.seeds",
              f"names a seed twice: {self.seeds}")
        check(self.num_samples >= 1, "sweep.num_samples", f"must be >= 1, got {self.num_samples}")
        check(isinstance(self.resources, Resources), "sweep.resources", "must be a raymia.Resources")
        check(self.max_concurrent is None or self.max_concurrent >= 1, "sweep.max_concurrent",
              f"must be >= 1, got {self.max_concurrent}")
