"""Trained models cached by a content hash of everything that determines them.

A model is fully determined by the dataset's bytes, its training and held-out
sample ids, its seed, the architecture, the training config, the defense, the
kind of device that trained it (GPU kernels differ from CPU ones) and the code
that trained it: raymia's training loop and model sources, the defense base,
the source of the model's own defense (its module and the raymia modules that
module imports from the defense packages; a defense from a sweep file: that
file), and torch's and Opacus' versions. The key hashes all of them, so two
trials whose shadow models coincide train them once, a resumed or extended
sweep reuses what is already there, a change to the training code or to the
model's own defense retrains, and adding or editing another defense does not.

Files hold tensors and plain numbers only and are read with
`torch.load(weights_only=True)`, which refuses anything else: a cache
directory from elsewhere cannot run code. An entry is written to a temporary
file, flushed to disk and linked into place only if no entry exists (never
replaced under a reader); an unreadable entry is a miss. While one worker
trains a model, its `<key>.lock` (kept fresh by a heartbeat) makes the
others wait for the entry instead of training it too; a lock whose holder
died goes stale and is taken over.
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import hashlib
import inspect
import json
import logging
import os
import socket
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from raymia.version import __version__

FORMAT = 1  # bump when what a cached file means changes
HEARTBEAT_S, STALE_S = 10.0, 60.0  # lock refresh period; a lock older than this is stale
log = logging.getLogger(__name__)
#: the sources every trained model depends on, whatever its defense
TRAINING_CODE = ("train/*.py", "models/*.py", "defenses/base.py")
#: packages whose modules a defense's own module may import into its training
DEFENSE_PACKAGES = ("raymia.defenses.", "raymia.selena.")
ROOT = Path(__file__).resolve().parent.parent  # the raymia package
_FINGERPRINTS: dict[int, tuple[object, str]] = {}
_CODE: list[str] = []
_DEFENSE_CODE: dict[type, str] = {}


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


def code_version() -> str:
    """sha256 of the sources every model's training runs (TRAINING_CODE), with
    raymia's, torch's and Opacus' versions (once per process)."""
    if not _CODE:
        h = hashlib.sha256(f"{__version__}|{torch.__version__}|"
                           f"{metadata.version('opacus')}".encode())
        for pattern in TRAINING_CODE:
            for path in sorted(ROOT.glob(pattern)):
                h.update(path.relative_to(ROOT).as_posix().encode())
                h.update(path.read_bytes())
        _CODE.append(h.hexdigest())
    return _CODE[0]


def defense_code(cls: type) -> str:
    """sha256 of a defense's own source: its module and the modules of the defense
    packages that module imports; a defense registered from a sweep file carries
    that file's text (`__raymia_source__`, raymia.extensions)."""
    if cls not in _DEFENSE_CODE:
        h = hashlib.sha256(cls.__qualname__.encode())
        shipped = getattr(cls, "__raymia_source__", None)
        if shipped is not None:
            h.update(shipped.encode())
        else:
            for path in _own_sources(Path(inspect.getsourcefile(cls)).resolve()):
                # a defense of the user's own package: its file name
                name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
                h.update(str(name).encode())
                h.update(path.read_bytes())
        _DEFENSE_CODE[cls] = h.hexdigest()
    return _DEFENSE_CODE[cls]


def _own_sources(module_file: Path) -> list[Path]:
    """The module and the raymia defense-package modules it imports."""
    out = [module_file]
    for node in ast.walk(ast.parse(module_file.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            for name in names:
                if name.startswith(DEFENSE_PACKAGES):
                    path = ROOT.parent / (name.replace(".", "/") + ".py")
                    if path.is_file() and path not in out:
                        out.append(path)
    return sorted(out)


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
        "code": code_version(), "defense_code": defense_code(type(defense)),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _plain(value):
    """Stats as plain Python values (what weights_only loading accepts)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _take_over_if_stale(lock: Path) -> None:
    """Remove a lock whose holder stopped refreshing it; if another worker took it
    over meanwhile (a fresh lock now stands there), put theirs back."""
    try:
        seen = lock.stat()
        if time.time() - seen.st_mtime <= STALE_S:
            return
        aside = lock.with_name(f"{lock.name}.{socket.gethostname()}.{os.getpid()}")
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    if os.stat(aside).st_ino != seen.st_ino:  # not the stale one: restore it
        with contextlib.suppress(FileExistsError):
            os.link(aside, lock)
    aside.unlink(missing_ok=True)


class ModelCache:
    """`<root>/<key>.pt`: a trained model's state dict and what its training
    reported, or a module an output defense fitted on such a model
    (raymia.outputs.defenses.FitContext.fitted)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def load(self, key: str, device: torch.device) -> dict | None:
        path = self.path(key)
        if not path.exists():
            return None
        try:
            return torch.load(path, map_location=device, weights_only=True)
        except Exception as error:  # truncated, foreign or corrupt: train it again
            log.warning("model cache: ignoring unreadable %s (%s)", path, error)
            return None

    def save(self, key: str, model: torch.nn.Module, train_acc: float, epochs_run: int,
             stats: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        entry = {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                 "train_acc": float(train_acc), "epochs_run": int(epochs_run),
                 "stats": {k: _plain(v) for k, v in stats.items()}}
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(entry, f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            try:
                os.link(tmp, self.path(key))  # never replaces an entry a reader may hold
            except FileExistsError:
                pass
        finally:
            Path(tmp).unlink(missing_ok=True)

    @contextlib.contextmanager
    def claim(self, key: str, device: torch.device):
        """Yields the entry if it exists (or appears while another worker holds the
        key's lock); else None, holding the lock until the caller has saved."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = self.root / f"{key}.lock"
        while True:
            entry = self.load(key, device)
            if entry is not None:
                yield entry
                return
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                _take_over_if_stale(lock)
                time.sleep(0.2)
                continue
            os.write(fd, f"{socket.gethostname()} {os.getpid()}".encode())
            os.close(fd)
            entry = self.load(key, device)  # written while we waited for the lock?
            if entry is not None:
                lock.unlink(missing_ok=True)
                yield entry
                return
            self.path(key).unlink(missing_ok=True)  # an unreadable entry: replace it
            break
        done = threading.Event()

        def heartbeat():
            while not done.wait(HEARTBEAT_S):
                with contextlib.suppress(FileNotFoundError):
                    os.utime(lock)
        beat = threading.Thread(target=heartbeat, daemon=True)
        beat.start()
        try:
            yield None
        finally:
            done.set()
            beat.join()
            lock.unlink(missing_ok=True)
