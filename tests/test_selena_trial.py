"""SELENA end to end: K submodels as parallel jobs, self-distillation, the adaptive attack."""
import numpy as np
import pytest

from conftest import tiny_experiment
from raymia import (ConfigError, Experiment, QueryConfig, Resources, Selena, ShadowConfig,
                    SplitConfig)
from raymia.data.splits import make_splits
from raymia.selena import mechanism as selena
from raymia.selena.defense import SoftLabels
from raymia.execution.inprocess import InProcessExecutor
from raymia.experiment import make_jobs, run_trial
from raymia.seeding import derive_seed

SPLIT = SplitConfig(n_members=60, n_validation=40)


def selena_experiment(**changes):
    return tiny_experiment(split=SPLIT, defense=Selena(K=4, L=2),
                           attacks=("loss", "confidence", "selena_adaptive"), **changes)


@pytest.fixture(scope="module")
def tables(digits, tmp_path_factory):
    return run_trial(selena_experiment(queries=QueryConfig(eval_sets=("scaled",))), digits,
                     InProcessExecutor(digits), cache_dir=str(tmp_path_factory.mktemp("m")))


def test_a_selena_trial_trains_submodels_distils_and_is_attacked(tables):
    trial = tables["trials"].iloc[0]
    # 4 submodels + the distilled target, as many for each of the 4 shadow models
    # (like_target), and the attacker's 4 submodels
    assert trial.models_trained == 5 + 4 * 5 + 4
    assert trial["defense.K"] == 4 and trial["defense.L"] == 2
    assert 0 <= trial.best_epoch < 15 and trial.test_acc > 0.1  # chosen on validation data
    attacks = tables["attacks"][tables["attacks"].eval_set == "original"]
    adaptive = attacks[attacks.attack == "selena_adaptive"]
    assert sorted(adaptive.variant) == ["ce", "l2", "nn_both", "nn_diff"]
    assert (adaptive.n_members == 30).all() and (adaptive.n_nonmembers == 60).all()
    assert adaptive.auc.between(0, 1).all()
    scores = tables["scores"]
    judged = scores[(scores.attack == "selena_adaptive") & (scores.variant == "ce")
                    & (scores.eval_set == "original")]
    assert len(judged) == 90 and judged.is_member.sum() == 30


def test_the_adaptive_attack_judges_out_of_distribution_non_members_by_the_same_rule(tables):
    rows = tables["attacks"].query("attack == 'selena_adaptive'")
    by_set = rows.set_index(["variant", "eval_set"])
    for variant in ("ce", "l2", "nn_both", "nn_diff"):
        assert by_set.n_nonmembers[(variant, "scaled")] == 60
    for variant in ("ce", "l2"):  # fitted on the attacker's data, never on the OOD set
        assert by_set.threshold[(variant, "scaled")] == by_set.threshold[(variant, "original")]
    scores = tables["scores"].query("attack == 'selena_adaptive' and variant == 'ce'")
    wide = scores.pivot(index=["sample_id", "is_member"], columns="eval_set", values="score")
    members = wide.xs(True, level="is_member")
    np.testing.assert_array_equal(members.original, members.scaled)
    others = wide.xs(False, level="is_member")
    assert (others.original != others.scaled).mean() > 0.9  # x255 inputs: other outputs


def test_the_distilled_model_trains_on_split_ai_soft_labels(digits):
    exp = selena_experiment()
    splits = make_splits(len(digits), exp.split, exp.shadows.n_models, exp.seed)
    jobs = make_jobs(exp, splits)
    plan = exp.defense.stages(exp, jobs[0])
    assert [j.role for j in plan.jobs] == ["selena_submodel"] * 2
    first = InProcessExecutor(digits).run(plan.jobs)
    [target] = plan.finish(first)
    soft = target.defense.targets
    assert soft.shape == (60, 10) and np.allclose(soft.sum(1), 1, atol=1e-5)
    # each member's soft label averages exactly the L = 2 submodels that left it out
    excluded = selena.split_assignment(60, 4, 2, derive_seed(exp.seed, "selena/assignment"))
    sub = np.concatenate([r.logits for r in first])
    probs = np.exp(sub - np.log(np.exp(sub).sum(-1, keepdims=True)))
    for i in range(60):
        np.testing.assert_allclose(soft[i], probs[excluded[i], i].mean(0), rtol=1e-5)
    for k, job_k in enumerate(sum([list(j.train_indices) for j in plan.jobs], [])):
        assert set(job_k) == set(splits.members[~excluded[:, k]])


