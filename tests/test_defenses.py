"""Each defense's mechanism, on small hand-made problems."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from opacus.accountants import create_accountant

from conftest import tiny_experiment
from raymia import (DPSGD, AdvReg, ConfigError, EarlyStopping, Laplace, MemGuard, MixupMMD,
                    ModelConfig, NoOutput, Rounding, SplitConfig, Temperature, TopK, TrainConfig)
from raymia.data.splits import make_splits
from raymia.defenses.advreg import AdvRegHook
from raymia.defenses.dp import DPHook, default_delta
from raymia.defenses.early_stopping import EarlyStoppingHook
from raymia.defenses.mixup_mmd import MixupMMDHook, mmd2
from raymia.experiment import make_jobs
from raymia.train.job import TrainJob, run_job
from raymia.train.hooks import HookContext
from raymia.train.loop import IndexBatches, train_model


def context(digits, n_train=120, n_holdout=120, seed=0):
    order = np.random.default_rng(seed).permutation(len(digits))
    return HookContext(torch.from_numpy(digits.x), torch.from_numpy(digits.y), 10,
                       order[:n_train], order[n_train:n_train + n_holdout], seed)


def linear():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))


def one_dp_step(digits, epsilon, seed, scale=1.0):
    """Parameters before and after one DP-SGD step (plain SGD, lr 1) on digits."""
    ctx = context(digits, seed=0)
    hook = DPHook(DPSGD(epsilon=epsilon, max_grad_norm=1.0, accountant="rdp"), 1e-3, epochs=1,
                  seed=seed)
    model = hook.prepare(linear())
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    model, opt, loader = hook.setup(model, opt, IndexBatches(ctx.train_idx, 60,
                                                        torch.Generator().manual_seed(0)))
    (rows,) = next(iter(loader))
    loss = F.cross_entropy(model(ctx.x[rows] * scale), ctx.y[rows])
    opt.zero_grad()
    loss.backward()
    opt.step()
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    return before, after, hook


def test_dp_clips_each_example_gradient(digits):
    before, after, _ = one_dp_step(digits, epsilon=1e4, seed=0, scale=1e4)  # ~no noise
    # mean of per-example gradients clipped to norm 1: the step is at most lr * 1
    assert 0.01 < float((after - before).norm()) <= 1.0 + 1e-3
    model = linear()  # the same step without DP is thousands of times larger
    ctx = context(digits)
    rows = ctx.train_idx[:60]
    F.cross_entropy(model(ctx.x[rows] * 1e4), ctx.y[rows]).backward()
    assert float(torch.cat([p.grad.flatten() for p in model.parameters()]).norm()) > 100


def test_dp_adds_gaussian_noise_of_the_reported_scale(digits):
    b1, a1, hook = one_dp_step(digits, epsilon=1.0, seed=1)
    b2, a2, _ = one_dp_step(digits, epsilon=1.0, seed=2)
    torch.testing.assert_close(b1, b2)
    diff = (a1 - b1) - (a2 - b2)  # same batch and gradients: only the noise differs
    expected = math.sqrt(2) * hook.optimizer.noise_multiplier * 1.0 / hook.optimizer.expected_batch_size
    assert float(diff.std()) == pytest.approx(expected, rel=0.2)


def test_dp_epsilon_is_the_accountants_and_close_to_the_target(digits):
    idx = np.arange(200)
    job = TrainJob("target", 0, (idx,), (3,), ModelConfig(widths=(32,)),
                   TrainConfig(epochs=5, batch_size=40), DPSGD(epsilon=2.0, accountant="rdp"),
                   np.arange(10))
    stats = run_job(job, digits).stats[0]
    assert stats["delta"] == default_delta(200) == 1e-3
    assert stats["sample_rate"] == pytest.approx(40 / 200) and stats["dp_steps"] == 25
    accountant = create_accountant("rdp")
    accountant.history = [(stats["noise_multiplier"], stats["sample_rate"], stats["dp_steps"])]
    assert accountant.get_epsilon(stats["delta"]) == pytest.approx(stats["epsilon"])
    assert stats["epsilon"] == pytest.approx(2.0, rel=0.05)


def test_infinite_epsilon_is_plain_training(digits):
    idx = np.arange(100)
    make = lambda d: TrainJob("target", 0, (idx,), (3,), ModelConfig(widths=(32,)),  # noqa
                              TrainConfig(epochs=2), d, np.arange(10))
    dp_inf, plain = run_job(make(DPSGD(epsilon=math.inf)), digits), run_job(make(None), digits)
    np.testing.assert_array_equal(dp_inf.logits, plain.logits)
    assert dp_inf.stats[0] == {"epsilon": math.inf}


@pytest.mark.parametrize("n", [1, 9, 10, 99, 100, 150, 999, 1000, 10000])
def test_default_delta_is_the_largest_power_of_ten_below_one_over_n(n):
    delta = default_delta(n)
    assert delta < 1 / n and delta * 10 >= 1 / n
    assert math.log10(delta) == round(math.log10(delta))  # a power of ten


def test_dp_refuses_an_output_defense_fitted_on_the_members(digits):
    from raymia.execution.plan import load_and_check

    split = SplitConfig(60, 0, 30)
    assert {o.name for o in (Laplace(), MemGuard()) if o.fits_on_members} == {"laplace",
                                                                            "memguard"}
    assert not any(o.fits_on_members for o in (NoOutput(), TopK(), Rounding(), Temperature()))
    for output in (MemGuard(), Laplace()):
        exp = tiny_experiment(defense=DPSGD(epsilon=8.0), output=output, split=split)
        with pytest.raises(ConfigError, match=f"^output: {output.name} is fitted on the "
                           "training members, .* epsilon=8;") as info:
            load_and_check([exp])  # the pre-run check, before any training
        assert info.value.where == "output"
    load_and_check([tiny_experiment(defense=DPSGD(epsilon=math.inf), output=MemGuard(),
                                    split=split)])
    load_and_check([tiny_experiment(defense=DPSGD(epsilon=8.0), output=Temperature(),
                                    split=split)])


def test_batchnorm_is_replaced_for_dp(digits):
    from raymia.defenses.dp import make_dp_compatible

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    fixed = make_dp_compatible(model, "test")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fixed.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in fixed.modules())


def test_a_model_opacus_cannot_fix_is_a_config_error(digits, monkeypatch):
    from opacus.validators import ModuleValidator
    from opacus.validators.errors import UnsupportedModuleError

    monkeypatch.setattr(ModuleValidator, "is_valid", staticmethod(lambda m: False))
    monkeypatch.setattr(ModuleValidator, "validate", staticmethod(
        lambda m, strict=False: [UnsupportedModuleError("layer X is not supported")]))
    with pytest.raises(ConfigError, match="^model.name: Opacus cannot make mlp DP-compatible"):
        DPSGD(epsilon=1.0).check(tiny_experiment(), digits)


@pytest.mark.parametrize("make, where", [
    (lambda: DPSGD(epsilon=0.0), "epsilon"), (lambda: DPSGD(epsilon=-1.0), "epsilon"),
    (lambda: DPSGD(delta=1.0), "delta"), (lambda: DPSGD(max_grad_norm=0.0), "max_grad_norm"),
    (lambda: DPSGD(accountant="gdp_typo"), "accountant"), (lambda: AdvReg(alpha=-1.0), "alpha"),
    (lambda: AdvReg(pretrain_epochs=-1), "pretrain_epochs"),
    (lambda: MixupMMD(mixup_alpha=0.0), "mixup_alpha"), (lambda: EarlyStopping(patience=0), "patience"),
])
def test_bad_defense_parameters(make, where):
    with pytest.raises(ConfigError) as info:
        make()
    assert info.value.where == f"defense.{where}"


def test_holdout_defenses_need_validation_data(digits):
    for defense in (AdvReg(), MixupMMD(), EarlyStopping()):
        with pytest.raises(ConfigError, match="^split.n_validation: the .* defense needs held-out"):
            defense.check(tiny_experiment(defense=defense), digits)
        defense.check(tiny_experiment(defense=defense, split=SplitConfig(60, 0, 30)), digits)


def test_holdout_data_is_disjoint_from_what_each_model_is_evaluated_on(digits):
    exp = tiny_experiment(split=SplitConfig(60, 0, 30), defense=EarlyStopping())
    splits = make_splits(len(digits), exp.split, 4, exp.seed)
    jobs = make_jobs(exp, splits)
    np.testing.assert_array_equal(jobs[0].holdout_indices[0], splits.validation)
    assert not set(splits.validation) & set(splits.universe)
    for job in jobs[1:]:
        for holdout in job.holdout_indices:  # the attacker's own, outside the universe
            np.testing.assert_array_equal(holdout, splits.shadow_holdout)
    assert not set(splits.shadow_holdout) & (set(splits.universe) | set(splits.validation))


def test_advreg_inference_model_learns_during_inner_steps(digits):
    ctx = context(digits)
    model = linear()
    for _ in range(200):  # overfit the classifier so members are distinguishable
        loss = F.cross_entropy(model(ctx.x[ctx.train_idx]), ctx.y[ctx.train_idx])
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.5 * p.grad
    hook = AdvRegHook(AdvReg(attack_lr=1e-3), ctx, batch_size=64)
    losses = [hook.attack_step(model, hook.draw_members(), hook.draw_reference(64))
              for _ in range(150)]
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 0.02


def test_advreg_adds_the_privacy_term_after_warmup(digits):
    ctx = context(digits)
    hook = AdvRegHook(AdvReg(alpha=2.0, warmup_epochs=1, attack_steps=1, pretrain_epochs=0),
                      ctx, batch_size=16)
    model = linear()
    rows = torch.as_tensor(ctx.train_idx[:16])
    x, y = hook.batch(ctx.x[rows], ctx.y[rows])
    logits = model(x)
    base = F.cross_entropy(logits, y)
    assert hook.loss(model, logits, y, base) is base  # warm-up: plain loss
    hook.epoch_end(0, model)
    regularized = hook.loss(model, logits, y, base)
    membership = torch.sigmoid(hook.attack(F.softmax(logits, 1), F.one_hot(y, 10).float()))
    assert float(regularized) == pytest.approx(float(base + 2.0 * (membership.mean() - 0.5)))
    assert len(hook.attack_losses) == 1


def recording(hook):
    """Record the (members, reference) rows of each of the hook's inference-model steps."""
    steps, step = [], hook.attack_step

    def record(model, members, reference):
        steps.append((members.tolist(), reference.tolist()))
        return step(model, members, reference)
    hook.attack_step = record
    return steps


