"""Every random draw derives from (root seed, role, index); nothing seeds globals.

`derive_seed(7, "shadow", 3)` is the same number on every machine and run, and
differs from `derive_seed(7, "shadow", 4)` and `derive_seed(7, "target", 3)`.
"""
from __future__ import annotations

import hashlib
import zlib

import numpy as np


def derive_seed(root: int, role: str, index: int = 0) -> int:
    """A 63-bit seed (fits `torch.manual_seed`) for one role and index."""
    seq = np.random.SeedSequence([int(root), zlib.crc32(role.encode()), int(index)])
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def rng(root: int, role: str, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(derive_seed(root, role, index))


def input_hashes(x, salt: int, person: bytes) -> np.ndarray:
    """(n,) uint64: a blake2b of each row's bytes keyed by `salt` and personalised
    by `person` (one per use), the row cast to contiguous float32 (what a model
    sees) with -0.0 -> 0.0 and one NaN, so values that are equal as numbers hash
    alike whatever their input dtype: a query's own key, the same every time it
    is asked, whoever answers it."""
    a = np.asarray(x)
    if a.ndim == 0:
        raise ValueError("queries must be an array of shape (n, ...)")
    width = int(np.prod(a.shape[1:]))  # 1 for (n,) queries
    rows = np.ascontiguousarray(a, dtype=np.float32).reshape(len(a), width) + np.float32(0)
    rows = np.where(np.isnan(rows), np.float32("nan"), rows)
    salt_b = int(salt).to_bytes(16, "little", signed=True)  # blake2b takes a 16-byte salt
    digests = b"".join(hashlib.blake2b(row.tobytes(), digest_size=8, salt=salt_b,
                                       person=person).digest() for row in rows)
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)
