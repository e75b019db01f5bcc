"""Output defenses end to end: configured on the experiment, applied where the model
lives, composed with any training defense, seen by every attack."""
import numpy as np
import pytest

from conftest import tiny_experiment
from raymia import (L2, ConfigError, Experiment, LabelOnly, Laplace, MemGuard, Rounding,
                    ShadowConfig, SplitConfig, Temperature, TopK)
from raymia.execution.inprocess import InProcessExecutor
from raymia.execution.plan import load_and_check
from raymia.experiment import run_trial

HELD_OUT = SplitConfig(n_members=60, n_validation=40)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("models"))


def trial(digits, cache, **changes):
    exp = tiny_experiment(split=HELD_OUT, **changes)
    return run_trial(exp, digits, InProcessExecutor(digits), cache_dir=cache)


@pytest.fixture(scope="module")
def plain(digits, cache):
    return trial(digits, cache)


def _scores(tables, attack, variant="global"):
    s = tables["scores"]
    return s[(s.attack == attack) & (s.variant == variant)].score.to_numpy()


@pytest.mark.parametrize("output", [TopK(k=1), Rounding(decimals=1), Temperature(),
                                    Temperature(temperature=3.0), MemGuard(epsilon=1.0),
                                    Laplace()], ids=lambda o: o.name)
def test_every_output_defense_keeps_the_labels_and_shares_the_trained_models(
        digits, cache, plain, output):
    tables = trial(digits, cache, output=output)
    trials = tables["trials"]
    assert trials.models_trained.item() == 0 and trials.models_cached.item() == 5
    assert trials["output.name"].item() == output.name
    if output.name != "laplace":  # the one that may move a label
        assert trials.test_acc.item() == plain["trials"].test_acc.item()
        np.testing.assert_array_equal(_scores(tables, "correctness"),
                                      _scores(plain, "correctness"))
    assert not np.array_equal(_scores(tables, "loss"), _scores(plain, "loss"))


def test_label_only_leaves_the_correctness_signal_alone(digits, cache, plain):
    tables = trial(digits, cache, output=LabelOnly(), attacks=("correctness",))
    signals = tables["signals"]
    assert set(np.round(signals.p_true, 6)) <= {0.0, 1.0}
    assert (signals.correct == (signals.p_true > 0.5)).all()
    np.testing.assert_array_equal(_scores(tables, "correctness"), _scores(plain, "correctness"))


def test_rounding_leaves_attacks_a_handful_of_score_values(digits, cache, plain):
    """Tenths, read back as a distribution: p_true is a ratio of small integers."""
    rounded = trial(digits, cache, output=Rounding(decimals=1))["signals"]
    assert len(np.unique(rounded.p_true.round(6))) <= 40
    assert len(np.unique(plain["signals"].p_true.round(6))) > 300


def test_memguard_composes_with_a_training_defense(digits, cache):
    tables = trial(digits, cache, defense=L2(weight_decay=1e-2), output=MemGuard())
    trials = tables["trials"]
    assert trials.defense.item() == "l2" and trials["output.name"].item() == "memguard"
    assert trials.status.item() == "ok"


@pytest.mark.parametrize("build, where", [
    (lambda: Experiment(output=LabelOnly()), "attacks[1]"),
    (lambda: Experiment.from_dict({"output": {"name": "top_k", "k": 0}}), "output.k"),
    (lambda: Experiment.from_dict({"output": {"name": "temperature", "temperature": 0}}),
     "output.temperature"),
    (lambda: Experiment.from_dict({"output": {"name": "rounding", "decimals": -1}}),
     "output.decimals"),
    (lambda: Experiment.from_dict({"output": {"name": "blur"}}), "output.name"),
])
def test_bad_output_settings_fail_before_training(build, where):
    with pytest.raises(ConfigError) as info:
        build()
    assert info.value.where == where and "\n" not in str(info.value)


def test_defenses_that_need_held_out_data_say_so():
    with pytest.raises(ConfigError, match="split.n_validation: the memguard output defense"):
        load_and_check([tiny_experiment(output=MemGuard())])
    with pytest.raises(ConfigError, match="output.k: must be <= the 10 classes"):
        load_and_check([tiny_experiment(output=TopK(k=11))])