def test_the_attackers_split_ai_answers_ood_inputs_by_their_own_hash(digits):
    from types import SimpleNamespace

    from scipy.special import softmax

    from raymia.selena.attacker import REFERENCE, Attacker
    from raymia.data.ood import make_ood

    exp = selena_experiment(queries=QueryConfig(eval_sets=("scaled",)))
    splits = make_splits(len(digits), exp.split, exp.shadows.n_models, exp.seed)
    attacker = Attacker(exp, splits, make_jobs(exp, splits)[0])
    results = InProcessExecutor(digits).run(attacker.jobs)
    target = SimpleNamespace(queries={REFERENCE: np.zeros((1, 1, len(splits.shadow_holdout), 10))})
    probs = attacker.signals(digits, results, target)["ood_shadow_probs"]["ood/scaled"]
    x, _ = make_ood("scaled", digits, splits.nonmembers, derive_seed(exp.seed, "ood/scaled"))
    answers = np.concatenate([r.queries["ood/scaled"][:, 0] for r in results])  # (K, n, C)
    soft = softmax(answers.astype(np.float64), axis=-1)
    for i in range(len(x)):
        chosen = selena.query_submodels(x[i:i + 1], attacker.K, attacker.L, attacker.seed)[0]
        np.testing.assert_allclose(probs[i], soft[chosen, i].mean(0), rtol=1e-6)


def test_soft_label_hook_looks_up_each_batch_by_sample_id():
    import torch

    hook = SoftLabels(np.array([7, 3, 5]), np.eye(3, dtype=np.float32))
    _, _, loader = hook.setup(None, None, [(torch.tensor([5, 7]),)])
    for (rows,) in loader:
        _, target = hook.batch(torch.zeros(2, 1), torch.zeros(2))
        assert target.tolist() == [[0, 0, 1], [1, 0, 0]]


def test_submodel_jobs_run_at_the_same_time_on_ray(ray_session, digits):
    import ray

    from raymia.execution.actors import RayExecutor

    exp = tiny_experiment(split=SPLIT, defense=Selena(K=4, L=2),
                          shadows=ShadowConfig(n_models=4, models_per_job=1))
    splits = make_splits(len(digits), exp.split, exp.shadows.n_models, exp.seed)
    plan = exp.defense.stages(exp, make_jobs(exp, splits)[0])
    executor = RayExecutor(ray.put(digits), Resources(parallel_jobs=2))
    try:
        # both workers up first: a worker process still starting would leave
        # every job to the other one on a busy machine
        ray.get([actor.__ray_ready__.remote() for actor in executor.actors])
        results = executor.run(plan.jobs)
    finally:
        executor.close()
    assert len(results) == 4
    spans = sorted((r.started_at, r.finished_at) for r in results)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), "no two submodels overlapped"


@pytest.mark.parametrize("changes, where", [
    ({"defense": {"name": "selena", "K": 1, "L": 1}}, "defense.K"),
    ({"defense": {"name": "selena", "K": 5, "L": 5}}, "defense.L"),
    ({"defense": {"name": "selena", "K": 5, "L": 0}}, "defense.L"),
    ({"attacks": ["selena_adaptive"]}, "attacks"),  # needs the attacker's own non-members
])
def test_bad_selena_settings_fail_early(changes, where):
    with pytest.raises(ConfigError) as info:
        Experiment.from_dict(changes)
    assert info.value.where == where and "\n" not in str(info.value)


