"""Stacked training (raymia.train.stacked) against one model at a time.

Tolerances: the same arithmetic summed in another order (a batched matrix
product, a grouped convolution, a fused optimizer step) rounds differently, by
about float32's epsilon per operation. After one epoch of SGD the weights
agree to 1e-5 relative (1e-6 absolute near 0); with Adam to 1e-5 absolute:
Adam divides each gradient by its own running scale, so rounding in a
gradient near 0 can move that weight by a fraction of the learning rate
(measured: at most 5e-6 at lr 3e-3). Over a whole training
run the rounding differences grow (training is chaotic), so the attack tables
of a trial are compared with a tolerance of 0.02 in AUC: a few near-tied
examples may swap ranks, no more."""
import dataclasses

import numpy as np
import pytest
import torch
from conftest import tiny_experiment
from torch import nn

from raymia import (DPSGD, AdvReg, EarlyStopping, L2, LabelSmoothing, MixupMMD, ModelConfig,
                    NoDefense, ShadowConfig, SplitConfig, TrainConfig)
from raymia.data.splits import make_splits
from raymia.execution.inprocess import InProcessExecutor
from raymia.experiment import make_jobs, run_trial
from raymia.models import build_model
from raymia.registry import DEFENSES
from raymia.train.hooks import Hook, HookContext
from raymia.train.job import run_job
from raymia.train.loop import train_model
from raymia.train.stacked import train_stacked, why_not


def sequential(job):
    return dataclasses.replace(job, train=dataclasses.replace(job.train, engine="sequential"))


def shadow_job(digits, model=ModelConfig(widths=(64,)), epochs=1, defense=NoDefense(),
               n_validation=0, per_job=4, lr=3e-3):
    exp = tiny_experiment(model=model, train=TrainConfig(epochs=epochs, batch_size=16, lr=lr),
                          split=SplitConfig(n_members=60, n_validation=n_validation),
                          shadows=ShadowConfig(n_models=4, models_per_job=per_job),
                          defense=defense)
    splits = make_splits(len(digits), exp.split, 4, exp.seed)
    return make_jobs(exp, splits, kind=digits.kind)[1]


def test_one_epoch_stacked_answers_as_one_at_a_time(digits):
    """A job's models, stacked or not: the same answers on the universe."""
    job = shadow_job(digits, ModelConfig(widths=(64, 32)))
    stacked, alone = run_job(job, digits), run_job(sequential(job), digits)
    assert stacked.stacked.all() and not alone.stacked.any()
    np.testing.assert_allclose(stacked.logits, alone.logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stacked.train_acc, alone.train_acc)


@pytest.mark.parametrize("arch", [ModelConfig(widths=(32,)), ModelConfig(name="small_cnn")])
def test_stacked_weights_directly(digits, arch):
    """train_stacked against train_model, weight by weight, with Adam and weight
    decay, and with SGD and label smoothing; the CNN as grouped convolutions
    (the way a GPU runs it)."""
    x, y = torch.from_numpy(digits.x), torch.from_numpy(digits.y)
    idx = [np.random.default_rng(i).permutation(len(y))[:50] for i in range(3)]
    for cfg in (TrainConfig(epochs=1, batch_size=16, lr=3e-3, weight_decay=1e-3),
                TrainConfig(epochs=1, batch_size=16, lr=0.05, optimizer="sgd",
                            label_smoothing=0.1)):
        def build(seed):
            torch.manual_seed(seed)
            return build_model(arch, digits.input_shape, digits.n_classes)
        stacked = train_stacked([build(s) for s in range(3)], x, y, idx, cfg, [[], [], []],
                                [torch.Generator().manual_seed(s) for s in range(3)])
        for s, (model, log) in enumerate(stacked):
            alone, alone_log = train_model(build(s), x, y, idx[s], cfg, [],
                                           torch.Generator().manual_seed(s))
            assert log.epochs_run == alone_log.epochs_run == 1
            atol = 1e-5 if cfg.optimizer == "adam" else 1e-6  # see the module's docstring
            for (name, p), q in zip(model.named_parameters(), alone.parameters()):
                assert torch.allclose(p, q, rtol=1e-5, atol=atol), name


class StopAt(Hook):
    """Stops its model after a given epoch and keeps the weights it had then."""

    def __init__(self, epoch):
        self.epoch, self.state, self.seen = epoch, None, []

    def epoch_end(self, epoch, model):
        self.seen.append(epoch)
        if epoch == self.epoch:
            self.state = {k: v.clone() for k, v in model.state_dict().items()}
            return True
        return False


def test_a_stopped_model_freezes_while_the_others_train(digits):
    x, y = torch.from_numpy(digits.x), torch.from_numpy(digits.y)
    idx = [np.random.default_rng(i).permutation(len(y))[:48] for i in range(3)]
    cfg = TrainConfig(epochs=6, batch_size=16, lr=3e-3)
    hooks = [[StopAt(1)], [StopAt(99)], [StopAt(3)]]
    models = [build_model(ModelConfig(widths=(32,)), digits.input_shape, 10) for _ in range(3)]
    out = train_stacked(models, x, y, idx, cfg, hooks,
                        [torch.Generator().manual_seed(s) for s in range(3)])
    assert [log.epochs_run for _, log in out] == [2, 6, 4]
    assert hooks[0][0].seen == [0, 1] and hooks[2][0].seen == [0, 1, 2, 3]  # none after the stop
    for (model, _), hook in ((out[0], hooks[0][0]), (out[2], hooks[2][0])):
        for k, v in model.state_dict().items():
            assert torch.equal(v, hook.state[k])  # exactly the weights it stopped with


