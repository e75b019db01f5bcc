"""Out-of-distribution (OOD) non-member sets: inputs the target never saw that
come from *another* distribution than its training data.

Why: score-based attacks (threshold on the top prediction score, entropy,
loss, ...) are usually evaluated on non-members from the training
distribution. Hintersdorf, Struppek & Kersting, "To Trust or Not To Trust
Prediction Scores for Membership Inference Attacks" (IJCAI 2022,
arXiv:2111.09076; code github.com/ml-research/To-Trust-or-Not-To-Trust-
Prediction-Scores-for-Membership-Inference-Attacks) swap the non-member half
of the attack set for OOD inputs and show that overconfident networks give
them high scores, so the false-positive rate explodes; they report precision,
recall, FPR (and AUROC, AUPR, FPR at 95% TPR) and the mean max prediction score
(MMPS) of the TP/FP/FN/TN outcomes. Their CIFAR-10 non-member variants: the
original test images, permuted pixels, images scaled by 255, images without
normalization, and other datasets (STL-10, CIFAR-100, SVHN, Stanford Dogs,
StyleGAN2 "Fake CIFAR-10", AFHQ cats/dogs). Rezaei & Liu ("On the Difficulty
of Membership Inference Attacks", CVPR 2021) made the earlier point that
attacks must report their false alarm rate (FPR) on non-members; their
abstract lists MNIST, CIFAR-10/100 and ImageNet, not OOD sets. Each set here
yields one `eval_set` value of the `attacks`/`scores` tables; "original" is
the in-distribution audit set itself and is not in this registry.

Sets (`OOD_SETS`), each built for the in-distribution non-member `rows`:

- "permuted": every example's pixels shuffled by its own random permutation
  of the H*W pixel positions; the channels of a pixel move together (a pixel
  keeps its colour). As in the paper's code, where each image draws a fresh
  `randperm` over positions. Tabular rows: a per-example shuffle of features.
  Each example's multiset of values is unchanged; no permutation is the
  identity. Needs at least 2 positions.
- "permuted_fixed": the same, but ONE seeded permutation shared by all
  examples (a fixed re-wiring of the input; what a model sees is still a
  consistent, if scrambled, layout).
- "scaled": x * SCALE with SCALE = 255, not clipped, as in the paper (which
  scaled its normalized images by 255). raymia's images lie in [0, 1], so this
  is the classic "forgot to divide by 255" input, far outside the training
  range on purpose.
- "natural": another dataset, cut from the two colour photos bundled with
  scikit-learn (`load_sample_images`, 427x640 RGB, no download): per example
  a random photo and a random (k*H, k*W) crop with integer 1 <= k <= 16,
  box-averaged by k to (H, W) (through summed-area tables, so fast). RGB for
  3 channels; luminance (ITU-R 601 weights) replicated over the channels
  otherwise (1 for digits). Intensities 0..255 are mapped
  linearly onto the dataset's value range [min(x), max(x)] (0..1 for the
  embedded digits, whose loader divides the raw 0..16 by 16). Images only,
  at most the photos' size.
- "noise": i.i.d. uniform noise in [min(x), max(x)] (images and tabular).

Labels: the paper's attacks are label-free (top score, top-3 scores, entropy)
and its code labels transformed sets 0 and keeps other datasets' own labels.
Attacks here may use the true label (loss, LiRA, ...), so a transformed set
("permuted", "permuted_fixed", "scaled") keeps each original example's label,
and a set not derived from the rows ("natural", "noise") draws labels
uniformly from the target's classes with the seed.

Every draw derives from (seed, "ood/<name>/<part>") through raymia.seeding:
same inputs, same arrays. Output: x float32 (n, *input_shape), finite;
y int64 (n,) in [0, n_classes).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable

import numpy as np

from raymia import registry
from raymia.errors import ConfigError
from raymia.data.dataset import Dataset
from raymia.seeding import rng

SCALE = 255.0  # "scaled": the paper's factor (utils/dataset_utils.py: img * 255)
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 RGB -> gray
MAX_BOX = 16  # "natural": largest box-average factor k (crop side k*H)
CHUNK = 1024  # "natural": examples assembled at a time


# --- layout helpers ---------------------------------------------------------------

def _positions(kind: str, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(channels, positions) that "permuted" shuffles: images (C, H*W), tabular (1, d)."""
    if kind == "image" and len(input_shape) == 3:
        return input_shape[0], input_shape[1] * input_shape[2]
    return 1, int(np.prod(input_shape))


def _value_range(data: Dataset) -> tuple[float, float]:
    return float(data.x.min()), float(data.x.max())


def _gen(seed: int, name: str, part: str) -> np.random.Generator:
    return rng(seed, f"ood/{name}/{part}")