def test_the_adaptive_attack_also_runs_against_an_undefended_target(digits, tmp_path):
    exp = tiny_experiment(split=SPLIT, attacks=("loss", "selena_adaptive"))
    tables = run_trial(exp, digits, InProcessExecutor(digits), cache_dir=str(tmp_path))
    assert tables["trials"].models_trained.item() == 1 + 4 + 25  # SELENA's default K
    assert (tables["attacks"].attack == "selena_adaptive").sum() == 4


def test_an_adaptive_split_ai_without_enough_known_members_fails_early():
    """Declared by the attack (AttackSpec.requires): the config itself is refused."""
    with pytest.raises(ConfigError, match="attacks: selena_adaptive's Split-AI"):
        tiny_experiment(split=SplitConfig(n_members=10, n_validation=10),
                        defense=Selena(K=25, L=22), attacks=("selena_adaptive",))


def test_like_target_shadow_models_are_each_distilled_from_their_own_split_ai(digits):
    from raymia.selena.defense import Distillation

    exp = selena_experiment(shadows=ShadowConfig(n_models=4, models_per_job=2))
    splits = make_splits(len(digits), exp.split, exp.shadows.n_models, exp.seed)
    job = make_jobs(exp, splits)[1]  # shadow models 0 and 1
    assert isinstance(job.defense, Selena)
    plan = job.defense.stages(exp, job)
    assert len(plan.jobs) == 2 * 2  # K = 4 submodels per shadow model, 2 per job
    assert {j.role for j in plan.jobs} == {"selena_shadow_submodel"}
    for m, subs in enumerate((plan.jobs[:2], plan.jobs[2:])):
        members = set(job.train_indices[m])
        for train_idx in sum([list(j.train_indices) for j in subs], []):
            assert set(train_idx) < members  # each leaves out some of its shadow's members
    first = InProcessExecutor(digits).run(plan.jobs)
    distilled = plan.finish(first)
    assert [j.first_index for j in distilled] == [0, 1]
    for m, j in enumerate(distilled):
        assert isinstance(j.defense, Distillation) and j.seeds == (job.seeds[m],)
        np.testing.assert_array_equal(j.train_indices[0], job.train_indices[m])
        np.testing.assert_array_equal(j.holdout_indices[0], splits.shadow_holdout)
    assert distilled[0].defense.targets_sha256 != distilled[1].defense.targets_sha256


def test_undefended_shadow_models_train_once_each(digits):
    exp = tiny_experiment(split=SPLIT, defense=Selena(K=4, L=2), attacks=("loss",),
                          shadows=ShadowConfig(n_models=4, train="undefended"))
    trial = run_trial(exp, digits, InProcessExecutor(digits))["trials"].iloc[0]
    assert trial.models_trained == 4 + 1 + 4  # the target's Split-AI and distillation, 4 shadows


def test_every_split_ai_of_a_trial_trains_in_one_stage_then_every_distillation(digits):
    class Recording(InProcessExecutor):
        def __init__(self, data):
            super().__init__(data)
            self.batches = []

        def run(self, jobs):
            self.batches.append([j.role for j in jobs])
            return super().run(jobs)

    exp = tiny_experiment(split=SPLIT, defense=Selena(K=4, L=2), attacks=("loss",),
                          shadows=ShadowConfig(n_models=4, models_per_job=2))
    executor = Recording(digits)
    trial = run_trial(exp, digits, executor)["trials"].iloc[0]
    first, second = executor.batches
    # all 5 Split-AIs (4 submodels each, 2 per job) are handed over at once: the
    # executor runs them in parallel (on Ray, over every worker)
    assert sorted(set(first)) == ["selena_shadow_submodel", "selena_submodel"]
    assert first.count("selena_shadow_submodel") == 4 * 2 and first.count("selena_submodel") == 2
    assert second == ["target"] + ["shadow"] * 4  # then the 5 distillations together
    assert trial.models_trained == 5 * (4 + 1)
