"""A model trained elsewhere: safe loading, its ids, its splits, the audit of it."""
import os

import numpy as np
import pytest
import torch
from conftest import QUICK, tiny_experiment
from torch import nn

from raymia import ConfigError, ModelConfig, SplitConfig, Target
from raymia.data.splits import make_splits
from raymia.execution.inprocess import InProcessExecutor
from raymia.experiment import run_trial
from raymia.sweep import main
from raymia.target import fit_weights, load_target, load_weights, read_ids


def user_mlp(width=64):
    """What a user writes in plain PyTorch: the layout of raymia's `mlp`."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))


def train_plainly(digits, members, epochs=15, lr=3e-3, batch=16, seed=0):
    """A user's own training loop, not raymia's."""
    torch.manual_seed(seed)
    model = user_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = torch.from_numpy(digits.x), torch.from_numpy(digits.y)
    rows = torch.as_tensor(members)
    for _ in range(epochs):
        for b in torch.randperm(len(rows)).split(batch):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[rows[b]]), y[rows[b]]).backward()
            opt.step()
    return model


def saved(tmp_path, model, members, name="weights.pt"):
    torch.save(model.state_dict(), tmp_path / name)
    np.save(tmp_path / "members.npy", members)
    return Target(weights=str(tmp_path / name), members=str(tmp_path / "members.npy"))


def one_line(e) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


# --- loading ----------------------------------------------------------------------------------

def test_a_state_dict_loads_as_arrays_plain_wrapped_or_from_data_parallel(tmp_path):
    sd = user_mlp().state_dict()
    for i, obj in enumerate([sd, {"state_dict": sd},
                             {f"module.{k}": v for k, v in sd.items()}]):
        torch.save(obj, tmp_path / f"w{i}.pt")
        got = load_weights(str(tmp_path / f"w{i}.pt"))
        assert set(got) == set(sd)
        assert all(np.array_equal(got[k], sd[k].numpy()) for k in sd)


def test_safetensors_load(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    sd = user_mlp().state_dict()
    safetensors.save_file(sd, str(tmp_path / "w.safetensors"))
    got = load_weights(str(tmp_path / "w.safetensors"))
    assert np.array_equal(got["1.weight"], sd["1.weight"].numpy())


class Payload:
    def __reduce__(self):  # what a malicious pickle does: run code when loaded
        return (print, ("unpickled!",))


@pytest.mark.parametrize("kind", ["whole_model", "plain_pickle", "garbage", "missing"])
def test_a_pickled_or_unreadable_checkpoint_is_refused_in_one_line(tmp_path, kind, capsys):
    path = tmp_path / "w.pt"
    if kind == "whole_model":
        torch.save(user_mlp(), path)
    elif kind == "plain_pickle":
        torch.save({"w": Payload()}, path)
    elif kind == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ConfigError) as e:
        load_weights(str(path))
    text = one_line(e)
    assert text.startswith("target.weights: ") and str(path) in text
    expect = {"whole_model": "pickled", "plain_pickle": "pickled",
              "garbage": "not a torch checkpoint", "missing": "no such file"}[kind]
    assert expect in text
    assert "unpickled!" not in capsys.readouterr().out  # nothing ran


def test_weights_that_do_not_fit_the_model_are_one_line(digits):
    sd = {k: v.numpy() for k, v in user_mlp(width=32).state_dict().items()}
    with pytest.raises(ConfigError) as e:
        fit_weights(ModelConfig(name="mlp", widths=(64,)), digits, sd)
    assert "1.weight is (32, 64) in the file, (64, 64) in the model" in one_line(e)
    with pytest.raises(ConfigError) as e:
        fit_weights(ModelConfig(name="mlp", widths=(64, 64)), digits, sd)
    assert "missing 5.bias, 5.weight" in one_line(e)
    model = fit_weights(ModelConfig(name="mlp", widths=(32,)), digits, sd)
    assert torch.equal(model[1].weight, torch.from_numpy(sd["1.weight"]))


# --- ids ----------------------------------------------------------------------------------------

def test_ids_from_npy_mask_or_text(tmp_path):
    np.save(tmp_path / "ids.npy", np.array([5, 1, 3]))
    mask = np.zeros(10, bool)
    mask[[1, 3, 5]] = True
    np.save(tmp_path / "mask.npy", mask)
    (tmp_path / "ids.txt").write_text("5\n1\n3\n")
    (tmp_path / "ids.csv").write_text("5,1, 3")
    for name in ("ids.npy", "mask.npy", "ids.txt", "ids.csv"):
        assert read_ids(str(tmp_path / name), 10, "target.members").tolist() == [1, 3, 5]


@pytest.mark.parametrize("content, expect", [
    (np.array([1, 10]), "sample id 10 is outside the dataset's 10 examples"),
    (np.array([1, 1, 2]), "1 sample ids are repeated"),
    (np.array([0.5, 1.0]), "needs integer sample ids or a boolean mask"),
    (np.zeros(9, bool), "a mask of 9 entries for a dataset of 10 examples"),
    (np.array([1, "x"], dtype=object), "object (pickled) arrays"),
    (np.zeros(0, np.int64), "names no sample id"),
])
def test_bad_id_files_are_one_line(tmp_path, content, expect):
    path = tmp_path / "ids.npy"
    np.save(path, content, allow_pickle=True)
    with pytest.raises(ConfigError) as e:
        read_ids(str(path), 10, "target.members")
    text = one_line(e)
    assert text.startswith(f"target.members: {path}") and expect in text


def test_a_text_id_that_is_not_a_number_is_named(tmp_path):
    (tmp_path / "ids.txt").write_text("1\nseven\n")
    with pytest.raises(ConfigError, match="'seven' is not an integer sample id"):
        read_ids(str(tmp_path / "ids.txt"), 10, "target.members")


# --- config and splits -------------------------------------------------------------------------

def test_target_config_rules(tmp_path):
    with pytest.raises(ConfigError, match="target.members: needs the sample ids"):
        Target(weights="w.pt")
    with pytest.raises(ConfigError, match="target.weights: members are given without"):
        Target(members="m.npy")
    target = Target(weights="w.pt", members="m.npy")
    assert target.weights == os.path.join(os.getcwd(), "w.pt")  # absolute: trials run elsewhere
    assert target.digest is None  # no file yet
    with pytest.raises(ConfigError, match="split.canaries: a model trained elsewhere"):
        tiny_experiment(split=SplitConfig(n_members=60, canaries=10), target=target)
    assert tiny_experiment().trial_id == tiny_experiment(target=Target()).trial_id


def test_the_digest_follows_the_files_and_a_changed_file_fails(tmp_path, digits):
    members = np.arange(60)
    target = saved(tmp_path, user_mlp(), members)
    again = saved(tmp_path, user_mlp(), members)  # another model under the same name
    assert target.digest and again.digest != target.digest
    exp_old, exp_new = tiny_experiment(target=target), tiny_experiment(target=again)
    assert exp_old.trial_id != exp_new.trial_id
    assert load_target(exp_new, digits) is not None
    with pytest.raises(ConfigError, match="target: .* changed"):
        load_target(exp_old, digits)


def test_splits_around_known_members():
    members = np.arange(0, 200, 2)
    s = make_splits(1000, SplitConfig(n_members=10, n_shadow_pool=50, n_validation=20), 4, 0,
                    known=(members, None))
    assert np.array_equal(s.members, members)  # every member, whatever n_members says
    assert len(s.nonmembers) == len(members)
    rest = np.concatenate([s.nonmembers, s.shadow_pool, s.validation, s.shadow_holdout])
    assert len(np.unique(rest)) == len(rest) and not np.isin(rest, members).any()
    assert (s.keep.sum(1) == len(members)).all()  # references train on as many as the target
    known_out = np.arange(1, 400, 2)
    s = make_splits(1000, SplitConfig(n_shadow_pool=10), 4, 0, known=(members, known_out))
    assert np.isin(s.nonmembers, known_out).all() and np.isin(s.shadow_pool, known_out).all()
    with pytest.raises(ConfigError, match="needs 250 non-members .* holds 200 known non-members"):
        make_splits(1000, SplitConfig(n_shadow_pool=150), 4, 0, known=(members, known_out))


# --- the audit --------------------------------------------------------------------------------

def test_the_audit_answers_with_the_users_model_and_agrees_with_raymias_own(tmp_path, digits):
    """A model trained by a plain PyTorch loop on ids the user chose: the trial's
    accuracies are that model's own, and LiRA on it agrees, within the
    intervals, with raymia's own target of the same recipe and seed."""
    exp = tiny_experiment(split=SplitConfig(n_members=100), attacks=("loss", "lira"),
                          evaluation=QUICK)
    members = np.random.default_rng(1).permutation(len(digits))[:100]
    model = train_plainly(digits, members, epochs=exp.train.epochs, lr=exp.train.lr,
                          batch=exp.train.batch_size)
    user = tiny_experiment(split=exp.split, attacks=exp.attacks,
                           target=saved(tmp_path, model, members))
    ex = InProcessExecutor(digits)
    theirs, ours = run_trial(user, digits, ex), run_trial(exp, digits, ex)
    with torch.no_grad():
        pred = model(torch.from_numpy(digits.x)).argmax(1).numpy()
    row = theirs["trials"].iloc[0]
    assert row["train_acc"] == pytest.approx((pred[members] == digits.y[members]).mean())
    assert row["epochs_run"] == 0 and row["n_members"] == 100
    audit = theirs["scores"].query("attack == 'loss' and variant == 'global'")
    assert set(audit.sample_id[audit.is_member]) == set(members)
    nonmembers = audit.sample_id[~audit.is_member].to_numpy()
    assert row["test_acc"] == pytest.approx((pred[nonmembers] == digits.y[nonmembers]).mean())

    def lira(tables):
        a = tables["attacks"]
        return a[(a.attack == "lira") & (a.variant == "online") & (a.eval_set == "original")
                 ].iloc[0]
    mine, own = lira(theirs), lira(ours)
    assert mine["auc"] > 0.55 and own["auc"] > 0.55  # both leak: a loaded model is no coin
    assert mine["auc_lo"] <= own["auc_hi"] and own["auc_lo"] <= mine["auc_hi"]


