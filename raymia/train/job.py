"""A training job: one or more models of one architecture, trained on index
sets into the shared dataset. The unit of work that executors run."""
from __future__ import annotations

import contextlib
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from raymia.attacks.boundary import boundary_distance
from raymia.config import ModelConfig, TrainConfig
from raymia.data import Dataset
from raymia.data.canaries import Relabel
from raymia.defenses.none import NoDefense
from raymia.outputs.release import as_logits
from raymia.outputs.defenses import FitContext, NoOutput
from raymia.models import build_model
from raymia.train.cache import ModelCache, fingerprint, model_key
from raymia.train.hooks import HookContext
from raymia.train.loop import TrainLog, predict_inputs, predict_logits, train_model
from raymia.train.stacked import groups, train_stacked, why_not


@dataclass(frozen=True, eq=False)
class QuerySet:
    """Queries every model of a job answers after training: `make(data, rows)`
    builds inputs (q, len(rows), ...) from sample ids `rows` (augmented copies,
    noisy copies, an out-of-distribution set). Answers: (q, len(rows), C)."""

    name: str
    rows: np.ndarray
    make: Callable[[Dataset, np.ndarray], object]


@dataclass(frozen=True)
class BoundaryQuery:
    """Label-only distances to the decision boundary (raymia.attacks.boundary) of
    the job's first `n_models` models, for sample ids `rows`; with `inputs`,
    for positions `rows` of the examples (x, y) = inputs(data) (an OOD set)."""

    rows: np.ndarray
    n_models: int
    max_queries: int = 1000
    seed: int = 0
    chunk: int = 100  # rows per batch of the search; chunk i draws with seed + i * chunk
    inputs: Callable[[Dataset], tuple[np.ndarray, np.ndarray]] | None = None


@dataclass(frozen=True, eq=False)
class TrainJob:
    """Train `len(train_indices)` models; model i trains on sample ids
    `train_indices[i]` with seed `seeds[i]`, and is then queried on
    `eval_indices` (and `query_sets`, `boundary`) through its `output`
    defense. `defense` is a training defense config (raymia.defenses) or None;
    `holdout_indices[i]` is model i's held-out data for defenses that need it.
    With `cache_dir`, a model trained before with the same content hash is
    loaded instead of trained (raymia.train.cache)."""

    role: str
    first_index: int  # model_index of the first model within its role
    train_indices: tuple[np.ndarray, ...]
    seeds: tuple[int, ...]
    model: ModelConfig
    train: TrainConfig
    defense: object
    eval_indices: np.ndarray
    holdout_indices: tuple[np.ndarray, ...] = ()
    cache_dir: str | None = None
    output: object = None
    query_sets: tuple[QuerySet, ...] = ()
    boundary: BoundaryQuery | None = None
    relabel: Relabel | None = None  # the canaries' labels (raymia.data.canaries)
    #: a model trained elsewhere (raymia.target): its state_dict, loaded, not trained
    weights: dict[str, np.ndarray] | None = None

    def __post_init__(self):
        assert len(self.train_indices) == len(self.seeds) > 0
        assert len(self.holdout_indices) in (0, len(self.seeds))
        assert self.weights is None or len(self.seeds) == 1


