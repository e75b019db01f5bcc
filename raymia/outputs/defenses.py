"""Post-hoc output defenses: `Experiment.output`, composable with any training defense.

The model trains as its `defense` says; then, inside the training job where the
model lives, the output defense is fitted once per model (`fit`, on that
model's own training and held-out data) and every query the attacks see —
the audit set, augmented copies, out-of-distribution sets — goes through the
returned release function. Attacks see the released vectors only (as
`outputs.as_logits` log-probabilities). The attacker's `like_target` shadow
models release the same way (they mimic the deployed API).

A trained model does not depend on its output defense, so the model cache
shares it across an output-defense sweep.
"""
from __future__ import annotations

import functools
import hashlib
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from raymia.config import ConfigError, check, check_choice
from raymia.errors import Section
from raymia.outputs import memguard as mechanism
from raymia.outputs import release as outputs
from raymia.outputs.laplace import MAX_FULL, LastLayerLaplace, split_last_layer
from raymia.outputs.memguard import DefenderClassifier, memguard
from raymia.models import build_model
from raymia.registry import OUTPUTS
from raymia.seeding import input_hashes
from raymia.train.loop import predict_logits

MEMGUARD_PERSON = b"raymia.memguard"  # blake2b personalisation of MemGuard's query keys

#: release(inputs (n, ...) tensor, logits (n, C), sample_ids (n,)) -> released (n, C)
Release = Callable[[torch.Tensor, np.ndarray, np.ndarray], np.ndarray]


@functools.cache
def source_hash(module) -> str:
    return hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()


@dataclass(eq=False)
class FitContext:
    """One trained model and the data its defender may use."""

    model: torch.nn.Module
    x: torch.Tensor  # the whole dataset, on the model's device
    y: torch.Tensor
    train_idx: np.ndarray
    holdout_idx: np.ndarray  # the defender's held-out data (split.n_validation)
    seed: int
    stats: dict = field(default_factory=dict)  # what fitting chose, for the trials table
    cache: object = None  # the model cache the model came from (raymia.train.cache), or None
    model_key: str = ""  # the model's key there

    def logits(self, rows: np.ndarray) -> np.ndarray:
        return predict_logits(self.model, self.x, rows)

    def fitted(self, part: str, build: Callable[[], torch.nn.Module],
               fit: Callable[[], torch.nn.Module]) -> torch.nn.Module:
        """A module the defense fits on this model (deterministically), kept in the
        model cache beside the model under `part` (which names everything else it
        depends on): fitted once, then loaded into `build()` by every job that
        answers for the model (e.g. the chunks of a fanned-out audit), or fitted
        while another worker fits it is waited for."""
        if self.cache is None:
            return fit()
        key = hashlib.sha256(f"{self.model_key}|{part}".encode()).hexdigest()
        with self.cache.claim(key, torch.device("cpu")) as entry:
            if entry is not None:
                module = build()
                module.load_state_dict(entry["state_dict"])
                return module.eval()
            module = fit()
            self.cache.save(key, module, float("nan"), 0, {})
            return module


class OutputDefense(Section):
    """Base of the output-defense configs (frozen dataclasses registered by `name`)."""

    name: ClassVar[str]
    section = "output"  # its errors name `output.<field>`
    #: what fitting it reports (trials columns), as Defense.stats
    stats: ClassVar[dict[str, type]] = {}
    applies_to_shadows: ClassVar[bool] = True
    needs_holdout: ClassVar[bool] = False
    #: releases the predicted label only: attacks that need scores cannot run
    labels_only: ClassVar[bool] = False
    #: the released label is always the model's own (label-only queries may ask the model)
    keeps_labels: ClassVar[bool] = True
    #: fitted on the model's training members (not on held-out data only), so what it
    #: releases is not a function of the model alone: DP-SGD refuses it (see DPSGD.check)
    fits_on_members: ClassVar[bool] = False

    def fit(self, ctx: FitContext) -> Release:
        raise NotImplementedError

    def check(self, exp, data) -> None:
        if self.needs_holdout and exp.split.n_validation == 0:
            raise ConfigError("split.n_validation", f"the {self.name} output defense needs "
                              "held-out data: set split.n_validation > 0")


@OUTPUTS.register
@dataclass(frozen=True)
class NoOutput(OutputDefense):
    """The model's logits as they are."""

    name = "none"

    def fit(self, ctx):
        return lambda inputs, logits, ids: logits


@OUTPUTS.register
@dataclass(frozen=True)
class TopK(OutputDefense):
    """Only the `k` largest probabilities (renormalised), the others 0."""

    name = "top_k"
    k: int = 1

    def __post_init__(self):
        check(self.k >= 1, "k", f"must be >= 1, got {self.k}")

    def check(self, exp, data):
        check(self.k <= data.n_classes, "output.k",
              f"must be <= the {data.n_classes} classes of {data.name}, got {self.k}")

    def fit(self, ctx):
        return lambda inputs, logits, ids: outputs.top_k(logits, self.k)


@OUTPUTS.register
@dataclass(frozen=True)
class Rounding(OutputDefense):
    """Probabilities rounded to `decimals` decimals."""

    name = "rounding"
    decimals: int = 2

    def __post_init__(self):
        check(0 <= self.decimals <= outputs.MAX_DECIMALS, "decimals",
              f"must be in [0, {outputs.MAX_DECIMALS}], got {self.decimals}")

    def fit(self, ctx):
        return lambda inputs, logits, ids: outputs.rounding(logits, self.decimals)