def sweep_text(target: str) -> str:
    return f'''
from raymia import DataConfig, Experiment, ModelConfig, ShadowConfig, SplitConfig, Sweep, TrainConfig
from raymia import Target
sweep = Sweep(name="mine", base=Experiment(
    data=DataConfig(name="digits"), split=SplitConfig(n_members=60),
    model=ModelConfig(name="mlp", widths=(64,)), train=TrainConfig(epochs=2),
    shadows=ShadowConfig(n_models=2), target={target}))
'''


@pytest.mark.parametrize("problem", ["pickled", "architecture", "ids"])
def test_the_sweep_refuses_a_bad_target_in_one_line_exit_2(tmp_path, capsys, problem):
    members = np.arange(60) if problem != "ids" else np.array([3, 5000])
    if problem == "pickled":
        torch.save(user_mlp(), tmp_path / "weights.pt")
        np.save(tmp_path / "members.npy", members)
    else:
        saved(tmp_path, user_mlp(width=32 if problem == "architecture" else 64), members)
    target = f'Target(weights="{tmp_path}/weights.pt", members="{tmp_path}/members.npy")'
    (tmp_path / "s.py").write_text(sweep_text(target))
    assert main([str(tmp_path / "s.py"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    expect = {"pickled": "target.weights: ", "architecture": "do not fit model mlp",
              "ids": "sample id 5000 is outside"}[problem]
    assert err.startswith("raymia: error: target.") and expect in err


def test_a_pickle_is_never_unpickled(tmp_path):
    """Not even through the member ids: a .npy of objects is refused, not loaded."""
    path = tmp_path / "m.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array(f, np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(ConfigError, match="object"):
        read_ids(str(path), 10, "target.members")


OWN_MODEL = '''
import torch
from torch import nn
from raymia import DataConfig, Experiment, ModelConfig, ShadowConfig, SplitConfig, Sweep, Target
from raymia import TrainConfig
from raymia.registry import MODELS


class UserNet(nn.Module):
    """The user's own architecture, registered from the sweep file."""

    def __init__(self, input_shape, n_classes, **_):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.Tanh())
        self.head = nn.Linear(48, n_classes)

    def forward(self, x):
        return self.head(self.body(x))


MODELS.register("user_net", UserNet)
torch.save(UserNet((1, 8, 8), 10).state_dict(), {weights!r})  # as the user's script would
sweep = Sweep(name="own", base=Experiment(
    data=DataConfig(name="digits"), split=SplitConfig(n_members=60),
    model=ModelConfig(name="user_net"), train=TrainConfig(epochs=2),
    shadows=ShadowConfig(n_models=2), target=Target(weights={weights!r}, members={members!r})))
'''


def test_a_target_of_an_architecture_the_sweep_file_registers(tmp_path, restored_registries,
                                                              digits):
    from raymia.sweep import load_sweep

    np.save(tmp_path / "members.npy", np.arange(60))
    path = tmp_path / "own.py"
    path.write_text(OWN_MODEL.format(weights=str(tmp_path / "w.pt"),
                                     members=str(tmp_path / "members.npy")))
    exp = load_sweep(str(path)).base
    tables = run_trial(exp, digits, InProcessExecutor(digits))
    assert tables["trials"].iloc[0]["model"] == "user_net"
    assert tables["trials"].iloc[0]["epochs_run"] == 0
    assert main([str(path), "--dry-run"]) == 0
