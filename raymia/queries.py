"""The extra queries a trial's models answer, decided by its attacks (what their
specs ask for, raymia.attacks.spec) and eval sets.

  "aug"             identity + `queries.augmentations` of every example asked
                    about (images; LiRA's augmented variants, the augmentation attack)
  "noise/<k>"       `queries.n_noise` copies with k features flipped (binary data;
                    the noise attack), one query set per k in `queries.flips`
  "ood/<set>"       the out-of-distribution set built from the audit non-members
  "ood/<set>/aug", "ood/<set>/noise/<k>"
                    the same queries of the OOD set (when asked for at all)

Every model of a trial answers the same inputs for an example (the shadow
models on the universe, the target on the audit set), built in the job from
sample ids by picklable functions, so no copies of the data travel. Noise and
out-of-distribution draws derive from the trial's seed (noise per sample id).
"""
from __future__ import annotations

from functools import partial

import numpy as np

from raymia.attacks.spec import asked_queries
from raymia.augment import check_augmentations, queries
from raymia.config import Experiment
from raymia.registry import ATTACKS
from raymia.data.ood import check_ood_sets, make_ood
from raymia.seeding import derive_seed
from raymia.train.job import QuerySet

AUG = "aug"  # the query kinds an attack may ask for (AttackSpec.queries)
NOISE = "noise"


def noise_name(k: int) -> str:
    return f"noise/{k}"


def ood_name(eval_set: str) -> str:
    return f"ood/{eval_set}"


def augmentations(exp: Experiment) -> tuple[str, ...]:
    return ("identity", *exp.queries.augmentations)


def wants_augmented(exp: Experiment, kind: str) -> bool:
    """Whether some attack asks for augmented queries (AttackSpec.queries)."""
    return AUG in asked_queries(exp, kind)


def ood_data(exp: Experiment, data, rows: np.ndarray, eval_set: str):
    """(x, y) of an out-of-distribution set built from sample ids `rows`."""
    return make_ood(eval_set, data, rows, ood_seed(exp, eval_set))


def ood_seed(exp: Experiment, eval_set: str) -> int:
    return derive_seed(exp.seed, f"ood/{eval_set}")


def _inputs(data, rows, names=(), eval_set=None, ood_seed=0, **params):
    """The examples `rows` (or the OOD set built from them), as one query
    (1, n, ...) or through the augmentations `names` (raymia.augment.queries;
    an example's random flips are keyed by its sample id, so every model sees
    the same noisy copies of it, whichever rows its job asks about)."""
    x = data.x[rows] if eval_set is None else make_ood(eval_set, data, rows, ood_seed)[0]
    return queries(x, names, keys=rows, **params) if names else x[None]


def _per_example(exp: Experiment, kind: str) -> list[tuple[str, tuple, dict]]:
    """(name, augmentations, parameters) of the queries asked of every audit example."""
    q, out = exp.queries, []
    if wants_augmented(exp, kind):
        out.append((AUG, augmentations(exp), {"shift": q.shift}))
    if NOISE in asked_queries(exp, kind):
        out += [(noise_name(k), ("flip",), {"flips": k, "n_noise": q.n_noise,
                                            "seed": derive_seed(exp.seed, "noise", k)})
                for k in q.flips]
    return out


def _ood(exp: Experiment, eval_set: str) -> dict:
    return {"eval_set": eval_set, "ood_seed": ood_seed(exp, eval_set)}


def ood_query_sets(exp: Experiment, nonmembers: np.ndarray) -> tuple[QuerySet, ...]:
    """The plain inputs of each OOD set, built from the audit non-members."""
    return tuple(QuerySet(ood_name(eval_set), nonmembers, partial(_inputs, **_ood(exp, eval_set)))
                 for eval_set in exp.queries.eval_sets)


def query_sets(exp: Experiment, kind: str, asked: np.ndarray,
               nonmembers: np.ndarray) -> tuple[QuerySet, ...]:
    """What a model of the trial answers beyond its logits: the per-example
    queries of the examples `asked` (a shadow model: the universe; the target:
    the audit set), and for each OOD set its plain inputs and the same
    per-example queries of them (the attacker's procedure unchanged, whatever
    it is handed; a flip maps a feature v to 1 - v)."""
    per_example = _per_example(exp, kind)
    return (*(QuerySet(name, asked, partial(_inputs, names=names, **params))
              for name, names, params in per_example),
            *ood_query_sets(exp, nonmembers),
            *(QuerySet(f"{ood_name(eval_set)}/{name}", nonmembers,
                       partial(_inputs, names=names, **_ood(exp, eval_set),
                               **_own_noise(params, eval_set)))
              for eval_set in exp.queries.eval_sets for name, names, params in per_example))


def _own_noise(params: dict, eval_set: str) -> dict:
    """An OOD set's noisy copies draw apart from those of the examples it was built from."""
    return {**params, "seed": derive_seed(params["seed"], f"ood/{eval_set}")} \
        if "seed" in params else params


def check_queries(exp: Experiment, data) -> None:
    """ConfigError, before any training, for queries this data cannot answer and
    for what the trial's attacks declare they need of the data."""
    q = exp.queries
    asked = asked_queries(exp, data.kind)
    if AUG in asked:
        check_augmentations(augmentations(exp), data.input_shape, "queries.augmentations",
                            shift=q.shift)
    for name in exp.attacks:
        ATTACKS[name].requires_data(exp, data)
    if NOISE in asked:
        check_augmentations(("flip",), data.input_shape, "queries.flips",
                            flips=max(q.flips), n_noise=q.n_noise)
    check_ood_sets(q.eval_sets, data.kind, data.input_shape, "queries.eval_sets")