@OUTPUTS.register
@dataclass(frozen=True)
class LabelOnly(OutputDefense):
    """The predicted label only (a one-hot vector)."""

    name = "label_only"
    labels_only = True

    def fit(self, ctx):
        return lambda inputs, logits, ids: outputs.label_only(logits)


@OUTPUTS.register
@dataclass(frozen=True)
class Temperature(OutputDefense):
    """softmax(logits / T): `temperature` fixed, or None to fit T on held-out
    data by negative log-likelihood (temperature scaling, Guo et al. 2017)."""

    name = "temperature"
    stats: ClassVar[dict[str, type]] = {"fitted_temperature": float}
    temperature: float | None = None

    def __post_init__(self):
        check(self.temperature is None or 0 < self.temperature < math.inf, "temperature",
              f"must be > 0 and finite (None: fitted), got {self.temperature}")

    @property
    def needs_holdout(self) -> bool:
        return self.temperature is None

    def fit(self, ctx):
        t = self.temperature
        if t is None:
            t = outputs.fit_temperature(ctx.logits(ctx.holdout_idx),
                                        ctx.y[torch.as_tensor(ctx.holdout_idx)].cpu().numpy())
            ctx.stats["fitted_temperature"] = float(t)
        return lambda inputs, logits, ids: outputs.temperature(logits, t)


@OUTPUTS.register
@dataclass(frozen=True)
class Laplace(OutputDefense):
    """Last-layer Laplace approximation (raymia.outputs.laplace): prior
    precision tuned on held-out data, predictive by `method` probit or mc."""

    name = "laplace"
    stats: ClassVar[dict[str, type]] = {"prior_precision": float}
    needs_holdout = True
    keeps_labels = False
    fits_on_members = True  # the posterior's Hessian is the training loss's
    method: str = "probit"
    hessian: str = "auto"
    n_samples: int = 100

    def __post_init__(self):
        check_choice(self.method, ("probit", "mc"), "method")
        check_choice(self.hessian, ("auto", "full", "kron"), "hessian")
        check(self.n_samples >= 1, "n_samples", f"must be >= 1, got {self.n_samples}")

    def check(self, exp, data):

        super().check(exp, data)
        try:
            _, linear = split_last_layer(build_model(exp.model, data.input_shape,
                                                     data.n_classes), data.n_classes)
        except ValueError as e:
            raise ConfigError("model.name", f"laplace needs a final linear layer: {e}") from None
        size = linear.out_features * (linear.in_features + 1)
        check(self.hessian != "full" or size <= 10 * MAX_FULL, "output.hessian",
              f"a full Hessian of the last layer's {size} parameters is too large: use 'kron'")

    def fit(self, ctx):

        hold = torch.as_tensor(ctx.holdout_idx, device=ctx.x.device)
        train = torch.as_tensor(ctx.train_idx, device=ctx.x.device)
        la = LastLayerLaplace(ctx.model, hessian=self.hessian).fit(ctx.x[train], ctx.y[train])
        la.tune_prior(ctx.x[hold], ctx.y[hold], predictive=self.method,
                      n_samples=self.n_samples, seed=ctx.seed)
        ctx.stats["prior_precision"] = float(la.prior_precision)
        return lambda inputs, logits, ids: la.predict(inputs, self.method, self.n_samples,
                                                      ctx.seed)


@OUTPUTS.register
@dataclass(frozen=True)
class MemGuard(OutputDefense):
    """MemGuard (Jia et al., CCS 2019): a defender's membership classifier trained on
    the model's members vs its held-out data, then per query the noise that keeps
    the label and drives that classifier to 0.5, released with probability
    min(1, epsilon / L1 distortion) (expected distortion <= `epsilon`). With the
    model cache, the target's answers on an audit set larger than `chunk` are
    computed by query jobs of `chunk` examples each, in parallel; the result is
    the same (each query's coin is keyed by a hash of its bytes: the same query,
    the same answer, whoever computes it)."""

    name = "memguard"
    needs_holdout = True
    fits_on_members = True  # the defender's classifier learns the members' outputs
    epsilon: float = 1.0
    classifier_epochs: int = 100
    max_iter: int = 300
    chunk: int = 1000  # the target's queries per job when they fan out (with the model cache)

    def __post_init__(self):
        check(self.chunk >= 1, "chunk", f"must be >= 1, got {self.chunk}")
        check(self.epsilon >= 0, "epsilon", f"must be >= 0 (inf: no budget), got {self.epsilon}")
        check(self.classifier_epochs >= 1, "classifier_epochs",
              f"must be >= 1, got {self.classifier_epochs}")
        check(self.max_iter >= 1, "max_iter", f"must be >= 1, got {self.max_iter}")

    def fit(self, ctx):

        n_classes = ctx.logits(ctx.holdout_idx[:1]).shape[1]
        clf = ctx.fitted(  # the code that fits the classifier is part of its key
            f"memguard|{self.classifier_epochs}|{source_hash(mechanism)}|"
            f"{source_hash(sys.modules[__name__])}",
            lambda: DefenderClassifier(n_classes),
            lambda: mechanism.train_defender_classifier(
                ctx.logits(ctx.train_idx), ctx.logits(ctx.holdout_idx), ctx.seed,
                self.classifier_epochs))
        return lambda inputs, logits, ids: memguard(
            logits, clf, epsilon=self.epsilon, seed=ctx.seed, max_iter=self.max_iter,
            row_ids=input_hashes(inputs.detach().cpu().numpy(), ctx.seed, MEMGUARD_PERSON))