@dataclass(eq=False)
class JobResult:
    role: str
    first_index: int
    logits: np.ndarray  # (n_models, n_eval, n_classes) float32, as released by the output defense
    train_acc: np.ndarray  # (n_models,) accuracy on each model's own training set
    epochs_run: np.ndarray  # (n_models,)
    stats: list[dict]  # per model, what the defense's hooks reported (epsilon, best epoch, ...)
    started_at: float
    finished_at: float
    node: str
    device: str
    cached: np.ndarray  # (n_models,) bool: loaded from the model cache, not trained
    queries: dict[str, np.ndarray]  # query set name -> (n_models, q, n, C) float32
    boundary: np.ndarray | None  # (boundary.n_models, len(boundary.rows)) distances
    #: (n_models,) bool: trained stacked with the job's other models (raymia.train.stacked)
    stacked: np.ndarray


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def run_job(job: TrainJob, data: Dataset, node: str | None = None) -> JobResult:
    """Run a job here, in this process (executors call this wherever they run)."""
    started = time.time()
    device = resolve_device(job.train.device)
    defense, output = job.defense or NoDefense(), job.output or NoOutput()
    with warnings.catch_warnings():  # arrays from the object store are read-only; never written
        warnings.simplefilter("ignore", UserWarning)
        x, y = torch.from_numpy(data.x).to(device), torch.from_numpy(data.y).to(device)
    data_key = fingerprint(data) if job.cache_dir else ""
    if job.relabel is not None:
        y = y.clone()
        y[torch.as_tensor(job.relabel.ids, device=device)] = torch.as_tensor(
            job.relabel.labels, device=device)
        data_key += "|canaries:" + job.relabel.digest
    cache = ModelCache(job.cache_dir) if job.cache_dir else None
    logits, accs, epochs, stats, cached, distances = [], [], [], [], [], []
    queries: dict[str, list] = {q.name: [] for q in job.query_sets}
    inputs = {q.name: torch.as_tensor(q.make(data, q.rows)) for q in job.query_sets}  # once
    holdouts = job.holdout_indices or [np.zeros(0, np.int64)] * len(job.seeds)
    contexts = [HookContext(x, y, data.n_classes, train_idx, holdout_idx, seed)
                for train_idx, holdout_idx, seed in zip(job.train_indices, holdouts, job.seeds)]
    keys = [model_key(data_key, c.train_idx, c.holdout_idx, c.seed, job.model, job.train,
                      defense, device) if cache else "" for c in contexts]
    stacked = _stacked(job, data, defense, contexts, device, cache, keys)
    for i, (context, key) in enumerate(zip(contexts, keys)):
        model, log, acc, was_cached = stacked.get(i) or _trained(job, data, defense, context,
                                                                 device, cache, key)
        answer, released_stats = _answerer(model, output, context, cache, key)
        logits.append(_answer_rows(answer, x, job.eval_indices, data.n_classes))
        for q in job.query_sets:  # the same inputs for every model of the job
            queries[q.name].append(np.stack([answer(batch.to(device), q.rows)
                                             for batch in inputs[q.name]]))
        if job.boundary is not None and i < job.boundary.n_models:
            distances.append(_boundary(_label_oracle(model, answer, output), x, y, data,
                                       job.boundary))
        accs.append(acc)
        cached.append(was_cached)
        epochs.append(log.epochs_run)
        stats.append({**log.stats, **released_stats})
    return JobResult(
        role=job.role, first_index=job.first_index,
        logits=np.stack(logits).astype(np.float32), train_acc=np.array(accs),
        epochs_run=np.array(epochs), stats=stats, started_at=started, finished_at=time.time(),
        node=node or socket.gethostname(), device=str(device), cached=np.array(cached, bool),
        queries={k: np.stack(v).astype(np.float32) for k, v in queries.items()},
        boundary=np.stack(distances) if distances else None,
        stacked=np.array([i in stacked and not stacked[i][3] for i in range(len(contexts))]))