def test_early_stopping_stacked_matches_one_at_a_time(digits):
    job = shadow_job(digits, epochs=15, defense=EarlyStopping(patience=2), n_validation=40,
                     lr=3e-2)  # overfits within a few epochs: the models stop apart
    stacked, alone = run_job(job, digits), run_job(sequential(job), digits)
    assert stacked.stacked.all()
    assert list(stacked.epochs_run) == list(alone.epochs_run)
    assert [s["best_epoch"] for s in stacked.stats] == [s["best_epoch"] for s in alone.stats]
    assert (stacked.epochs_run < 15).any()  # some model stopped early
    np.testing.assert_allclose(stacked.logits, alone.logits, rtol=1e-3, atol=1e-3)


def test_models_of_two_sizes_stack_in_two_groups(digits):
    job = shadow_job(digits)
    sizes = (job.train_indices[0], job.train_indices[1], job.train_indices[2][:40],
             job.train_indices[3][:40])
    job = dataclasses.replace(job, train_indices=sizes)
    stacked, alone = run_job(job, digits), run_job(sequential(job), digits)
    assert stacked.stacked.all()
    np.testing.assert_allclose(stacked.logits, alone.logits, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("defense, model, reason", [
    (DPSGD(epsilon=8.0), ModelConfig(widths=(32,)), "dp_sgd defense does not stack"),
    (AdvReg(), ModelConfig(widths=(32,)), "adv_reg defense does not stack"),
    (MixupMMD(), ModelConfig(widths=(32,)), "mixup_mmd defense does not stack"),
    (NoDefense(), ModelConfig(name="cifar_resnet18"), "not an nn.Sequential"),
])
def test_what_does_not_stack_says_why(digits, defense, model, reason):
    built = build_model(model, (3, 32, 32), 10)
    assert reason in why_not(built, defense)


def test_convolutions_stack_on_gpus_only(digits):
    cnn = build_model(ModelConfig(name="small_cnn"), digits.input_shape, 10)
    assert why_not(cnn, NoDefense()) is None
    assert why_not(cnn, NoDefense(), torch.device("cuda")) is None
    assert "on GPUs only" in why_not(cnn, NoDefense(), torch.device("cpu"))
    assert not run_job(shadow_job(digits, ModelConfig(name="small_cnn")), digits).stacked.any()


def test_batchnorm_and_dropout_fall_back():
    bn = nn.Sequential(nn.Flatten(), nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    drop = nn.Sequential(nn.Flatten(), nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    assert "BatchNorm1d layers do not stack" in why_not(bn, NoDefense())
    assert "Dropout layers do not stack" in why_not(drop, NoDefense())
    assert why_not(nn.Sequential(nn.Flatten(), nn.Linear(4, 2), nn.Tanh()), L2()) is None


def test_a_defense_that_does_not_stack_trains_one_at_a_time(digits):
    job = shadow_job(digits, defense=DPSGD(epsilon=50.0, accountant="rdp"))
    assert not run_job(job, digits).stacked.any()


def test_stacking_defenses_only_act_at_epoch_ends(digits):
    """A defense that declares `stacks` has hooks the stacked engine can honour."""
    x, y = torch.from_numpy(digits.x), torch.from_numpy(digits.y)
    context = HookContext(x, y, 10, np.arange(40), np.arange(40, 60), 0)
    stacking = [cls for cls in DEFENSES.values() if getattr(cls, "stacks", False)]
    assert {cls.name for cls in stacking} >= {"none", "l2", "label_smoothing", "early_stopping"}
    for cls in stacking:
        for hook in cls().hooks(context, TrainConfig()):
            for step in ("prepare", "setup", "batch", "loss"):
                assert getattr(type(hook), step) is getattr(Hook, step), (cls.name, step)


def test_a_trial_stacked_and_one_at_a_time_give_the_same_attack_tables(digits):
    exp = tiny_experiment(shadows=ShadowConfig(n_models=4, models_per_job=4),
                          defense=LabelSmoothing(smoothing=0.1))
    alone = dataclasses.replace(exp, train=dataclasses.replace(exp.train, engine="sequential"))
    a = run_trial(exp, digits, InProcessExecutor(digits))
    b = run_trial(alone, digits, InProcessExecutor(digits))
    assert a["trials"].iloc[0]["models_stacked"] == 4  # the shadow models; the target alone
    assert b["trials"].iloc[0]["models_stacked"] == 0
    key = ["attack", "variant", "eval_set"]
    merged = a["attacks"].merge(b["attacks"], on=key, suffixes=("_s", "_a"))
    assert len(merged) == len(a["attacks"]) > 5
    assert (merged.auc_s - merged.auc_a).abs().max() <= 0.02
    assert exp.trial_id != alone.trial_id  # the engine is part of what a trial is
    assert exp.trial_id == tiny_experiment(shadows=exp.shadows, defense=exp.defense).trial_id
