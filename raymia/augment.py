"""Query augmentations for label-only attacks (Choquette-Choo et al. 2021).

The label-only augmentation attack asks the model to classify perturbed copies
of each audit example and scores it by the fraction still classified
correctly. This module builds those copies, in torch (jobs query torch models
on their device); numpy input is accepted and converted with `torch.as_tensor`.

Augmentations, by registry name (`AUGMENTATIONS`):
  identity  any data       1 copy, the input itself
  hflip     images         1 copy, mirrored left-right (last axis)
  shift     images         4d copies: every translation (i, j) with |i| + |j| = d
                           (i rows down, j columns right), zero padding
  flip      binary tabular `n_noise` copies, each with exactly `flips` distinct,
                           randomly chosen features flipped (0 <-> 1), seeded
Images are (n, C, H, W); tabular data is (n, d). `queries` stacks the copies
of the requested names in order: (n_aug, n, ...). Memory is n_aug times the
input: callers may chunk over examples; an example's `flip` noise depends on
the seed and its key (its sample id, say) only, so chunks, subsets and the
order of the rows change nothing.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from raymia import registry
from raymia.errors import ConfigError, check, check_choice
from raymia.seeding import derive_seed


@dataclass(frozen=True)
class QueryParams:
    """shift: the translation magnitude d; flips: features flipped per noisy
    copy (k); n_noise: noisy copies; seed, keys: seed the `flip` noise of each
    example (keys (n,) ints, default the row positions)."""

    shift: int = 1
    flips: int = 1
    n_noise: int = 10
    seed: int = 0
    keys: object = None


@dataclass(frozen=True)
class Augmentation:
    """apply: (x (n, ...), params) -> (count(params), n, ...); data: the data it
    needs ("any", "image" or "binary")."""

    apply: Callable[[torch.Tensor, QueryParams], torch.Tensor]
    count: Callable[[QueryParams], int]
    data: str


def shift_offsets(d: int) -> list[tuple[int, int]]:
    """The 4d translations (i, j) with |i| + |j| = d, in a fixed order."""
    out = []
    for i in range(-d, d + 1):
        r = d - abs(i)
        out.extend([(i, -r), (i, r)] if r else [(i, 0)])
    return out


def translate(x: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """(..., H, W) moved i rows down and j columns right; vacated pixels are 0."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    if abs(i) < h and abs(j) < w:
        out[..., max(i, 0):h + min(i, 0), max(j, 0):w + min(j, 0)] = \
            x[..., max(-i, 0):h - max(i, 0), max(-j, 0):w - max(j, 0)]
    return out


def _shift(x: torch.Tensor, p: QueryParams) -> torch.Tensor:
    return torch.stack([translate(x, i, j) for i, j in shift_offsets(p.shift)])


def flip_features(x: torch.Tensor, flips: int, n_noise: int, seed: int,
                  keys=None) -> torch.Tensor:
    """(n, d) binary -> (n_noise, n, d): each copy has exactly `flips` distinct
    features flipped, chosen uniformly at random; example i's choices come from
    a torch generator seeded by (seed, keys[i]) alone (keys default: 0..n-1)."""
    n, d = x.shape
    keys = range(n) if keys is None else [int(k) for k in keys]
    if len(keys) != n:
        raise ValueError(f"keys must give one key per example ({n}), got {len(keys)}")
    gen = torch.Generator(device=x.device)
    draws = torch.empty((n_noise, n, d), device=x.device)
    for i, key in enumerate(keys):
        gen.manual_seed(derive_seed(seed, "flip", key))
        draws[:, i] = torch.rand((n_noise, d), generator=gen, device=x.device)
    chosen = torch.zeros(draws.shape, dtype=torch.bool, device=x.device)
    chosen.scatter_(-1, draws.topk(flips, dim=-1).indices, True)
    return torch.where(chosen, 1 - x, x)


AUGMENTATIONS: dict[str, Augmentation] = registry.AUGMENTATIONS
for _name, _aug in {
    "identity": Augmentation(lambda x, p: x[None], lambda p: 1, "any"),
    "hflip": Augmentation(lambda x, p: x.flip(-1)[None], lambda p: 1, "image"),
    "shift": Augmentation(_shift, lambda p: 4 * p.shift, "image"),
    "flip": Augmentation(lambda x, p: flip_features(x, p.flips, p.n_noise, p.seed, p.keys),
                         lambda p: p.n_noise, "binary"),
}.items():
    AUGMENTATIONS.register(_name, _aug)
#: the per-example input rank each kind of data needs
_RANK = {"image": 3, "binary": 1}


def n_queries(names: Sequence[str], **params) -> int:
    """How many copies `queries(x, names, **params)` returns (n_aug)."""
    p = QueryParams(**params)
    for name in names:
        check_choice(name, AUGMENTATIONS, "augmentations")
    return sum(AUGMENTATIONS[name].count(p) for name in names)


def queries(x, names: Sequence[str], *, shift: int = 1, flips: int = 1, n_noise: int = 10,
            seed: int = 0, keys=None) -> torch.Tensor:
    """Augmented copies of x (n, ...) stacked as (n_aug, n, ...), the names' copies
    in order (see the module docstring); deterministic given the arguments."""
    x = torch.as_tensor(x)
    p = QueryParams(shift, flips, n_noise, seed, keys)
    check_augmentations(names, tuple(x.shape[1:]), "augmentations", shift=shift, flips=flips,
                        n_noise=n_noise)
    return torch.cat([AUGMENTATIONS[name].apply(x, p) for name in names])


def check_augmentations(names: Sequence[str], input_shape: tuple[int, ...], where: str, *,
                        shift: int = 1, flips: int = 1, n_noise: int = 1) -> None:
    """ConfigError at `where` for an unknown name, an image augmentation on
    inputs whose per-example shape is not (C, H, W), `flip` on inputs that are
    not (d,) vectors, or parameters out of range for `input_shape`. Whether the
    data is binary needs the data: see `check_binary`."""
    check(len(names) > 0, where, "needs at least one augmentation")
    for name in names:
        check_choice(name, AUGMENTATIONS, where)
        data = AUGMENTATIONS[name].data
        check(data == "any" or len(input_shape) == _RANK[data], where,
              f"{name!r} needs {data} inputs of rank {_RANK.get(data)} per example, "
              f"got shape {tuple(input_shape)}")
    if "shift" in names:
        check(1 <= shift < min(input_shape[-2:]), where,
              f"shift must be in [1, {min(input_shape[-2:])}), got {shift}")
    if "flip" in names:
        check(1 <= flips <= input_shape[0], where,
              f"flips must be in [1, {input_shape[0]}], got {flips}")
        check(n_noise >= 1, where, f"n_noise must be >= 1, got {n_noise}")


def check_binary(x, where: str) -> None:
    """ConfigError at `where` unless every value of x (array or tensor) is 0 or 1."""
    x = torch.as_tensor(x)
    bad = x[(x != 0) & (x != 1)]
    if len(bad):
        raise ConfigError(where, f"'flip' needs binary features in {{0, 1}}, "
                                 f"found {bad[0].item()!r}")
