"""A tiny end-to-end trial of SELENA, each output defense and the label-only and
out-of-distribution attacks on local Ray."""
import textwrap

import pytest

from raymia.results import read_results
from raymia.sweep import main

pytestmark = pytest.mark.ray

SWEEP = """
from ray import tune
from raymia import (EvaluationConfig, Experiment, LabelOnly, Laplace, MemGuard, ModelConfig,
                    NoOutput, QueryConfig, Resources, Rounding, Selena, ShadowConfig,
                    SplitConfig, Sweep, Temperature, TopK, TrainConfig)

sweep = Sweep(
    name="{name}",
    base=Experiment(split=SplitConfig(n_members=60, n_validation=40),
                    model=ModelConfig(widths=(64,)), train=TrainConfig(epochs=10, lr=3e-3),
                    shadows=ShadowConfig(n_models=4, models_per_job=2),
                    attacks={attacks},
                    queries=QueryConfig(boundary_queries=100, boundary_models=1,
                                        boundary_chunk=40, eval_sets=("scaled",)),
                    evaluation=EvaluationConfig(n_resamples=200, choice_rounds=2)),
    space={space},
    resources=Resources(parallel_jobs=2),
)
"""
OUTPUTS = ("{'output': tune.grid_search([TopK(k=1), Rounding(decimals=1), Temperature(), "
           "MemGuard(), Laplace()]), 'defense': tune.grid_search([Selena(K=3, L=1)])}")
LABELS = "{'output': tune.grid_search([NoOutput(), LabelOnly()])}"


def run(root, name, attacks, space):
    (root / f"{name}.py").write_text(textwrap.dedent(SWEEP.format(
        name=name, attacks=attacks, space=space)))
    assert main([str(root / f"{name}.py"), "--results", str(root / name)]) == 0
    return read_results(root / name)


@pytest.fixture(scope="module")
def outputs(ray_session, tmp_path_factory):
    return run(tmp_path_factory.mktemp("o"), "outputs",
               ("loss", "correctness", "lira", "selena_adaptive"), OUTPUTS)


def test_selena_with_every_output_defense_on_ray(outputs):
    trials = outputs["trials"]
    assert (trials.status == "ok").all() and (trials.defense == "selena").all()
    assert set(trials["output.name"]) == {"top_k", "rounding", "temperature", "memguard",
                                          "laplace"}
    # the first trial trains 3 submodels and the target, as many for each of the 4
    # shadow models (like_target), and the attacker's 3 submodels; the others reuse
    # all of them from the cache
    assert trials.models_trained.sum() == 4 + 4 * 4 + 3
    attacks = outputs["attacks"]
    assert set(attacks.eval_set) == {"original", "scaled"}
    assert set(attacks[attacks.attack == "selena_adaptive"].eval_set) == {"original", "scaled"}


def test_label_only_attacks_on_ray(ray_session, tmp_path):
    tables = run(tmp_path, "labels", ("correctness", "augmentation", "boundary"), LABELS)
    attacks = tables["attacks"]
    per_output = attacks.pivot_table(index=["attack", "eval_set"], columns=attacks.trial_id.map(
        tables["trials"].set_index("trial_id")["output.name"]), values="auc")
    assert set(per_output.index) == {(attack, eval_set) for attack in
                                     ("correctness", "augmentation", "boundary",
                                      "attacker_choice")
                                     for eval_set in ("original", "scaled")}
    # the labels are all these attacks use: the same with and without the label-only output,
    # on in-distribution and out-of-distribution non-members
    assert (per_output["none"] == per_output["label_only"]).all()