def test_advreg_inference_steps_draw_their_own_batches(digits):
    ctx = context(digits)
    hook = AdvRegHook(AdvReg(warmup_epochs=0, attack_steps=5, pretrain_epochs=0), ctx,
                      batch_size=16)
    steps = recording(hook)
    model = linear()
    rows = torch.as_tensor(ctx.train_idx[:16])  # the classifier's current batch
    x, y = hook.batch(ctx.x[rows], ctx.y[rows])
    logits = model(x)
    hook.loss(model, logits, y, F.cross_entropy(logits, y))
    assert len(steps) == 5
    members, holdout = set(ctx.train_idx.tolist()), set(ctx.holdout_idx.tolist())
    for drawn, reference in steps:
        assert len(drawn) == len(set(drawn)) == 16 and set(drawn) <= members
        assert set(drawn) != set(rows.tolist())  # not the classifier's batch
        assert len(reference) == 16 and set(reference) <= holdout
    assert len({tuple(drawn) for drawn, _ in steps}) == 5  # a fresh batch for each step


def test_advreg_pretrains_the_inference_model_when_the_warmup_ends(digits):
    ctx = context(digits)  # 120 members
    cfg = AdvReg(warmup_epochs=1, attack_steps=2, pretrain_epochs=3)
    hook = AdvRegHook(cfg, ctx, batch_size=32)
    steps = recording(hook)
    per_epoch = []
    epoch_end = hook.epoch_end
    hook.epoch_end = lambda epoch, model: per_epoch.append(len(steps)) or epoch_end(epoch, model)
    train_model(linear(), ctx.x, ctx.y, ctx.train_idx, TrainConfig(epochs=3, batch_size=32),
                [hook], torch.Generator().manual_seed(0))
    # no step during the warm-up; then 3 passes of ceil(120 / 32) = 4 batches, and 2
    # steps before each of the 4 classifier steps of each of the 2 remaining epochs
    assert per_epoch == [0, 3 * 4 + 2 * 4, 3 * 4 + 2 * 8]
    assert len(hook.attack_losses) == per_epoch[-1]
    for p in range(3):  # each pass: every member once, in its own order
        sizes = [len(m) for m, _ in steps[4 * p:4 * p + 4]]
        drawn = sum((m for m, _ in steps[4 * p:4 * p + 4]), [])
        assert sizes == [32, 32, 32, 24] and sorted(drawn) == sorted(ctx.train_idx.tolist())
        assert all(len(r) == len(m) for m, r in steps[4 * p:4 * p + 4])
    assert [m for m, _ in steps[0:4]] != [m for m, _ in steps[4:8]]
    # warmup_epochs=0: pre-trained before the very first classifier step
    hook = AdvRegHook(AdvReg(warmup_epochs=0, attack_steps=1, pretrain_epochs=2), ctx, 32)
    steps = recording(hook)
    rows = torch.as_tensor(ctx.train_idx[:32])
    model = linear()
    logits = model(ctx.x[rows])
    hook.loss(model, logits, ctx.y[rows], F.cross_entropy(logits, ctx.y[rows]))
    assert len(steps) == 2 * 4 + 1


