"""Trained models cached by a content hash of everything that determines them.

A model is fully determined by the dataset's bytes, its training and held-out
sample ids, its seed, the architecture, the training config, the defense and
the kind of device that trained it (GPU kernels differ from CPU ones). The key
hashes all of them, so two trials whose shadow models coincide train them
once, and a resumed or extended sweep reuses what is already there.

Files hold tensors and plain numbers only and are read with
`torch.load(weights_only=True)`, which refuses anything else: a cache
directory from elsewhere cannot run code. Writes go to a temporary file that
is renamed into place, so a crash never leaves a half-written model.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

FORMAT = 1  # bump when what a cached file means changes
_FINGERPRINTS: dict[int, tuple[object, str]] = {}


def fingerprint(data) -> str:
    """sha256 of a dataset's name, classes, shapes and bytes (memoized per object)."""
    held = _FINGERPRINTS.get(id(data))
    if held is not None and held[0] is data:
        return held[1]
    h = hashlib.sha256(f"{data.name}|{data.n_classes}|{data.x.shape}|{data.x.dtype}".encode())
    h.update(np.ascontiguousarray(data.x).data)
    h.update(np.ascontiguousarray(data.y, dtype=np.int64).data)
    if len(_FINGERPRINTS) > 8:
        _FINGERPRINTS.clear()
    _FINGERPRINTS[id(data)] = (data, h.hexdigest())
    return _FINGERPRINTS[id(data)][1]


def _ids(indices: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).data).hexdigest()


def model_key(data_fingerprint: str, train_idx: np.ndarray, holdout_idx: np.ndarray, seed: int,
              model, train, defense, device: torch.device) -> str:
    """The content hash naming one trained model."""
    payload = {
        "format": FORMAT, "data": data_fingerprint, "train_ids": _ids(train_idx),
        "holdout_ids": _ids(holdout_idx), "seed": int(seed), "model": dataclasses.asdict(model),
        "train": dataclasses.asdict(train), "device": device.type,
        "defense": {"name": defense.name, **dataclasses.asdict(defense)},
        "torch": torch.__version__.split("+")[0],
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ModelCache:
    """`<root>/<key>.pt`: a trained model's state dict and what its training reported."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def load(self, key: str, device: torch.device) -> dict | None:
        path = self.path(key)
        if not path.exists():
            return None
        return torch.load(path, map_location=device, weights_only=True)

    def save(self, key: str, model: torch.nn.Module, train_acc: float, epochs_run: int,
             stats: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        entry = {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                 "train_acc": float(train_acc), "epochs_run": int(epochs_run), "stats": stats}
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(entry, f)
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