def test_released_labels_survive_the_float32_cast():
    """Top classes one float32 step apart: the released label is still the model's."""
    import torch

    from raymia.train.hooks import HookContext
    from raymia.train.job import _answerer

    c = 4
    model = torch.nn.Linear(c, c, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(c))
    gen = np.random.default_rng(0)
    top = gen.uniform(0, 5, 2000).astype(np.float32)
    logits = np.stack([top, np.nextafter(top, np.float32(-np.inf)),
                       top - 3, top - 4], 1).astype(np.float32)
    context = HookContext(torch.zeros(1, c), torch.zeros(1, dtype=torch.long), c,
                          np.zeros(0, int), np.zeros(0, int), 0)
    for output in (Temperature(temperature=100.0), Temperature(temperature=3.0),
                   Rounding(decimals=9), TopK(k=2)):
        answer, _ = _answerer(model, output, context)
        released = answer(torch.from_numpy(logits), np.arange(len(logits)))
        assert released.dtype == np.float32 and (released.argmax(1) == 0).all(), output


def test_memguard_answers_fan_out_in_chunks_with_the_same_result(digits, tmp_path):
    from raymia.execution.inprocess import InProcessExecutor as Base

    class Recording(Base):
        batches = []

        def run(self, jobs):
            self.batches.append(jobs)
            return super().run(jobs)

    exp = tiny_experiment(split=HELD_OUT, output=MemGuard(chunk=50))
    executor = Recording(digits)
    fanned = run_trial(exp, digits, executor, cache_dir=str(tmp_path))
    whole = run_trial(exp, digits, InProcessExecutor(digits))  # no cache: answered in the job
    chunks = executor.batches[-1]
    assert [len(j.eval_indices) for j in chunks] == [50, 50, 20]  # 120 audit examples
    np.testing.assert_array_equal(fanned["scores"].score, whole["scores"].score)


def test_memguard_fits_its_classifier_once_per_model_with_the_cache(digits, tmp_path,
                                                                     monkeypatch):
    """The target's job and its three chunk jobs share one classifier, as do reruns;
    the classifier's source is part of its key."""
    from raymia.outputs import memguard as mechanism

    fits = []
    original = mechanism.train_defender_classifier
    monkeypatch.setattr(mechanism, "train_defender_classifier",
                        lambda *a, **k: fits.append(1) or original(*a, **k))
    exp = tiny_experiment(split=HELD_OUT, output=MemGuard(chunk=50),
                          shadows=ShadowConfig(n_models=2, models_per_job=2))
    first = run_trial(exp, digits, InProcessExecutor(digits), cache_dir=str(tmp_path))
    assert len(fits) == 1 + exp.shadows.n_models  # the target's, then each shadow's own
    again = run_trial(exp, digits, InProcessExecutor(digits), cache_dir=str(tmp_path))
    assert len(fits) == 1 + exp.shadows.n_models
    np.testing.assert_array_equal(first["scores"].score, again["scores"].score)
    monkeypatch.setattr("raymia.outputs.defenses.source_hash", lambda module: "edited")
    run_trial(exp, digits, InProcessExecutor(digits), cache_dir=str(tmp_path))
    assert len(fits) == 2 * (1 + exp.shadows.n_models)


def test_memguard_keys_each_query_by_its_bytes(digits):
    """Asked twice (under any sample id) a query gets the same answer; distinct
    inputs under one sample id (augmented copies) draw their own coins."""
    import torch

    from raymia.config import ModelConfig
    from raymia.outputs.defenses import FitContext
    from raymia.models import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(name="mlp", widths=(64,)), digits.input_shape, 10)
    x, y = torch.from_numpy(digits.x), torch.from_numpy(digits.y)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(200):  # confident on its 100 members
        loss = torch.nn.functional.cross_entropy(model(x[:100]), y[:100])
        opt.zero_grad()
        loss.backward()
        opt.step()
    ctx = FitContext(model.eval(), x, y, np.arange(100), np.arange(100, 200), seed=3)
    release = MemGuard(epsilon=0.1, classifier_epochs=20, max_iter=50).fit(ctx)
    inputs = torch.cat([x[200:300], x[200:300]])
    with torch.no_grad():  # the same logits for both copies (BLAS may round by batch position)
        logits = np.tile(model(x[200:300]).numpy(), (2, 1))
    twice = release(inputs, logits, np.arange(200))  # one query, two sample ids
    # the same coin and the same search; the batched search may round by batch position
    np.testing.assert_allclose(twice[:100], twice[100:], rtol=0, atol=1e-12)
    probs = np.exp(logits[:100] - logits[:100].max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    noisy = np.abs(twice[:100] - probs).sum(1) > 1e-4
    assert 10 < noisy.sum() < 90  # a small budget: the coin releases some noise, not all
    copies = release(inputs[:100] + 1e-3, logits[:100], np.arange(100))  # same ids, new bytes
    assert (noisy != (np.abs(copies - probs).sum(1) > 1e-4)).any()