def _uniform_labels(data: Dataset, n: int, seed: int, name: str) -> np.ndarray:
    return _gen(seed, name, "labels").integers(0, data.n_classes, size=n).astype(np.int64)


# --- builders: (data, rows, seed) -> (x, y) ---------------------------------------

def _gather_positions(data: Dataset, rows: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """Apply perms ((n, P) or (1, P)) to the positions of data.x[rows]."""
    c, p = _positions(data.kind, data.input_shape)
    flat = data.x[rows].reshape(len(rows), c, p)
    idx = np.broadcast_to(perms[:, None, :], (len(rows), c, p))
    return np.take_along_axis(flat, idx, axis=2).reshape(len(rows), *data.input_shape)


def _no_identity(perms: np.ndarray) -> np.ndarray:
    """Replace any identity permutation (a row equal to arange) by a cyclic shift."""
    p = perms.shape[1]
    ident = np.arange(p)
    perms[(perms == ident).all(axis=1)] = np.roll(ident, 1)
    return perms


def _permuted(data: Dataset, rows: np.ndarray, seed: int, name: str):
    _, p = _positions(data.kind, data.input_shape)
    gen = _gen(seed, name, "perm")
    perms = _no_identity(gen.permuted(np.tile(np.arange(p), (len(rows), 1)), axis=1))
    return _gather_positions(data, rows, perms), data.y[rows]


def _permuted_fixed(data: Dataset, rows: np.ndarray, seed: int, name: str):
    _, p = _positions(data.kind, data.input_shape)
    perm = _no_identity(_gen(seed, name, "perm").permutation(p)[None, :])
    return _gather_positions(data, rows, perm), data.y[rows]


def _scaled(data: Dataset, rows: np.ndarray, seed: int, name: str):
    return data.x[rows] * np.float32(SCALE), data.y[rows]


def _noise(data: Dataset, rows: np.ndarray, seed: int, name: str):
    lo, hi = _value_range(data)
    x = _gen(seed, name, "x").uniform(lo, hi, size=(len(rows), *data.input_shape))
    return x, _uniform_labels(data, len(rows), seed, name)


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    """scikit-learn's bundled sample photos as summed-area tables: for photo (h, w, 3)
    in 0..255, S (h+1, w+1, 3) float64 with S[r, c] = photo[:r, :c].sum((0, 1)); read-only."""
    from sklearn.datasets import load_sample_images

    out = []
    for img in load_sample_images().images:
        sat = np.zeros((img.shape[0] + 1, img.shape[1] + 1, 3))
        sat[1:, 1:] = np.asarray(img, dtype=np.float64).cumsum(0).cumsum(1)
        sat.setflags(write=False)
        out.append(sat)
    return tuple(out)


def _photo_size() -> tuple[int, int]:
    sats = _photos()
    return min(s.shape[0] - 1 for s in sats), min(s.shape[1] - 1 for s in sats)


def _box_means(sats, photo, k, top, left, c, h, w, lo, hi) -> np.ndarray:
    """(m, c, h, w): block means of the (k*h, k*w) crops at (top, left), mapped to [lo, hi]."""
    m = len(photo)
    r0 = top[:, None] + k[:, None] * np.arange(h)  # (m, h) first photo row of each block
    c0 = left[:, None] + k[:, None] * np.arange(w)  # (m, w)
    r1, c1 = r0 + k[:, None], c0 + k[:, None]
    rgb = np.empty((m, h, w, 3))
    for p, sat in enumerate(sats):
        sel = photo == p
        a, b = r0[sel][:, :, None], r1[sel][:, :, None]
        e, f = c0[sel][:, None, :], c1[sel][:, None, :]
        rgb[sel] = sat[b, f] - sat[a, f] - sat[b, e] + sat[a, e]  # block sums
    rgb /= (k * k)[:, None, None, None]  # block means, 0..255
    chans = rgb.transpose(0, 3, 1, 2) if c == 3 else np.broadcast_to((rgb @ LUMA)[:, None], (m, c, h, w))
    return lo + np.clip(chans, 0.0, 255.0) / 255.0 * (hi - lo)


def _natural(data: Dataset, rows: np.ndarray, seed: int, name: str):
    c, h, w = data.input_shape
    sats = _photos()
    lo, hi = _value_range(data)
    n = len(rows)
    gen = _gen(seed, name, "x")
    ph = np.array([s.shape[0] - 1 for s in sats])
    pw = np.array([s.shape[1] - 1 for s in sats])
    photo = gen.integers(0, len(sats), size=n)
    k_max = np.clip(np.minimum(ph[photo] // h, pw[photo] // w), 1, MAX_BOX)
    k = gen.integers(1, k_max + 1)  # box-average factor: the crop is (k*h, k*w)
    top = gen.integers(0, ph[photo] - k * h + 1)
    left = gen.integers(0, pw[photo] - k * w + 1)
    x = np.empty((n, c, h, w), dtype=np.float32)
    for start in range(0, n, CHUNK):  # bounded memory; the draws above fix the result
        part = slice(start, start + CHUNK)
        x[part] = _box_means(sats, photo[part], k[part], top[part], left[part], c, h, w, lo, hi)
    return x, _uniform_labels(data, n, seed, name)


# --- availability: (kind, input_shape) -> None, or why the set cannot be built ----

def _needs_two_positions(kind: str, input_shape: tuple[int, ...]) -> str | None:
    _, p = _positions(kind, input_shape)
    return None if p >= 2 else f"needs at least 2 pixels or features to permute, input shape is {input_shape}"


def _always(kind: str, input_shape: tuple[int, ...]) -> str | None:
    return None


def _needs_photo_sized_image(kind: str, input_shape: tuple[int, ...]) -> str | None:
    if kind != "image" or len(input_shape) != 3:
        return f"needs images of shape (C, H, W), this data is {kind} with input shape {input_shape}"
    ph, pw = _photo_size()
    if input_shape[1] > ph or input_shape[2] > pw:
        return f"cuts patches from {ph}x{pw} photos, images of {input_shape[1]}x{input_shape[2]} are larger"
    return None


@dataclass(frozen=True)
class OODSet:
    """One registry entry: `build(data, rows, seed, name) -> (x, y)`; `unavailable(kind,
    input_shape)` returns None when the set can be built, else the reason."""

    build: Callable[[Dataset, np.ndarray, int, str], tuple[np.ndarray, np.ndarray]]
    unavailable: Callable[[str, tuple[int, ...]], str | None]
    labels: str  # "original" (the row's label) or "uniform" (seeded draw over the classes)
    summary: str


OOD_SETS: dict[str, OODSet] = registry.OOD_SETS
for _name, _set in {
    "permuted": OODSet(_permuted, _needs_two_positions, "original",
                       "per-example random permutation of pixel positions (channels move together)"),
    "permuted_fixed": OODSet(_permuted_fixed, _needs_two_positions, "original",
                             "one seeded permutation of pixel positions shared by all examples"),
    "scaled": OODSet(_scaled, _always, "original", f"x * {SCALE:g}, not clipped"),
    "natural": OODSet(_natural, _needs_photo_sized_image, "uniform",
                      "patches of scikit-learn's sample photos in the data's value range"),
    "noise": OODSet(_noise, _always, "uniform", "uniform noise in the data's value range"),
}.items():
    OOD_SETS.register(_name, _set)


def check_ood_sets(names: Iterable[str], data_kind: str, input_shape: tuple[int, ...],
                   where: str) -> None:
    """Raise ConfigError(where, ...) for an unknown, repeated or (for this data) unavailable set."""
    seen = set()
    for name in names:
        if not isinstance(name, str) or name not in OOD_SETS:
            raise ConfigError(where, f"unknown OOD set {name!r}; valid: {', '.join(sorted(OOD_SETS))}")
        if name in seen:
            raise ConfigError(where, f"OOD set {name!r} is listed twice")
        seen.add(name)
        reason = OOD_SETS[name].unavailable(data_kind, tuple(input_shape))
        if reason is not None:
            raise ConfigError(where, f"OOD set {name!r} is unavailable for this data: {reason}")


def make_ood(name: str, data: Dataset, rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`len(rows)` OOD non-members built from (or matched in number to) `data`'s rows.

    Returns x float32 (n, *data.input_shape) and y int64 (n,); see the module
    docstring for each set and its labels. Deterministic in (name, data, rows, seed)."""
    check_ood_sets([name], data.kind, data.input_shape, "ood_set")
    rows = np.asarray(rows)
    if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
        raise ValueError(f"rows must be a 1-D array of sample ids, got shape {rows.shape} {rows.dtype}")
    rows = rows.astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= len(data)):
        raise ValueError(f"rows must lie in [0, {len(data)}), got [{rows.min()}, {rows.max()}]")
    x, y = OOD_SETS[name].build(data, rows, seed, name)
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.int64)
    assert x.shape == (len(rows), *data.input_shape) and y.shape == (len(rows),)
    if not np.isfinite(x).all():  # e.g. "scaled" on features near the float32 limit
        raise ValueError(f"OOD set {name!r} produced non-finite values for {data.name}")
    return x, y


__all__ = ["OOD_SETS", "OODSet", "SCALE", "check_ood_sets", "make_ood"]
