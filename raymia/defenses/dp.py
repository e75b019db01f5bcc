"""DP-SGD with Opacus (Abadi et al. 2016): per-example gradient clipping and
Gaussian noise, Poisson-sampled batches, and the noise multiplier that Opacus'
accountant finds for the requested (epsilon, delta) over the configured
epochs and batch size. `epsilon = inf` trains the same model without DP, so
a sweep's baseline lands in the same table."""
from __future__ import annotations

from typing import ClassVar

import dataclasses
import functools
import logging
import math
import sys
import warnings
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from raymia.config import ConfigError, TrainConfig, check, check_choice
from raymia.defenses.base import Defense
from raymia.models import build_model
from raymia.registry import DEFENSES
from raymia.train.hooks import Hook

log = logging.getLogger(__name__)
# benign with Opacus: its hooks fire on module outputs when inputs need no gradient,
# and experiments need no cryptographically secure noise (see its secure_mode)
warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
warnings.filterwarnings("ignore", message="Secure RNG turned off", category=UserWarning)
# at large epsilon RDP's best order is the edge of Opacus' grid: the epsilon it
# reports is then an upper bound, looser than it could be (never smaller)
warnings.filterwarnings("ignore", message="Optimal order is the", category=UserWarning)
ACCOUNTANTS = ("prv", "rdp")


def default_delta(n_train: int) -> float:
    """The largest power of ten strictly below 1/n (n = 150 -> 1e-3, n = 100 -> 1e-3,
    n = 1000 -> 1e-4): 10^-d for n's d decimal digits, since 10^(d-1) <= n < 10^d."""
    if n_train < 1:
        raise ValueError(f"default_delta needs n_train >= 1, got {n_train}")
    return float(f"1e-{len(str(int(n_train)))}")


@functools.lru_cache(maxsize=256)
def noise_multiplier(epsilon: float, delta: float, sample_rate: float, epochs: int,
                     accountant: str) -> float:
    """Opacus' search for the noise that spends `epsilon` (what
    make_private_with_epsilon does), cached: shadow models of similar size
    share a sample rate, and the PRV search takes seconds."""
    from opacus.accountants.utils import get_noise_multiplier

    return get_noise_multiplier(target_epsilon=epsilon, target_delta=delta,
                                sample_rate=sample_rate, epochs=epochs, accountant=accountant)


def _residual_forward(self, x):
    """torchvision's BasicBlock / Bottleneck forward with the residual added out of
    place (its `out += identity` breaks Opacus' per-example gradient hooks)."""
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    if hasattr(self, "conv3"):  # Bottleneck
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
    else:
        out = self.bn2(self.conv2(out))
    return self.relu(out + identity)


def _out_of_place_block(base: type) -> type:
    """`_BasicBlock` / `_Bottleneck`: torchvision's residual block `base` with
    `_residual_forward`, made once, on first use, so that importing this
    module, as every training job does through raymia.defenses, imports no
    torchvision."""
    name = "_" + base.__name__
    if name not in globals():
        globals()[name] = type(name, (base,), {"forward": _residual_forward,
                                               "__module__": __name__})
    return globals()[name]


