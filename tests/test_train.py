import numpy as np
import pytest
import torch

from raymia import L2, LabelSmoothing, ModelConfig, TrainConfig
from raymia.train.hooks import Hook
from raymia.train.job import TrainJob, run_job
from raymia.train.loop import TrainingDiverged, train_model


def job(digits, seeds=(1, 2), epochs=10, defense=None, **train):
    gen = np.random.default_rng(0)
    idx = tuple(np.sort(gen.choice(len(digits), 200, replace=False)) for _ in seeds)
    return TrainJob("shadow", 0, idx, tuple(seeds), ModelConfig(widths=(64,)),
                    TrainConfig(epochs=epochs, lr=3e-3, **train), defense, np.arange(300))


def test_a_job_trains_each_model_and_returns_logits(digits):
    result = run_job(job(digits), digits)
    assert result.logits.shape == (2, 300, 10) and result.logits.dtype == np.float32
    assert (result.train_acc > 0.85).all()  # 200 digits, 10 epochs: learns its training set
    assert result.epochs_run.tolist() == [10, 10]
    assert result.queries == {} and result.boundary is None
    assert result.device == "cpu" and result.finished_at >= result.started_at


def test_same_seed_same_model_other_seed_other_model(digits):
    a = run_job(job(digits, seeds=(5, 6)), digits)
    b = run_job(job(digits, seeds=(5, 7)), digits)
    np.testing.assert_array_equal(a.logits[0], b.logits[0])
    assert not np.array_equal(a.logits[1], b.logits[1])


def test_global_rng_is_left_alone(digits):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run_job(job(digits, seeds=(1,), epochs=1), digits)
    assert torch.equal(torch.rand(3), expected)


def test_defenses_change_the_training_config(digits):
    cfg = TrainConfig()
    assert L2(weight_decay=0.3).training(cfg).weight_decay == 0.3
    assert LabelSmoothing(smoothing=0.2).training(cfg).label_smoothing == 0.2
    plain = run_job(job(digits, seeds=(1,), epochs=3), digits)
    smoothed = run_job(job(digits, seeds=(1,), epochs=3, defense=LabelSmoothing(0.5)), digits)
    assert not np.array_equal(plain.logits, smoothed.logits)
    # smoothing keeps the model less confident on its training data
    conf = lambda r: torch.softmax(torch.from_numpy(r.logits[0]), 1).max(1).values.mean()  # noqa
    assert conf(smoothed) < conf(plain)


class Recorder(Hook):
    def __init__(self, stop_after):
        self.stop_after, self.calls = stop_after, []

    def setup(self, model, optimizer, loader):
        self.calls.append(("setup", len(loader.dataset), len(loader)))
        return model, optimizer, loader

    def report(self):
        return {"batches_seen": sum(c[0] == "batch" for c in self.calls)}

    def batch(self, x, target):
        self.calls.append(("batch", len(x)))
        return x, target

    def epoch_end(self, epoch, model):
        self.calls.append(("epoch", epoch))
        return epoch + 1 >= self.stop_after


def test_hooks_are_called_and_can_stop_training(digits):
    x, y = torch.from_numpy(digits.x), torch.from_numpy(digits.y)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    hook = Recorder(stop_after=2)
    _, log = train_model(model, x, y, np.arange(50), TrainConfig(epochs=10, batch_size=20),
                         [hook], torch.Generator().manual_seed(0))
    assert log.epochs_run == 2 and log.stats == {"batches_seen": 6}
    assert hook.calls[0] == ("setup", 50, 3)
    assert [c for c in hook.calls if c[0] == "batch"] == [("batch", 20), ("batch", 20),
                                                          ("batch", 10)] * 2


def test_a_diverging_loss_raises(digits):
    x, y = torch.from_numpy(digits.x) * 1e30, torch.from_numpy(digits.y)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with pytest.raises(TrainingDiverged, match="training loss became"):
        train_model(model, x, y, np.arange(50), TrainConfig(optimizer="sgd", lr=1e10, epochs=3),
                    [], torch.Generator().manual_seed(0))