def test_mixup_mixes_inputs_and_labels_with_the_drawn_lambda(digits):
    ctx = context(digits)
    hook = MixupMMDHook(MixupMMD(mixup_alpha=0.4), ctx)
    rows = torch.as_tensor(ctx.train_idx[:32])
    x, y = ctx.x[rows], ctx.y[rows]
    mixed_x, target = hook.batch(x, y)
    lam = hook.lam
    assert 0 < lam < 1 and target.shape == (32, 10)
    torch.testing.assert_close(target.sum(1), torch.ones(32))
    onehot = F.one_hot(y, 10).float()
    # each mixed row is lam * row i + (1 - lam) * row j for the j its target names
    for i in range(32):
        partners = [j for j in range(32) if torch.allclose(
            target[i], lam * onehot[i] + (1 - lam) * onehot[j])]
        assert any(torch.allclose(mixed_x[i], lam * x[i] + (1 - lam) * x[j]) for j in partners)


def test_mmd_is_zero_for_equal_samples_and_positive_otherwise():
    a = torch.softmax(torch.randn(20, 5, generator=torch.Generator().manual_seed(0)), 1)
    assert float(mmd2(a, a)) == pytest.approx(0.0, abs=1e-6)
    b = torch.full((20, 5), 0.2)
    assert float(mmd2(a, b)) > 0.01