def __getattr__(name: str):
    """`_BasicBlock` and `_Bottleneck` before their first use (a model holding
    them unpickled)."""
    if name not in ("_BasicBlock", "_Bottleneck"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from torchvision.models import resnet

    return _out_of_place_block(getattr(resnet, name[1:]))


def _out_of_place(model: torch.nn.Module) -> None:
    """In-place activations and residual additions break Opacus' backward hooks:
    make them out of place (same function, same parameters)."""
    resnet = sys.modules.get("torchvision.models.resnet")  # none: no model holds its blocks
    blocks = () if resnet is None else (resnet.BasicBlock, resnet.Bottleneck)
    for module in model.modules():
        if getattr(module, "inplace", False):
            module.inplace = False
        if type(module) in blocks:
            module.__class__ = _out_of_place_block(type(module))


def make_dp_compatible(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """Opacus' module fixer (BatchNorm -> GroupNorm, ...); errors if it cannot."""
    from opacus.validators import ModuleValidator

    _out_of_place(model)
    if ModuleValidator.is_valid(model):
        return model
    fixed = ModuleValidator.fix(model)
    errors = ModuleValidator.validate(fixed, strict=False)
    if errors:
        raise ConfigError("model.name", f"Opacus cannot make {name} DP-compatible: "
                          f"{str(errors[0]).splitlines()[0]}")
    log.warning("DP-SGD: %s made DP-compatible by Opacus' ModuleValidator.fix "
                "(BatchNorm replaced by GroupNorm)", name)
    return fixed


def _try_per_example_gradients(model, input_shape, name: str) -> None:
    """One backward pass through Opacus' per-example gradient hooks on two random
    inputs, so a model they cannot handle fails before training, in one line."""
    from opacus import GradSampleModule

    try:
        wrapped = GradSampleModule(model)
        wrapped(torch.randn(2, *input_shape)).sum().backward()
        wrapped._close()
    except Exception as e:
        raise ConfigError("model.name", f"{name} cannot train under DP-SGD (Opacus): "
                          f"{str(e).strip().splitlines()[0][:160]}") from None


@DEFENSES.register
@dataclass(frozen=True)
class DPSGD(Defense):
    """Target `epsilon` and `delta` (None: the largest power of ten strictly below
    1/n_train), per-example clipping norm `max_grad_norm`, accountant `prv` or `rdp`.
    `lr`, `epochs` and `batch_size` (None: the experiment's `train`) give DP-SGD a
    recipe of its own: a high-utility DP baseline trains with a larger learning
    rate, larger batches and fewer epochs than the non-private model.
    An output defense fitted on the training members (`fits_on_members`) is refused
    with a finite epsilon: its released outputs would not be covered by the DP
    guarantee, which extends only to functions of the DP-trained model alone."""

    name = "dp_sgd"
    stats: ClassVar[dict[str, type]] = {
        "epsilon": float, "delta": float, "noise_multiplier": float, "sample_rate": float,
        "dp_steps": int, "accountant": str}
    epsilon: float = 8.0
    delta: float | None = None
    max_grad_norm: float = 1.0
    accountant: str = "prv"
    lr: float | None = None
    epochs: int | None = None
    batch_size: int | None = None

    def __post_init__(self):
        check(self.epsilon > 0, "epsilon", f"must be > 0 (inf for no DP), got {self.epsilon}")
        check(self.delta is None or 0 < self.delta < 1, "delta",
              f"must be in (0, 1), got {self.delta}")
        check(self.max_grad_norm > 0, "max_grad_norm", f"must be > 0, got {self.max_grad_norm}")
        check_choice(self.accountant, ACCOUNTANTS, "accountant")
        check(self.lr is None or self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.epochs is None or self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        check(self.batch_size is None or self.batch_size >= 1, "batch_size",
              f"must be >= 1, got {self.batch_size}")

    def training(self, cfg: TrainConfig) -> TrainConfig:
        changes = {k: getattr(self, k) for k in ("lr", "epochs", "batch_size")
                   if getattr(self, k) is not None}
        return dataclasses.replace(cfg, **changes)

    @property
    def private(self) -> bool:
        return math.isfinite(self.epsilon)

    def check(self, exp, data) -> None:
        super().check(exp, data)
        if self.private and exp.output.fits_on_members:
            raise ConfigError("output", f"{exp.output.name} is fitted on the training members, "
                              "so its released outputs are not covered by DP-SGD's "
                              f"epsilon={self.epsilon:g}; use an output defense fitted on "
                              "held-out data only (e.g. temperature) or epsilon=inf")
        if self.private:
            model = make_dp_compatible(build_model(exp.model, data.input_shape,
                                                   data.n_classes), exp.model.name)
            _try_per_example_gradients(model, data.input_shape, exp.model.name)

    def hooks(self, context, cfg: TrainConfig) -> list:
        if not self.private:
            return [ReportOnly({"epsilon": math.inf})]
        delta = self.delta or default_delta(len(context.train_idx))
        return [DPHook(self, delta, cfg.epochs, context.seed)]


class ReportOnly(Hook):
    def __init__(self, stats: dict):
        self.stats = stats

    def report(self) -> dict:
        return self.stats


class DPHook(Hook):
    def __init__(self, cfg: DPSGD, delta: float, epochs: int, seed: int):
        self.cfg, self.delta, self.epochs, self.seed = cfg, delta, epochs, seed

    def prepare(self, model):
        return make_dp_compatible(model, type(model).__name__)

    def setup(self, model, optimizer, loader):
        from opacus import PrivacyEngine

        self.engine = PrivacyEngine(accountant=self.cfg.accountant)
        loader = DataLoader(loader.dataset, batch_size=loader.batch_size,
                            generator=loader.generator)  # Opacus turns it into Poisson sampling
        noise = torch.Generator(device=next(model.parameters()).device).manual_seed(self.seed)
        self.sample_rate = 1.0 / len(loader)  # Opacus' Poisson rate for this loader
        sigma = noise_multiplier(self.cfg.epsilon, self.delta, self.sample_rate, self.epochs,
                                 self.cfg.accountant)
        model, optimizer, loader = self.engine.make_private(
            module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=sigma,
            max_grad_norm=self.cfg.max_grad_norm, poisson_sampling=True, noise_generator=noise)
        self.optimizer = optimizer
        return model, optimizer, loader

    def finish(self, model):
        model.remove_hooks()  # the GradSampleModule's per-example gradient hooks
        return model._module

    def report(self) -> dict:
        steps = sum(n for _, _, n in self.engine.accountant.history)
        return {"epsilon": float(self.engine.get_epsilon(self.delta)), "delta": self.delta,
                "noise_multiplier": float(self.optimizer.noise_multiplier),
                "sample_rate": self.sample_rate, "dp_steps": int(steps),
                "accountant": self.cfg.accountant}
