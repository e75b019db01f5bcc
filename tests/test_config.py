import math

import pytest

from raymia import (DPSGD, L2, ConfigError, DataConfig, Experiment, LabelSmoothing, ModelConfig,
                    NoDefense, ReferenceConfig, Resources, ShadowConfig, SplitConfig, Sweep,
                    Temperature, TrainConfig)
from raymia.config import flatten, set_path


def test_round_trip_keeps_every_field_and_the_trial_id():
    exp = Experiment(seed=3, defense=L2(weight_decay=0.01), attacks=("loss", "entropy"))
    again = Experiment.from_dict(exp.to_dict())
    assert again == exp
    assert again.trial_id == exp.trial_id


def test_trial_id_changes_with_any_leaf():
    base = Experiment()
    ids = {base.trial_id, Experiment(seed=1).trial_id, Experiment(defense=L2()).trial_id,
           Experiment(defense=L2(weight_decay=1e-2)).trial_id,
           Experiment(train=TrainConfig(lr=0.01)).trial_id}
    assert len(ids) == 5
    assert all(len(i) == 12 for i in ids)


@pytest.mark.parametrize("tree, where", [
    ({"train": {"lr": -1.0}}, "train.lr"),
    ({"train": {"lrr": 0.1}}, "train.lrr"),
    ({"train": {"epochs": "ten"}}, "train.epochs"),
    ({"data": {"name": "mnist"}}, "data.name"),
    ({"model": {"name": "resnet999"}}, "model.name"),
    ({"model": {"name": "torchvision.nonexistent"}}, "model.name"),
    ({"attacks": ["loss", "lira_typo"]}, "attacks[1]"),
    ({"defense": {"name": "dp_typo"}}, "defense.name"),
    ({"defense": {"name": "label_smoothing", "smoothing": 1.0}}, "defense.smoothing"),
    ({"defense": {"name": "l2", "weight_decay": -1}}, "defense.weight_decay"),
    ({"shadows": {"n_models": 3}}, "shadows.n_models"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_fields_name_their_dotted_path(tree, where):
    with pytest.raises(ConfigError) as info:
        Experiment.from_dict(tree)
    assert info.value.where == where
    assert str(info.value).startswith(where + ":")
    assert "\n" not in str(info.value)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="valid: .*digits.*synthetic"):
        Experiment.from_dict({"data": {"name": "mnist"}})


def test_defense_from_name_or_mapping():
    assert Experiment.from_dict({"defense": "none"}).defense == NoDefense()
    exp = Experiment.from_dict({"defense": {"name": "label_smoothing", "smoothing": 0.2}})
    assert exp.defense == LabelSmoothing(0.2)


def test_set_path_and_flatten():
    tree = Experiment().to_dict()
    set_path(tree, "train.lr", 0.5)
    set_path(tree, "defense", L2(weight_decay=0.1))
    flat = flatten(tree)
    assert flat["train.lr"] == 0.5
    assert flat["defense.name"] == "l2" and flat["defense.weight_decay"] == 0.1
    with pytest.raises(ConfigError, match="^nosuch: is not a config section"):
        set_path(tree, "nosuch.lr", 1)


def test_sweep_checks_its_own_fields():
    with pytest.raises(ConfigError, match="sweep.name"):
        Sweep(name="a b")
    with pytest.raises(ConfigError, match="sweep.seeds"):
        Sweep(name="ok", seeds=())
    with pytest.raises(ConfigError, match="sweep.space.seed"):
        Sweep(name="ok", space={"seed": 1})


def test_defaults_are_finite_and_valid():
    exp = Experiment()
    assert math.isfinite(exp.train.lr) and exp.shadows.n_models % 2 == 0
    assert set(exp.attacks) == {"correctness", "confidence", "entropy", "modified_entropy", "loss"}


def test_trial_ids_of_earlier_configs_stay_the_same():
    """Sections added later (output, queries) count only when not at their defaults,
    so a results directory from before them resumes instead of retraining."""
    from raymia import QueryConfig, TopK

    assert Experiment().trial_id == "23530781d7cb"  # the id before those sections existed
    assert Experiment(output=TopK(k=2)).trial_id != Experiment().trial_id
    assert Experiment(queries=QueryConfig(shift=2)).trial_id != Experiment().trial_id


@pytest.mark.parametrize("make, expect", [
    (lambda: TrainConfig(epochs="10"), "train.epochs: expected int, got '10'"),
    (lambda: ModelConfig(widths=(64, "a")),
     "model.widths: expected tuple[int, ...], got (64, 'a')"),
    (lambda: Experiment(attacks="loss"), "attacks: must be a list of attack names, e.g. "
                                         "('loss',), got 'loss'"),
    (lambda: Sweep("s", seeds=(0, 0)), "sweep.seeds: names a seed twice: (0, 0)"),
])
def test_values_of_the_wrong_kind_name_their_field(make, expect):
    with pytest.raises(ConfigError) as info:
        make()
    assert str(info.value) == expect


@pytest.mark.parametrize("make, where", [
    (lambda: ShadowConfig(n_models=3), "shadows.n_models"),
    (lambda: ReferenceConfig(n_models=0), "reference.n_models"),
    (lambda: DataConfig(name="mnist"), "data.name"),
    (lambda: SplitConfig(n_members=1), "split.n_members"),
    (lambda: Resources(cpus_per_job=0), "sweep.resources.cpus_per_job"),
    (lambda: L2(weight_decay=-1), "defense.weight_decay"),
    (lambda: DPSGD(epsilon=-1), "defense.epsilon"),
    (lambda: Temperature(temperature=-1), "output.temperature"),
    (lambda: Experiment.from_dict({"shadows": {"n_models": 3}}), "shadows.n_models"),
    (lambda: Experiment.from_dict({"defense": {"name": "l2", "weight_decay": -1}}),
     "defense.weight_decay"),
])
def test_a_section_built_on_its_own_names_its_place_in_the_experiment(make, where):
    """`base=Experiment(shadows=ShadowConfig(n_models=3))` says shadows, not just n_models;
    built from plain data the section is named once."""
    with pytest.raises(ConfigError) as info:
        make()
    assert info.value.where == where


def test_lira_with_too_few_reference_models_is_refused():
    with pytest.raises(ConfigError, match="^attacks: lira needs >= 4 reference models"):
        Experiment(shadows=ShadowConfig(n_models=2), attacks=("lira",))
    with pytest.raises(ConfigError, match="got 2: raise shadows.n_models"):
        Experiment(reference=ReferenceConfig(n_models=2), attacks=("lira",))
    Experiment(shadows=ShadowConfig(n_models=2), attacks=("rmia",),
               split=SplitConfig(n_shadow_pool=10))  # RMIA is made for few references


def test_a_defense_field_swept_without_its_defense_says_which_defense_has_it():
    from ray import tune

    from raymia.execution.plan import expand

    with pytest.raises(ConfigError, match=r"^defense.weight_decay: unknown field of none; none "
                                          r"has no fields; weight_decay belongs to l2: set "
                                          r"defense to one of them"):
        expand(Sweep("s", space={"defense.weight_decay": tune.grid_search([0.1])}))


def test_a_list_of_spaces_is_their_union():
    from ray import tune

    from raymia import MemGuard, NoOutput
    from raymia.execution.plan import draws, expand

    sweep = Sweep("s", space=[
        {"output": tune.grid_search([NoOutput(), MemGuard()])},
        {"defense": tune.grid_search([DPSGD(epsilon=8.0), DPSGD(epsilon=64.0)])},
    ], seeds=(0, 1))
    trials = expand(sweep)
    assert draws(sweep) == len(trials) == 8  # (2 + 2) configurations x 2 seeds
    pairs = {(e.defense.name, e.output.name) for e in trials}
    assert pairs == {("none", "none"), ("none", "memguard"), ("dp_sgd", "none")}  # no crossing
    with pytest.raises(ConfigError, match=r"^sweep.space: must be a dict .* or a non-empty list"):
        Sweep("s", space=[])
    with pytest.raises(ConfigError, match=r"^sweep.space.seed"):
        Sweep("s", space=[{}, {"seed": 1}])