def test_mmd_term_only_while_the_gap_is_large(digits):
    ctx = context(digits)
    hook = MixupMMDHook(MixupMMD(gap_threshold=0.99), ctx)
    model = linear()
    rows = torch.as_tensor(ctx.train_idx[:32])
    x, t = hook.batch(ctx.x[rows], ctx.y[rows])
    base = F.cross_entropy(model(x), t)
    hook.epoch_end(0, model)  # gap of an untrained model < 0.99
    assert not hook.mmd_active and hook.loss(model, None, t, base) is base
    hook.cfg = MixupMMD(gap_threshold=0.0, mmd_weight=10.0)
    hook.mmd_active = True
    assert float(hook.loss(model, None, t, base)) > float(base)


def test_mmd_validation_outputs_get_no_gradient(digits):
    ctx = context(digits)
    ctx.x = ctx.x.clone().requires_grad_(True)  # to see which inputs the loss reaches
    hook = MixupMMDHook(MixupMMD(mmd_weight=10.0), ctx)
    hook.mmd_active = True
    model = linear()
    rows = torch.as_tensor(ctx.train_idx[:32])
    x, t = hook.batch(ctx.x[rows], ctx.y[rows])
    base = F.cross_entropy(model(x), t)
    loss = hook.loss(model, None, t, base)
    assert float(loss) > float(base)  # the MMD term is there
    grad = torch.autograd.grad(loss, ctx.x)[0]
    assert float(grad[rows].abs().sum()) > 0
    # the validation batch is a constant target: nothing flows back through it
    assert float(grad[torch.as_tensor(ctx.holdout_idx)].abs().sum()) == 0.0


def test_early_stopping_keeps_the_best_validation_epoch(digits, monkeypatch):
    ctx = context(digits)
    hook = EarlyStoppingHook(patience=3, context=ctx)
    losses = iter([3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 0.5])
    monkeypatch.setattr(hook, "validation_loss", lambda model: next(losses))
    model = torch.nn.Linear(1, 1, bias=False)
    stopped_at = None
    for epoch in range(7):
        with torch.no_grad():
            model.weight.fill_(epoch)
        if hook.epoch_end(epoch, model):
            stopped_at = epoch
            break
    assert stopped_at == 5  # three epochs without improving on epoch 2
    assert float(hook.finish(model).weight) == 2.0
    assert hook.report() == {"best_epoch": 3}


def test_resnet_trains_under_dp_and_a_model_opacus_cannot_handle_fails_early():
    from raymia.defenses.dp import _try_per_example_gradients, make_dp_compatible
    from raymia.execution.plan import load_and_check
    from raymia.models import build_model

    # torchvision's residual blocks add in place; made out of place, Opacus handles them
    load_and_check([tiny_experiment(defense=DPSGD(), model=ModelConfig(name="cifar_resnet18"))])
    model = make_dp_compatible(build_model(ModelConfig(name="cifar_resnet18"), (3, 8, 8), 10),
                               "cifar_resnet18")
    x = torch.randn(2, 3, 8, 8)
    plain = build_model(ModelConfig(name="cifar_resnet18"), (3, 8, 8), 10)
    assert type(model.layer1[0]).forward is not type(plain.layer1[0]).forward
    assert model(x).shape == (2, 10)
    import copy

    from raymia.defenses.dp import _out_of_place

    swapped = copy.deepcopy(plain)
    _out_of_place(swapped)  # the same function: equal outputs with equal parameters
    torch.testing.assert_close(swapped.eval()(x), plain.eval()(x))

    class AddsInPlace(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 3)

        def forward(self, x):
            out = self.a(x)
            out += x
            return self.b(out)

    with pytest.raises(ConfigError, match="model.name: adds_in_place cannot train under DP-SGD"):
        _try_per_example_gradients(AddsInPlace(), (4,), "adds_in_place")