def _stacked(job: TrainJob, data: Dataset, defense, contexts: list[HookContext], device,
             cache, keys: list[str]) -> dict[int, tuple]:
    """{model position: (model, TrainLog, train accuracy, from the cache?)} of the
    models this job trains stacked (raymia.train.stacked): with `train.engine`
    "stacked", models of one training-set size, two or more, whose architecture
    and defense stack. The others are left to the one-at-a-time loop. Their
    cache keys are claimed in sorted order (no two workers wait on each other)."""
    if job.train.engine != "stacked" or len(contexts) < 2 or job.weights is not None:
        return {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        probe = build_model(job.model, data.input_shape, data.n_classes)
    if why_not(probe, defense, device) is not None:
        return {}
    out: dict[int, tuple] = {}
    train_cfg = defense.training(job.train)
    for group in (g for g in groups([c.train_idx for c in contexts]) if len(g) > 1):
        with contextlib.ExitStack() as claims:
            todo = []
            for i in sorted(group, key=lambda i: keys[i]):
                entry = claims.enter_context(cache.claim(keys[i], device)) if cache else None
                if entry is not None:
                    out[i] = (*_restore(job, data, defense, contexts[i], device, entry), True)
                else:
                    todo.append(i)
            todo.sort()
            models, hooks = [], []
            for i in todo:
                with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                    torch.manual_seed(contexts[i].seed)  # the init the loop would draw
                    models.append(build_model(job.model, data.input_shape,
                                              data.n_classes).to(device))
                    hooks.append(defense.hooks(contexts[i], train_cfg))
            trained = train_stacked(models, contexts[0].x, contexts[0].y,
                                    [contexts[i].train_idx for i in todo], train_cfg, hooks,
                                    [torch.Generator().manual_seed(contexts[i].seed)
                                     for i in todo]) if todo else []
            for i, (model, log) in zip(todo, trained):
                acc = _own_accuracy(model, contexts[i])
                if cache:
                    cache.save(keys[i], model, acc, log.epochs_run, log.stats)
                out[i] = (model, log, acc, False)
    return out


def _trained(job: TrainJob, data: Dataset, defense, context: HookContext, device, cache,
             key: str):
    """(model, TrainLog, train accuracy, from the cache?): trained here, or loaded
    (waiting while another worker trains the same model)."""
    if job.weights is not None:
        return (*_loaded(job, data, context, device), False)
    if cache is None:
        return (*_train(job, data, defense, context, device), False)
    with cache.claim(key, device) as entry:
        if entry is not None:
            return (*_restore(job, data, defense, context, device, entry), True)
        model, log, acc = _train(job, data, defense, context, device)
        cache.save(key, model, acc, log.epochs_run, log.stats)
        return model, log, acc, False


def _train(job: TrainJob, data: Dataset, defense, context: HookContext, device):
    train_cfg = defense.training(job.train)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(context.seed)  # init, dropout and the hooks' draws; restored on exit
        model = build_model(job.model, data.input_shape, data.n_classes).to(device)
        generator = torch.Generator().manual_seed(context.seed)
        model, log = train_model(model, context.x, context.y, context.train_idx, train_cfg,
                                 defense.hooks(context, train_cfg), generator)
    return model, log, _own_accuracy(model, context)


def _loaded(job: TrainJob, data: Dataset, context: HookContext, device):
    """The model trained elsewhere, with its weights; it ran no epoch here."""
    from raymia.target import fit_weights

    model = fit_weights(job.model, data, job.weights).to(device)
    return model, TrainLog(0, float("nan"), {}), _own_accuracy(model, context)


def _own_accuracy(model, context: HookContext) -> float:
    """Accuracy on the model's own training set."""
    train_logits = predict_logits(model, context.x, context.train_idx)
    return float((train_logits.argmax(1) == context.y[context.train_idx].cpu().numpy()).mean())


def _restore(job: TrainJob, data: Dataset, defense, context: HookContext, device, entry):
    """A cached model in the architecture the defense's hooks prepared."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(context.seed)  # building the hooks may draw: leave the caller's alone
        model = build_model(job.model, data.input_shape, data.n_classes)
        for hook in defense.hooks(context, defense.training(job.train)):
            model = hook.prepare(model)
    model.load_state_dict(entry["state_dict"])
    log = TrainLog(entry["epochs_run"], float("nan"), entry["stats"])
    return model.to(device), log, entry["train_acc"]


def _answerer(model, output, context: HookContext, cache=None, key: str = ""):
    """(answer, stats): answer(inputs (n, ...), sample ids (n,)) -> (n, C) float32,
    the model's logits or what its output defense releases (as log-probabilities);
    stats: what fitting the output defense reported (e.g. a fitted temperature).
    The defense may keep what it fits in the model's `cache`, beside `key`."""
    if isinstance(output, NoOutput):
        return (lambda inputs, ids: predict_inputs(model, inputs)), {}
    ctx = FitContext(model, context.x, context.y, context.train_idx, context.holdout_idx,
                     context.seed, cache=cache, model_key=key)
    release = output.fit(ctx)

    def answer(inputs, ids):
        released = as_logits(release(inputs, predict_inputs(model, inputs), np.asarray(ids)))
        label = released.argmax(1)
        out = released.astype(np.float32)
        ties = np.flatnonzero(out.argmax(1) != label)  # float32 rounding made a tie
        out[ties, label[ties]] = np.nextafter(out[ties].max(1), np.float32(np.inf))
        return out
    return answer, ctx.stats


def _answer_rows(answer, x: torch.Tensor, rows: np.ndarray, n_classes: int,
                 batch: int = 4096) -> np.ndarray:
    """answer() over x[rows], a batch of rows at a time (no copy of the whole set)."""
    parts = [answer(x[torch.as_tensor(rows[s:s + batch], device=x.device)], rows[s:s + batch])
             for s in range(0, len(rows), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, n_classes), np.float32)


def _boundary(labels, x, y, data: Dataset, query: BoundaryQuery) -> np.ndarray:
    """Distances of x[query.rows] (or of the query's own inputs) to the boundary
    of the label oracle `labels`, chunk by chunk (the same draws whether a job
    holds one chunk or all), every query inside the box of the data and them."""
    bounds = (float(data.x.min()), float(data.x.max()))
    if query.inputs is not None:
        x, y = (torch.as_tensor(a).to(x.device) for a in query.inputs(data))
        bounds = (min(bounds[0], float(x.min())), max(bounds[1], float(x.max())))
    out = []
    for start in range(0, len(query.rows), query.chunk):
        rows = torch.as_tensor(query.rows[start:start + query.chunk], device=x.device)
        out.append(boundary_distance(labels, x[rows], y[rows], max_queries=query.max_queries,
                                     bounds=bounds, seed=query.seed + start).distance)
    return np.concatenate(out) if out else np.zeros(0)


def _label_oracle(model, answer, output):
    """What a label-only attacker queries: the released label (the model's own
    argmax where the output defense keeps every label)."""
    model.eval()

    @torch.no_grad()
    def labels(batch):
        if getattr(output, "keeps_labels", True):
            return model(batch).argmax(1)
        ids = np.zeros(len(batch), np.int64)
        return torch.as_tensor(answer(batch, ids).argmax(1), device=batch.device)
    return labels
