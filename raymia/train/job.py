"""A training job: one or more models of one architecture, trained on index
sets into the shared dataset. The unit of work that executors run."""
from __future__ import annotations

import socket
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from raymia.config import ModelConfig, TrainConfig
from raymia.data import Dataset
from raymia.models import build_model
from raymia.train.cache import ModelCache, fingerprint, model_key
from raymia.train.hooks import HookContext
from raymia.train.loop import TrainLog, predict_logits, train_model


@dataclass(frozen=True, eq=False)
class TrainJob:
    """Train `len(train_indices)` models; model i trains on sample ids
    `train_indices[i]` with seed `seeds[i]`, and is then queried on
    `eval_indices`. `defense` is a defense config (raymia.defenses) or None;
    `holdout_indices[i]` is model i's held-out data for defenses that need it."""

    role: str
    first_index: int  # model_index of the first model within its role
    train_indices: tuple[np.ndarray, ...]
    seeds: tuple[int, ...]
    model: ModelConfig
    train: TrainConfig
    defense: object
    eval_indices: np.ndarray
    holdout_indices: tuple[np.ndarray, ...] = ()
    return_weights: bool = False
    cache_dir: str | None = None  # a ModelCache root shared by the cluster's nodes, or None

    def __post_init__(self):
        assert len(self.train_indices) == len(self.seeds) > 0
        assert len(self.holdout_indices) in (0, len(self.seeds))


@dataclass(eq=False)
class JobResult:
    role: str
    first_index: int
    logits: np.ndarray  # (n_models, n_eval, n_classes) float32
    train_acc: np.ndarray  # (n_models,) accuracy on each model's own training set
    epochs_run: np.ndarray  # (n_models,)
    stats: list[dict]  # per model, what the defense's hooks reported (epsilon, best epoch, ...)
    started_at: float
    finished_at: float
    node: str
    device: str
    cached: np.ndarray  # (n_models,) bool: loaded from the model cache, not trained
    weights: list[dict[str, np.ndarray]] | None = field(default=None)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def run_job(job: TrainJob, data: Dataset, node: str | None = None) -> JobResult:
    """Run a job here, in this process (executors call this wherever they run)."""
    from raymia.defenses import NoDefense

    started = time.time()
    device = resolve_device(job.train.device)
    defense = job.defense or NoDefense()
    train_cfg = defense.training(job.train)
    with warnings.catch_warnings():  # arrays from the object store are read-only; never written
        warnings.simplefilter("ignore", UserWarning)
        x, y = torch.from_numpy(data.x).to(device), torch.from_numpy(data.y).to(device)
    cache = ModelCache(job.cache_dir) if job.cache_dir else None
    logits, accs, epochs, stats, weights, cached = [], [], [], [], [], []
    holdouts = job.holdout_indices or [np.zeros(0, np.int64)] * len(job.seeds)
    for train_idx, holdout_idx, seed in zip(job.train_indices, holdouts, job.seeds):
        context = HookContext(x, y, data.n_classes, train_idx, holdout_idx, seed)
        key = entry = None
        if cache is not None:
            key = model_key(fingerprint(data), train_idx, holdout_idx, seed, job.model, job.train,
                            defense, device)
            entry = cache.load(key, device)
        if entry is not None:
            model, log = _restore(entry, job, data, defense.hooks(context, train_cfg), device)
            accs.append(entry["train_acc"])
        else:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)  # init and dropout, restored on exit
                model = build_model(job.model, data.input_shape, data.n_classes).to(device)
                generator = torch.Generator().manual_seed(seed)
                model, log = train_model(model, x, y, train_idx, train_cfg,
                                         defense.hooks(context, train_cfg), generator)
            train_logits = predict_logits(model, x, train_idx)
            accs.append(float((train_logits.argmax(1) == data.y[train_idx]).mean()))
            if cache is not None:
                cache.save(key, model, accs[-1], log.epochs_run, log.stats)
        cached.append(entry is not None)
        logits.append(predict_logits(model, x, job.eval_indices))
        epochs.append(log.epochs_run)
        stats.append(log.stats)
        if job.return_weights:
            weights.append({k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
    return JobResult(
        role=job.role, first_index=job.first_index,
        logits=np.stack(logits).astype(np.float32), train_acc=np.array(accs),
        epochs_run=np.array(epochs), stats=stats, started_at=started, finished_at=time.time(),
        node=node or socket.gethostname(), device=str(device), cached=np.array(cached, bool),
        weights=weights if job.return_weights else None)


def _restore(entry: dict, job: TrainJob, data: Dataset, hooks, device: torch.device):
    """A cached model: the architecture as the defense prepared it, with the stored weights."""
    model = build_model(job.model, data.input_shape, data.n_classes)
    for hook in hooks:
        model = hook.prepare(model)
    model.load_state_dict(entry["state_dict"])
    return model.to(device), TrainLog(entry["epochs_run"], float("nan"), entry["stats"])
